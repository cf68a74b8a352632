"""Import one level of boundaries into the database: the level table, the current units
and the new versions around ``geo.importer.plan_import`` (which reads and checks the file).

Writing follows the units' history: a unit whose name, parent, population or shape
changed gets a new version from ``valid_from`` and its current version is closed
(``valid_to``); unchanged units are left alone, so re-importing a file changes nothing.
The caller's session is the one transaction.

Levels: ``level`` must name a level of the level table. An empty level table is first
filled with the standard city / town / village / grid levels, unless ``levels`` (the CLI's
``--levels city,district,town,village,grid``) says otherwise; levels in use never move.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit
from api.services.units import (
    CITY_DISTRICT_TOWN_VILLAGE_GRID,
    CITY_TOWN_VILLAGE_GRID,
    LevelSpec,
    UnitRecord,
    ensure_levels,
    level_depths,
    supersede_units,
)
from geo.importer import ImportReport, check_level_table, plan_import
from geo.validate import Thresholds


def import_boundaries(
    session: Session,
    path: str | Path,
    *,
    level: str,
    code_field: str,
    name_field: str,
    parent_field: str | None = None,
    population_field: str | None = None,
    valid_from: dt.date | None = None,
    layer: str | None = None,
    thresholds: Thresholds | None = None,
    levels: list[str] | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import the units of one level from ``path`` in the caller's transaction.

    Without ``parent_field`` each unit's parent is the unit of the level above that holds
    most of its area. Raises ``geo.importer.ImportRefused`` (nothing written) when the
    report has errors; ``dry_run`` only reports."""
    depths = level_depths(session)
    wanted = levels or ([] if depths else [s.code for s in CITY_TOWN_VILLAGE_GRID])
    if wanted:
        check_level_table(depths, wanted)
        if dry_run:  # a dry run writes nothing, not even the level table
            depths = {**depths, **{code: depth for depth, code in enumerate(wanted)}}
        else:
            define_levels(session, wanted)
            depths = level_depths(session)
    plan = plan_import(
        path,
        level=level,
        code_field=code_field,
        name_field=name_field,
        depths=depths,
        current_units=list(session.scalars(select(AdminUnit).where(AdminUnit.valid_to.is_(None)))),
        valid_from=valid_from or dt.date.today(),
        parent_field=parent_field,
        population_field=population_field,
        layer=layer,
        thresholds=thresholds,
    )
    report = plan.report
    if dry_run:
        return report
    if plan.versions:
        supersede_units(
            session,
            [
                UnitRecord(
                    code=v.code,
                    name=v.name,
                    level=v.level,
                    parent_code=v.parent_code,
                    geom=v.geom,
                    population=v.population,
                    households=v.households,
                    area_km2=v.area_km2,
                    valid_from=v.valid_from,
                )
                for v in plan.versions
            ],
        )
    report.created, report.changed, report.unchanged = plan.created, plan.changed, plan.unchanged
    report.written = True
    return report


def define_levels(session: Session, codes: list[str]) -> None:
    """Make the level table ``codes`` (root first). Levels already in use keep their
    depth: a hierarchy can grow levels below, never shuffle the ones it has."""
    known = {s.code: s for s in CITY_DISTRICT_TOWN_VILLAGE_GRID}
    check_level_table(level_depths(session), codes)
    ensure_levels(
        session,
        [
            LevelSpec(
                d, c, known[c].name_zh if c in known else c, known[c].name_en if c in known else c
            )
            for d, c in enumerate(codes)
        ],
    )
