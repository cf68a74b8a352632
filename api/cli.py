"""The ``zhili`` command line. Each command is a thin shell over a service function."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy import func, select

from api.commands.alerts import alerts as alerts_cmd
from api.commands.boundaries import import_boundaries_cmd
from api.commands.cases import import_cases_cmd
from api.commands.common import UsageProblem, database_option, friendly_errors, resolve_url
from api.commands.events import import_events_cmd
from api.commands.export import export_cmd
from api.commands.populations import import_populations_cmd
from api.commands.report import report as report_cmd
from api.commands.risk import import_risk_items_cmd
from api.commands.rollups import rebuild_rollups_cmd
from api.db.session import session_scope
from api.principal import ROLES
from api.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Zhili 治理: the multi-level governance center (API, dashboard, data tools)."""


@main.group()
def db() -> None:
    """Database schema: migrate up or down."""


@db.command("upgrade")
@database_option
@click.option("--revision", default="head", show_default=True)
@friendly_errors
def db_upgrade(database_url: str | None, revision: str) -> None:
    """Create or migrate the schema to REVISION."""
    from api.db.migrate import upgrade

    url = resolve_url(database_url)
    upgrade(url, revision)
    click.echo(f"schema at {revision} on {url.split('@')[-1]}")


@db.command("downgrade")
@database_option
@click.option("--revision", required=True, help="Target revision ('base' drops everything).")
@friendly_errors
def db_downgrade(database_url: str | None, revision: str) -> None:
    """Migrate the schema down to REVISION."""
    from api.db.migrate import downgrade

    url = resolve_url(database_url)
    downgrade(url, revision)
    click.echo(f"schema at {revision}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _serve(url: str, host: str, port: int, workers: int) -> None:
    import uvicorn

    if not _port_free(host, port):
        raise UsageProblem(f"port {port} on {host} is in use: pick another with --port")
    os.environ["ZHILI_DATABASE_URL"] = url
    click.echo(f"API        http://{host}:{port}/api/v1/health")
    click.echo(f"API docs   http://{host}:{port}/docs")
    click.echo(f"Dashboard  http://{host}:{port}/dashboard/")
    sys.stdout.flush()
    uvicorn.run(
        "api.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        proxy_headers=False,
    )


serve_options = [
    click.option("--host", default="127.0.0.1", show_default=True),
    click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535)),
    click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64)),
]


def with_serve_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(serve_options):
        fn = option(fn)
    return fn


@main.command()
@database_option
@with_serve_options
@friendly_errors
def serve(database_url: str | None, host: str, port: int, workers: int) -> None:
    """Serve the API and the dashboard on one port (the schema must be current)."""
    from api.db.migrate import is_current

    url = resolve_url(database_url)
    if not is_current(url):
        raise UsageProblem("the database schema is not current: run 'zhili db upgrade' first")
    _serve(url, host, port, workers)


@main.command()
@database_option
@with_serve_options
@friendly_errors
def demo(database_url: str | None, host: str, port: int, workers: int) -> None:
    """Create, migrate and seed the embedded database if needed (the demo world, two full
    years of history), run the alerts, then serve."""
    from api.commands.demo import prepare_demo

    url = resolve_url(database_url)
    login = prepare_demo(url)
    click.echo(f"demo admin token: {login.token}")
    click.echo(
        f"demo login: user demo, password {login.password}  (http://{host}:{port}/dashboard/login)"
    )
    _serve(url, host, port, workers)


@main.group()
def user() -> None:
    """Users and their API tokens."""


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(ROLES),
)
@click.option("--unit", "unit_code", required=True, help="Home unit code (its subtree is seen).")
@click.option(
    "--password",
    default=None,
    help="Password for the dashboard login (at least 8 characters; '-' reads it from stdin).",
)
@click.option(
    "--department",
    "department_kind",
    default=None,
    help="With --role department: the kind of the unit's department (labour, mediation, ...).",
)
@click.option("--agency", default=None, help="An assessor's agency code (the risk register).")
@click.option(
    "--special-populations",
    is_flag=True,
    help="May read the special-population figures (counts, with small counts suppressed).",
)
@database_option
@friendly_errors
def user_add(
    name: str,
    role: str,
    unit_code: str,
    password: str | None,
    database_url: str | None,
    department_kind: str | None = None,
    agency: str | None = None,
    special_populations: bool = False,
) -> None:
    """Create user NAME and print an API token for it."""
    from api.principal import SPECIAL_POPULATIONS
    from api.services.auth import (
        create_user,
        find_user,
        grant_permission,
        hash_password,
        issue_token,
    )
    from api.services.units import get_unit

    if password == "-":
        password = sys.stdin.readline().rstrip("\n")
    if not name.strip() or len(name) > 64:
        raise UsageProblem("a user name is 1 to 64 characters")
    url = resolve_url(database_url)
    password_hash = hash_password(password) if password is not None else None
    with session_scope(url) as session:
        if get_unit(session, unit_code) is None:
            raise UsageProblem(f"no unit with code {unit_code!r}")
        if find_user(session, name) is not None:
            raise UsageProblem(f"user {name!r} exists already")
        if (role == "department") != (department_kind is not None):
            raise UsageProblem("--department goes with --role department, and only with it")
        if (role == "assessor") != (agency is not None):
            raise UsageProblem("--agency CODE goes with --role assessor, and only with it")
        account = create_user(session, name, role, unit_code, password_hash)
        if department_kind is not None:
            from api.services.routing import join_department

            try:
                join_department(session, account.id, unit_code, department_kind)
            except LookupError as exc:
                raise UsageProblem(str(exc)) from None
        if agency is not None:
            from api.errors import ApiError
            from api.services.risk import add_member

            try:
                add_member(session, agency, account.id)
            except ApiError as exc:
                raise UsageProblem(exc.message) from None
        if special_populations:
            grant_permission(session, account, SPECIAL_POPULATIONS)
        token = issue_token(session, account, get_settings().token_ttl_days, label="cli")
    click.echo(token)


@user.command("list")
@click.option("--unit", "unit_code", default=None, help="Only users whose home is in this subtree.")
@database_option
@friendly_errors
def user_list(unit_code: str | None, database_url: str | None) -> None:
    """List users: name, role, home unit, password set, active tokens."""
    from api.db.models import ApiToken, User
    from api.services.auth import SESSION_LABEL, now_utc
    from api.services.scope import subtree_codes

    url = resolve_url(database_url)
    with session_scope(url) as session:
        active = (
            select(ApiToken.user_id, func.count().label("n"))
            .where(ApiToken.revoked_at.is_(None))
            .where(ApiToken.expires_at > now_utc())
            .where((ApiToken.label.is_(None)) | (ApiToken.label != SESSION_LABEL))
            .group_by(ApiToken.user_id)
            .subquery()
        )
        stmt = (
            select(User, func.coalesce(active.c.n, 0))
            .outerjoin(active, active.c.user_id == User.id)
            .order_by(User.name)
        )
        if unit_code:
            stmt = stmt.where(User.unit_code.in_(subtree_codes(unit_code)))
        rows = session.execute(stmt).all()
        click.echo(f"{'name':<24} {'role':<15} {'unit':<16} {'password':<9} {'active':<7} tokens")
        for account, tokens in rows:
            click.echo(
                f"{account.name:<24} {account.role:<15} {account.unit_code:<16} "
                f"{'yes' if account.password_hash else 'no':<9} "
                f"{'yes' if account.active else 'no':<7} {tokens}"
            )


@user.command("tokens")
@click.argument("name")
@database_option
@friendly_errors
def user_tokens(name: str, database_url: str | None) -> None:
    """List the tokens and sessions of user NAME (never the tokens themselves)."""
    from api.services.auth import find_user, list_tokens, token_state

    url = resolve_url(database_url)
    with session_scope(url) as session:
        account = find_user(session, name)
        if account is None:
            raise UsageProblem(f"no user {name!r}")
        click.echo(
            f"{'id':>6} {'label':<12} {'state':<8} {'created':<17} {'expires':<17} last used"
        )
        stamp = "%Y-%m-%d %H:%M"
        for t in list_tokens(session, account.id):
            click.echo(
                f"{t.id:>6} {(t.label or '-'):<12} {token_state(t):<8} "
                f"{t.created_at.strftime(stamp):<17} {t.expires_at.strftime(stamp):<17} "
                f"{t.last_used_at.strftime(stamp) if t.last_used_at else '-'}"
            )


@user.command("revoke")
@click.argument("name")
@click.option("--token-id", type=int, default=None, help="Revoke this token only.")
@click.option("--all", "revoke_all", is_flag=True, help="Revoke every token and session.")
@database_option
@friendly_errors
def user_revoke(
    name: str, token_id: int | None, revoke_all: bool, database_url: str | None
) -> None:
    """Revoke one token (--token-id) or all tokens and sessions (--all) of user NAME."""
    from api.services.auth import find_user, list_tokens, revoke_token

    if (token_id is None) == (not revoke_all):
        raise UsageProblem("say which: --token-id ID or --all")
    url = resolve_url(database_url)
    with session_scope(url) as session:
        account = find_user(session, name)
        if account is None:
            raise UsageProblem(f"no user {name!r}")
        tokens = list_tokens(session, account.id)
        if token_id is not None:
            tokens = [t for t in tokens if t.id == token_id]
            if not tokens:
                raise UsageProblem(f"user {name!r} has no token {token_id}: see 'user tokens'")
        revoked = sum(revoke_token(session, t, None) for t in tokens)
    click.echo(f"revoked {revoked} token(s) of {name}")


@main.command("seed")
@click.option(
    "--preset",
    default="small",
    show_default=True,
    type=click.Choice(["small", "demo", "metro", "large"]),
)
@click.option("--seed", "seed_value", default=1, show_default=True, type=int)
@click.option("--bursts/--no-bursts", default=True, help="Plant incident bursts (default).")
@database_option
@friendly_errors
def seed_cmd(preset: str, seed_value: int, bursts: bool, database_url: str | None) -> None:
    """Build a synthetic world into an empty database (migrating it first)."""
    from api.db.migrate import upgrade
    from seed.build import seed_database

    url = resolve_url(database_url)
    upgrade(url)
    summary = seed_database(url, preset=preset, seed=seed_value, bursts=bursts)
    for key, value in summary.items():
        click.echo(f"{key:>24}: {value}")


main.add_command(import_boundaries_cmd)
main.add_command(alerts_cmd)
main.add_command(import_cases_cmd)
main.add_command(import_events_cmd)
db.add_command(rebuild_rollups_cmd)
main.add_command(export_cmd)
main.add_command(import_risk_items_cmd)
main.add_command(report_cmd)
main.add_command(import_populations_cmd)
