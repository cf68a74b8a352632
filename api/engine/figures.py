"""Figures of a metric for a set of units and a period, from the in-memory cubes.

``Frame`` turns a cube's leaf sums into one value per unit shown (``np.bincount`` over
the leaves' ancestor at each shown unit's level), for any measure of any domain;
``evaluate`` applies a metric to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from api.engine.disclosure import suppressed_shown
from api.engine.domain import Current, Metric, Share, Stock, Tally
from api.engine.histogram import CellCounts, summed_histogram
from api.engine.leaves import GroupingKey
from api.engine.periods import Period
from api.engine.registry import MEASURES, distribution_domain
from api.engine.state import State
from api.engine.stats import BinCounts, counted_quantile, poisson_rate_interval, wilson
from api.engine.tuning import engine_settings
from api.engine.units import UnderKey


@dataclass(frozen=True)
class Group:
    """The leaves of one domain under the shown units of one level: the level's number in
    the level table, the leaf positions under a shown unit, and per leaf the position of
    that unit in ``shown`` (−1: none)."""

    level_number: int
    leaves: np.ndarray
    position: np.ndarray


class Frame:
    """Measures of the units ``shown`` (code indexes) over ``period``, computed on demand,
    each from the domain that declares it.

    ``within`` (a code index): count only the leaf versions that lay under that unit, so
    that children shown under a parent always add up to it, even when a child (a grid
    moved by a village merger) lay under another parent for part of the period.

    ``shown_key`` names what ``shown`` is (a map's units: ``UnitIndex.under``): the leaves'
    grouping is then kept with the leaves instead of being worked out for each request."""

    def __init__(
        self,
        state: State,
        shown: list[int],
        period: Period | None,
        within: int | None = None,
        shown_key: UnderKey | None = None,
    ) -> None:
        self.state = state
        self.period = period
        self.n = len(shown)
        self.within = within
        self.shown = shown
        self.shown_key = shown_key
        self._shown_at: np.ndarray | None = None
        self._cache: dict[str, np.ndarray] = {}

    @property
    def shown_at(self) -> np.ndarray:
        if self._shown_at is None:
            self._shown_at = np.asarray(self.shown, dtype=np.int64)
        return self._shown_at

    def groups(self, domain: str) -> list[Group]:
        """The groups of ``domain``'s leaves under the units shown (kept per leaves)."""
        leaves = self.state.leaves[domain]
        key = GroupingKey(self.shown_key, self.within) if self.shown_key else None
        found = leaves.groupings.get(key) if key else None
        if found is None:
            found = _groups(self.state, domain, self.shown_at, self.within)
            if key:
                leaves.groupings[key] = found
        return found

    def _sum_leaves(self, domain: str, per_leaf: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n)
        for g in self.groups(domain):
            out += np.bincount(g.position[g.leaves], weights=per_leaf[g.leaves], minlength=self.n)
        return out

    def __getitem__(self, measure: str) -> np.ndarray:
        found = self._cache.get(measure)
        if found is not None:
            return found
        ref = MEASURES.get(measure)
        if ref is None:
            raise KeyError(f"unknown measure {measure!r}")
        m = ref.measure
        if isinstance(m, Current):
            found = self.state.network[measure][self.shown_at].astype(float)
        elif self.period is None:
            raise KeyError(f"measure {measure!r} needs a period")
        else:
            name = ref.domain.name
            cube = self.state.cubes[name]
            if isinstance(m, Tally | Share):
                sums = cube.period_sums(self.period.start, self.period.end, [measure])
            elif isinstance(m, Stock):
                sums = cube.stock_at(self.period.end, [measure])
            found = self._sum_leaves(name, sums[0])
        self._cache[measure] = found
        return found

    def counts_of(self, distribution: str) -> list[BinCounts | CellCounts]:
        """The facts dated in the period with a value of ``distribution``, counted per
        position in ``shown`` and value, in parts for ``counted_quantile``."""
        name = distribution_domain(distribution).name
        cube = self.state.cubes[name]
        if self.period is None or self.n == 0:
            return []
        start, end = self.period.start, self.period.end
        first, last = cube.day_index(start), cube.day_index(end)
        hist = cube.histograms[distribution]
        rows = hist.sorted_between(first, last)
        parts: list[BinCounts | CellCounts] = []
        for g in self.groups(name):
            depth = self._class_depth(g.level_number)
            summed = summed_histogram(self.state, name, distribution, depth)
            span = summed.span(first, last) if summed is not None else None
            if span is None or len(rows[0]) < engine_settings().rows_per_cell * summed.cells:
                parts.append(BinCounts(g.position, *rows))
            else:  # the cells between two checkpoints, give or take the days at the edges
                m1, m2, edges = span
                parts.append(CellCounts(summed, g.position[summed.class_leaf], m1, m2))
                for a, b, sign in edges:
                    parts.append(BinCounts(g.position, *hist.sorted_between(a, b), sign=sign))
            for leaf, bins, n in cube.extra_histogram(distribution, start, end):
                parts.append(BinCounts(g.position, leaf, bins, n))
        return parts

    def _class_depth(self, number: int) -> int:
        """The depth of the classes that sum the leaves for units of level ``number``
        (deeper when counted ``within`` a unit of a deeper level)."""
        units = self.state.units
        depth = units.depth[units.levels[number]]
        if self.within is not None:
            depth = max(depth, units.depth[units.level[self.within]])
        return depth


def _groups(state: State, domain: str, shown_at: np.ndarray, within: int | None) -> list[Group]:
    """For each level among the units shown (they may nest), its ``Group`` of leaves."""
    units, leaves = state.units, state.leaves[domain]
    level_of = units.level_numbers[shown_at] if len(shown_at) else np.zeros(0, dtype=np.int64)
    inside = leaves.ancestor_at(units.level[within]) == within if within is not None else None
    groups = []
    for number in np.unique(level_of):
        positions = np.flatnonzero(level_of == number)
        lookup = np.full(len(units.codes) + 1, -1, dtype=np.int64)  # [-1] → sentinel
        lookup[shown_at[positions]] = positions
        position = lookup[leaves.ancestor_at(units.levels[number])]
        if inside is not None:
            position = np.where(inside, position, -1)
        groups.append(Group(int(number), np.flatnonzero(position >= 0), position))
    return groups


@dataclass
class Figures:
    """One metric's figures for the units of a frame, in the same order."""

    value: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray | None
    count: np.ndarray  # what the figure rests on (cases, closed cases, stations...)
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    suppressed: np.ndarray | None = None  # a protected count's figures kept from view


def evaluate(metric: Metric, frame: Frame, intervals: bool = True) -> Figures:
    """The metric's value, numerator, denominator, count and (``intervals``) 95% interval
    per unit; for a metric that reads protected counts of persons, the suppressed figures
    blanked (NaN) and flagged (``suppressed``), and figures with no data blanked. Every
    route reads figures here: this is the one place disclosure control is applied."""
    fig = _evaluate(metric, frame, intervals)
    found = suppressed_shown(metric, frame.state, frame.shown_at, frame.period)
    if found is None:
        return fig
    hidden, nodata = found
    blank = hidden | nodata
    for name in ("value", "numerator", "denominator", "count", "ci_low", "ci_high"):
        column = getattr(fig, name)
        if column is not None:
            column = np.array(column, dtype=float)
            column[blank] = np.nan
            setattr(fig, name, column)
    fig.suppressed = hidden
    return fig


def _evaluate(metric: Metric, frame: Frame, intervals: bool = True) -> Figures:
    if metric.compute is not None:
        values, counts = metric.compute(frame)
        values = np.asarray(values, dtype=float)
        return Figures(values, values, None, np.asarray(counts, dtype=float))
    if metric.kind == "percentile":
        parts = frame.counts_of(metric.distribution)
        nbins = distribution_domain(metric.distribution).distribution(metric.distribution).bins
        value, n = counted_quantile(parts, frame.n, metric.quantile or 0.5, nbins)
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
    """Under the metric's small-number rule ``min_denominator``, figures resting on fewer
    than ``min_denominator`` cases are flagged; counts and exact figures never are."""
    if metric.small_number_rule != "min_denominator":
        return np.zeros(len(count), dtype=bool)
    return np.asarray(count) < min_denominator
