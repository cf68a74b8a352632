"""``zhili alerts``: compute the early-warning alerts from the rollups."""

from __future__ import annotations

import datetime as dt

import click

from api.commands.common import database_option, friendly_errors, resolve_url
from api.db.session import session_scope


def _parse_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day: use YYYY-MM-DD") from None


@click.group()
def alerts() -> None:
    """Early-warning alerts: caseload anomalies, overdue pile-ups, unstaffed grids."""


@alerts.command("run")
@click.option(
    "--on",
    "on",
    callback=_parse_day,
    default=None,
    help="Compute the alerts as of this day, YYYY-MM-DD (default: the last day with data).",
)
@database_option
@friendly_errors
def run(on: dt.date | None, database_url: str | None) -> None:
    """Recompute every alert up to a day and update the alert table."""
    from api.alerts.lifecycle import run_alerts

    url = resolve_url(database_url)
    with session_scope(url) as session:
        summary = run_alerts(session, on)
    click.echo(f"alerts as of {summary.on} ({summary.days} days scanned, {summary.seconds:.1f} s)")
    for kind, episodes in summary.episodes.items():
        click.echo(f"{kind:>16}: {summary.opened.get(kind, 0)} open, {episodes} in all")
