"""Display geometry: a level's polygons simplified as one coverage, as GeoJSON fragments.

Every unit of a level is simplified together with ``shapely.coverage_simplify`` so that
neighbours keep one shared border (no slivers, no gaps at any zoom), even across
parents. A level shown whole is simplified again, coarser, until the whole level as
served fits a byte budget of GeoJSON and of gzip (``coarsen_to_budget``).

Geometry in, geometry out: which units, at which tolerance, and the caches of the results
are ``api.services.display``'s business.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import orjson
import shapely
from shapely.errors import GEOSException

from geo.geojson import bounds_of, geometry_fragment, rfc7946_geometries

GZIP_LEVEL = 6
COARSENING_STEP = 1.5  # the smallest step of the tolerance when a level is too big
MAX_STEP = 4.0
MAX_COARSENING = 16
REFINEMENTS = 2  # bisections between the last step too fine and the first that fits


class UnitShape(Protocol):
    """What a unit to simplify needs: its identity and its geometry (a database row fits)."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geom: object


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


@dataclass(frozen=True)
class ByteBudget:
    """What a whole level, as served, may weigh: GeoJSON bytes and gzipped bytes."""

    geojson_bytes: int
    gzip_bytes: int

    def overshoot(self, units: list[SimplifiedUnit]) -> float:
        """The whole level as served, over the budget (≤ 1: it fits)."""
        body = _collection(units, _bbox(units))
        gzipped = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        return max(len(body) / self.geojson_bytes, len(gzipped) / self.gzip_bytes)


def median_extent(geoms: Sequence) -> float | None:
    """Median extent (the larger of width and height, in degrees) of the geometries that
    are not missing; None when none has one."""
    geoms = np.array(geoms, dtype=object)
    geoms = geoms[~shapely.is_missing(geoms)] if len(geoms) else geoms
    if not len(geoms):
        return None
    b = shapely.bounds(geoms)
    return float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))


def coverage_simplifier(units: Sequence[UnitShape]) -> Callable[[float], list[SimplifiedUnit]]:
    """A function simplifying ``units`` as one coverage at a tolerance (in degrees); units
    without a geometry keep none."""
    geoms = np.array([u.geom for u in units], dtype=object)
    present = ~shapely.is_missing(geoms) if len(units) else np.zeros(0, dtype=bool)
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
            SimplifiedUnit(u.code, u.name, u.level, u.parent_code, b, geometry_fragment(g))
            for u, b, g in zip(units, boxes, simplified, strict=True)
        ]

    return attempt


def coarsen_to_budget(
    attempt: Callable[[float], list[SimplifiedUnit]], tolerance: float, budget: ByteBudget
) -> tuple[float, list[SimplifiedUnit]]:
    """The finest simplification by ``attempt`` from ``tolerance`` up whose whole level
    fits ``budget``, with its tolerance: coarser steps until it fits, then bisections
    back towards the finest that fits (the coarsest tried if none fits)."""
    units = attempt(tolerance)
    if all(u.bbox is None for u in units):
        return tolerance, units
    overshoot = budget.overshoot(units)
    if overshoot <= 1:
        return tolerance, units
    too_fine = tolerance
    for _ in range(MAX_COARSENING):
        # bytes fall slower than the tolerance grows: step by the overshoot squared
        tolerance = too_fine * min(max(overshoot**2, COARSENING_STEP), MAX_STEP)
        units = attempt(tolerance)
        overshoot = budget.overshoot(units)
        if overshoot <= 1:
            break
        too_fine = tolerance
    else:
        return tolerance, units  # the coarsest tried: a level that cannot fit at all
    for _ in range(REFINEMENTS):  # bisect (geometrically) towards the finest that fits
        middle = float(np.sqrt(too_fine * tolerance))
        candidate = attempt(middle)
        if budget.overshoot(candidate) <= 1:
            tolerance, units = middle, candidate
        else:
            too_fine = middle
    return tolerance, units
