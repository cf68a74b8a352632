"""Display geometry of the units in the database: each level simplified once as a
coverage (``geo.display``), sliced by parent, cached.

The tolerance of a level is one pixel of a 4K screen showing the unit two levels
up (city / town / village / grid: towns and villages are seen over the whole city, grids
over one town — a town's grids look exact at town zoom). Levels above the deepest are
shown whole, so they are simplified again, coarser, until the whole level as served is
under 1 MB of GeoJSON and 300 KB gzipped (a village map of a metro city); the deepest
level is shown one parent at a time and keeps its tolerance.

A map whose parent is wider than the level's own view (every grid of the city) is seen at
the parent's zoom: its units are simplified once more, as a coverage, to one pixel of a 4K
screen showing the parent, when that is coarser than the level's own tolerance (finer
detail would not show, and the city's 8,820 grids would weigh 4 times as much).

Results are cached in memory and on disk (``settings.cache_dir``), keyed by database,
boundaries version and the parameters above, so a new import invalidates them by itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, UnitAncestry
from api.db.versions import get_version
from api.services.units import level_depths, list_levels
from api.settings import get_settings
from geo.display import (
    COARSENING_STEP,
    MAX_STEP,
    REFINEMENTS,
    ByteBudget,
    DisplayLayer,
    SimplifiedUnit,
    coarsen_to_budget,
    coverage_simplifier,
    median_extent,
)

SCREEN_PIXELS = 4000  # a 4K wall: one pixel of the view is the finest detail worth keeping
LEVEL_BYTES = 1_000_000  # a whole level shown at once: under 1 MB of GeoJSON ...
LEVEL_GZIP_BYTES = 300_000  # ... and under 300 KB gzipped (as served)
# the parameters above shape the cached geometry: a change of them is a new cache key
PARAMETERS_KEY = hashlib.sha256(
    repr(
        (SCREEN_PIXELS, LEVEL_BYTES, LEVEL_GZIP_BYTES, COARSENING_STEP, MAX_STEP, REFINEMENTS)
    ).encode()
).hexdigest()[:8]


def children_level(session: Session, parent_code: str) -> str | None:
    """The level of the current children of ``parent_code`` (the shallowest if mixed);
    None for a leaf."""
    depths = level_depths(session)
    levels = set(
        session.scalars(
            select(AdminUnit.level).where(
                AdminUnit.valid_to.is_(None), AdminUnit.parent_code == parent_code
            )
        )
    )
    return min(levels, key=lambda lvl: depths.get(lvl, 0)) if levels else None


def _database_key(session: Session) -> str:
    url = session.get_bind().url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SimplifiedKey:
    """A level simplified as one coverage: database, boundaries version, level, and the
    level whose view it is simplified for (None: its own)."""

    database: str
    boundaries: int
    level: str
    view: str | None


@dataclass(frozen=True)
class LayerKey:
    """A display layer: database, boundaries version, level, and the parent it is cut to."""

    database: str
    boundaries: int
    level: str
    parent: str | None


# least recently used dropped; a lock because threads of the server share them
_levels: LRUCache = LRUCache(32)
_layers: LRUCache = LRUCache(64)
_lock = threading.Lock()


def _recall(cache: LRUCache, key: object) -> object | None:
    """What ``cache`` keeps under ``key`` (None: nothing), read under the lock."""
    with _lock:
        return cache.get(key)


def _keep(cache: LRUCache, key: object, value: object) -> None:
    """Keep ``value`` in ``cache`` under ``key``, under the lock."""
    with _lock:
        cache[key] = value


def display_layer(
    session: Session,
    level: str,
    parent_code: str | None = None,
    cache_dir: Path | None = None,
    version: int | None = None,
) -> DisplayLayer:
    """The simplified geometry of the current units of ``level`` (all, or those under
    ``parent_code`` at any depth), cached per boundaries version (``version``: the caller
    read it already). Leaves above ``level`` (ragged branches) stand in for the units they
    lack; their ``level`` property says so."""
    if version is None:
        version = get_version(session, "boundaries")
    key = LayerKey(_database_key(session), version, level, parent_code)
    layer = _recall(_layers, key)
    if layer is not None:
        return layer
    view = _parent_level(session, parent_code)
    tolerance, units = simplified_for_view(session, level, view, cache_dir=cache_dir)
    if parent_code is not None:
        under = set(
            session.scalars(
                select(AdminUnit.code)
                .join(UnitAncestry, UnitAncestry.unit_id == AdminUnit.id)
                .where(AdminUnit.valid_to.is_(None))
                .where(UnitAncestry.ancestor_code == parent_code)
            )
        )
        # a layer under ``parent_code`` names nothing above it (not even its own parent)
        units = [
            dataclasses.replace(u, parent_code=None) if u.code == parent_code else u
            for u in units
            if u.code in under
        ]
    layer = DisplayLayer(level, parent_code, version, tolerance, units)
    _keep(_layers, key, layer)
    return layer


def warm_display_cache(session: Session, cache_dir: Path | None = None) -> dict[str, int]:
    """Simplify every level, and every level in each wider view (see the module), now
    (after an import or a seed) so that no request waits for it; returns the GeoJSON bytes
    of each whole level."""
    levels = list_levels(session)
    for level in levels:
        for view in levels:
            if view.depth < level.depth:
                simplified_for_view(session, level.code, view.code, cache_dir=cache_dir)
    return {
        lvl.code: len(
            display_layer(session, lvl.code, cache_dir=cache_dir).feature_collection_bytes
        )
        for lvl in levels
    }


def simplified_for_view(
    session: Session, level: str, view: str | None, cache_dir: Path | None = None
) -> tuple[float, list[SimplifiedUnit]]:
    """``simplified_level`` of ``level`` as seen in a unit of level ``view``: the level's
    own simplification, or a coarser one when a pixel of that view is coarser."""
    own = simplified_level(session, level, cache_dir=cache_dir)
    width = _level_width(session, view) if view is not None else None
    if width is not None and width / SCREEN_PIXELS > own[0]:
        return simplified_level(session, level, cache_dir=cache_dir, view=view)
    return own


def _parent_level(session: Session, parent_code: str | None) -> str | None:
    """The level of the unit a map under ``parent_code`` shows whole (None: the root's)."""
    if parent_code is None:
        return min(level_depths(session).items(), key=lambda item: item[1], default=(None,))[0]
    return session.scalar(
        select(AdminUnit.level)
        .where(AdminUnit.code == parent_code)
        .order_by(AdminUnit.valid_to.is_not(None), AdminUnit.valid_from.desc())
        .limit(1)
    )


def simplified_level(
    session: Session, level: str, cache_dir: Path | None = None, view: str | None = None
) -> tuple[float, list[SimplifiedUnit]]:
    """Every current unit of ``level``, simplified as one coverage (memory, then disk
    cache, then computed), with the tolerance used. ``view``: a level whose units are
    shown whole with it, simplified to a pixel of that view instead (see the module)."""
    version = get_version(session, "boundaries")
    db_key = _database_key(session)
    key = SimplifiedKey(db_key, version, level, view)
    cached = _recall(_levels, key)
    if cached is not None:
        return cached
    folder = Path(cache_dir or get_settings().cache_dir)
    name = level if view is None else f"{level}-in-{view}"
    path = folder / f"display-{db_key}-{PARAMETERS_KEY}-v{version}-{name}.json"
    result = _read_disk(path)
    if result is None:
        if view is None:
            result = _simplify_level(session, level)
        else:
            tolerance = _level_width(session, view) / SCREEN_PIXELS
            result = tolerance, _simplify_members(session, level)(tolerance)
        _write_disk(path, result)
    _keep(_levels, key, result)
    return result


def _read_disk(path: Path) -> tuple[float, list[SimplifiedUnit]] | None:
    try:
        data = orjson.loads(path.read_bytes())
        units = [SimplifiedUnit(u[0], u[1], u[2], u[3], u[4], u[5].encode()) for u in data["units"]]
        return float(data["tolerance"]), units
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _write_disk(path: Path, result: tuple[float, list[SimplifiedUnit]]) -> None:
    tolerance, units = result
    body = orjson.dumps(
        {
            "tolerance": tolerance,
            "units": [
                [u.code, u.name, u.level, u.parent_code, u.bbox, u.fragment.decode()] for u in units
            ],
        }
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)
    except OSError:  # a read-only disk only costs the cache
        pass


def _view_width(session: Session, level: str) -> float:
    """Median extent (degrees) of the units two levels above ``level`` (the root if none)."""
    depths = level_depths(session)
    view_depth = max(depths.get(level, 0) - 2, 0)
    by_depth = {d: code for code, d in depths.items()}
    for d in range(view_depth, -1, -1):
        if d in by_depth and (width := _level_width(session, by_depth[d])) is not None:
            return width
    return 1.0


_widths: LRUCache = LRUCache(64)


def _level_width(session: Session, level: str) -> float | None:
    """Median extent (degrees) of the current units of ``level`` with a geometry (None:
    none has one), kept per boundaries version."""
    key = SimplifiedKey(_database_key(session), get_version(session, "boundaries"), level, None)
    with _lock:
        if key in _widths:
            return _widths[key]
    width = median_extent(
        session.scalars(
            select(AdminUnit.geom).where(AdminUnit.valid_to.is_(None), AdminUnit.level == level)
        ).all()
    )
    _keep(_widths, key, width)
    return width


def level_members(session: Session, level: str) -> dict[str, str]:
    """Code → level of the current units that make up the map of ``level``: its units,
    and every leaf above it (a 街道 with no villages stands in at the village level, so
    a map of any level covers the whole territory and no unit is dropped)."""
    depths = level_depths(session)
    depth = depths.get(level, 0)
    rows = session.execute(
        select(AdminUnit.code, AdminUnit.level, AdminUnit.parent_code).where(
            AdminUnit.valid_to.is_(None)
        )
    ).all()
    parents = {r.parent_code for r in rows if r.parent_code is not None}
    return {
        r.code: r.level
        for r in rows
        if r.level == level or (depths.get(r.level, 0) < depth and r.code not in parents)
    }


def _simplify_members(session: Session, level: str) -> Callable[[float], list[SimplifiedUnit]]:
    """A function simplifying the units of ``level`` (with ragged stand-ins, see
    ``level_members``) as one coverage at a tolerance, read from the database once."""
    members = level_members(session, level)
    rows = session.execute(
        select(
            AdminUnit.code, AdminUnit.name, AdminUnit.level, AdminUnit.parent_code, AdminUnit.geom
        )
        .where(AdminUnit.valid_to.is_(None), AdminUnit.level.in_({lvl for lvl in members.values()}))
        .order_by(AdminUnit.code)
    ).all()
    return coverage_simplifier([r for r in rows if r.code in members])


def _simplify_level(session: Session, level: str) -> tuple[float, list[SimplifiedUnit]]:
    """The units of ``level`` (with ragged stand-ins) simplified as one coverage. The
    deepest level keeps the tolerance of its view (it is shown a parent at a time); a
    level above it, shown whole, is simplified again from the original geometry with a
    coarser tolerance until the whole level, as served, fits the byte budgets."""
    attempt = _simplify_members(session, level)
    tolerance = _view_width(session, level) / SCREEN_PIXELS
    depths = level_depths(session)
    if depths.get(level, 0) >= max(depths.values(), default=0):
        return tolerance, attempt(tolerance)
    return coarsen_to_budget(attempt, tolerance, ByteBudget(LEVEL_BYTES, LEVEL_GZIP_BYTES))
