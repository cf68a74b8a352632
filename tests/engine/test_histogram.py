"""Days-to-close histograms summed per unit class: any range of days counts what a scan of
the cube's rows counts, so that percentiles cost binary searches, not a pass over the
cases of the period."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.db.session import session_scope
from api.engine import engine_state, forget_states
from api.engine.domains.cases import MAX_CLOSE_DAYS
from api.engine.histogram import SummedHistogram
from api.engine.stats import BinCounts, counted_quantile, histogram_quantile
from tests.conftest import token_for
from tests.engine.test_api import assert_children_match_cases

NBINS = MAX_CLOSE_DAYS + 1


@pytest.fixture
def api(app, db_url, cased):
    token = token_for(db_url, "analyst", cased.world.city, name="ana")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.fixture(params=["one day apart", "weeks apart", "weeks apart, 32-bit"])
def checkpoints(request, tune) -> Iterator[str]:
    """Running counts every day (what a small world's cells afford), or, with little room
    for them, weeks apart (as for the grids of a metro city: periods then have edge days),
    in 16 bits (a small world's counts fit) or 32 (as a metro city's upper levels)."""
    if request.param.startswith("weeks apart"):
        tune(summed_histogram_bytes=40_000)
    if request.param.endswith("32-bit"):
        tune(narrow_counts_below=0)
    forget_states()  # no summed histogram kept from a test with other settings
    yield request.param
    forget_states()


def test_summed_histogram_counts_what_the_rows_count(db_url: str, cased, checkpoints) -> None:
    """Between any two checkpoints, each unit's cells count what its rows count; any period
    is the cells between the checkpoints nearest its ends, plus or minus the rows of the
    days between those checkpoints and its ends."""
    with session_scope(db_url) as session:
        state = engine_state(session)
    cube, units = state.cubes["cases"], state.units
    rng = random.Random(3)

    def rows_histogram(unit_of_leaf: np.ndarray, first: int, last: int) -> np.ndarray:
        out = np.zeros((len(units.codes) + 1) * NBINS)
        hist = cube.histograms["days_to_close"]
        rows = (hist.day >= first) & (hist.day <= last)
        row_unit = unit_of_leaf[hist.leaf[rows]]
        np.add.at(out, row_unit * NBINS + hist.bin[rows], hist.n[rows])
        return out

    for depth in sorted(set(units.depth.values())):
        summed = SummedHistogram(state, "cases", "days_to_close", depth)
        k = summed.step
        assert (k > 1) == checkpoints.startswith("weeks apart")
        assert summed.running.dtype == (np.int32 if "32-bit" in checkpoints else np.uint16)
        level = next(lv for lv in units.levels if units.depth[lv] == depth)
        unit_of_leaf = state.leaves["cases"].ancestor_at(level)
        cell_unit = unit_of_leaf[summed.class_leaf][summed.cell_class]
        cell_at = cell_unit * NBINS + summed.cell_bin

        def cells_histogram(m1: int, m2: int, summed=summed, cell_at=cell_at) -> np.ndarray:
            out = np.zeros((len(units.codes) + 1) * NBINS)
            np.add.at(out, cell_at, summed.between(m1, m2))
            return out

        pairs = [(0, summed.count), (summed.count - 1, summed.count), (0, 1)]
        pairs += [tuple(sorted(rng.sample(range(summed.count + 1), 2))) for _ in range(20)]
        for m1, m2 in pairs:
            want = rows_histogram(unit_of_leaf, m1 * k, m2 * k - 1)
            assert np.array_equal(cells_histogram(m1, m2), want), (depth, m1, m2)
        periods = [(-5, cube.ndays + 5), (k // 2, k // 2 + k), (k - 1, 3 * k + 1)]
        for _ in range(20):
            first = rng.randrange(-10, cube.ndays)
            periods.append((first, first + rng.randrange(cube.ndays)))
        for first, last in periods:
            span = summed.span(first, last)
            if span is None:  # both ends nearest one checkpoint: read from the rows
                assert last - first + 1 < k, (first, last, k)
                continue
            m1, m2, edges = span
            if first >= 0 and last < summed.count * k:  # no end beyond the checkpoints
                assert all(b - a + 1 <= k // 2 for a, b, _ in edges), (first, last, edges)
            got = cells_histogram(m1, m2)
            for a, b, sign in edges:
                got += sign * rows_histogram(unit_of_leaf, a, b)
            assert np.array_equal(got, rows_histogram(unit_of_leaf, first, last)), (first, last)


def test_percentiles_from_summed_histograms_match_the_cases(api, cased, tune, checkpoints) -> None:
    """Children's median and 90th percentile days to close, with the summed histograms
    always taken (a small world would scan its few rows), equal those of the raw cases."""
    tune(rows_per_cell=0)
    w = cased.world
    rng = random.Random(8)
    for parent in [w.city, *w.towns[:2], *w.villages[:2]]:
        for _ in range(3):
            start = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(1200))
            end = start + dt.timedelta(days=rng.randrange(400))
            for metric in ("median_days_to_close", "p90_days_to_close"):
                assert_children_match_cases(api, cased, parent, metric, start, end)


def test_counted_quantile_is_the_nearest_rank_of_the_whole_histogram() -> None:
    """The quantile found by groups of bins equals the nearest rank over each unit's whole
    histogram (``histogram_quantile``), repeated units and bins, empty units, units not
    shown (−1) and ranks on a group's edge included."""
    rng = np.random.default_rng(4)
    for units, rows in ((1, 1), (7, 40), (300, 5_000), (50, 20)):
        unit = rng.integers(0, units, rows)
        bins = np.minimum(rng.geometric(rng.choice([0.02, 0.2, 0.7]), rows) - 1, NBINS - 1)
        bins[: rows // 4] = rng.choice([15, 16, 31, 32, NBINS - 1], rows // 4)
        n = rng.integers(0, 4, rows)
        unit[rng.random(rows) < 0.1] = -1  # rows of units not shown: not counted
        shown = unit >= 0
        hist = np.zeros((units, NBINS))
        np.add.at(hist, (unit[shown], bins[shown]), n[shown])
        position = np.append(np.arange(units), -1)  # the unit shown at each key (-1: none)
        half = rows // 2
        parts = [  # the second half added, less what is taken away again (sign −1)
            BinCounts(position, unit[:half], bins[:half], n[:half]),
            BinCounts(position, unit[half:], bins[half:], n[half:] + 3),
            BinCounts(position, unit[half:], bins[half:], np.full(rows - half, 3), sign=-1),
        ]
        for q in (0.5, 0.9, 0.01, 1.0):
            found, total = counted_quantile(parts, units, q, NBINS)
            assert np.array_equal(total, hist.sum(axis=1))
            assert np.array_equal(found, histogram_quantile(hist, q), equal_nan=True), (units, q)
