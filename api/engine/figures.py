"""Figures of a metric for a set of units and a period, from the in-memory cube.

``Frame`` turns the cube's leaf sums into one value per unit shown (``np.bincount`` over
the leaves' ancestor at each shown unit's level); ``evaluate`` applies a metric to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from api.engine.cube import NBINS, State
from api.engine.histogram import CellCounts, summed_histogram
from api.engine.periods import Period
from api.engine.registry import (
    NETWORK_MEASURES,
    PERIOD_MEASURES,
    STOCK_MEASURES,
    Metric,
)
from api.engine.stats import BinCounts, counted_quantile, poisson_rate_interval, wilson

# a percentile's histogram is summed from the cells of a ``SummedHistogram`` when the
# period has at least this many rows per cell, else from the rows
ROWS_PER_CELL = 1

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
        self.period = period
        self.n = len(shown)
        self.within = within
        self.groups, self._shown_at = _groups(state, shown, within, memo_key)
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
            found = self.state.network[_NETWORK[measure], self._shown_at].astype(float)
        else:
            raise KeyError(f"unknown measure {measure!r}")
        self._cache[measure] = found
        return found

    def close_counts(self) -> list[BinCounts | CellCounts]:
        """The cases reported in the period and closed, counted per position in ``shown``
        and whole days to close, in parts for ``counted_quantile``."""
        cube = self.state.cube
        if self.period is None or self.n == 0:
            return []
        start, end = self.period.start, self.period.end
        first, last = cube.day_index(start), cube.day_index(end)
        rows = cube.histogram_rows(first, last)
        parts: list[BinCounts | CellCounts] = []
        for number, _, group in self.groups:
            summed = summed_histogram(self.state, self._class_depth(number))
            span = summed.span(first, last) if summed is not None else None
            if span is None or len(rows[0]) < ROWS_PER_CELL * summed.cells:
                parts.append(BinCounts(group, *rows))
            else:  # the cells between two checkpoints, give or take the days at the edges
                m1, m2, edges = span
                parts.append(CellCounts(summed, group[summed.class_leaf], m1, m2))
                for a, b, sign in edges:
                    parts.append(BinCounts(group, *cube.histogram_rows(a, b), sign=sign))
            for leaf, bins, n in cube.extra_histogram(start, end):
                parts.append(BinCounts(group, leaf, bins, n))
        return parts

    def _class_depth(self, number: int) -> int:
        """The depth of the classes that sum the leaves for units of level ``number``
        (deeper when counted ``within`` a unit of a deeper level)."""
        units = self.state.units
        depth = units.depth[units.levels[number]]
        if self.within is not None:
            depth = max(depth, units.depth[units.level[self.within]])
        return depth


def _groups(
    state: State, shown: list[int], within: int | None, memo_key: tuple | None
) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], np.ndarray]:
    """For each level among the units shown (they may nest): its number in the level
    table, the leaves under a shown unit of that level and, per leaf, that unit's position
    in ``shown`` (−1: none); and ``shown`` as an array (converting the list of the city's
    grids costs 0.3 ms)."""
    key = ("groups", memo_key, within)
    found = state.leaf_memo.get(key) if memo_key is not None else None
    if found is not None and found[0] is shown:
        return found[1], found[2]
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
        state.leaf_memo[key] = (shown, groups, shown_at)
    return groups, shown_at


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
