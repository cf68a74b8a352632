"""``zhili import-risk-items FILE``: items of the stability-risk register from a GeoJSON
FeatureCollection (places drawn elsewhere, in QGIS or a planning system), each feature
registered through the same service as ``POST /api/v1/risk-items``."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from api.commands.common import UsageProblem, database_option, friendly_errors, resolve_url
from api.db.session import session_scope


@click.command("import-risk-items")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--unit", "unit_code", default=None, help="Act for this unit (default: the root).")
@database_option
@friendly_errors
def import_risk_items_cmd(file: Path, unit_code: str | None, database_url: str | None) -> None:
    """Register the features of FILE (GeoJSON; properties kind, title, deciding_unit,
    planned_at, people_affected, department, optional description and ends_at). Bad
    features are listed with their number and reason; the good ones land. Exit 2 when any
    was refused."""
    from pydantic import ValidationError
    from sqlalchemy import select

    from api.db.models import AdminUnit
    from api.errors import ApiError
    from api.principal import Principal
    from api.schemas.risk import RiskItemIn
    from api.services.risk import NewItem, register_item

    try:
        collection = orjson.loads(file.read_bytes())
        features = collection["features"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise UsageProblem(f"{file}: not a GeoJSON FeatureCollection") from None
    refused = 0
    with session_scope(resolve_url(database_url)) as session:
        root = unit_code or session.scalar(
            select(AdminUnit.code).where(
                AdminUnit.parent_code.is_(None), AdminUnit.valid_to.is_(None)
            )
        )
        if root is None:
            raise UsageProblem("the database has no units: import boundaries first")
        cli = Principal(0, "cli", "admin", root)
        for n, feature in enumerate(features, start=1):
            props = dict((feature or {}).get("properties") or {})
            try:
                item = RiskItemIn(**props, place=(feature or {}).get("geometry") or {})
                created = register_item(session, cli, NewItem(**item.model_dump()))
                click.echo(f"feature {n}: registered as risk item {created.id}")
            except ValidationError as exc:
                refused += 1
                where = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                click.echo(f"feature {n}: refused: {where}")
            except ApiError as exc:
                session.rollback()
                refused += 1
                click.echo(f"feature {n}: refused: {exc.message}")
    if refused:
        raise SystemExit(2)
