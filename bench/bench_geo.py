"""Geo benchmark: point-location rate at metro scale and display GeoJSON bytes per level.

    python -m bench.bench_geo [DATABASE_URL]

Uses the metro database (``zhili_metro`` on PostGIS) when it holds units; otherwise builds
a synthetic metro coverage (8,820 grids, 2,236 villages, 104 towns, jagged shared borders)
into ``bench/artifacts/geo_metro.db`` once and reuses it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import func, select

from api.db.models import AdminUnit
from api.db.session import dispose_engines, session_scope
from bench.common import ratio

ARTIFACTS = Path(__file__).parent / "artifacts"
POINTS = 200_000


def _has_units(url: str) -> bool:
    try:
        with session_scope(url) as session:
            return bool(
                session.scalar(
                    select(func.count())
                    .select_from(AdminUnit)
                    .where(AdminUnit.level == "grid", AdminUnit.valid_to.is_(None))
                )
            )
    except Exception:
        dispose_engines()
        return False


def synthetic_metro_url() -> str:
    """A SQLite database holding the synthetic metro coverage (built once)."""
    from api.db.migrate import upgrade
    from api.services.units import CITY_TOWN_VILLAGE_GRID, UnitRecord, add_units, ensure_levels
    from geo.synthetic import synthetic_city

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "geo_metro.db"
    url = f"sqlite:///{path}"
    if path.exists() and _has_units(url):
        return url
    path.unlink(missing_ok=True)
    print("building the synthetic metro coverage ...", flush=True)
    upgrade(url)
    units = synthetic_city()
    with session_scope(url) as session:
        ensure_levels(session, CITY_TOWN_VILLAGE_GRID)
        add_units(
            session,
            [UnitRecord(u.code, u.name, u.level, u.parent_code, u.geom) for u in units],
        )
    return url


def bench_locate(url: str) -> dict:
    from api.services.locate import point_locator

    with session_scope(url) as session:
        t0 = time.perf_counter()
        locator = point_locator(session)
        build_s = time.perf_counter() - t0
        root = session.scalars(
            select(AdminUnit.geom).where(
                AdminUnit.parent_code.is_(None), AdminUnit.valid_to.is_(None)
            )
        ).first()
    # case points fall inside the city: draw uniformly in its bounding box, keep those inside
    x0, y0, x1, y1 = root.bounds
    rng = np.random.default_rng(7)
    shapely.prepare(root)
    lon, lat = np.empty(0), np.empty(0)
    while len(lon) < POINTS:
        x, y = rng.uniform(x0, x1, POINTS), rng.uniform(y0, y1, POINTS)
        keep = shapely.contains_xy(root, x, y)
        lon, lat = np.r_[lon, x[keep]], np.r_[lat, y[keep]]
    lon, lat = lon[:POINTS], lat[:POINTS]
    t0 = time.perf_counter()
    locator.locate(lon, lat)  # the first big batch also builds the owned-cells raster
    first_batch_s = time.perf_counter() - t0
    ours, ours_cpu = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        result = locator.locate(lon, lat)
        ours.append(time.perf_counter() - t0)
        ours_cpu.append(time.process_time() - c0)
    # baseline in the same process: the tree's own predicate query (prepares the points)
    leaves = locator._leaves
    base = []
    for _ in range(3):
        t0 = time.perf_counter()
        leaves.tree.query(shapely.points(lon, lat), predicate="intersects")
        base.append(time.perf_counter() - t0)
    median = statistics.median(ours)
    figures = {
        "leaf_units": locator.leaf_count,
        "index_build_s": round(build_s, 2),
        "first_batch_s_incl_raster": round(first_batch_s, 2),
        "points": POINTS,
        "points_per_s_median": int(POINTS / median),
        # CPU time of this process: the rate an idle core gives, on a busy shared machine
        "points_per_cpu_s_median": int(POINTS / statistics.median(ours_cpu)),
        "outside_share": round(float(result.outside.mean()), 4),
        "vs_strtree_predicate_query": ratio(statistics.median(base), median),
    }
    print(figures, flush=True)
    return figures


def bench_display(url: str) -> list[dict]:
    from api.services.display import display_layer
    from api.services.units import list_levels

    rows = []
    with session_scope(url) as session, tempfile.TemporaryDirectory() as cache:
        levels = [lvl.code for lvl in list_levels(session)]
        for depth, level in enumerate(levels):
            t0, c0 = time.perf_counter(), time.process_time()
            layer = display_layer(session, level, cache_dir=Path(cache))
            cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
            if not layer.codes:
                continue
            body = layer.feature_collection_bytes
            row = {
                "level": level,
                "units": len(layer.codes),
                "tolerance_deg": round(layer.tolerance, 7),
                "whole_level_kb": round(len(body) / 1024, 1),
                "whole_level_gzip_kb": round(len(layer.gzipped()) / 1024, 1),
                "whole_level_bytes": len(body),
                "whole_level_gzip_bytes": len(layer.gzipped()),
                "simplify_s": round(cold, 2),
                "simplify_cpu_s": round(cold_cpu, 2),
            }
            if depth >= 2:  # shown per unit two levels up (grids of one town)
                view_level = levels[depth - 2]
                parents = session.scalars(
                    select(AdminUnit.code).where(
                        AdminUnit.level == view_level, AdminUnit.valid_to.is_(None)
                    )
                ).all()
                sizes = [
                    len(
                        display_layer(
                            session, level, p, cache_dir=Path(cache)
                        ).feature_collection_bytes
                    )
                    for p in parents
                ]
                row[f"per_{view_level}_median_kb"] = round(statistics.median(sizes) / 1024, 1)
            print(row, flush=True)
            rows.append(row)
    return rows


def run(database_url: str | None, preset: str = "metro") -> dict:
    """Both figures, on ``database_url`` if it holds a world, else on the synthetic metro."""
    url = database_url if database_url and _has_units(database_url) else synthetic_metro_url()
    figures = {"database": url.rsplit("@", 1)[-1].rsplit("/", 1)[-1]}
    figures["locate"] = bench_locate(url)
    figures["display_bytes"] = bench_display(url)
    return figures


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/zhili_metro")
