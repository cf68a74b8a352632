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


@report.command("run-scheduled")
@click.option("--month", default=None, help="YYYY-MM (default: last month, local time).")
@click.option("--force", is_flag=True, help="Render again the reports already written.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The data folder (default: ZHILI_DATA_DIR).",
)
@database_option
@friendly_errors
def run_scheduled_cmd(
    month: str | None, force: bool, data_dir: Path | None, database_url: str | None
) -> None:
    """Render the monthly report of every scheduled unit into
    ZHILI_DATA_DIR/reports/<unit>/<month>.pdf (cron: ``0 3 1 * * zhili report
    run-scheduled``). Exit code 1 when a unit's report failed."""
    from api.db.session import session_scope
    from api.errors import ApiError
    from api.services.report_schedule import last_month, local_today, run_scheduled
    from api.settings import get_settings

    settings = get_settings()
    month = month or last_month(local_today(settings.timezone))
    with session_scope(resolve_url(database_url)) as session:
        try:
            done = run_scheduled(session, data_dir or settings.data_dir, month, force)
        except ApiError as exc:
            raise UsageProblem(exc.message) from None
    for item in done:
        click.echo(f"{item.status}\t{item.unit}\t{item.path}\t{item.reason}".rstrip())
    if not done:
        click.echo("no unit is scheduled: PUT /api/v1/reports/schedule")
    if any(item.status == "failed" for item in done):
        raise SystemExit(1)
