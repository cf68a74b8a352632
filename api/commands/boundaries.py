"""``zhili import-boundaries``: import one level of boundaries from any GDAL file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import orjson

from api.commands.common import UsageProblem, database_option, friendly_errors, resolve_url
from api.db.session import session_scope
from api.services.boundaries import import_boundaries
from api.services.display import warm_display_cache
from geo.importer import ImportRefused, ImportReport
from geo.validate import ERROR, INFO, WARNING, Thresholds

DEFAULTS = Thresholds()


def _print_report(report: ImportReport, verbose: bool) -> None:
    click.echo(
        f"{report.file}: {report.features} {report.level} feature(s), "
        f"CRS {report.source_crs or 'none (taken as WGS84)'}"
    )
    click.echo(
        f"  {report.count(ERROR)} error(s), {report.count(WARNING)} warning(s), "
        f"{report.count(INFO)} note(s)"
    )
    shown = [p for p in report.problems if verbose or p.severity != INFO]
    for p in shown:
        where = f"  at {p.lon:.6f},{p.lat:.6f}" if p.lon is not None else ""
        click.echo(f"  {p.severity:<7} {p.kind:<16} {p.message}{where}")
    hidden = len(report.problems) - len(shown)
    if hidden:
        click.echo(f"  ({hidden} note(s) not shown: --verbose shows them)")


@click.command("import-boundaries")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--level", required=True, help="Level of the units in FILE (see /api/v1/levels).")
@click.option("--code-field", required=True, help="Field holding the unit code.")
@click.option("--name-field", required=True, help="Field holding the unit name.")
@click.option(
    "--parent-field", default=None, help="Field holding the parent code (default: by area)."
)
@click.option("--population-field", default=None, help="Field holding the population.")
@click.option(
    "--valid-from",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day of the new versions (default: today).",
)
@click.option("--layer", default=None, help="Layer of a multi-layer file (GeoPackage).")
@click.option(
    "--report-geojson",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the problem spots as GeoJSON (open it in QGIS over the file).",
)
@click.option(
    "--report-json", is_flag=True, help="Print the report as JSON instead (alone on stdout)."
)
@click.option(
    "--max-outside-share",
    type=click.FloatRange(0, 1),
    default=DEFAULTS.outside_error,
    show_default=True,
    help="Refuse the file when a child has more of its area outside its parent.",
)
@click.option(
    "--max-overlap-share",
    type=click.FloatRange(0, 1),
    default=DEFAULTS.overlap_error,
    show_default=True,
    help="Refuse the file when two siblings overlap by more of the smaller one.",
)
@click.option(
    "--levels",
    default=None,
    help="Define the level table first, root first (e.g. city,district,town,village,grid); "
    "default on an empty database: city,town,village,grid.",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Do not precompute the display geometry after the import.",
)
@click.option("--dry-run", is_flag=True, help="Check and report only; write nothing.")
@click.option("--verbose", "-v", is_flag=True, help="Show notes (info) too.")
@database_option
@friendly_errors
def import_boundaries_cmd(
    file: Path,
    level: str,
    code_field: str,
    name_field: str,
    parent_field: str | None,
    population_field: str | None,
    valid_from: dt.datetime | None,
    layer: str | None,
    report_geojson: Path | None,
    report_json: bool,
    max_outside_share: float,
    max_overlap_share: float,
    levels: str | None,
    no_cache: bool,
    dry_run: bool,
    verbose: bool,
    database_url: str | None,
) -> None:
    """Import the units of one LEVEL from FILE (any format GDAL reads, any CRS).

    Prints a validation report; refuses the whole file (exit code 2, nothing written)
    when it has errors. Re-importing the same file changes nothing; a changed unit gets
    a new version from --valid-from and its old version is closed."""
    url = resolve_url(database_url)
    thresholds = Thresholds(
        outside_error=max_outside_share,
        overlap_error=max_overlap_share,
        outside_warning=min(DEFAULTS.outside_warning, max_outside_share),
        overlap_warning=min(DEFAULTS.overlap_warning, max_overlap_share),
    )
    refused = None
    try:
        with session_scope(url) as session:
            report = import_boundaries(
                session,
                file,
                level=level,
                code_field=code_field,
                name_field=name_field,
                parent_field=parent_field,
                population_field=population_field,
                valid_from=valid_from.date() if valid_from else None,
                layer=layer,
                thresholds=thresholds,
                levels=[c.strip() for c in levels.split(",") if c.strip()] if levels else None,
                dry_run=dry_run,
            )
    except ImportRefused as exc:
        refused, report = exc, exc.report
    if report_geojson is not None:
        report_geojson.write_bytes(report.problems_geojson())
    if report_json:
        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_report(report, verbose)
    if refused is not None:
        raise UsageProblem(f"refused, nothing imported: {len(report.errors)} error(s)")
    say = report_json  # with --report-json, stdout holds the JSON alone
    if report.written:
        click.echo(
            f"imported: {report.created} new, {report.changed} changed (old versions closed), "
            f"{report.unchanged} unchanged",
            err=say,
        )
        if not no_cache and (report.created or report.changed):
            with session_scope(url) as session:
                warm_display_cache(session)
            click.echo("display geometry cached for every level", err=say)
    else:
        click.echo("dry run: nothing written", err=say)
