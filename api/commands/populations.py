"""``zhili import-populations FILE --month YYYY-MM --department D``: one month of one
department's special-population counts (CSV, XLSX or JSON lines), checked whole, stored in
one transaction (a re-import replaces the month and keeps the old one as history)."""

from __future__ import annotations

from pathlib import Path

import click

from api.commands.common import UsageProblem, database_option, friendly_errors, resolve_url


@click.command("import-populations")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--month", required=True, help="The month the counts describe, YYYY-MM.")
@click.option("--department", required=True, help="The department that delivered them.")
@database_option
@friendly_errors
def import_populations_cmd(
    file: Path, month: str, department: str, database_url: str | None
) -> None:
    """Import monthly special-population counts (counts only, never persons). Prints the
    validation report; a file with any offending row is refused whole (exit code 2), every
    such row listed, nothing stored."""
    from api.db.session import session_scope
    from api.services.population_import import (
        PopulationImportError,
        import_populations,
        parse_month,
    )

    first = parse_month(month)
    url = resolve_url(database_url)
    try:
        with session_scope(url) as session:
            report = import_populations(session, file, first, department, imported_by="cli")
    except PopulationImportError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise UsageProblem(str(exc)) from None
    for line in report.lines():
        click.echo(line)
