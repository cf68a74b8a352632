"""Seed benchmark: build time, row counts, database size and vertices per level.

    python -m bench.bench_seed                          # small on SQLite, median of 3 builds
    python -m bench.bench_seed --metro --database-url postgresql://postgres@127.0.0.1/zhili_metro
    python -m bench.bench_seed --metro --rebuild ...    # drop and rebuild the metro database

The metro database is built once and kept (the other benchmarks use it): without
``--rebuild`` an existing metro database is only measured, and the build time printed is
the one recorded in ``bench/artifacts/seed_metro.json`` when it was built.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import case, create_engine, func, select, text
from sqlalchemy.engine import make_url

from api.db.migrate import upgrade
from api.db.models import AdminUnit, Base, Facility, GridWorker
from api.db.session import dispose_engines, normalize_url, session_scope
from seed.build import seed_database
from seed.presets import get_preset

ARTIFACTS = Path(__file__).parent / "artifacts"
TABLES = (
    "admin_unit",
    "unit_ancestry",
    "grid_worker",
    "facility",
    "case",
    "case_rollup_daily",
    "case_flow_daily",
    "case_close_histogram",
)


def _admin_url(url: str) -> str:
    return make_url(normalize_url(url)).set(database="postgres").render_as_string(False)


def _database_exists(url: str) -> bool:
    name = make_url(normalize_url(url)).database
    engine = create_engine(_admin_url(url))
    with engine.connect() as conn:
        found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
    engine.dispose()
    return bool(found)


def _recreate_postgis(url: str) -> None:
    """Drop and create the database of ``url`` with PostGIS (the metro database only)."""
    name = make_url(normalize_url(url)).database
    dispose_engines()
    engine = create_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()


def _has_units(url: str) -> bool:
    with session_scope(url) as session:
        return bool(session.scalar(select(func.count()).select_from(AdminUnit)))


def measure(url: str, preset: str) -> dict[str, Any]:
    """Row counts, database size and vertices per level of the world at ``url``, and its
    counts next to the table of world ``preset``."""
    out: dict[str, Any] = {}
    with session_scope(url) as session:
        dialect = session.get_bind().dialect.name
        out["rows"] = {
            t: session.scalar(select(func.count()).select_from(Base.metadata.tables[t]))
            for t in TABLES
        }
        vertices = []
        for level, depth in session.execute(text("SELECT code, depth FROM admin_level")).all():
            geoms = np.array(
                list(session.scalars(select(AdminUnit.geom).where(AdminUnit.level == level)))
            )
            if not len(geoms):
                continue
            n = shapely.get_num_coordinates(geoms)
            parts = shapely.get_num_geometries(geoms)
            vertices.append(
                {
                    "level": level,
                    "depth": depth,
                    "units": len(geoms),
                    "vertices": int(n.sum()),
                    "mean": round(float(n.mean()), 1),
                    "median": int(np.median(n)),
                    "max": int(n.max()),
                    "multipart": int((parts > 1).sum()),
                }
            )
        out["vertices_per_level"] = sorted(vertices, key=lambda r: r["depth"])
        levels: dict[str, Any] = {r["level"]: r["units"] for r in vertices}
        levels["workers"] = dict(
            session.execute(select(GridWorker.role, func.count()).group_by(GridWorker.role)).all()
        )
        statuses = session.execute(
            select(
                Facility.kind,
                Facility.status,
                func.count(),
                func.sum(case((Facility.video_linked, 1), else_=0)),
            )
            .group_by(Facility.kind, Facility.status)
            .order_by(Facility.kind, Facility.status)
        ).all()
        out["facilities"] = {
            f"{kind} {status}": f"{n} ({linked} video-linked)"
            for kind, status, n, linked in statuses
        }
        levels["facilities"] = {(kind, status): n for kind, status, n, _ in statuses}
        out["table_check"] = table_check(out["rows"], levels, preset)
        if dialect == "postgresql":
            size = session.scalar(text("SELECT pg_database_size(current_database())"))
            out["case_table_mb"] = round(
                session.scalar(text("SELECT pg_total_relation_size('\"case\"')")) / 2**20, 1
            )
        else:
            size = Path(make_url(normalize_url(url)).database).stat().st_size
        out["database_mb"] = round(size / 2**20, 1)
    return out


def bench_small(repeat: int = 3) -> dict[str, Any]:
    """Build the small world on SQLite ``repeat`` times; the median build and its figures."""
    times, summary, figures = [], {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for i in range(repeat):
            url = f"sqlite:///{folder}/small{i}.db"
            upgrade(url)
            t0 = time.perf_counter()
            summary = seed_database(url, preset="small", seed=1, progress=False)
            times.append(time.perf_counter() - t0)
            print(f"small build {i + 1}/{repeat}: {times[-1]:.1f} s", flush=True)
        figures = measure(url, "small")
        dispose_engines()
    return {
        "preset": "small",
        "database": "sqlite",
        "build_seconds_median": round(statistics.median(times), 1),
        "build_seconds": [round(t, 1) for t in times],
        "phases_seconds": {k: v for k, v in summary.items() if k.endswith("_s")},
        **figures,
    }


def bench_metro(url: str, rebuild: bool = False) -> dict[str, Any]:
    """Build the metro world on PostGIS if needed (or asked), then measure it."""
    record = ARTIFACTS / "seed_metro.json"
    if rebuild or not _database_exists(url) or not _has_units(url):
        _recreate_postgis(url)
        upgrade(url)
        t0 = time.perf_counter()
        summary = seed_database(url, preset="metro", seed=1, progress=True)
        summary["build_seconds"] = round(time.perf_counter() - t0, 1)
        ARTIFACTS.mkdir(exist_ok=True)
        record.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    summary = json.loads(record.read_text()) if record.exists() else {}
    return {
        "preset": "metro",
        "database": "postgis",
        "build_seconds": summary.get("build_seconds"),
        "phases_seconds": {k: v for k, v in summary.items() if k.endswith("_s")},
        **measure(url, "metro"),
    }


def table_check(rows: dict[str, int], levels: dict[str, int], preset: str) -> dict[str, Any]:
    """The world's counts next to the issue's table (``ok``: within 2%)."""
    spec = get_preset(preset)
    workers = levels.pop("workers", {})
    facilities = levels.pop("facilities", {})
    table = {
        "towns": (levels.get("town"), spec.towns),
        "villages": (levels.get("village"), spec.villages),
        "grids": (levels.get("grid"), spec.grids),
        "leaders": (workers.get("leader"), spec.leaders),
        "full_time": (workers.get("full_time"), spec.full_time),
        "part_time": (workers.get("part_time"), spec.part_time),
        "centers_built": (facilities.get(("center", "built"), 0), spec.town_centers[0]),
        "centers_under_construction": (
            facilities.get(("center", "under_construction"), 0),
            spec.town_centers[1],
        ),
        "stations_built": (
            facilities.get(("linkage_station", "built"), 0),
            spec.village_stations[0],
        ),
        "stations_under_construction": (
            facilities.get(("linkage_station", "under_construction"), 0),
            spec.village_stations[1],
        ),
    }
    if spec.districts:
        table["districts"] = (levels.get("district"), spec.districts)
    out: dict[str, Any] = {
        k: {"got": got, "table": want, "ok": got is not None and abs(got - want) <= 0.02 * want}
        for k, (got, want) in table.items()
    }
    cases = rows["case"]
    if spec.name == "metro":  # the table asks for at least five million
        out["cases"] = {"got": cases, "table": ">= 5000000", "ok": cases >= 5_000_000}
    else:
        ok = abs(cases - spec.cases) <= 0.02 * spec.cases
        out["cases"] = {"got": cases, "table": spec.cases, "ok": ok}
    return out


def run(database_url: str, preset: str) -> dict[str, Any]:
    """Entry point of ``python -m bench``: the preset's world at ``database_url``; with
    ``metro``, the small world on SQLite is built and timed as well (both build times)."""
    if preset == "metro":
        figures = bench_metro(database_url)
        _print(figures)
        print("--- small preset on SQLite ---", flush=True)
        figures["small_sqlite"] = bench_small()
        _print(figures["small_sqlite"])
        return figures
    figures = bench_small()
    _print(figures)
    return figures


def _print(figures: dict[str, Any]) -> None:
    for key, value in figures.items():
        if key == "vertices_per_level":
            print("vertices per level:")
            for row in value:
                print("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
        else:
            print(f"{key}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metro", action="store_true", help="the metro preset on PostGIS")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1/zhili_metro")
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild metro")
    parser.add_argument("--repeat", type=int, default=3, help="small builds to take a median of")
    args = parser.parse_args()
    if args.metro:
        _print(bench_metro(args.database_url, args.rebuild))
    else:
        _print(bench_small(args.repeat))


if __name__ == "__main__":
    main()
