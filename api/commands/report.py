"""``zhili report monthly --unit --month -o``: the monthly report (月报) as a PDF and a PNG
per page, the same as ``GET /api/v1/reports/monthly``."""

from __future__ import annotations

from pathlib import Path

import click

from api.commands.common import UsageProblem, database_option, friendly_errors, resolve_url


@click.group("report")
def report() -> None:
    """Reports: the monthly report (月报)."""


@report.command("monthly")
@click.option("--unit", required=True, help="Unit code (its subtree is reported).")
@click.option("--month", required=True, help="YYYY-MM.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@database_option
@friendly_errors
def monthly(unit: str, month: str, output: Path, database_url: str | None) -> None:
    """Write the monthly report of UNIT for MONTH to OUTPUT (PDF) and OUTPUT-N.png."""
    from api.alerts.data import reported_range
    from api.db.session import session_scope
    from api.errors import ApiError
    from api.services.audit import audit
    from api.services.report import check_month, monthly_report, write_report
    from api.services.scope import unit_in_scope

    with session_scope(resolve_url(database_url)) as session:
        if unit_in_scope(session, unit, unit) is None:
            raise UsageProblem(f"no unit {unit!r}: give a unit code (see GET /api/v1/units)")
        try:
            check_month(month, reported_range(session))
            made = monthly_report(session, unit, month)
        except ApiError as exc:
            raise UsageProblem(exc.message) from None
        audit(session, "cli", unit, "report.read", target=unit, detail={"month": month})
    for path in write_report(made, output):
        click.echo(str(path))
