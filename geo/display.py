"""Display geometry: each level simplified once as a coverage, sliced by parent, cached.

Every unit of a level is simplified together with ``shapely.coverage_simplify`` so that
neighbours keep one shared border (no slivers, no gaps at any zoom), even across
parents. The tolerance of a level is one pixel of a 4K screen showing the unit two levels
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
import gzip
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import shapely
from shapely.errors import GEOSException
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, UnitAncestry
from api.db.versions import get_version
from api.services.units import level_depths
from api.settings import get_settings
from geo.geojson import bounds_of, geometry_fragment, rfc7946_geometries

SCREEN_PIXELS = 4000  # a 4K wall: one pixel of the view is the finest detail worth keeping
LEVEL_BYTES = 1_000_000  # a whole level shown at once: under 1 MB of GeoJSON ...
LEVEL_GZIP_BYTES = 300_000  # ... and under 300 KB gzipped (as served)
GZIP_LEVEL = 6
COARSENING_STEP = 1.5  # the smallest step of the tolerance when a level is too big
MAX_STEP = 4.0
MAX_COARSENING = 16
REFINEMENTS = 2  # bisections between the last step too fine and the first that fits
# the parameters above shape the cached geometry: a change of them is a new cache key
PARAMETERS_KEY = hashlib.sha256(
    repr(
        (SCREEN_PIXELS, LEVEL_BYTES, LEVEL_GZIP_BYTES, COARSENING_STEP, MAX_STEP, REFINEMENTS)
    ).encode()
).hexdigest()[:8]


@dataclass(frozen=True)
class SimplifiedUnit:
    code: str
    name: str
    level: str
    parent_code: str | None
    bbox: list[float] | None
    fragment: bytes


@dataclass(frozen=True)
class DisplayLayer:
    """The display geometry of one level (optionally under one parent)."""

    level: str
    parent_code: str | None
    version: int
    tolerance: float
    units: list[SimplifiedUnit]
    codes: list[str] = field(init=False)
    names: list[str] = field(init=False)
    fragments: dict[str, bytes] = field(init=False)
    bbox: list[float] | None = field(init=False)
    feature_collection_bytes: bytes = field(init=False)
    etag: str = field(init=False)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "codes", [u.code for u in self.units])
        setattr_(self, "names", [u.name for u in self.units])
        setattr_(self, "fragments", {u.code: u.fragment for u in self.units})
        bbox = _bbox(self.units)
        setattr_(self, "bbox", bbox)
        body = _collection(self.units, bbox)
        setattr_(self, "feature_collection_bytes", body)
        setattr_(self, "etag", '"' + hashlib.sha256(body).hexdigest()[:24] + '"')

    def gzipped(self) -> bytes:
        """``feature_collection_bytes`` gzip-compressed (computed once)."""
        body = self.__dict__.get("_gzipped")
        if body is None:
            body = gzip.compress(self.feature_collection_bytes, compresslevel=GZIP_LEVEL, mtime=0)
            object.__setattr__(self, "_gzipped", body)
        return body


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


def _bbox(units: list[SimplifiedUnit]) -> list[float] | None:
    boxes = [u.bbox for u in units if u.bbox]
    if not boxes:
        return None
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def _collection(units: list[SimplifiedUnit], bbox: list[float] | None = None) -> bytes:
    features = [
        {
            "type": "Feature",
            "id": u.code,
            "properties": {
                "code": u.code,
                "name": u.name,
                "level": u.level,
                "parent_code": u.parent_code,
            },
            "geometry": orjson.Fragment(u.fragment or b"null"),
        }
        for u in units
    ]
    collection: dict = {"type": "FeatureCollection"}
    if bbox:
        collection["bbox"] = bbox
    collection["features"] = features
    return orjson.dumps(collection)


def _database_key(session: Session) -> str:
    url = session.get_bind().url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:12]


_levels: OrderedDict[tuple, tuple[float, list[SimplifiedUnit]]] = OrderedDict()
_layers: OrderedDict[tuple, DisplayLayer] = OrderedDict()
_lock = threading.Lock()


def _remember(cache: OrderedDict, key: tuple, value, size: int = 64) -> None:
    with _lock:
        cache[key] = value
        while len(cache) > size:
            cache.popitem(last=False)


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
    db_key = _database_key(session)
    key = (db_key, version, level, parent_code)
    layer = _layers.get(key)
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
    _remember(_layers, key, layer)
    return layer


def warm_display_cache(session: Session, cache_dir: Path | None = None) -> dict[str, int]:
    """Simplify every level, and every level in each wider view (see the module), now
    (after an import or a seed) so that no request waits for it; returns the GeoJSON bytes
    of each whole level."""
    from api.services.units import list_levels

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
    key = (db_key, version, level, view)
    cached = _levels.get(key)
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
    _remember(_levels, key, result, size=32)
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


_widths: OrderedDict[tuple, float | None] = OrderedDict()


def _level_width(session: Session, level: str) -> float | None:
    """Median extent (degrees) of the current units of ``level`` with a geometry (None:
    none has one), kept per boundaries version."""
    key = (_database_key(session), get_version(session, "boundaries"), level)
    if key in _widths:
        return _widths[key]
    geoms = np.array(
        session.scalars(
            select(AdminUnit.geom).where(AdminUnit.valid_to.is_(None), AdminUnit.level == level)
        ).all(),
        dtype=object,
    )
    geoms = geoms[~shapely.is_missing(geoms)] if len(geoms) else geoms
    width = None
    if len(geoms):
        b = shapely.bounds(geoms)
        width = float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))
    _remember(_widths, key, width)
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


def _coverage_simplify(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    try:
        return shapely.coverage_simplify(geoms, tolerance)
    except GEOSException:  # not a clean coverage: simplify each on its own
        return shapely.simplify(geoms, tolerance, preserve_topology=True)


def simplify_coverage(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify polygons that tile an area together (shared borders stay shared), then
    snap to 6 decimals and orient for RFC 7946."""
    geoms = np.asarray(geoms, dtype=object)
    return rfc7946_geometries(_coverage_simplify(geoms, tolerance))


def _overshoot(units: list[SimplifiedUnit]) -> float:
    """The whole level as served, over its byte budgets (≤ 1: it fits)."""
    body = _collection(units, _bbox(units))
    gzipped = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    return max(len(body) / LEVEL_BYTES, len(gzipped) / LEVEL_GZIP_BYTES)


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
    rows = [r for r in rows if r.code in members]
    geoms = np.array([r.geom for r in rows], dtype=object)
    present = ~shapely.is_missing(geoms) if len(rows) else np.zeros(0, dtype=bool)
    boxes = [
        bounds_of(np.array([g], dtype=object)) if ok else None
        for g, ok in zip(geoms, present, strict=True)
    ]

    def attempt(tolerance: float) -> list[SimplifiedUnit]:
        simplified = geoms.copy()
        if present.any():
            simplified[present] = _coverage_simplify(geoms[present], tolerance)
        simplified = rfc7946_geometries(simplified)
        return [
            SimplifiedUnit(r.code, r.name, r.level, r.parent_code, b, geometry_fragment(g))
            for r, b, g in zip(rows, boxes, simplified, strict=True)
        ]

    return attempt


def _simplify_level(session: Session, level: str) -> tuple[float, list[SimplifiedUnit]]:
    """The units of ``level`` (with ragged stand-ins) simplified as one coverage. The
    deepest level keeps the tolerance of its view (it is shown a parent at a time); a
    level above it, shown whole, is simplified again from the original geometry with a
    coarser tolerance until the whole level, as served, fits the byte budgets."""
    attempt = _simplify_members(session, level)
    tolerance = _view_width(session, level) / SCREEN_PIXELS
    depths = level_depths(session)
    deepest = depths.get(level, 0) >= max(depths.values(), default=0)
    units = attempt(tolerance)
    if deepest or all(u.bbox is None for u in units):
        return tolerance, units
    overshoot = _overshoot(units)
    if overshoot <= 1:
        return tolerance, units
    too_fine = tolerance
    for _ in range(MAX_COARSENING):
        # bytes fall slower than the tolerance grows: step by the overshoot squared
        tolerance = too_fine * min(max(overshoot**2, COARSENING_STEP), MAX_STEP)
        units = attempt(tolerance)
        overshoot = _overshoot(units)
        if overshoot <= 1:
            break
        too_fine = tolerance
    else:
        return tolerance, units  # the coarsest tried: a level that cannot fit at all
    for _ in range(REFINEMENTS):  # bisect (geometrically) towards the finest that fits
        middle = float(np.sqrt(too_fine * tolerance))
        candidate = attempt(middle)
        if _overshoot(candidate) <= 1:
            tolerance, units = middle, candidate
        else:
            too_fine = middle
    return tolerance, units
