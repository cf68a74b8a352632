"""Polygons of a world: one planar partition, warped once, unioned level by level.

Grids are the Voronoi cells of the layout's sites. Their edges are densified in a
canonical direction (a shared edge gets bit-identical vertices from both sides), then
every distinct vertex is moved by ONE smooth displacement field (an injective warp:
the sum of amplitude × wavenumber stays below 1), so borders wiggle and stay shared.
Villages, towns, districts and the city are coverage unions of their grids, so nesting
is exact by construction and each set of siblings is a valid coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, box

from seed.layout import Layout, stream

LON0, LAT0 = 121.0, 31.5
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON = 111.320 * np.cos(np.radians(LAT0))
# (wavelength as a multiple of the vertex spacing or of the radius, share of the warp budget)
OCTAVES = ((10.0, 0.2), (30.0, 0.2), (90.0, 0.15), (0.25, 0.15), (0.7, 0.1))
WARP_BUDGET = 0.8  # Σ amplitude·wavenumber < 1 keeps the warp one-to-one


@dataclass
class WorldGeometry:
    """MultiPolygons in WGS84 per level (index order = the layout's code order), areas km²."""

    grids: np.ndarray
    villages: np.ndarray
    towns: np.ndarray
    districts: np.ndarray
    city: MultiPolygon
    grid_area_km2: np.ndarray


def to_lonlat(xy: np.ndarray) -> np.ndarray:
    """Local plane (km around the centre) → lon/lat degrees."""
    return np.c_[LON0 + xy[:, 0] / KM_PER_DEG_LON, LAT0 + xy[:, 1] / KM_PER_DEG_LAT]


def densify_rings(coords: np.ndarray, ring: np.ndarray, spacing: float):
    """Insert vertices so no segment is longer than ``spacing``.

    ``coords`` are closed rings one after another, ``ring`` the ring index of each vertex.
    Interior points of a segment are computed from its lexicographically smaller end, so
    the two rings sharing an edge get exactly the same points.
    """
    same = ring[:-1] == ring[1:]
    a, b = coords[:-1][same], coords[1:][same]
    seg_ring = ring[:-1][same]
    length = np.hypot(*(b - a).T)
    n = np.maximum(1, np.ceil(length / spacing).astype(np.int64))
    forward = (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] < b[:, 1]))
    base = np.where(forward[:, None], a, b)
    other = np.where(forward[:, None], b, a)
    seg = np.repeat(np.arange(len(n)), n)
    k = np.arange(len(seg)) - np.repeat(np.cumsum(n) - n, n)  # 0..n-1 along the segment
    numer = np.where(forward[seg], k, n[seg] - k)
    t = numer / n[seg]
    pts = base[seg] + (other[seg] - base[seg]) * t[:, None]
    start = k == 0
    pts[start] = a[seg[start]]  # each segment starts at its exact vertex
    out_ring = seg_ring[seg]
    # close every ring with its first point again
    starts = np.r_[0, np.flatnonzero(np.diff(out_ring)) + 1]
    ends = np.r_[starts[1:], len(pts)]
    closed = np.insert(pts, ends, pts[starts], axis=0)
    closed_ring = np.insert(out_ring, ends, out_ring[starts])
    return closed, closed_ring


def _warp_field(layout: Layout):
    rng = stream(layout.seed, "warp")
    preset = layout.preset
    terms = []
    for scale, share in OCTAVES:
        wavelength = scale * (preset.spacing_km if scale >= 1 else preset.radius_km)
        for _ in range(2):
            angle = rng.uniform(0, 2 * np.pi)
            k = 2 * np.pi / wavelength * np.array([np.cos(angle), np.sin(angle)])
            amp = WARP_BUDGET * share / 2 / np.linalg.norm(k)
            direction = rng.normal(size=2)
            direction /= np.linalg.norm(direction)
            terms.append((k, amp * direction, rng.uniform(0, 2 * np.pi)))

    def warp(xy: np.ndarray) -> np.ndarray:
        out = xy.copy()
        for k, vec, phase in terms:
            out += np.sin(xy @ k + phase)[:, None] * vec
        return out

    return warp


def _as_multi(geoms) -> np.ndarray:
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        out[i] = g if isinstance(g, MultiPolygon) else MultiPolygon([g])
    return out


def _union_groups(parts: np.ndarray, label: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(k + 1))
    return _as_multi(
        [shapely.coverage_union_all(parts[order[bounds[i] : bounds[i + 1]]]) for i in range(k)]
    )


def build_geometry(layout: Layout) -> WorldGeometry:
    """All polygons of the world (deterministic for a layout)."""
    preset = layout.preset
    n = layout.n_grids
    extent = box(*(np.r_[layout.sites.min(0), layout.sites.max(0)] + [-1, -1, 1, 1]))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(layout.sites), extend_to=extent, ordered=True)
    )[:n]
    coords, ring = shapely.get_coordinates(cells, return_index=True)
    coords, ring = densify_rings(coords, ring, preset.spacing_km)
    unique, inverse = np.unique(coords, axis=0, return_inverse=True)
    warped = _warp_field(layout)(unique)
    km = warped[inverse.ravel()]
    lonlat = to_lonlat(warped)[inverse.ravel()]
    area = shapely.area(shapely.polygons(shapely.linearrings(km, indices=ring)))
    grids = shapely.polygons(shapely.linearrings(lonlat, indices=ring))

    villages = _union_groups(grids, layout.grid_village, len(layout.village_codes))
    town_of_grid = layout.village_town[layout.grid_village]
    towns = _union_groups(grids, town_of_grid, len(layout.town_codes))
    districts = np.empty(0, dtype=object)
    if layout.town_district is not None:
        districts = _union_groups(
            grids, layout.town_district[town_of_grid], len(layout.district_codes)
        )
    city = _as_multi([shapely.coverage_union_all(grids)])[0]
    return WorldGeometry(
        grids=_as_multi(grids),
        villages=villages,
        towns=towns,
        districts=districts,
        city=city,
        grid_area_km2=area,
    )
