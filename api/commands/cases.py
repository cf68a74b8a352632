"""``zhili import-cases FILE``: bulk case files through the intake pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from api.commands.common import UsageProblem, database_option, friendly_errors, resolve_url


def _mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise UsageProblem(f"--map {pair!r}: write it as SOURCE_HEADER=field")
        out[src.strip()] = dst.strip()
    return out


@click.command("import-cases")
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
    help="Rename a column, e.g. --map 事件编号=external_id (repeatable).",
)
@click.option("--source", default=None, help="Source for rows without one (e.g. the system).")
@click.option(
    "--encoding",
    default=None,
    help="Default: detected (UTF-8, UTF-8 with BOM or GB18030).",
)
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where bad rows are listed (default FILE.errors.csv).",
)
@click.option(
    "--writers",
    type=click.IntRange(1, 16),
    default=None,
    help="Chunks stored at once on PostgreSQL, a connection each (default 2; SQLite: 1).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@database_option
@friendly_errors
def import_cases_cmd(
    file: Path,
    fmt: str | None,
    maps: tuple[str, ...],
    source: str | None,
    encoding: str | None,
    errors_path: Path | None,
    writers: int | None,
    quiet: bool,
    database_url: str | None,
) -> None:
    """Import cases from a CSV or JSON-lines FILE. Good rows land, bad rows are listed
    with their line number and reason in the error file (exit code 1); running the same
    file again changes nothing. An import that stops half-way (the database gone, a row
    it refuses) tells what it stored before and exits with code 3."""
    from tqdm import tqdm

    from api.db.session import session_factory
    from api.services.case_import import ImportStopped, count_rows, import_cases

    url = resolve_url(database_url)
    mapping = _mapping(maps)
    if not file.is_file():
        raise UsageProblem(f"no file {str(file)!r}")
    session = session_factory(url)()
    stopped: ImportStopped | None = None
    try:
        total = None if quiet else count_rows(file, fmt)
        with tqdm(total=total, unit=" rows", disable=quiet, file=sys.stderr) as bar:
            summary = import_cases(
                session,
                file,
                fmt=fmt,
                mapping=mapping,
                source=source,
                encoding=encoding,
                progress=bar.update,
                writers=writers,
            )
    except ImportStopped as exc:
        stopped, summary = exc, exc.summary
    finally:
        session.close()
    _tell(summary, file, errors_path, stopped)


def _tell(summary, file: Path, errors_path: Path | None, stopped) -> None:
    """The summary (always: also when the import stopped half-way), the error file, and
    the exit code: 0 all rows good, 1 bad rows listed, 3 the import stopped."""
    from api.services.case_import import write_errors

    if summary.ignored_columns:
        click.echo(f"ignored columns: {', '.join(summary.ignored_columns)}", err=True)
    counts = (
        f"{summary.rows} rows: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.rejected} rejected"
    )
    click.echo(f"stored before the import stopped: {counts}" if stopped else counts)
    if summary.errors:
        path = errors_path or file.with_name(file.name + ".errors.csv")
        write_errors(path, summary.errors)
        click.echo(f"bad rows listed in {path}", err=True)
    if stopped is not None:
        if summary.rows:
            told = (
                "The rows counted above are stored; the rest of the file is not. Once the "
                "cause is fixed, run the same file again: rows already stored are not "
                "stored twice."
            )
        else:
            told = "Nothing was stored: fix the cause and run the file again."
        click.echo(f"Error: the import stopped: {stopped.reason}. {told}", err=True)
        sys.exit(3)
    if summary.errors:
        sys.exit(1)
