"""Case intake speed: bulk import (``zhili import-cases`` path) and the batch API with four
concurrent clients against a running server (uvicorn on a free port).

    python -m bench --only ingest                        # metro on PostGIS
    python -m bench.bench_ingest --database-url URL      # this section alone

Writes into the given database under a source of its own (``bench-ingest-<pid>``) and
deletes those cases afterwards (moving the rollups back), so a shared metro database is left
as it was. Prints medians of several runs, and the server settings it ran with.

Bulk import runs at two file sizes: 20,000 rows (the figure kept since the first runs) and
100,000 rows, a more usual bulk file, where the import's fixed costs (the first chunk read
alone, the last one stored alone) weigh less; and at 20,000 rows with one writer, the
serial import, for the ratio.

Then the floor, on a throwaway copy of the database (it writes rows that bypass the
rollups): a plain ``COPY`` of 100,000 rows into the indexed table ``case`` against the
import of the same rows as new cases, rollups included, alternated run by run, with their
ratio (``python -m bench.bench_ingest --floor``).

The import runs in this process with the point locator already built (the cold build is
a once-per-process cost of the command, a few seconds at metro, not part of the rate).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select, text

from bench.common import free_port

BULK_ROWS = int(os.environ.get("ZHILI_BENCH_INGEST_ROWS", 20_000))
BIG_ROWS = int(os.environ.get("ZHILI_BENCH_INGEST_BIG_ROWS", 100_000))
BULK_RUNS = 3
FLOOR_RUNS = int(os.environ.get("ZHILI_BENCH_FLOOR_RUNS", 5))
SERVER_SETTINGS = (
    "shared_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "wal_compression",
    "synchronous_commit",
    "work_mem",
)
API_BATCH = 500
API_BATCHES = int(os.environ.get("ZHILI_BENCH_INGEST_BATCHES", 16))
CLIENTS = 4
CATEGORIES = ("neighbour", "family", "labour", "property", "traffic", "safety_hazard")
CHANNELS = ("hotline_12345", "police_110", "grid_patrol", "walk_in", "online")


def _points(session, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points inside the city's units (uniform in its box, kept when located)."""
    from api.db.models import AdminUnit
    from api.services.locate import point_locator

    locator = point_locator(session)
    bounds = [
        u.geom.bounds
        for u in session.scalars(
            select(AdminUnit).where(AdminUnit.parent_code.is_(None), AdminUnit.valid_to.is_(None))
        )
        if u.geom is not None
    ]
    x0, y0 = min(b[0] for b in bounds), min(b[1] for b in bounds)
    x1, y1 = max(b[2] for b in bounds), max(b[3] for b in bounds)
    rng = np.random.default_rng(seed)
    lon, lat = np.empty(0), np.empty(0)
    while len(lon) < n:
        x = rng.uniform(x0, x1, n)
        y = rng.uniform(y0, y1, n)
        inside = ~locator.locate(x, y).outside
        lon, lat = np.r_[lon, x[inside]], np.r_[lat, y[inside]]
    return lon[:n], lat[:n]


def _cases(source: str, start: int, n: int, lon, lat, seed: int) -> list[dict]:
    rng = random.Random(seed)
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return [
        {
            "source": source,
            "external_id": f"B{start + i:08d}",
            "category": rng.choice(CATEGORIES),
            "channel": rng.choice(CHANNELS),
            "reported_at": (t0 + dt.timedelta(minutes=rng.randrange(400_000))).isoformat(),
            "lon": round(float(lon[i]), 6),
            "lat": round(float(lat[i]), 6),
            "description": "bench",
        }
        for i in range(n)
    ]


def _write_csv(path: Path, cases: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=list(cases[0]))
        out.writeheader()
        out.writerows(cases)


def _cleanup(url: str, source: str) -> int:
    """Delete the bench's cases, moving their rollup counts back, and its API user and
    tokens, in one transaction. (The audit entries of its batches stay: the trail is
    append-only.)"""
    from api.db.models import ApiToken, Case, User
    from api.db.session import session_scope
    from api.engine.rollup import CaseSnapshot, apply_case_changes

    snapshot = (
        Case.leaf_unit_id,
        Case.reported_at,
        Case.category,
        Case.channel,
        Case.deadline,
        Case.handled_at,
        Case.visited_at,
        Case.evaluated_at,
        Case.outcome,
        Case.satisfaction,
    )
    with session_scope(url) as session:
        rows = session.execute(select(*snapshot).where(Case.source.like(f"{source}-%"))).all()
        apply_case_changes(session, [(CaseSnapshot(*row), None) for row in rows])
        session.execute(delete(Case).where(Case.source.like(f"{source}-%")))
        users = select(User.id).where(User.name.like(f"{source}-%"))
        session.execute(delete(ApiToken).where(ApiToken.user_id.in_(users)))
        session.execute(delete(User).where(User.name.like(f"{source}-%")))
        return len(rows)


def _server(session) -> dict[str, str]:
    """The PostgreSQL settings the bench ran with (the import's speed depends on them)."""
    if session.get_bind().dialect.name != "postgresql":
        return {}
    return {name: session.execute(text(f"SHOW {name}")).scalar() for name in SERVER_SETTINGS}


class _Stopwatch:
    """Time spent inside the rollup maintenance the pipeline calls (the METRICS part)."""

    def __init__(self) -> None:
        import api.services.cases as pipeline

        self.pipeline = pipeline
        self.inner = pipeline.apply_case_changes
        self.seconds = 0.0

    def __enter__(self) -> _Stopwatch:
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return self.inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        self.pipeline.apply_case_changes = timed
        return self

    def __exit__(self, *exc) -> None:
        self.pipeline.apply_case_changes = self.inner


def bench_bulk(url: str, source: str, lon, lat, rows: int, writers: int | None = None) -> dict:
    from api.db.session import session_factory
    from api.services import case_import
    from api.services.case_import import import_cases

    rates, rerun_rates, rollup_seconds = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(BULK_RUNS):
            path = Path(tmp) / f"cases{run}.csv"
            tag = f"{source}-b{rows // 1000}k{writers or 0}{run}"  # source: 32 characters
            _write_csv(path, _cases(tag, 0, rows, lon, lat, run))
            session = session_factory(url)()
            try:
                with _Stopwatch() as watch:
                    t0 = time.perf_counter()
                    summary = import_cases(session, path, writers=writers)
                    elapsed = time.perf_counter() - t0
                rollup_seconds.append(watch.seconds * 10_000 / rows)
                assert summary.created == rows, (summary.created, summary.errors[:3])
                rates.append(rows / elapsed)
                t0 = time.perf_counter()
                again = import_cases(session, path, writers=writers)
                rerun_rates.append(rows / (time.perf_counter() - t0))
                assert again.unchanged == rows, (again.unchanged, again.errors[:3])
            finally:
                session.close()
            print(
                f"  bulk {rows:,} rows, writers={writers or case_import.WRITERS}, run {run}: "
                f"{rates[-1]:,.0f} cases/s new, "
                f"{rerun_rates[-1]:,.0f} cases/s re-run (no-op); apply_case_changes "
                f"{rollup_seconds[-1]:.2f} s per 10k cases (summed over writers)",
                flush=True,
            )
    return {
        "rows_per_run": rows,
        "runs": BULK_RUNS,
        "chunk_rows": case_import.CHUNK_ROWS,
        "writers": writers or case_import.WRITERS,
        "bulk_import_cases_per_s_median": round(statistics.median(rates)),
        "bulk_rerun_noop_cases_per_s_median": round(statistics.median(rerun_rates)),
        "apply_case_changes_s_per_10k_cases_median": round(statistics.median(rollup_seconds), 2),
    }


def _floor_payload(session, cases: list[dict]) -> tuple[list[str], bytes]:
    """The rows of ``cases`` as table ``case`` stores them (located, deadline by the
    category's SLA, status received), as COPY text: what a plain ``COPY`` would load."""
    from api.domain import CATEGORY_BY_CODE
    from api.services.locate import point_locator

    located = point_locator(session).locate(
        np.array([c["lon"] for c in cases]), np.array([c["lat"] for c in cases])
    )
    now = dt.datetime.now(dt.UTC).isoformat()
    columns = [
        *("source", "external_id", "channel", "category", "description", "reported_at"),
        *("lon", "lat", "leaf_unit_id", "village_code", "grid_code", "placed_by_tolerance"),
        *("status", "received_at", "deadline", "created_at", "updated_at"),
    ]
    lines = []
    for i, c in enumerate(cases):
        at = dt.datetime.fromisoformat(c["reported_at"])
        deadline = at + dt.timedelta(days=CATEGORY_BY_CODE[c["category"]].sla_days)
        cells = [
            *(c["source"], c["external_id"], c["channel"], c["category"], c["description"]),
            c["reported_at"],
            repr(c["lon"]),
            repr(c["lat"]),
            str(int(located.leaf_unit_id[i])),
            located.village_code[i] or "\\N",
            located.grid_code[i] or "\\N",
            "t" if located.by_tolerance[i] else "f",
            *("received", c["reported_at"], deadline.isoformat(), now, now),
        ]
        lines.append("\t".join(cells))
    return columns, ("\n".join(lines) + "\n").encode()


def _plain_copy(url: str, columns: list[str], payload: bytes) -> float:
    """Seconds to ``COPY`` ``payload`` into table ``case`` and commit, on a new connection
    (the floor: every index and constraint of ``case`` kept, nothing else done)."""
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    cols = ", ".join(f'"{c}"' for c in columns)
    with psycopg.connect(dsn) as conn:
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f'COPY "case" ({cols}) FROM STDIN') as copy:
            for start in range(0, len(payload), 1 << 20):
                copy.write(payload[start : start + (1 << 20)])
        conn.commit()
        return time.perf_counter() - t0


def bench_floor(
    url: str, source: str, lon, lat, rows: int, runs: int = FLOOR_RUNS, writers: int | None = None
) -> dict:
    """The import of ``rows`` new cases (rollups included) against the floor: a plain
    ``COPY`` of the same rows into the indexed table ``case``, alternated run by run (so
    both see the same noise of a shared machine); rates, and their ratio per run."""
    from api.db.session import session_factory, session_scope
    from api.services import case_import
    from api.services.case_import import import_cases

    floor_rates, import_rates, ratios, loads = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            tag = f"{source}-f{rows // 1000}k{run}"
            cases = _cases(tag, 0, rows, lon, lat, 100 + run)
            path = Path(tmp) / f"floor{run}.csv"
            _write_csv(path, cases)
            floor_rows = [{**c, "source": f"floor-{tag}"[:32]} for c in cases]
            with session_scope(url) as session:
                columns, payload = _floor_payload(session, floor_rows)

            def imported(path: Path = path) -> float:
                session = session_factory(url)()
                try:
                    t0 = time.perf_counter()
                    summary = import_cases(session, path, writers=writers)
                    elapsed = time.perf_counter() - t0
                finally:
                    session.close()
                assert summary.created == rows, (summary.created, summary.errors[:3])
                return elapsed

            if run % 2:
                import_s, copy_s = imported(), _plain_copy(url, columns, payload)
            else:
                copy_s, import_s = _plain_copy(url, columns, payload), imported()
            floor_rates.append(rows / copy_s)
            import_rates.append(rows / import_s)
            ratios.append(copy_s / import_s)
            loads.append(os.getloadavg()[0])
            print(
                f"  floor {rows:,} rows, run {run}: plain COPY {floor_rates[-1]:,.0f} rows/s, "
                f"import {import_rates[-1]:,.0f} cases/s, ratio {ratios[-1]:.2f} "
                f"(load average {loads[-1]:.1f} on {os.cpu_count()} cores)",
                flush=True,
            )
    return {
        "rows_per_run": rows,
        "runs": runs,
        "writers": writers or case_import.WRITERS,
        "plain_copy_rows_per_s_median": round(statistics.median(floor_rates)),
        "import_cases_per_s_median": round(statistics.median(import_rates)),
        "import_over_copy_ratio_median": round(statistics.median(ratios), 2),
        "import_over_copy_ratio_min": round(min(ratios), 2),
        "load_average_median": round(statistics.median(loads), 1),
    }


def bench_api(url: str, source: str, lon, lat, workers: int) -> dict:
    import httpx
    import orjson

    from api.db.models import AdminUnit
    from api.db.session import session_scope
    from api.services.auth import create_user, issue_token

    with session_scope(url) as session:
        root = session.scalar(
            select(AdminUnit.code).where(
                AdminUnit.parent_code.is_(None), AdminUnit.valid_to.is_(None)
            )
        )
        user = create_user(session, f"{source}-{workers}", "intake", root)
        token = issue_token(session, user, ttl_days=1, label="bench")
    port = free_port()
    env = {**os.environ, "ZHILI_DATABASE_URL": url}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.app:app_factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        src = f"{source}-api{workers}"
        n = API_BATCH * API_BATCHES
        all_cases = _cases(src, 0, n, lon, lat, 99)
        bodies = [orjson.dumps(all_cases[i : i + API_BATCH]) for i in range(0, n, API_BATCH)]
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}

        def post_all(chunk: list[bytes], out: list[float], statuses: list[int]) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                for body in chunk:
                    t0 = time.perf_counter()
                    r = client.post("/api/v1/cases", content=body)
                    out.append(time.perf_counter() - t0)
                    statuses.append(r.status_code)

        def round_trip(label: str) -> dict:
            latencies: list[float] = []
            statuses: list[int] = []
            threads = [
                threading.Thread(target=post_all, args=(bodies[c::CLIENTS], latencies, statuses))
                for c in range(CLIENTS)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            assert set(statuses) == {200}, set(statuses)
            rate = n / elapsed
            print(
                f"  api {label} (workers={workers}): {rate:,.0f} cases/s, median batch "
                f"{statistics.median(latencies) * 1000:,.0f} ms "
                f"(slowest {max(latencies) * 1000:,.0f} ms)",
                flush=True,
            )
            return {
                "cases_per_s": round(rate),
                "batch_median_ms": round(statistics.median(latencies) * 1000),
            }

        def warm_up() -> float:
            """Small batches from all clients at once until every answer is quick: each
            worker builds its point locator on its first batch (seconds at metro), which
            is a cold start, not the steady rate measured next. Returns the slowest."""
            warm = _cases(f"{src}w", 0, 8 * CLIENTS, lon, lat, 98)
            slowest = 0.0
            for _ in range(5):
                latencies: list[float] = []
                statuses: list[int] = []
                threads = [
                    threading.Thread(
                        target=post_all,
                        args=([orjson.dumps(warm[c::CLIENTS])] * 2, latencies, statuses),
                    )
                    for c in range(CLIENTS)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                assert set(statuses) == {200}, set(statuses)
                slowest = max(slowest, *latencies)
                if max(latencies) < 1.0:
                    break
            print(f"  api cold start: slowest first answer {slowest * 1000:,.0f} ms", flush=True)
            return slowest

        cold = warm_up()
        new = round_trip("new cases")
        resend = round_trip("blind re-send")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "server_workers": workers,
        "clients": CLIENTS,
        "batch": API_BATCH,
        "batches": API_BATCHES,
        "api_cold_start_slowest_ms": round(cold * 1000),
        "api_new_cases_per_s": new["cases_per_s"],
        "api_new_batch_median_ms": new["batch_median_ms"],
        "api_resend_cases_per_s": resend["cases_per_s"],
        "api_resend_batch_median_ms": resend["batch_median_ms"],
    }


def floor_on_copy(database_url: str, in_place: bool = False) -> dict:
    """``bench_floor`` on a throwaway copy of the database (dropped after), or on the
    database itself when ``in_place`` (one that is a copy already)."""
    from api.db.session import normalize_url, session_scope
    from bench.bench_cube import _copy, _drop

    url = normalize_url(database_url)
    with tempfile.TemporaryDirectory() as tmp:
        copy = url if in_place else _copy(url, Path(tmp), "import_floor")
        try:
            with session_scope(copy) as session:
                server = _server(session)
                lon, lat = _points(session, BIG_ROWS, seed=7)
            print("  server: " + ", ".join(f"{k}={v}" for k, v in server.items()), flush=True)
            return bench_floor(copy, f"bench-floor-{os.getpid()}", lon, lat, BIG_ROWS)
        finally:
            if not in_place:
                _drop(copy)


def run(database_url: str, preset: str = "metro") -> dict:
    """The bench section: bulk import and the batch API, medians printed and returned."""
    from api.db.models import Case
    from api.db.session import normalize_url, session_scope

    url = normalize_url(database_url)
    source = f"bench-ingest-{os.getpid()}"
    with session_scope(url) as session:
        existing = session.scalar(select(func.count()).select_from(Case))
        server = _server(session)
        lon, lat = _points(session, max(BULK_ROWS, BIG_ROWS, API_BATCH * API_BATCHES), seed=7)
    print(f"  {existing:,} cases in the database before", flush=True)
    if server:
        print("  server: " + ", ".join(f"{k}={v}" for k, v in server.items()), flush=True)
    results: dict = {"cases_before": existing, "server": server}
    try:
        results["bulk"] = bench_bulk(url, source, lon, lat, BULK_ROWS)
        results["bulk_one_writer"] = bench_bulk(url, source, lon, lat, BULK_ROWS, writers=1)
        if BIG_ROWS:
            results["bulk_big"] = bench_bulk(url, source, lon, lat, BIG_ROWS)
        results["api"] = bench_api(url, source, lon, lat, workers=2)
    finally:
        removed = _cleanup(url, source)
        print(f"  removed the bench's {removed:,} cases", flush=True)
    if BIG_ROWS and url.startswith("postgresql"):
        results["floor"] = floor_on_copy(url)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/zhili_metro"
    )
    parser.add_argument(
        "--floor", action="store_true", help="only the import against a plain COPY (a copy)"
    )
    parser.add_argument(
        "--in-place", action="store_true", help="--floor on the database itself (a copy)"
    )
    args = parser.parse_args()
    if args.floor:
        print(floor_on_copy(args.database_url, args.in_place))
    else:
        print(run(args.database_url))
