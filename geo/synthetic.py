"""A synthetic coverage for benches and tests: a city cut into towns, villages and grids
with irregular, jagged borders that neighbours share exactly (as a real coverage does).

Grids are Voronoi cells of random seeds, villages and towns are unions of grids around
their own seeds; every border is densified and then displaced by one smooth noise field,
so shared borders stay identical while looking hand-drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, box


@dataclass
class SyntheticUnit:
    """A unit of the synthetic coverage (the fields ``UnitRecord`` takes)."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geom: MultiPolygon


def _noise(x: np.ndarray, y: np.ndarray, amplitude: float, rng: np.random.Generator):
    dx = np.zeros_like(x)
    dy = np.zeros_like(y)
    for _ in range(6):
        kx, ky = rng.uniform(50, 400, 2)
        px, py = rng.uniform(0, 2 * np.pi, 2)
        dx += np.sin(kx * x + px) * np.cos(ky * y + py)
        dy += np.cos(ky * x + py) * np.sin(kx * y + px)
    return x + amplitude / 6 * dx, y + amplitude / 6 * dy


def _to_multi(geom) -> MultiPolygon:
    geom = shapely.make_valid(geom)
    polys = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 0]
    return MultiPolygon(polys)


def synthetic_city(
    grids: int = 8820,
    villages: int = 2236,
    towns: int = 104,
    extent: tuple[float, float, float, float] = (120.5, 31.0, 121.5, 31.8),
    seed: int = 1,
    segment: float = 0.0008,
) -> list[SyntheticUnit]:
    """City → towns → villages → grids over ``extent`` (WGS84), codes in the national
    pattern (city 6 digits, town 9, village 12, grid village + 3)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = extent
    frame = box(*extent)
    seeds = np.column_stack([rng.uniform(x0, x1, grids), rng.uniform(y0, y1, grids)])
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame))
    cells = shapely.intersection(cells, frame)
    centroids = shapely.get_coordinates(shapely.centroid(cells))
    # assign each grid to the nearest village seed, each village to the nearest town seed
    vseeds = seeds[rng.choice(grids, villages, replace=False)]
    tseeds = vseeds[rng.choice(villages, towns, replace=False)]
    grid_village = _nearest(centroids, vseeds)
    vcent = np.array([centroids[grid_village == v].mean(axis=0) for v in range(villages)])
    village_town = _nearest(vcent, tseeds)
    # jag every border: densify, then move every vertex by one smooth field
    cells = shapely.segmentize(cells, segment)
    coords = shapely.get_coordinates(cells)
    jx, jy = _noise(coords[:, 0], coords[:, 1], segment * 0.6, rng)
    cells = shapely.set_coordinates(cells.copy(), np.column_stack([jx, jy]))
    cells = shapely.make_valid(shapely.set_precision(cells, 1e-7))

    city = "320500"
    units = [SyntheticUnit(city, "示范市", "city", None, _to_multi(shapely.union_all(cells)))]
    for t in range(towns):
        tcode = f"{city}{t + 1:03d}"
        tv = np.flatnonzero(village_town == t)
        tgeom = shapely.union_all(cells[np.isin(grid_village, tv)])
        kind = "街道" if t % 3 == 0 else "镇"
        units.append(SyntheticUnit(tcode, f"第{t + 1}{kind}", "town", city, _to_multi(tgeom)))
        for vi, v in enumerate(tv):
            vcode = f"{tcode}{vi + 1:03d}"
            members = np.flatnonzero(grid_village == v)
            units.append(
                SyntheticUnit(
                    vcode,
                    f"第{t + 1}镇{vi + 1}村",
                    "village",
                    tcode,
                    _to_multi(shapely.union_all(cells[members])),
                )
            )
            for gi, g in enumerate(members):
                units.append(
                    SyntheticUnit(
                        f"{vcode}{gi + 1:03d}",
                        f"第{gi + 1}网格",
                        "grid",
                        vcode,
                        _to_multi(cells[g]),
                    )
                )
    return units


def _nearest(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    return cKDTree(targets).query(points)[1]
