"""``zhili export``: the map of a level as a file, the same as ``GET /api/v1/choropleth``."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from api.commands.common import database_option, friendly_errors, resolve_url


@click.command("export")
@click.option("--level", required=True, help="Level of the units to export (town, village, grid…).")
@click.option(
    "--parent", "parent", default=None, help="Only units under this unit (default: the root)."
)
@click.option(
    "--metric", default="caseload", show_default=True, help="Metric id (see GET /api/v1/metrics)."
)
@click.option("--start", default=None, help="First day, YYYY-MM-DD.")
@click.option("--end", default=None, help="Last day, YYYY-MM-DD (inclusive).")
@click.option(
    "--period", default=None, help="Instead of --start/--end: 2026, 2026-Q3, 2026-10, last-30d."
)
@click.option("--compare", type=click.Choice(["yoy", "prev"]), default=None, help="同比 or 环比.")
@click.option("--format", "fmt", type=click.Choice(["geojson", "csv", "gpkg"]), required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="The file, or a folder: the file is then named as the API names it "
    "(unit_level_metric_start_end.format).",
)
@database_option
@friendly_errors
def export_cmd(
    level: str,
    parent: str | None,
    metric: str,
    start: str | None,
    end: str | None,
    period: str | None,
    compare: str | None,
    fmt: str,
    output: Path,
    database_url: str | None,
) -> None:
    """Write the units of LEVEL (under PARENT) with METRIC for the period as GeoJSON
    (RFC 7946), CSV (UTF-8 with BOM) or GeoPackage. The export is audited."""  # fmt: skip
    from api.db.models import AdminUnit
    from api.db.session import session_scope
    from api.engine import MapQuery, MetricQuery
    from api.services.map_export import export_map
    from api.settings import get_settings

    url = resolve_url(database_url)
    settings = get_settings()
    with session_scope(url) as session:
        if parent is None:
            parent = session.scalar(
                select(AdminUnit.code).where(
                    AdminUnit.parent_code.is_(None), AdminUnit.valid_to.is_(None)
                )
            )
            if parent is None:
                raise LookupError("the database has no units: seed or import boundaries first")
        elif not session.scalar(
            select(AdminUnit.code).where(AdminUnit.code == parent, AdminUnit.valid_to.is_(None))
        ):
            raise LookupError(f"no current unit {parent!r}")
        query = MetricQuery(metric, start, end, period, compare, None, settings.min_denominator)
        exported = export_map(
            session, None, MapQuery(parent, level), query, fmt, cache_dir=settings.cache_dir
        )
    if output.is_dir():
        output = output / exported.filename
    output.write_bytes(exported.body)  # once the audit entry is committed
    click.echo(f"wrote {exported.rows:,} {level} units to {output} ({len(exported.body):,} bytes)")
