"""The features OGC API - Features serves: one collection per level, each unit version a
feature (full geometry, RFC 7946, serialised once per boundaries version and cached)."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import numpy as np
import orjson
import shapely
from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit
from api.engine import UnitIndex, engine_state
from geo.geojson import geometry_fragment, rfc7946_geometries


@dataclass
class LevelFeatures:
    """Every version of every unit of one level, ready to serve."""

    ids: np.ndarray  # unit version ids
    codes: list[str]
    bboxes: np.ndarray  # (n, 4), NaN when no geometry
    valid_from: list[dt.date]
    valid_to: list[dt.date | None]
    features: list[bytes]  # whole GeoJSON Feature objects


@dataclass(frozen=True)
class LevelKey:
    """One level's features: the database, its boundaries version and the level."""

    database: str
    boundaries: int
    level: str


LEVELS_KEPT = 16  # levels' features kept (least recently used dropped)
_kept: LRUCache = LRUCache(LEVELS_KEPT)
_lock = threading.Lock()


def level_features(session: Session, level: str) -> tuple[UnitIndex, LevelFeatures]:
    """The units index and the features of ``level`` (kept per boundaries version)."""
    units = engine_state(session).units
    database = session.get_bind().url.render_as_string(hide_password=True)
    key = LevelKey(database, units.version, level)
    with _lock:
        found = _kept.get(key)
    if found is None:
        found = _load(session, level)
        with _lock:
            _kept[key] = found
    return units, found


def _load(session: Session, level: str) -> LevelFeatures:
    rows = session.execute(
        select(
            AdminUnit.id,
            AdminUnit.code,
            AdminUnit.name,
            AdminUnit.parent_code,
            AdminUnit.population,
            AdminUnit.households,
            AdminUnit.area_km2,
            AdminUnit.valid_from,
            AdminUnit.valid_to,
            AdminUnit.geom,
        )
        .where(AdminUnit.level == level)
        .order_by(AdminUnit.code, AdminUnit.valid_from)
    ).all()
    geoms = rfc7946_geometries(np.array([r.geom for r in rows], dtype=object))
    bboxes = np.full((len(rows), 4), np.nan)
    if len(rows):
        present = ~shapely.is_missing(geoms)
        bboxes[present] = shapely.bounds(geoms[present])
    features = []
    for r, g, box in zip(rows, geoms, bboxes, strict=True):
        fid = r.code if r.valid_to is None else f"{r.code}@{r.valid_from.isoformat()}"
        props = {
            "code": r.code,
            "name": r.name,
            "level": level,
            "parent_code": r.parent_code,
            "population": r.population,
            "households": r.households,
            "area_km2": r.area_km2,
            "valid_from": r.valid_from.isoformat(),
            "valid_to": r.valid_to.isoformat() if r.valid_to else None,
        }
        feature = {
            "type": "Feature",
            "id": fid,
            "geometry": orjson.Fragment(geometry_fragment(g)),
            "properties": props,
        }
        if not np.isnan(box[0]):
            feature["bbox"] = [round(float(v), 6) for v in box]
        features.append(orjson.dumps(feature))
    return LevelFeatures(
        ids=np.array([r.id for r in rows], dtype=np.int64),
        codes=[r.code for r in rows],
        bboxes=bboxes,
        valid_from=[r.valid_from for r in rows],
        valid_to=[r.valid_to for r in rows],
        features=features,
    )


def in_scope_mask(units: UnitIndex, feats: LevelFeatures, root_code: str) -> np.ndarray:
    """True for the versions whose ancestry includes ``root_code``."""
    root = units.index.get(root_code)
    if root is None:
        return np.zeros(len(feats.ids), dtype=bool)
    return np.array(
        [root in units.ancestors.get(int(i), {}).values() for i in feats.ids], dtype=bool
    )


def select_features(
    units: UnitIndex,
    feats: LevelFeatures,
    root_code: str,
    bbox: tuple[float, float, float, float] | None,
    when: tuple[dt.date | None, dt.date | None] | None,
) -> np.ndarray:
    """Indexes of the features in scope, intersecting ``bbox``, valid during ``when``
    (inclusive date interval, open ends None; default: the current versions)."""
    mask = in_scope_mask(units, feats, root_code)
    if when is None:
        mask &= np.array([v is None for v in feats.valid_to], dtype=bool)
    else:
        lo, hi = when
        valid = [
            (hi is None or vf <= hi) and (vt is None or lo is None or vt > lo)
            for vf, vt in zip(feats.valid_from, feats.valid_to, strict=True)
        ]
        mask &= np.array(valid, dtype=bool)
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        b = feats.bboxes
        with np.errstate(invalid="ignore"):
            mask &= (b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)
    return np.flatnonzero(mask)
