"""The pivot's cells: a metric per unit × period bin (day, week, month) × key of a
dimension (category, channel), for the units of a level under a unit.

Two paths, compared by ``tests/engine/test_pivot.py``:

- the cube's daily rows, one ``np.bincount`` per measure over a composite cell index
  (unit position, bin, key): any metric that is a sum of period measures over a sum of
  period measures (or of the population), split by any dimension it can be broken down by;
- a ``Frame`` per bin (the same figures as the maps and time series): any timed metric,
  and any metric at all when there is no period, but never split by a dimension.

The first answers village × month × category over a year at metro in tens of
milliseconds (``bench/bench_pivot.py``); the second is the plain reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session

from api.engine.figures import Frame, evaluate, is_low_count
from api.engine.periods import Period, PeriodError, bins
from api.engine.query import MetricQuery, MetricsError, ResolvedQuery
from api.engine.registry import MEASURES
from api.engine.state import State, engine_state
from api.engine.units import UnderKey

DIMENSIONS = ("unit", "period")  # besides the metric's own breakdowns
INTERVALS = ("day", "week", "month")
MAX_CELLS = 2_000_000  # a bigger pivot is a file nobody can read: narrow it
SUMMED_KINDS = ("count", "proportion", "per_capita", "mean")


@dataclass(frozen=True)
class PivotQuery:
    """A pivot as asked: the metric and period (``query``), the units of ``level`` under
    the unit (None: its children), the dimensions of the rows and of the columns (each of
    unit, period, and the metric's breakdowns such as category and channel) and the
    ``interval`` of the period bins."""

    query: MetricQuery = field(default_factory=MetricQuery)
    level: str | None = None
    rows: tuple[str, ...] = ("unit",)
    columns: tuple[str, ...] = ("period",)
    interval: str = "month"

    def __post_init__(self) -> None:
        dims = [*self.rows, *self.columns]
        if not self.rows or not self.columns:
            raise MetricsError("a pivot needs at least one dimension in rows and in columns")
        if len(set(dims)) != len(dims):
            raise MetricsError("each dimension goes once, in rows or in columns")
        if self.interval not in INTERVALS:
            raise MetricsError(f"bad interval {self.interval!r}: use day, week or month")

    @property
    def dimensions(self) -> tuple[str, ...]:
        return (*self.rows, *self.columns)

    @property
    def key_dimension(self) -> str | None:
        """The metric's breakdown among the dimensions (category, channel), if any."""
        found = [d for d in self.dimensions if d not in DIMENSIONS]
        if len(found) > 1:
            raise MetricsError(f"one breakdown at a time, not {', '.join(found)}")
        return found[0] if found else None


@dataclass
class PivotCells:
    """The cells: ``units`` (code indexes), ``bins`` (periods; one, the whole period, when
    ``period`` is not a dimension; none for a metric of the network now), ``keys`` ((code,
    zh, en) of the breakdown; one ``("", "", "")`` without one), and per cell (unit, bin,
    key) arrays: value (NaN: none), numerator, denominator (None: a count), low_count."""

    state: State
    resolved: ResolvedQuery
    level: str
    units: list[int]
    bins: list[Period]
    keys: list[tuple[str, str, str]]
    value: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray | None
    low_count: np.ndarray


def _level(state: State, code: str, level: str | None) -> str:
    u = state.units
    depth = u.depth.get(u.level[u.index[code]], 0)
    if level is None:
        deeper = [lv for lv in u.levels if u.depth[lv] == depth + 1]
        if not deeper:
            raise MetricsError(f"unit {code!r} is at the deepest level: nothing to pivot")
        return deeper[0]
    if level not in u.depth:
        raise MetricsError(f"unknown level {level!r}; levels: {', '.join(u.levels)}")
    if u.depth[level] <= depth:
        raise MetricsError(
            f"level {level!r} is not below the unit's level {u.level[u.index[code]]!r}"
        )
    return level


def pivot_cells(session: Session, code: str, pivot: PivotQuery) -> PivotCells:
    """The pivot's cells for the units of ``pivot.level`` under ``code`` (a unit the caller
    holds in scope: nothing outside its subtree is counted)."""
    state = engine_state(session)
    q = pivot.query.or_period("last-365d").compared(None).resolve(state)
    m = q.metric
    level = _level(state, code, pivot.level)
    u = state.units
    units = u.under(UnderKey(code, level))
    by = pivot.key_dimension
    if by is not None and (by not in m.breakdowns or by == "status"):
        raise MetricsError(
            f"metric {m.id!r} cannot be split by {by!r} in a pivot; it can by: "
            + (", ".join(b for b in m.breakdowns if b != "status") or "nothing")
        )
    if not q.timed:
        if "period" in pivot.dimensions:
            raise MetricsError(f"{m.id!r} describes the grid network now: no period dimension")
        parts: list[Period] = []
    elif "period" in pivot.dimensions:
        try:
            parts = bins(q.period, pivot.interval)
        except PeriodError as exc:
            raise MetricsError(str(exc)) from None
    else:
        parts = [q.period]
    nbins = max(len(parts), 1)
    if by is not None:
        domain = MEASURES[m.numerator].domain
        dim = domain.dimension(by)
        keys = [(k, *dim.label(k)) for k in dim.codes] + [("other", "其他", "other")]
    else:
        keys = [("", "", "")]
    if len(units) * nbins * len(keys) > MAX_CELLS:
        raise MetricsError(
            f"{len(units) * nbins * len(keys):,} cells is too many: choose a higher level, "
            "a longer interval or a shorter period"
        )
    within = u.index[code]
    if by is not None:
        if m.kind not in SUMMED_KINDS or m.compute is not None:
            raise MetricsError(f"metric {m.id!r} cannot be split by {by!r} in a pivot")
        cells = _summed_cells(state, q, units, parts, by, within)
    else:
        cells = _frame_cells(state, q, units, parts, within)
    num, den = cells
    value, count = _values(q, num, den)
    low = is_low_count(m, count.ravel(), q.min_denominator).reshape(count.shape)
    if by is not None and keys[-1][0] == "other" and not np.any(num[:, :, -1]):
        keys, value, num, low = keys[:-1], value[:, :, :-1], num[:, :, :-1], low[:, :, :-1]
        den = den[:, :, :-1] if den is not None else None
    return PivotCells(state, q, level, units, parts, keys, value, num, den, low)


def _values(q: ResolvedQuery, num: np.ndarray, den: np.ndarray | None):
    m = q.metric
    if den is None:
        return num, num
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(den > 0, num / np.where(den > 0, den, 1) * m.scale, np.nan)
    return value, (num if m.kind == "per_capita" else den)


def _frame_cells(
    state: State, q: ResolvedQuery, units: list[int], parts: list[Period], within: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The reference: one ``Frame`` per bin (a percentile's value comes as numerator)."""
    n = len(units)
    shown = UnderKey(state.units.codes[within], state.units.level[units[0]]) if units else None
    nums, dens = [], []
    for part in parts or [None]:
        fig = evaluate(q.metric, Frame(state, units, part, within, shown), intervals=False)
        if q.metric.kind == "percentile" or q.metric.compute is not None:
            nums.append(np.asarray(fig.value, dtype=float))
            dens.append(None)
            continue
        nums.append(np.asarray(fig.numerator, dtype=float))
        dens.append(None if fig.denominator is None else np.asarray(fig.denominator, float))
    num = np.stack(nums, axis=1).reshape(n, len(nums), 1)
    if dens[0] is None:
        return num, None
    return num, np.stack(dens, axis=1).reshape(n, len(dens), 1)


def _summed_cells(
    state: State,
    q: ResolvedQuery,
    units: list[int],
    parts: list[Period],
    by: str,
    within: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sums of the metric's period measures per (unit, bin, key) from the cube's rows."""
    m = q.metric
    domain = MEASURES[m.numerator].domain
    cube = state.cubes[domain.name]
    u, leaves = state.units, state.leaves[domain.name]
    lookup = np.full(len(u.codes) + 1, -1, dtype=np.int64)  # [-1] → none
    lookup[np.asarray(units, dtype=np.int64)] = np.arange(len(units))
    level = u.level[units[0]] if units else u.levels[-1]
    slot = lookup[leaves.ancestor_at(level)]
    slot = np.where(leaves.ancestor_at(u.level[within]) == within, slot, -1)
    first = cube.day_index(parts[0].start)
    day_bin = np.concatenate([np.full(p.days, b, dtype=np.int64) for b, p in enumerate(parts)])
    measures = [m.numerator] + ([m.denominator] if m.kind in ("proportion", "mean") else [])
    sums = cube.cell_sums(first, day_bin, slot, len(units), by, measures)
    num = sums[0]
    if m.kind == "per_capita":
        population = Frame(state, units, None)[m.denominator]
        den = np.broadcast_to(population[:, None, None], num.shape).astype(float)
        return num, den
    return num, (sums[1] if len(measures) > 1 else None)


__all__ = ["DIMENSIONS", "INTERVALS", "PivotCells", "PivotQuery", "pivot_cells"]
