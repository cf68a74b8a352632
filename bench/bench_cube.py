"""Cube catch-up: after an ingest, the cube applies the logged rollup deltas instead of
reading every rollup row again.

    python -m bench --only cube                         # on a copy of the metro database
    python -m bench.bench_cube --database-url URL       # this section alone

Runs on a copy of the given database (PostgreSQL: ``CREATE DATABASE .. TEMPLATE``, which
needs no one else connected to it; SQLite: a copy of the file), migrated to head and
dropped afterwards, so the original is never written. Prints medians of: the full read of
the cube from the rollup tables (what each ingest cost the server before the change log),
the catch-up of the next request after one case and after a batch of 1,000 (each stored
by ``ingest_frame``, the intake pipeline), what logging a change adds to an ingest and its
size, and the children metrics of the root with many extra rows against none. Checks that
the caught-up cube answers as the cube read anew.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.common import summarize, timed

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/zhili_metro"
FULL_RUNS = 3
ONE_RUNS = 20
BATCH = 1_000
BATCH_RUNS = 5
EXTRA_TARGET = 90_000  # extra rows for the query comparison (cube.EXTRA_ROWS: 100,000)
SOURCE = "bench-cube"


def _copy(url: str, folder: Path, suffix: str = "cube_bench") -> str:
    """A throwaway copy of the database at ``url``, migrated to head."""
    from api.db.migrate import upgrade
    from api.db.session import dispose_engines, normalize_url

    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = folder / "copy.db"
        shutil.copy(parsed.database, path)
        copy = f"sqlite:///{path}"
    else:
        name = f"{parsed.database}_{suffix}"
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            for attempt in range(60):
                try:
                    conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"'))
                    break
                except Exception as exc:
                    if "being accessed by other users" not in str(exc) or attempt == 59:
                        raise
                    gc.collect()  # a connection of this process may wait for the collector
                    time.sleep(5)  # a copy needs the original to itself for ~40 s
        admin.dispose()
        copy = parsed.set(database=name).render_as_string(hide_password=False)
    upgrade(copy)
    dispose_engines()
    return copy


def _drop(copy: str) -> None:
    from api.db.session import dispose_engines

    dispose_engines()
    parsed = make_url(copy)
    if parsed.get_backend_name() == "postgresql":
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        admin.dispose()


class _Batches:
    """Batches of new cases at points inside the city, stored through ``ingest_frame``."""

    def __init__(self, url: str) -> None:
        from api.db.session import session_scope
        from bench.bench_ingest import _points

        self.url = url
        self.made = 0
        with session_scope(url) as session:
            self.lon, self.lat = _points(session, 20_000, seed=5)

    def store(self, n: int) -> None:
        from api.db.session import session_scope
        from api.schemas.cases import CaseIn
        from api.services.cases import frame_from_items, ingest_frame
        from bench.bench_ingest import _cases

        at = [(self.made + i) % len(self.lon) for i in range(n)]
        cases = _cases(SOURCE, self.made, n, self.lon[at], self.lat[at], self.made)
        items = [(i, CaseIn(**c)) for i, c in enumerate(cases)]
        with session_scope(self.url) as session:
            report = ingest_frame(
                session, frame_from_items(items), user_name=SOURCE, scope_code=None
            )
        assert report.count("created") >= 0.99 * n, report.as_dict()["items"][:3]
        self.made += n


def _catch_up_ms(url: str) -> tuple[float, object]:
    """The next request's engine_state (catching up), in ms, and the state."""
    from api.db.session import session_scope
    from api.engine import engine_state

    with session_scope(url) as session:
        t0 = time.perf_counter()
        state = engine_state(session)
        return (time.perf_counter() - t0) * 1000, state


def _answers(url: str, root: str) -> dict:
    from api.db.session import session_scope
    from api.engine.query import MetricQuery
    from api.engine.service import breakdown, children_metrics

    out = {}
    with session_scope(url) as session:
        for metric in ("caseload", "resolution_rate", "median_days_to_close", "open_backlog"):
            out[metric] = children_metrics(
                session, root, MetricQuery(metric=metric, start="2023-01-01", end="2026-12-31")
            )
        out["by_category"] = breakdown(
            session, root, MetricQuery("caseload", "2023-01-01", "2026-12-31"), "category"
        )
    return out


def _query_times(url: str, root: str) -> dict[str, float]:
    """Median ms of requests of the root's children over 2025 (the service calls)."""
    from api.db.session import session_scope
    from api.engine.query import MetricQuery
    from api.engine.service import breakdown, children_metrics

    year = {"start": "2025-01-01", "end": "2025-12-31"}
    queries = {
        f"children {metric}": lambda s, m=metric: children_metrics(s, root, MetricQuery(m, **year))
        for metric in ("caseload", "resolution_rate", "median_days_to_close", "open_backlog")
    }
    queries["breakdown caseload by category"] = lambda s: breakdown(
        s, root, MetricQuery("caseload", **year), "category"
    )
    out = {}
    with session_scope(url) as session:
        for label, query in queries.items():
            out[label] = timed(lambda q=query: q(session), repeat=15, warmup=2)["median_ms"]
    return out


def run(database_url: str = DEFAULT_URL, preset: str = "metro") -> dict:
    """Measure and print; returns the figures (fewer repeats below the metro preset)."""
    from api.engine import forget_states, snapshot

    full_runs, one_runs, batch_runs, extra_target = (
        (FULL_RUNS, ONE_RUNS, BATCH_RUNS, EXTRA_TARGET) if preset == "metro" else (2, 5, 2, 3_000)
    )
    snapshot.enable(None)  # every full read from the rollup tables, none from disk
    out: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        url = _copy(database_url, Path(folder))
        print(f"cube bench on a copy ({url.rsplit('@', 1)[-1]}), made in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
        try:
            out |= _measure(url, full_runs, one_runs, batch_runs, extra_target)
        finally:
            forget_states()
            _drop(url)
    return out


def _measure(url: str, full_runs: int, one_runs: int, batch_runs: int, extra_target: int) -> dict:
    from api.db.session import session_scope
    from api.db.versions import get_version
    from api.engine import changelog, engine_state, forget_states
    from api.engine import state as cube
    from api.engine.domains.cases import CASES
    from api.engine.state import _load, database_key

    out: dict = {}
    forget_states()
    with session_scope(url) as session:
        key = database_key(session)
        root = session.scalar(text("SELECT code FROM admin_unit WHERE parent_code IS NULL"))
        rollup_rows = session.scalar(text("SELECT COUNT(*) FROM case_rollup_daily"))
        boundaries = engine_state(session).units.version
        samples = []
        for _ in range(full_runs):
            t0 = time.perf_counter()
            _load(session, key, boundaries, CASES)
            samples.append(time.perf_counter() - t0)
    out["rollup_rows"] = rollup_rows
    out["full_read_s_median"] = round(statistics.median(samples), 2)
    print(f"full read of the cube from {rollup_rows:,} daily rollup rows (and the flow and "
          f"histogram tables): {out['full_read_s_median']} s (median of {full_runs})",
          flush=True)  # fmt: skip

    batches = _Batches(url)
    logging = []
    encode, record = changelog.encode, changelog.record

    def timed_encode(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return encode(*args, **kwargs)
        finally:
            logging.append(time.perf_counter() - t0)

    def timed_record(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return record(*args, **kwargs)
        finally:
            logging[-1] += time.perf_counter() - t0

    changelog.encode, changelog.record = timed_encode, timed_record
    loads = cube.loads[key]
    try:
        figures = {}
        for label, n, runs in (("one_case", 1, one_runs), ("batch_1000", BATCH, batch_runs)):
            catch, log_ms, ingest_ms, first = [], [], [], None
            for _ in range(runs):
                t0 = time.perf_counter()
                batches.store(n)
                ingest_ms.append((time.perf_counter() - t0) * 1000)
                log_ms.append(logging[-1] * 1000)
                ms, state = _catch_up_ms(url)
                catch.append(ms)
                first = first or state.cubes["cases"].version
            with session_scope(url) as session:
                sizes = session.execute(
                    text("SELECT length(deltas), rows FROM rollup_change WHERE version >= :v"),
                    {"v": first},
                ).all()
            figures[label] = {
                "catch_up": summarize(catch),
                "ingest_ms_median": round(statistics.median(ingest_ms), 1),
                "log_write_ms_median": round(statistics.median(log_ms), 2),
                "log_bytes_median": int(statistics.median(s[0] for s in sizes)),
                "log_rows_median": int(statistics.median(s[1] for s in sizes)),
            }
            f = figures[label]
            print(f"catch-up after {n:,} case(s): {f['catch_up']['median_ms']} ms (median of "
                  f"{runs}); the ingest {f['ingest_ms_median']} ms, of which logging the change "
                  f"{f['log_write_ms_median']} ms, {f['log_bytes_median']:,} bytes for "
                  f"{f['log_rows_median']:,} delta rows", flush=True)  # fmt: skip
        _, state = _catch_up_ms(url)
        floor = summarize([_catch_up_ms(url)[0] for _ in range(20)])
        print(f"the same request with nothing to catch up: {floor['median_ms']} ms", flush=True)
        out |= figures | {"no_change_median_ms": floor["median_ms"]}
        while state.cubes["cases"].extra.rows < extra_target and batches.made < 60 * BATCH:
            batches.store(BATCH)
            _, state = _catch_up_ms(url)
        out["full_reads_while_catching_up"] = cube.loads[key] - loads
        out["extra_rows"] = state.cubes["cases"].extra.rows
    finally:
        changelog.encode, changelog.record = encode, record
    out["full_vs_one_case_ratio"] = round(
        out["full_read_s_median"] * 1000 / out["one_case"]["catch_up"]["median_ms"]
    )

    with_extra = _query_times(url, root)
    answers = _answers(url, root)
    with session_scope(url) as session:
        version = get_version(session, "cases")
    forget_states()
    _, fresh = _catch_up_ms(url)
    assert (
        fresh.cubes["cases"].version == version
        and fresh.cubes["cases"].extra.rows < state.cubes["cases"].extra.rows
    )
    without = _query_times(url, root)
    out["equal_to_a_full_read"] = _answers(url, root) == answers
    out["queries"] = [
        {"query": label, "extra_rows": out["extra_rows"], "median_ms": with_extra[label],
         "no_extra_rows_median_ms": without[label]}
        for label in with_extra
    ]  # fmt: skip
    print(f"{batches.made:,} cases ingested, never a full read while catching up "
          f"({out['full_reads_while_catching_up']} full reads); {out['extra_rows']:,} extra rows; "
          f"the caught-up cube answers as one read anew: {out['equal_to_a_full_read']}",
          flush=True)  # fmt: skip
    for row in out["queries"]:
        print(f"  {row['query']:<40} {row['median_ms']:>8} ms with the extra rows, "
              f"{row['no_extra_rows_median_ms']:>8} ms with none (medians)")  # fmt: skip
    assert out["equal_to_a_full_read"]
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--preset", default="metro", choices=["small", "metro"])
    args = parser.parse_args()
    print(run(args.database_url, args.preset))
