"""Figures of a metric for a set of units and a period, from the in-memory cube.

``Frame`` turns the cube's leaf sums into one value per unit shown (``np.bincount`` over
the leaves' ancestor at each shown unit's level); ``evaluate`` applies a metric to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from api.metrics.cube import NBINS, State
from api.metrics.periods import Period
from api.metrics.registry import (
    NETWORK_MEASURES,
    PERIOD_MEASURES,
    STOCK_MEASURES,
    Metric,
)
from api.metrics.stats import counted_quantile, poisson_rate_interval, wilson

# a percentile's histogram is summed from the cells of a ``SummedHistogram`` (the units
# shown) when the rows they stand for are at least this many per cell, else from the rows
ROWS_PER_CELL = 1
# the most a ``SummedHistogram``'s running counts take: their days apart follow from it (a
# day or two for the upper levels, whose cells are few; about a month for a city's grids)
SUMMED_HISTOGRAM_BYTES = 48 * 2**20

_PERIOD = {m: i for i, m in enumerate(PERIOD_MEASURES)}
_STOCK = {m: i for i, m in enumerate(STOCK_MEASURES)}
_NETWORK = {m: i for i, m in enumerate(NETWORK_MEASURES)}


class Frame:
    """Measures of the units ``shown`` (code indexes) over ``period``, computed on demand.

    ``within`` (a code index): count only the leaf versions that lay under that unit, so
    that children shown under a parent always add up to it, even when a child (a grid
    moved by a village merger) lay under another parent for part of the period.

    ``memo_key`` names a list ``shown`` that the caller keeps (a map's units: ``units_under``
    hands out one list per parent and level): the leaves' grouping is then kept with the
    state's leaves instead of being worked out again for each request."""

    def __init__(
        self,
        state: State,
        shown: list[int],
        period: Period | None,
        within: int | None = None,
        memo_key: tuple | None = None,
    ) -> None:
        self.state = state
        self.shown = np.asarray(shown, dtype=np.int64)
        self.period = period
        self.n = len(shown)
        self.within = within
        self.groups = _groups(state, shown, within, memo_key)
        self._cache: dict[str, np.ndarray] = {}

    def _sum_leaves(self, per_leaf: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n)
        for _, leaves, group in self.groups:
            out += np.bincount(group[leaves], weights=per_leaf[leaves], minlength=self.n)
        return out

    def __getitem__(self, measure: str) -> np.ndarray:
        found = self._cache.get(measure)
        if found is not None:
            return found
        cube = self.state.cube
        if measure in _PERIOD:
            if self.period is None:
                raise KeyError(f"measure {measure!r} needs a period")
            sums = cube.period_sums(self.period.start, self.period.end, [_PERIOD[measure]])
            found = self._sum_leaves(sums[0])
        elif measure in _STOCK:
            if self.period is None:
                raise KeyError(f"measure {measure!r} needs a period")
            found = self._sum_leaves(cube.stock_at(self.period.end, [_STOCK[measure]])[0])
        elif measure in _NETWORK:
            found = self.state.network[_NETWORK[measure], self.shown].astype(float)
        else:
            raise KeyError(f"unknown measure {measure!r}")
        self._cache[measure] = found
        return found

    def close_counts(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The cases reported in the period and closed, as parts of (position in
        ``shown``, whole days to close, count) columns (a unit and day may repeat)."""
        cube = self.state.cube
        if self.period is None or self.n == 0:
            return []
        start, end = self.period.start, self.period.end
        parts = []

        def add(group: np.ndarray, bins: np.ndarray, n: np.ndarray) -> None:
            ok = np.flatnonzero(group >= 0)
            parts.append((group[ok], bins[ok], n[ok]))

        first, last = cube.day_index(start), cube.day_index(end)
        rows = cube.histogram_rows(first, last)
        for number, _, group in self.groups:
            summed = _summed_histogram(self.state, number, self.within)
            span = summed.checkpoints_within(first, last) if summed is not None else None
            if span is not None:  # the cells of the units shown
                cell_group = group[summed.class_leaf][summed.cell_class]
                cells = np.flatnonzero(cell_group >= 0)
            if span is None or summed.rows_between(*span) < ROWS_PER_CELL * len(cells):
                add(group[rows[0]], rows[1], rows[2])
            else:  # whole stretches of checkpoints from the sums, the days at the edges
                n = summed.between(*span, cells)
                parts.append((cell_group[cells], summed.cell_bin[cells], n))
                for a, b in ((first, span[0] * summed.step - 1), (span[1] * summed.step, last)):
                    leaf, bins, n = cube.histogram_rows(a, b)
                    add(group[leaf], bins, n)
            for leaf, bins, n in cube.extra_histogram(start, end):
                add(group[leaf], bins, n)
        return parts


class SummedHistogram:
    """The cube's histogram rows summed over the leaves that share their ancestors down to
    one depth (a "class": for a level above the leaves, nearly one per unit), per (class,
    whole days to close) cell, as running counts every ``step`` days (as many as fit in
    ``SUMMED_HISTOGRAM_BYTES``): the count of a cell between two checkpoints is one
    subtraction, whatever the number of cases between them. A period's days outside whole
    stretches are read from the rows."""

    def __init__(self, state: State, depth: int) -> None:
        cube, units = state.cube, state.units
        chain = [lv for lv in units.levels if units.depth[lv] <= depth]
        ancestors = np.stack([state.ancestor_at(lv) for lv in chain], axis=1)
        _, leaf_class = np.unique(ancestors, axis=0, return_inverse=True)
        leaf_class = leaf_class.ravel()
        self.class_leaf = np.zeros(int(leaf_class.max(initial=-1)) + 1, dtype=np.int64)
        self.class_leaf[leaf_class] = np.arange(len(leaf_class))  # one leaf of each class
        cells, cell_of_row = np.unique(
            leaf_class[cube.hist_leaf] * NBINS + cube.hist_bin, return_inverse=True
        )
        self.cell_class, self.cell_bin = cells // NBINS, cells % NBINS
        per_day = len(cells) * np.dtype(np.int32).itemsize
        self.step = max(1, -(-per_day * cube.ndays // SUMMED_HISTOGRAM_BYTES))
        self.count = -(-cube.ndays // self.step)  # checkpoints after day 0
        at = np.arange(self.count + 1) * self.step
        self.row_at = np.searchsorted(cube.hist_day, at.astype(cube.hist_day.dtype))
        self.running = np.zeros((self.count + 1, len(cells)), dtype=np.int32)  # < 2**31
        total = np.zeros(len(cells))
        for m in range(self.count):
            rows = slice(self.row_at[m], self.row_at[m + 1])
            total += np.bincount(cell_of_row[rows], weights=cube.hist_n[rows], minlength=len(cells))
            self.running[m + 1] = total

    def checkpoints_within(self, first: int, last: int) -> tuple[int, int] | None:
        """The first and last checkpoints inside the days ``first``..``last`` (inclusive),
        when there are two: ``(m1, m2)`` covers the days ``m1·step``..``m2·step − 1``."""
        m1 = min(max(-(-first // self.step), 0), self.count)
        m2 = min(max((last + 1) // self.step, 0), self.count)
        return (m1, m2) if m2 > m1 else None

    def rows_between(self, m1: int, m2: int) -> int:
        """How many of the cube's rows lie between the two checkpoints."""
        return int(self.row_at[m2] - self.row_at[m1])

    def between(self, m1: int, m2: int, cells: np.ndarray) -> np.ndarray:
        """The count of each of ``cells`` (indexes) between the two checkpoints."""
        return (self.running[m2, cells] - self.running[m1, cells]).astype(float)


def _summed_histogram(state: State, number: int, within: int | None) -> SummedHistogram | None:
    """The ``SummedHistogram`` for units of level ``number`` counted ``within`` a unit
    (built on first use, about a second at metro scale, and kept with the state's leaves
    for the cube's rows); None when the cube has no rows."""
    units = state.units
    depth = units.depth[units.levels[number]]
    if within is not None:
        depth = max(depth, units.depth[units.level[within]])
    if not len(state.cube.hist_n):
        return None
    key = ("histogram", depth)
    found = state.leaf_memo.get(key)
    if found is not None and found[0] is state.cube.hist_n:
        return found[1]
    summed = SummedHistogram(state, depth)
    state.leaf_memo[key] = (state.cube.hist_n, summed)
    return summed


def _groups(
    state: State, shown: list[int], within: int | None, memo_key: tuple | None
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """For each level among the units shown (they may nest): its number in the level
    table, the leaves under a shown unit of that level and, per leaf, that unit's position
    in ``shown`` (−1: none)."""
    key = ("groups", memo_key, within)
    found = state.leaf_memo.get(key) if memo_key is not None else None
    if found is not None and found[0] is shown:
        return found[1]
    units = state.units
    shown_at = np.asarray(shown, dtype=np.int64)
    level_of = _level_numbers(units)[shown_at] if len(shown) else np.zeros(0, dtype=np.int64)
    groups = []
    inside = state.ancestor_at(units.level[within]) == within if within is not None else None
    for number in np.unique(level_of):
        positions = np.flatnonzero(level_of == number)
        lookup = np.full(len(units.codes) + 1, -1, dtype=np.int64)  # [-1] → sentinel
        lookup[shown_at[positions]] = positions
        group = lookup[state.ancestor_at(units.levels[number])]
        if inside is not None:
            group = np.where(inside, group, -1)
        groups.append((int(number), np.flatnonzero(group >= 0), group))
    if memo_key is not None:
        state.leaf_memo[key] = (shown, groups)
    return groups


def _level_numbers(units) -> np.ndarray:
    """Each code index's level as its position in ``units.levels`` (memoised)."""
    found = units.memo.get("level_numbers")
    if found is None:
        number = {lv: n for n, lv in enumerate(units.levels)}
        found = units.memo["level_numbers"] = np.array(
            [number[lv] for lv in units.level], dtype=np.int64
        )
    return found


@dataclass
class Figures:
    """One metric's figures for the units of a frame, in the same order."""

    value: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray | None
    count: np.ndarray  # what the figure rests on (cases, closed cases, stations...)
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None


def evaluate(metric: Metric, frame: Frame, intervals: bool = True) -> Figures:
    """The metric's value, numerator, denominator, count and (``intervals``) 95% interval
    per unit."""
    if metric.compute is not None:
        values, counts = metric.compute(frame)
        values = np.asarray(values, dtype=float)
        return Figures(values, values, None, np.asarray(counts, dtype=float))
    if metric.kind == "percentile":
        value, n = counted_quantile(frame.close_counts(), frame.n, metric.quantile or 0.5, NBINS)
        return Figures(value, n, None, n)
    num = frame[metric.numerator]
    if metric.denominator is None:
        return Figures(num, num, None, num)
    den = frame[metric.denominator]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(den > 0, num / np.where(den > 0, den, 1) * metric.scale, np.nan)
    count = num if metric.kind == "per_capita" else den
    fig = Figures(value, num, den, count)
    if not intervals:
        return fig
    if metric.kind == "proportion":
        lo, hi = wilson(num, den)
        fig.ci_low, fig.ci_high = lo * metric.scale, hi * metric.scale
    elif metric.kind == "per_capita":
        fig.ci_low, fig.ci_high = poisson_rate_interval(num, den, metric.scale)
    return fig


def is_low_count(metric: Metric, count: np.ndarray, min_denominator: int) -> np.ndarray:
    """Rates resting on fewer than ``min_denominator`` cases (or items) are flagged."""
    if metric.kind in ("count", "stock", "ratio") and metric.compute is None:
        return np.zeros(len(count), dtype=bool)
    return count < min_denominator
