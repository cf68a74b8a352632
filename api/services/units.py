"""Levels, units and their flattened ancestry; a unit as the caller sees it.

Everything that writes ``admin_unit`` goes through here so that ``unit_ancestry`` never
falls out of step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, defer

from api.db.models import AdminLevel, AdminUnit, UnitAncestry
from api.db.versions import bump_version
from api.engine import engine_state, unit_summary
from api.principal import Principal


@dataclass(frozen=True)
class LevelSpec:
    """A level of the hierarchy; depth 0 is the root."""

    depth: int
    code: str
    name_zh: str
    name_en: str


CITY_TOWN_VILLAGE_GRID = (
    LevelSpec(0, "city", "市", "City"),
    LevelSpec(1, "town", "镇/街道", "Town"),
    LevelSpec(2, "village", "村/社区", "Village"),
    LevelSpec(3, "grid", "网格", "Grid"),
)
CITY_DISTRICT_TOWN_VILLAGE_GRID = (
    LevelSpec(0, "city", "市", "City"),
    LevelSpec(1, "district", "区/县", "District"),
    LevelSpec(2, "town", "镇/街道", "Town"),
    LevelSpec(3, "village", "村/社区", "Village"),
    LevelSpec(4, "grid", "网格", "Grid"),
)


def ensure_levels(session: Session, levels: Sequence[LevelSpec]) -> None:
    """Create the level table's rows (existing rows with the same depth are updated)."""
    for spec in levels:
        row = session.get(AdminLevel, spec.depth)
        if row is None:
            session.add(AdminLevel(**spec.__dict__))
        else:
            row.code, row.name_zh, row.name_en = spec.code, spec.name_zh, spec.name_en
    session.flush()


def list_levels(session: Session) -> list[AdminLevel]:
    """All levels, root first."""
    return list(session.scalars(select(AdminLevel).order_by(AdminLevel.depth)))


def level_depths(session: Session) -> dict[str, int]:
    """Level code → depth."""
    return {lvl.code: lvl.depth for lvl in list_levels(session)}


@dataclass
class UnitRecord:
    """A unit to write: what an import file or the seed knows of it."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geom: BaseGeometry | None = None
    population: int | None = None
    households: int | None = None
    area_km2: float | None = None
    valid_from: dt.date = dt.date(1900, 1, 1)
    valid_to: dt.date | None = None


def add_units(session: Session, records: Iterable[UnitRecord]) -> int:
    """Insert unit versions in bulk (parents before or beside children) and their ancestry.

    Returns the number of rows written. The caller owns the transaction.
    """
    rows = [r.__dict__.copy() for r in records]
    if not rows:
        return 0
    session.execute(insert(AdminUnit), rows)
    session.flush()
    rebuild_ancestry(session, codes={r["code"] for r in rows})
    bump_version(session, "boundaries")
    return len(rows)


def supersede_units(session: Session, records: Sequence[UnitRecord]) -> int:
    """Write new versions of units, keeping history: the current version of each code is
    closed the day the new one starts (``valid_to = valid_from``), or corrected in place
    when it starts that same day; codes without a current version are inserted. Ancestry
    follows, ``boundaries`` is bumped. Returns the number of versions written."""
    if not records:
        return 0
    by_code = {r.code: r for r in records}
    current = (
        {
            u.code: u
            for u in session.scalars(
                select(AdminUnit).where(AdminUnit.valid_to.is_(None), AdminUnit.code.in_(by_code))
            )
        }
        if len(by_code) <= 900
        else {u.code: u for u in current_units(session) if u.code in by_code}
    )
    fresh = []
    for record in records:
        old = current.get(record.code)
        if old is None:
            fresh.append(record)
        elif old.valid_from == record.valid_from:
            for name, value in record.__dict__.items():
                setattr(old, name, value)
        elif old.valid_from > record.valid_from:
            raise ValueError(
                f"unit {record.code} has a version from {old.valid_from}: "
                f"a new one cannot start earlier ({record.valid_from})"
            )
        else:
            old.valid_to = record.valid_from
            fresh.append(record)
    session.flush()
    if fresh:
        session.execute(insert(AdminUnit), [r.__dict__.copy() for r in fresh])
        session.flush()
    rebuild_ancestry(session, codes=set(by_code))
    bump_version(session, "boundaries")
    return len(records)


def current_units(session: Session, level: str | None = None) -> list[AdminUnit]:
    """Current versions (valid_to NULL), optionally of one level."""
    stmt = select(AdminUnit).where(AdminUnit.valid_to.is_(None))
    if level is not None:
        stmt = stmt.where(AdminUnit.level == level)
    return list(session.scalars(stmt.order_by(AdminUnit.code)))


def current_children(session: Session, code: str) -> list[AdminUnit]:
    """The current versions of the units whose parent is ``code``, by code, boundaries
    deferred (loaded only if read)."""
    stmt = (
        select(AdminUnit)
        .options(defer(AdminUnit.geom))
        .where(AdminUnit.parent_code == code, AdminUnit.valid_to.is_(None))
        .order_by(AdminUnit.code)
    )
    return list(session.scalars(stmt))


def get_unit(
    session: Session, code: str, on: dt.date | None = None, geometry: bool = True
) -> AdminUnit | None:
    """The version of unit ``code`` current today (or valid on ``on``). ``geometry=False``
    defers the boundary (loaded only if read): a city's is hundreds of kB, and a scope
    check on every figure request does not need it."""
    stmt = select(AdminUnit).where(AdminUnit.code == code)
    if not geometry:
        stmt = stmt.options(defer(AdminUnit.geom))
    if on is None:
        stmt = stmt.where(AdminUnit.valid_to.is_(None))
    else:
        stmt = stmt.where(AdminUnit.valid_from <= on).where(
            (AdminUnit.valid_to.is_(None)) | (AdminUnit.valid_to > on)
        )
    return session.scalars(stmt.order_by(AdminUnit.valid_from.desc()).limit(1)).first()


def unit_detail(session: Session, who: Principal, code: str) -> dict:
    """The unit as ``who`` sees it: its facts (``unit_summary``), its ancestors up to the
    caller's home unit (breadcrumb, root first), its current children with their levels,
    and whether it is a leaf. From the engine's unit index (read once per boundaries
    version)."""
    state = engine_state(session)
    u = state.units
    i = u.index[code]
    ancestors = []
    parent = u.parent[i]
    if code != who.unit_code:
        while parent is not None and parent in u.index:
            ancestors.append(unit_summary(state, u.index[parent]))
            if parent == who.unit_code:
                break
            parent = u.parent[u.index[parent]]
    children = [unit_summary(state, j) for j in u.children.get(code, []) if u.current[j]]
    return {
        **unit_summary(state, i),
        "depth": u.depth.get(u.level[i]),
        "ancestors": ancestors[::-1],
        "children": children,
        "child_levels": sorted({c["level"] for c in children}, key=lambda lv: u.depth.get(lv, 0)),
    }


def set_parent(session: Session, code: str, parent_code: str | None) -> None:
    """Re-parent the current version of ``code``; its ancestry and its subtree's follow."""
    unit = get_unit(session, code)
    if unit is None:
        raise LookupError(f"unit {code!r} does not exist")
    unit.parent_code = parent_code
    session.flush()
    rebuild_ancestry(session)
    bump_version(session, "boundaries")


def rebuild_ancestry(session: Session, codes: set[str] | None = None) -> None:
    """Recompute ``unit_ancestry`` for every unit version (or those with ``codes`` and
    their descendants). Ancestors are followed through the latest version of each code."""
    units = session.execute(
        select(
            AdminUnit.id,
            AdminUnit.code,
            AdminUnit.level,
            AdminUnit.parent_code,
            AdminUnit.valid_from,
        )
    ).all()
    latest: dict[str, tuple[str, str | None]] = {}
    for u in sorted(units, key=lambda u: u.valid_from):
        latest[u.code] = (u.level, u.parent_code)

    def chain(code: str, parent: str | None) -> list[tuple[str, str]]:
        out, seen = [], {code}
        while parent is not None and parent in latest and parent not in seen:
            seen.add(parent)
            level, next_parent = latest[parent]
            out.append((parent, level))
            parent = next_parent
        return out

    targets = units
    if codes is not None:
        affected = set(codes)
        for u in units:  # descendants of re-written units must follow
            if any(a in affected for a, _ in chain(u.code, u.parent_code)):
                affected.add(u.code)
        targets = [u for u in units if u.code in affected]
        ids = [u.id for u in targets]
        for i in range(0, len(ids), 900):
            session.execute(delete(UnitAncestry).where(UnitAncestry.unit_id.in_(ids[i : i + 900])))
    else:
        session.execute(delete(UnitAncestry))
    rows = []
    for u in targets:
        rows.append(
            {"unit_id": u.id, "ancestor_code": u.code, "ancestor_level": u.level, "distance": 0}
        )
        for distance, (code, level) in enumerate(chain(u.code, u.parent_code), start=1):
            rows.append(
                {
                    "unit_id": u.id,
                    "ancestor_code": code,
                    "ancestor_level": level,
                    "distance": distance,
                }
            )
    for i in range(0, len(rows), 5000):
        session.execute(insert(UnitAncestry), rows[i : i + 5000])
    session.flush()
