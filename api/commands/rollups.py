"""``zhili db rebuild-rollups``: recompute the rollup tables from table ``case``."""

from __future__ import annotations

import time

import click
from sqlalchemy import func, select

from api.commands.common import database_option, friendly_errors, resolve_url


@click.command("rebuild-rollups")
@database_option
@friendly_errors
def rebuild_rollups_cmd(database_url: str | None) -> None:
    """Recompute case_rollup_daily, case_flow_daily and case_close_histogram from the
    cases, in one transaction (readers keep the old figures until it commits)."""
    from api.db.models import Case, CaseCloseHistogram, CaseFlowDaily, CaseRollupDaily
    from api.db.session import session_scope
    from api.engine import rebuild_rollups

    url = resolve_url(database_url)
    t0 = time.perf_counter()
    with session_scope(url) as session:
        rebuild_rollups(session)
        counts = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Case, CaseRollupDaily, CaseFlowDaily, CaseCloseHistogram)
        }
    click.echo(
        f"rebuilt rollups from {counts.pop('case'):,} cases in {time.perf_counter() - t0:.1f} s: "
        + ", ".join(f"{name} {n:,} rows" for name, n in counts.items())
    )
