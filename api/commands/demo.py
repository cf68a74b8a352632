"""``zhili demo``'s preparation: the embedded database migrated and seeded with the demo
world (the small city with history from 2024-01-01, so that 同比 shows), its alerts run
(so that the alert panels are not empty the first time), and a demo admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import click
from sqlalchemy import func, select

from api.db.session import session_scope
from api.settings import get_settings

DEMO_PRESET = "demo"


@dataclass(frozen=True)
class DemoLogin:
    """What ``zhili demo`` prints: an API token and a fresh dashboard password."""

    token: str
    password: str


def prepare_demo(url: str, seed: int = 1) -> DemoLogin:
    """Migrate; seed the demo world into an empty database; run the alerts when there are
    none yet; create (or reuse) user ``demo``, an admin of the root unit, with a new token
    and a new password."""
    from api.alerts.lifecycle import run_alerts
    from api.db.migrate import upgrade
    from api.db.models import AdminUnit, Alert, User
    from api.services.auth import create_user, issue_token, set_password

    upgrade(url)
    with session_scope(url) as session:
        empty = not session.scalar(select(func.count()).select_from(AdminUnit))
    if empty:
        from seed.build import seed_database

        click.echo(f"seeding the {DEMO_PRESET} preset (history from 2024-01-01) ...")
        seed_database(url, preset=DEMO_PRESET, seed=seed)
    with session_scope(url) as session:
        if not session.scalar(select(func.count()).select_from(Alert)):
            summary = run_alerts(session)
            opened = sum(summary.opened.values())
            click.echo(f"alerts as of {summary.on}: {opened} open")
    with session_scope(url) as session:
        admin = session.scalar(select(User).where(User.name == "demo"))
        if admin is None:
            root = session.scalar(
                select(AdminUnit.code)
                .where(AdminUnit.parent_code.is_(None))
                .where(AdminUnit.valid_to.is_(None))
                .order_by(AdminUnit.code)
                .limit(1)
            )
            admin = create_user(session, "demo", "admin", root)
        token = issue_token(session, admin, get_settings().token_ttl_days, label="demo")
        password = secrets.token_urlsafe(9)  # a new one each run: the old one is only a hash
        set_password(session, admin, password)
    return DemoLogin(token, password)
