"""Point location: which leaf unit (and which village and grid) a case point falls in.

A leaf is the deepest unit that contains the point: a grid; a village without grids; a
town (街道) without villages — ragged hierarchies are leaves of their own. Points on a
border shared by two units go to the one with the smallest unit id, every time.

A point in no leaf, in this order:

1. within ``tolerance_m`` metres on the ground of a leaf goes to the nearest leaf, and is
   flagged ``by_tolerance``: boundary sets leave hairline gaps and slivers between
   neighbours, and a case reported there belongs to the unit next to it;
2. else falls back to the deepest non-leaf unit that contains it (a gap between grids
   inside a village, wider than the tolerance, goes to the village);
3. else gets -1 (outside every unit), never dropped.

The locator is built from plain unit rows (``PointLocator.from_units``); the one built from
the database, cached per boundaries version, is ``api.services.locate.point_locator``.

Coordinates are WGS84 (CGCS2000 is taken as WGS84: they differ by centimetres). Points
from Chinese web maps and most field apps are GCJ-02: convert them with
:func:`gcj02_to_wgs84` first (not converting puts them 300-600 m off).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import shapely

BIG_BATCH = 20_000  # from this many points on, the owned-cells raster pays for itself
_WGS84_A = 6_378_137.0  # semi-major axis, metres
_WGS84_E2 = 0.00669437999014  # first eccentricity squared
VILLAGE_LEVEL = "village"
GRID_LEVEL = "grid"


@dataclass(frozen=True)
class LocateResult:
    """Where each point fell: arrays aligned with the input points."""

    leaf_unit_id: np.ndarray  # int64, -1 = outside every unit
    leaf_code: np.ndarray  # object, None where outside
    village_code: np.ndarray  # object, None where the leaf is not in (or is not) a village
    grid_code: np.ndarray  # object, None where the leaf is not a grid
    by_tolerance: np.ndarray  # bool, True where the point lies outside its leaf, near it

    @property
    def outside(self) -> np.ndarray:
        """Boolean mask of the points outside every unit."""
        return self.leaf_unit_id < 0


@dataclass(frozen=True)
class _Units:
    ids: np.ndarray
    codes: np.ndarray
    village: np.ndarray
    grid: np.ndarray
    depth: np.ndarray
    geoms: np.ndarray
    tree: shapely.STRtree


def _units_table(rows, parent_of, level_of, depths) -> _Units:
    ids = np.array([r.id for r in rows], dtype=np.int64)
    codes = np.array([r.code for r in rows], dtype=object)
    village = np.empty(len(rows), dtype=object)
    grid = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        grid[i] = r.code if r.level == GRID_LEVEL else None
        code, seen = r.code, set()
        while code is not None and code not in seen and level_of.get(code) != VILLAGE_LEVEL:
            seen.add(code)
            code = parent_of.get(code)
        village[i] = code if level_of.get(code) == VILLAGE_LEVEL else None
    depth = np.array([depths.get(r.level, 0) for r in rows], dtype=np.int64)
    geoms = np.array([r.geom for r in rows], dtype=object)
    shapely.prepare(geoms)
    if len(geoms):  # build the prepared indexes now, not lazily under concurrent requests
        inside = shapely.get_coordinates(shapely.point_on_surface(geoms))
        shapely.intersects_xy(geoms, inside[:, 0], inside[:, 1])
    return _Units(ids, codes, village, grid, depth, geoms, shapely.STRtree(geoms))


def _hits(units: _Units, points: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(point index, unit index) pairs where the point lies in or on the unit: candidates
    by bounding box from the tree, then one vectorised test on the prepared polygons
    (faster than a tree predicate, which would prepare the points instead)."""
    point_idx, unit_idx = units.tree.query(points)
    inside = shapely.intersects_xy(units.geoms[unit_idx], lon[point_idx], lat[point_idx])
    return np.vstack([point_idx[inside], unit_idx[inside]])


def _pick(pairs: np.ndarray, n: int, key: np.ndarray) -> np.ndarray:
    """For each of ``n`` points, the tree index with the smallest ``key`` among its hits
    (-1 without hits). ``pairs`` is the (2, k) answer of ``STRtree.query``."""
    out = np.full(n, -1, dtype=np.int64)
    if pairs.shape[1] == 0:
        return out
    point_idx, tree_idx = pairs
    order = np.lexsort((key[tree_idx], point_idx))
    point_idx, tree_idx = point_idx[order], tree_idx[order]
    first = np.r_[True, point_idx[1:] != point_idx[:-1]]
    out[point_idx[first]] = tree_idx[first]
    return out


class _CellIndex:
    """A raster over the leaves for big batches. Each cell knows the leaves whose polygon
    touches it; a cell in the interior of exactly one leaf is owned by it, so a point there
    needs no polygon test, and a point elsewhere is tested against its cell's leaves only
    (no point objects, no tree walk). Cells are a fifth of a typical leaf's width and are
    widened by a hair, so that rounding in a point's cell number never loses a leaf."""

    DIVISIONS = 5
    MAX_CELLS = 1_000_000

    def __init__(self, leaves: _Units) -> None:
        self.nx = self.ny = 0
        geoms = leaves.geoms
        if not len(geoms):
            return
        x0, y0, x1, y1 = shapely.total_bounds(geoms)
        size = float(np.sqrt(np.median(shapely.area(geoms)))) / self.DIVISIONS
        if not size > 0:
            return
        size = max(size, np.sqrt((x1 - x0) * (y1 - y0) / self.MAX_CELLS))
        nx, ny = int((x1 - x0) / size) + 1, int((y1 - y0) / size) + 1
        ix, iy = np.divmod(np.arange(nx * ny), ny)
        eps = size * 1e-6
        cells = shapely.box(
            x0 + ix * size - eps,
            y0 + iy * size - eps,
            x0 + (ix + 1) * size + eps,
            y0 + (iy + 1) * size + eps,
        )
        cell_idx, leaf_idx = leaves.tree.query(cells, predicate="intersects")
        order = np.lexsort((leaf_idx, cell_idx))
        cell_idx, leaf_idx = cell_idx[order], leaf_idx[order]
        counts = np.bincount(cell_idx, minlength=len(cells))
        self.start = np.r_[0, np.cumsum(counts)]
        self.leaf = leaf_idx
        single = counts[cell_idx] == 1
        inside = np.zeros(len(cell_idx), dtype=bool)
        inside[single] = shapely.contains_properly(geoms[leaf_idx[single]], cells[cell_idx[single]])
        self.owner_of = np.full(nx * ny, -1, dtype=np.int64)
        self.owner_of[cell_idx[inside]] = leaf_idx[inside]
        self.nx, self.ny = nx, ny
        self.x0, self.y0, self.size = float(x0), float(y0), size

    def locate(self, leaves: _Units, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Leaf index (into ``leaves``) of each point, the smallest id on shared borders;
        -1 where no leaf holds the point."""
        hit = np.full(len(lon), -1, dtype=np.int64)
        if not self.nx:
            return hit
        with np.errstate(invalid="ignore"):
            fx = np.floor((lon - self.x0) / self.size)
            fy = np.floor((lat - self.y0) / self.size)
            ok = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)
        rows = np.flatnonzero(ok)
        cell = fx[rows].astype(np.int64) * self.ny + fy[rows].astype(np.int64)
        owned = self.owner_of[cell]
        hit[rows] = owned
        rows, cell = rows[owned < 0], cell[owned < 0]
        first, count = self.start[cell], self.start[cell + 1] - self.start[cell]
        point = np.repeat(np.arange(len(rows)), count)
        offset = np.arange(len(point)) - np.repeat(np.cumsum(count) - count, count)
        leaf = self.leaf[np.repeat(first, count) + offset]
        inside = shapely.intersects_xy(leaves.geoms[leaf], lon[rows[point]], lat[rows[point]])
        pairs = np.vstack([point[inside], leaf[inside]])
        hit[rows] = _pick(pairs, len(rows), leaves.ids)
        return hit


class PointLocator:
    """Bulk point-in-polygon over the leaf units valid on one date.

    Safe to share between threads (the import's writers, the server's request threads):
    the tests against its prepared polygons run one thread at a time. GEOS prepared
    geometries are not thread-safe (libgeos/geos#825): two threads testing points against
    the same freshly prepared polygons at once corrupt the heap, even after a warm-up —
    the import's "tcache_thread_shutdown(): unaligned tcache chunk detected" abort. The
    tests take about 30 ms per 10,000 points (small preset), against a second or more of
    database work per chunk of the import; the rest runs in parallel.
    """

    def __init__(self, leaves: _Units, inner: _Units) -> None:
        self._leaves = leaves
        self._inner = inner
        self._cells: _CellIndex | None = None  # built for the first big batch
        self._prepared_lock = threading.Lock()  # held by every use of the prepared polygons

    @classmethod
    def from_units(cls, rows, depths: dict[str, int]) -> PointLocator:
        """Build from unit rows (``id, code, level, parent_code, geom``) valid on one date."""
        parent_of = {r.code: r.parent_code for r in rows}
        level_of = {r.code: r.level for r in rows}
        has_children = {r.parent_code for r in rows if r.parent_code is not None}
        with_geom = [r for r in rows if r.geom is not None and not r.geom.is_empty]
        leaves = [r for r in with_geom if r.code not in has_children]
        inner = [r for r in with_geom if r.code in has_children]
        return cls(
            _units_table(leaves, parent_of, level_of, depths),
            _units_table(inner, parent_of, level_of, depths),
        )

    def _cell_index(self) -> _CellIndex:
        """The raster of big batches (built on first use; the caller holds the lock)."""
        if self._cells is None:
            self._cells = _CellIndex(self._leaves)
        return self._cells

    @property
    def leaf_count(self) -> int:
        """How many leaf units the locator holds."""
        return len(self._leaves.ids)

    def locate(self, lon: np.ndarray, lat: np.ndarray, tolerance_m: float = 0.0) -> LocateResult:
        """The leaf unit, village and grid of each WGS84 point (NaN coordinates: outside).
        A point in no leaf but within ``tolerance_m`` metres of one goes to the nearest
        (``by_tolerance``)."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        n = len(lon)
        leaves, inner = self._leaves, self._inner
        with self._prepared_lock:
            if n >= BIG_BATCH:  # the raster pays for itself
                hit = self._cell_index().locate(leaves, lon, lat)
            else:
                points = shapely.points(lon, lat)
                hit = _pick(_hits(leaves, points, lon, lat), n, leaves.ids)
        by_tolerance = np.zeros(n, dtype=bool)
        if tolerance_m > 0 and len(leaves.ids):
            missing = np.flatnonzero((hit < 0) & _on_earth(lon, lat))
            if len(missing):
                near, _ = _nearest(leaves, lon[missing], lat[missing], tolerance_m)
                hit[missing] = near
                by_tolerance[missing] = near >= 0
        unit_id = np.full(n, -1, dtype=np.int64)
        code = np.full(n, None, dtype=object)
        village = np.full(n, None, dtype=object)
        grid = np.full(n, None, dtype=object)
        found = hit >= 0
        unit_id[found] = leaves.ids[hit[found]]
        code[found] = leaves.codes[hit[found]]
        village[found] = leaves.village[hit[found]]
        grid[found] = leaves.grid[hit[found]]
        missing = np.flatnonzero(~found)
        if len(missing) and len(inner.ids):
            # deepest first, then the smallest id
            rank = np.lexsort((inner.ids, -inner.depth)).argsort()
            points = shapely.points(lon[missing], lat[missing])
            with self._prepared_lock:
                pairs = _hits(inner, points, lon[missing], lat[missing])
            back = _pick(pairs, len(missing), rank)
            ok = back >= 0
            rows = missing[ok]
            unit_id[rows] = inner.ids[back[ok]]
            code[rows] = inner.codes[back[ok]]
            village[rows] = inner.village[back[ok]]
            grid[rows] = inner.grid[back[ok]]
        return LocateResult(unit_id, code, village, grid, by_tolerance)

    def distance_to_units_m(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Metres on the ground from each point to the nearest unit of any level (0 inside
        one; inf without units or coordinates): what a refused point is told."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        out = np.full(len(lon), np.inf)
        rows = np.flatnonzero(_on_earth(lon, lat))
        for units in (self._leaves, self._inner):
            if not len(units.ids) or not len(rows):
                continue
            x, y = lon[rows], lat[rows]
            # the nearest in degrees bounds the nearest on the ground, which is then sought
            point_idx, unit_idx = units.tree.query_nearest(shapely.points(x, y))
            bound = np.full(len(rows), np.inf)
            ground = _ground_distance_m(units.geoms[unit_idx], x[point_idx], y[point_idx])
            np.minimum.at(bound, point_idx, ground)
            _, metres = _nearest(units, x, y, bound * (1 + 1e-9) + 1e-6)
            out[rows] = np.minimum(out[rows], metres)
        return out


def _on_earth(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Finite coordinates in range (a swapped pair's latitude of 121 is not)."""
    with np.errstate(invalid="ignore"):
        return (np.abs(lon) <= 180) & (np.abs(lat) <= 90)


def _metres_per_degree(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metres on the WGS84 ellipsoid per degree of longitude and of latitude at ``lat``
    (the prime-vertical and meridional radii of curvature)."""
    sin = np.sin(np.radians(lat))
    w = np.sqrt(1.0 - _WGS84_E2 * sin * sin)
    per_radian = np.pi / 180
    along = _WGS84_A / w * np.cos(np.radians(lat)) * per_radian
    across = _WGS84_A * (1.0 - _WGS84_E2) / w**3 * per_radian
    return along, across


def _reach_degrees(lat: np.ndarray, metres: np.ndarray) -> np.ndarray:
    """A radius in degrees that holds every point within ``metres`` on the ground of a
    point at latitude ``lat``: a metre is the most degrees along the shorter degree."""
    along, across = _metres_per_degree(lat)
    return metres / np.maximum(np.minimum(along, across), 1e-3) * (1 + 1e-6)


def _ground_distance_m(geoms: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Metres on the ground from each point to its geometry (pairs aligned), vectorised:
    each geometry is drawn in a plane tangent at its point (metres east and north, from
    the ellipsoid's radii there: within a millimetre at the tolerance's scale, a rough
    figure over tens of kilometres), then one planar distance."""
    counts = shapely.get_num_coordinates(geoms)
    along, across = _metres_per_degree(lat)
    x0, y0 = np.repeat(lon, counts), np.repeat(lat, counts)
    kx, ky = np.repeat(along, counts), np.repeat(across, counts)

    def to_metres(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([(xy[:, 0] - x0) * kx, (xy[:, 1] - y0) * ky])

    local = shapely.transform(geoms, to_metres)
    return shapely.distance(local, shapely.points(np.zeros(len(lon)), np.zeros(len(lon))))


def _nearest(
    units: _Units, lon: np.ndarray, lat: np.ndarray, reach_m: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """For finite points and reaches: the index of the nearest unit within ``reach_m``
    metres on the ground (the smallest id among equals; -1 beyond) and that distance
    (inf beyond).

    Candidates by the tree within a radius in degrees taken at the point's latitude, then
    the exact distance on the ground of each (the nearest in degrees is not always the
    nearest on the ground: a degree of longitude is shorter than one of latitude)."""
    n = len(lon)
    index = np.full(n, -1, dtype=np.int64)
    metres = np.full(n, np.inf)
    reach_m = np.broadcast_to(np.asarray(reach_m, dtype=np.float64), (n,))
    points = shapely.points(lon, lat)
    point_idx, unit_idx = units.tree.query(
        points, predicate="dwithin", distance=_reach_degrees(lat, reach_m)
    )
    if not len(point_idx):
        return index, metres
    dist = _ground_distance_m(units.geoms[unit_idx], lon[point_idx], lat[point_idx])
    close = dist <= reach_m[point_idx]
    point_idx, unit_idx, dist = point_idx[close], unit_idx[close], dist[close]
    order = np.lexsort((units.ids[unit_idx], dist, point_idx))
    point_idx, unit_idx, dist = point_idx[order], unit_idx[order], dist[order]
    first = np.r_[True, point_idx[1:] != point_idx[:-1]] if len(point_idx) else np.zeros(0, bool)
    index[point_idx[first]] = unit_idx[first]
    metres[point_idx[first]] = dist[first]
    return index, metres


# ---------------------------------------------------------------- GCJ-02

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as GCJ-02 uses it
_EE = 0.00669342162296594323


def _out_of_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    pi = np.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ) + common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))) + common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = dlon * 180.0 / (_A / sqrt_magic * np.cos(rad) * pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → GCJ-02 (the offset Chinese web maps apply); unchanged outside China."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    dlon, dlat = _gcj_offset(lon, lat)
    outside = _out_of_china(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → WGS84 by fixed-point iteration of the forward offset (error < 1 mm);
    points outside China are returned unchanged."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(8):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        wlon -= glon - lon
        wlat -= glat - lat
    outside = _out_of_china(lon, lat)
    return np.where(outside, lon, wlon), np.where(outside, lat, wlat)
