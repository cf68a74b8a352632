"""``zhili import-events FILE``: bulk dispatch event files through the event intake."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from api.commands.common import UsageProblem, database_option, friendly_errors, resolve_url


@click.command("import-events")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="Default: from the extension (.jsonl/.ndjson → jsonl, else csv).",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="HEADER=FIELD",
    help="Rename a column, e.g. --map 接警单号=external_id (repeatable).",
)
@click.option("--source", default=None, help="Source for rows without one (e.g. 110).")
@click.option("--encoding", default=None, help="Default: detected (UTF-8, BOM, GB18030).")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where bad rows are listed (default FILE.errors.csv).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@database_option
@friendly_errors
def import_events_cmd(
    file: Path,
    fmt: str | None,
    maps: tuple[str, ...],
    source: str | None,
    encoding: str | None,
    errors_path: Path | None,
    quiet: bool,
    database_url: str | None,
) -> None:
    """Import dispatch events from a CSV or JSON-lines FILE. Good rows land (a re-sent
    event is a late update), bad rows are listed with their line number and reason in the
    error file (exit code 1); running the same file again changes nothing."""
    from tqdm import tqdm

    from api.db.session import session_factory
    from api.services.case_import import count_rows, write_errors
    from api.services.event_import import import_events

    url = resolve_url(database_url)
    mapping = {}
    for pair in maps:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise UsageProblem(f"--map {pair!r}: write it as SOURCE_HEADER=field")
        mapping[src.strip()] = dst.strip()
    if not file.is_file():
        raise UsageProblem(f"no file {str(file)!r}")
    session = session_factory(url)()
    try:
        total = None if quiet else count_rows(file, fmt)
        with tqdm(total=total, unit=" rows", disable=quiet, file=sys.stderr) as bar:
            summary = import_events(
                session,
                file,
                fmt=fmt,
                mapping=mapping,
                source=source,
                encoding=encoding,
                progress=bar.update,
            )
    finally:
        session.close()
    if summary.ignored_columns:
        click.echo(f"ignored columns: {', '.join(summary.ignored_columns)}", err=True)
    click.echo(
        f"{summary.rows} rows: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.rejected} rejected"
    )
    if summary.errors:
        path = errors_path or file.with_name(file.name + ".errors.csv")
        write_errors(path, summary.errors)
        click.echo(f"bad rows listed in {path}", err=True)
        sys.exit(1)
