"""The import run as a process of its own, a few times in a row, with two writers on
PostGIS: every run ends with its summary and exit code 0, none aborts (the loop of
``bench/bench_crash_loop.py``, 100 runs there, three here)."""

from __future__ import annotations

import pytest

from bench.bench_crash_loop import loop

RUNS = 3
ROWS = 10_500  # two chunks (10,000 rows each): both writers store one at once


@pytest.mark.postgis
@pytest.mark.parametrize("db_kind", ["postgis"], indirect=True)
def test_three_imports_with_two_writers_end_with_their_summary(db_url, world):
    result = loop(
        db_url.replace("+psycopg", ""), runs=RUNS, rows=ROWS, writers=2, echo=False, clean=False
    )
    assert result.runs == RUNS
    assert result.aborts == 0 and result.no_summary == 0, result.failures
    assert result.exit_codes == {0: RUNS}, result.failures
