"""The engine's tuning, one object: when a cube is read inline or in the background, when
its changes are folded back into its arrays, how much the change log keeps, and how big
the summed histograms of percentiles may grow. Defaults are what the metro preset was
measured with (bench/); tests tune them through ``tuned``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class EngineSettings:
    """Thresholds and budgets of the engine."""

    # a cube over fewer rows is read inline (read-your-writes); a bigger one in the
    # background while readers keep the previous state. 188k rows (the small preset) take
    # ~2 s: inline, 8 intake clients writing made every read wait (bench_load: p50 12.8 s)
    sync_rows: int = 50_000
    # past this many extra rows (changes applied since the arrays were read) the cube is
    # read again in the background: each query scans the extra rows of its range
    extra_rows: int = 100_000
    # the change log keeps the newest changes up to this many delta rows and versions,
    # pruned every ``prune_every`` versions
    log_rows: int = 2_000_000
    log_versions: int = 20_000
    prune_every: int = 100
    # the most a summed histogram's running counts take: their days apart follow from it
    summed_histogram_bytes: int = 48 * 2**20
    # running counts are 16-bit when every group cell's total is below this, else 32-bit
    narrow_counts_below: int = 2**16
    # a percentile is summed from the cells of a summed histogram when the period has at
    # least this many rows per cell, else from the rows
    rows_per_cell: int = 1


_current = EngineSettings()


def engine_settings() -> EngineSettings:
    """The engine's settings in force."""
    return _current


@contextmanager
def tuned(**changes: int) -> Iterator[EngineSettings]:
    """The engine's settings with ``changes`` while the block runs (tests, benchmarks)."""
    global _current
    before = _current
    _current = replace(before, **changes)
    try:
        yield _current
    finally:
        _current = before
