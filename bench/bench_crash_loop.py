"""The import, again and again: ``zhili import-cases`` of a 50,000-row file run as a process
of its own, 100 times, with two writers on PostGIS, counting the runs that abort.

    python -m bench.bench_crash_loop                          # a small city of its own
    python -m bench.bench_crash_loop --database-url URL --runs 100 --rows 50000

An abort is a run killed by a signal (SIGABRT, exit 134 from a shell, SIGSEGV) or one that
ends without its summary line ("N rows: .. created, .. updated, .. unchanged, ..
rejected"). Each run stores a file of new cases (a source of its own per run); every
``CLEAN_EVERY`` runs those cases are deleted and the rollups rebuilt, so the tables stay the
size of the city's. Without ``--database-url`` the small preset is seeded into a database
of its own on the local server, dropped at the end. ``tests/intake/test_crash_loop.py`` runs
three rounds of this on every test run.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SERVER = "postgresql://postgres@127.0.0.1:5432"
RUNS = 100
ROWS = 50_000
WRITERS = 2
CLEAN_EVERY = 10
SUMMARY = re.compile(r"^(\d+) rows: (\d+) created, (\d+) updated, (\d+) unchanged, (\d+) rejected")


@dataclass
class Loop:
    """What the runs ended as."""

    runs: int = 0
    aborts: int = 0
    signals: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[int, int] = field(default_factory=dict)
    no_summary: int = 0
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # the last lines of aborted runs

    def as_dict(self) -> dict:
        """The figures for RESULTS.md."""
        return {
            "runs": self.runs,
            "aborts": self.aborts,
            "signals": self.signals,
            "exit_codes": {str(k): v for k, v in self.exit_codes.items()},
            "without_summary": self.no_summary,
            "run_seconds_median": round(statistics.median(self.seconds), 2) if self.seconds else 0,
            "run_seconds_max": round(max(self.seconds), 2) if self.seconds else 0,
        }


def write_file(url: str, path: Path, source: str, rows: int, seed: int = 7) -> None:
    """A CSV of ``rows`` new cases at points inside the city of ``url``, without a source
    column (each run names its own with ``--source``)."""
    from api.db.session import session_scope
    from bench.bench_ingest import _cases, _points, _write_csv

    with session_scope(url) as session:
        lon, lat = _points(session, rows, seed=seed)
    cases = _cases(source, 0, rows, lon, lat, seed)
    _write_csv(path, [{k: v for k, v in case.items() if k != "source"} for case in cases])


def run_once(url: str, path: Path, source: str, writers: int, cwd: Path) -> tuple[int, str]:
    """One import of ``path`` (its rows under ``source``) as a process of its own: its exit
    code (negative: killed by that signal) and its output."""
    command = [
        *(sys.executable, "-X", "faulthandler", "-m", "api", "import-cases", str(path)),
        *("--source", source, "--quiet"),
        *("--writers", str(writers), "--database-url", url),
    ]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def loop(
    url: str,
    runs: int = RUNS,
    rows: int = ROWS,
    writers: int = WRITERS,
    *,
    echo: bool = True,
    clean: bool = True,
) -> Loop:
    """``runs`` imports of a ``rows``-row file, each a process, counted as they end (the
    loop's cases deleted every ``CLEAN_EVERY`` runs and at the end, unless not ``clean``)."""
    from api.db.session import session_scope
    from api.engine import rebuild_rollups

    out = Loop()
    cwd = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.csv"
        write_file(url, path, "loop", rows)
        for run in range(runs):
            source = f"loop-{run}"
            t0 = time.perf_counter()
            code, output = run_once(url, path, source, writers, cwd)
            out.seconds.append(time.perf_counter() - t0)
            out.runs += 1
            out.exit_codes[code] = out.exit_codes.get(code, 0) + 1
            summary = next((m for line in output.splitlines() if (m := SUMMARY.match(line))), None)
            aborted = code < 0 or code == 134
            if code < 0:
                name = signal.Signals(-code).name
                out.signals[name] = out.signals.get(name, 0) + 1
            if summary is None:
                out.no_summary += 1
            if aborted or summary is None or code != 0:
                out.aborts += aborted or summary is None
                out.failures.append(f"run {run}: exit {code}: {output[-1500:]}")
            if echo:
                told = summary.group(0) if summary else "NO SUMMARY"
                print(f"  run {run}: exit {code}, {out.seconds[-1]:.1f} s, {told}", flush=True)
            if clean and ((run + 1) % CLEAN_EVERY == 0 or run == runs - 1):
                with session_scope(url) as session:
                    session.execute(text("DELETE FROM \"case\" WHERE source LIKE 'loop-%'"))
                    rebuild_rollups(session)
    return out


def _own_database() -> str:
    """The small preset seeded into a PostGIS database of its own."""
    name = f"zhili_crash_loop_{os.getpid()}"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"{SERVER}/{name}"
    owner = create_engine(url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    owner.dispose()
    subprocess.run(
        [sys.executable, "-m", "api", "seed", "--preset", "small", "--database-url", url],
        check=True,
        capture_output=True,
    )
    return url


def _drop(url: str) -> None:
    from api.db.session import dispose_engines

    dispose_engines()
    name = make_url(url).database
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(database_url: str | None = None, preset: str = "small") -> dict:
    """The bench section: the loop on the given database (or a small city of its own)."""
    own = database_url is None
    url = _own_database() if own else database_url
    try:
        t0 = time.perf_counter()
        result = loop(url, RUNS, ROWS, WRITERS)
        figures = result.as_dict() | {"rows_per_run": ROWS, "writers": WRITERS}
        figures["loop_seconds"] = round(time.perf_counter() - t0)
    finally:
        if own:
            _drop(url)
    for failure in result.failures[:5]:
        print(failure, flush=True)
    print(
        f"  {result.aborts} aborts in {result.runs} runs (signals {result.signals}, "
        f"exit codes {result.exit_codes}, without summary {result.no_summary})",
        flush=True,
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a small city of its own")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--writers", type=int, default=WRITERS)
    args = parser.parse_args()
    RUNS, ROWS, WRITERS = args.runs, args.rows, args.writers
    print(run(args.database_url))
