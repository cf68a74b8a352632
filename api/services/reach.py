"""Coverage within the target, fast enough for a city: the answer of
``api.services.coverage.coverage_reference`` (which stays the reference, and the test
checks both agree) from parts computed once and cached:

- per database, boundaries version and unit: its leaves in metres, their outline, and an
  equal-area lattice of sample points over them (about 150,000, at most 1/20 of the reach
  apart), each weighted by its leaf's residents / the leaf's samples (a leaf too small to
  hold a sample stands at its own interior point with all its residents);
- per those and the bases (their coordinates' digest) and the radius: the reach (union of
  the bases' discs ∩ the outline), the gaps and their GeoJSON, and the covered samples;
- per unit, period and the events' dataset version: the events' points in metres.

Then an event, a sample or a candidate site is inside when its distance to the nearest base
(``scipy.spatial.cKDTree`` in the local metric plane) is ≤ the radius, and the greedy
maximum coverage picks from a sparse candidate × uncovered-event matrix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.spatial import cKDTree
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.events import DispatchEvent, PatrolBase
from api.db.versions import get_version
from api.errors import ApiError
from api.services.coverage import Plane, coverage_answer, feature, leaf_rows
from api.services.local_time import local_zone
from api.services.scope import in_scope, subtree_unit_ids
from api.services.units import get_unit
from api.settings import get_settings

SAMPLES = 150_000


@dataclass(frozen=True)
class _Leaves:
    codes: list[str]
    names: list[str]
    plane: Plane
    outline: object  # the leaves' union in metres (simplified to 20 m)
    centres: np.ndarray  # interior point of each leaf (m): the candidate sites
    samples: np.ndarray  # (n, 2) metres
    weights: np.ndarray  # residents per sample
    residents: float


_lock = threading.Lock()
_cache: OrderedDict[tuple, object] = OrderedDict()


def _cached(key: tuple, build, keep: int = 24):
    """``build()`` once per ``key`` (the last ``keep`` kept)."""
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = build()
    with _lock:
        _cache[key] = value
        while len(_cache) > keep:
            _cache.popitem(last=False)
    return value


def _leaves(session: Session, root: str, spacing_max: float) -> _Leaves:
    rows = leaf_rows(session, root)
    if not rows:
        raise ApiError(404, f"unit {root!r} has no leaf units with boundaries")
    geoms = np.array([r.geom for r in rows], dtype=object)
    plane = Plane(float(np.mean([g.centroid.y for g in geoms])))
    flat = shapely.simplify(np.array([plane.geom(g) for g in geoms], dtype=object), 20)
    try:
        outline = shapely.coverage_union_all(flat)
    except shapely.errors.GEOSException:  # not a clean coverage
        outline = shapely.union_all(flat)
    x0, y0, x1, y1 = outline.bounds
    step = max(np.sqrt(outline.area / SAMPLES), 1.0)
    # fine enough for the radius, but never more than 4 × SAMPLES points (a tiny radius
    # over a city would ask for millions)
    step = max(min(step, spacing_max), np.sqrt(outline.area / (4 * SAMPLES)))
    xs = np.arange(x0 + step / 2, x1, step)
    ys = np.arange(y0 + step / 2, y1, step)
    gx, gy = np.meshgrid(xs, ys)
    pts = shapely.points(gx.ravel(), gy.ravel())
    at, leaf = shapely.STRtree(flat).query(pts, predicate="within")
    at, first = np.unique(at, return_index=True)  # a point on a shared border: one leaf
    leaf = leaf[first]
    pops = np.array([r.population or 0 for r in rows], dtype=np.float64)
    per_leaf = np.bincount(leaf, minlength=len(rows))
    samples = shapely.get_coordinates(pts[at])
    weights = pops[leaf] / np.maximum(per_leaf[leaf], 1)
    centres = shapely.get_coordinates(shapely.point_on_surface(flat))
    empty = np.flatnonzero(per_leaf == 0)
    samples = np.vstack([samples, centres[empty]])
    weights = np.concatenate([weights, pops[empty]])
    return _Leaves(
        [r.code for r in rows],
        [r.name for r in rows],
        plane,
        outline,
        centres,
        samples,
        weights,
        float(pops.sum()),
    )


def _layer(leaves: _Leaves, base_xy: np.ndarray, radius: float) -> dict:
    if len(base_xy):
        discs = shapely.buffer(shapely.points(base_xy), radius, quad_segs=16)
        reach = shapely.intersection(shapely.union_all(discs), leaves.outline)
    else:
        reach = shapely.Polygon()
    gaps = shapely.difference(leaves.outline, reach)
    near = _distance(base_xy, leaves.samples, radius)
    return {
        "area_share": reach.area / leaves.outline.area if leaves.outline.area else None,
        "features": [feature(leaves.plane, "reach", reach), feature(leaves.plane, "gap", gaps)],
        "residents_covered": float(leaves.weights[near].sum()),
    }


def _distance(base_xy: np.ndarray, xy: np.ndarray, radius: float) -> np.ndarray:
    """Whether each point of ``xy`` lies within ``radius`` of a base."""
    if not len(base_xy) or not len(xy):
        return np.zeros(len(xy), dtype=bool)
    d, _ = cKDTree(base_xy).query(xy, distance_upper_bound=radius * (1 + 1e-9))
    return d <= radius


def _events(session: Session, root: str, start, end, plane: Plane) -> np.ndarray:
    stmt = (
        select(DispatchEvent.lon, DispatchEvent.lat)
        .where(DispatchEvent.leaf_unit_id.in_(subtree_unit_ids(root)))
        .where(DispatchEvent.lon.is_not(None))
    )
    zone = local_zone()
    if start is not None:
        stmt = stmt.where(DispatchEvent.received_at >= dt.datetime.combine(start, dt.time(), zone))
    if end is not None:
        day_after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
        stmt = stmt.where(DispatchEvent.received_at < day_after)
    # the driver's tuples straight into numpy: ORM rows cost ten times the query at a city
    result = session.connection().execute(stmt)
    try:
        pts = np.array(result.cursor.fetchall(), dtype=np.float64).reshape(-1, 2)
    finally:
        result.close()
    return plane.xy(pts[:, 0], pts[:, 1])


def greedy_sites_sparse(
    candidates: np.ndarray, points: np.ndarray, radius: float, picks: int
) -> list[tuple[int, int]]:
    """``greedy_sites`` on a sparse candidate × point matrix (the same picks, ties to the
    lowest index)."""
    if not len(candidates) or not len(points) or picks <= 0:
        return []
    covers = cKDTree(points).query_ball_point(candidates, radius)
    lengths = np.fromiter((len(c) for c in covers), dtype=np.int64, count=len(covers))
    cols = np.concatenate([np.asarray(c, dtype=np.int64) for c in covers] + [np.zeros(0, int)])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    hits = sparse.csr_matrix(
        (np.ones(len(cols), dtype=np.int64), cols, indptr), shape=(len(candidates), len(points))
    )
    left = np.ones(len(points), dtype=np.int64)
    out = []
    for _ in range(picks):
        gains = hits @ left
        best = int(gains.argmax())
        if gains[best] == 0:
            break
        out.append((best, int(gains[best])))
        left[cols[indptr[best] : indptr[best + 1]]] = 0
    return out


def coverage(
    session: Session,
    user,
    unit_code: str | None = None,
    minutes: float = 5.0,
    start: dt.date | None = None,
    end: dt.date | None = None,
    suggest: int = 1,
) -> dict:
    """``coverage_reference``'s answer (residents by the weighted samples), from the caches
    above: a repeated request at a city costs the KD-tree queries and the greedy pick."""
    root = unit_code or user.unit_code
    if get_unit(session, root) is None or not in_scope(session, user.unit_code, root):
        raise ApiError(404, f"no unit {root!r} in your jurisdiction")
    speed = get_settings().reach_speed_kmh
    radius = speed * 1000 * minutes / 60
    db = session.get_bind().url.render_as_string(hide_password=True)
    boundaries = get_version(session, "boundaries")
    leaves = _cached(
        ("leaves", db, boundaries, root, radius / 20),
        lambda: _leaves(session, root, radius / 20),
    )
    bases = session.execute(
        select(
            PatrolBase.code, PatrolBase.name, PatrolBase.lon, PatrolBase.lat, PatrolBase.unit_code
        ).order_by(PatrolBase.code)
    ).all()
    lonlat = np.array([(b.lon, b.lat) for b in bases], dtype=np.float64).reshape(-1, 2)
    digest = hashlib.sha1(lonlat.tobytes()).hexdigest()
    base_xy = leaves.plane.xy(lonlat[:, 0], lonlat[:, 1])
    layer = _cached(
        ("layer", db, boundaries, root, radius, digest),
        lambda: _layer(leaves, base_xy, radius),
    )
    events = (db, boundaries, root, start, end, get_version(session, "events"))
    ev_xy = _cached(("events", *events), lambda: _events(session, root, start, end, leaves.plane))
    ev_in = _cached(("inside", *events, digest, radius), lambda: _distance(base_xy, ev_xy, radius))
    picks = _cached(
        ("picks", *events, digest, radius, suggest),
        lambda: greedy_sites_sparse(leaves.centres, ev_xy[~ev_in], radius, suggest),
    )
    return coverage_answer(
        root=root,
        minutes=minutes,
        speed=speed,
        radius=radius,
        bases=bases,
        leaf_codes=set(leaves.codes),
        residents=leaves.residents,
        covered_people=layer["residents_covered"],
        ev_in=ev_in,
        area_share=layer["area_share"],
        picks=[(leaves.codes[j], leaves.names[j], leaves.centres[j], g) for j, g in picks],
        plane=leaves.plane,
        features=layer["features"],
    )
