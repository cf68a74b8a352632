"""What a caller asks the engine, as typed values: ``MetricQuery`` (a metric over a period,
with a comparison and a smoothing), ``MapQuery`` (which units a map shows and how it
classes them), and ``ResolvedQuery`` (a MetricQuery read against the engine's state: the
metric's declaration and the periods as dates).

Each is a frozen dataclass checked when it is built: a request the engine cannot answer
raises ``MetricsError`` with a message for the caller (the API answers it with a 400)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, replace
from typing import Literal

from api.engine.periods import Period, PeriodError, compare_period, resolve_period
from api.engine.registry import MEASURES, Metric, get_metric
from api.engine.state import State
from api.settings import get_settings

Compare = Literal["yoy", "prev"]  # 同比, 环比
Smooth = Literal["eb"]  # empirical Bayes
COMPARES: tuple[Compare, ...] = ("yoy", "prev")
SCHEMES = ("quantiles", "natural_breaks", "equal_interval", "fixed")
NONE = ("", "none")  # how a query string says "no comparison", "no smoothing"


class MetricsError(ValueError):
    """A request the engine cannot answer (unknown metric, bad period...): a 4xx."""


def last_data_day(state: State) -> dt.date:
    """The last day a case was reported (today when there are none)."""
    return state.last_fact_day()


@dataclass(frozen=True)
class MetricQuery:
    """A metric over a period, as asked: ``metric`` (a registry id), ``start``/``end``
    (dates, inclusive) or ``period`` (2026, 2026-Q3, 2026-10, 2026-W05, last-30d; default
    last-30d), ``compare`` (yoy 同比 | prev 环比 | None), ``smooth`` (eb | None: per-capita
    rates only), ``min_denominator`` (rates resting on fewer cases are low_count; None:
    the settings'). ``""`` and ``"none"`` for compare or smooth mean None."""

    metric: str = "caseload"
    start: str | None = None
    end: str | None = None
    period: str | None = None
    compare: Compare | None = None
    smooth: Smooth | None = None
    min_denominator: int | None = None

    def __post_init__(self) -> None:
        try:
            declared = get_metric(self.metric)
        except KeyError as exc:
            raise MetricsError(exc.args[0]) from None
        if self.compare in NONE:
            object.__setattr__(self, "compare", None)
        if self.smooth in NONE:
            object.__setattr__(self, "smooth", None)
        if self.smooth not in (None, "eb"):
            raise MetricsError(f"bad smooth {self.smooth!r}: use eb (empirical Bayes) or none")
        if self.smooth == "eb" and declared.kind != "per_capita":
            raise MetricsError(f"smooth=eb applies to per-capita rates, not to {declared.id!r}")
        if self.compare not in (None, *COMPARES):
            raise MetricsError(f"bad compare {self.compare!r}: use yoy (同比) or prev (环比)")

    @property
    def asks_period(self) -> bool:
        """True when the caller named the period (start, end or a shorthand)."""
        return bool(self.start or self.end or self.period)

    def or_period(self, shorthand: str) -> MetricQuery:
        """This query, over ``shorthand`` when it names no period of its own."""
        return self if self.asks_period else replace(self, period=shorthand)

    def compared(self, compare: Compare | None) -> MetricQuery:
        """This query with another comparison."""
        return replace(self, compare=compare)

    def resolve(self, state: State) -> ResolvedQuery:
        """The metric's declaration and the periods as dates (``last-Nd`` ends on the data's
        last day in ``state``); MetricsError when the period cannot be understood."""
        try:
            period = resolve_period(self.start, self.end, last_data_day(state), self.period)
            previous = compare_period(period, self.compare)
        except PeriodError as exc:
            raise MetricsError(str(exc)) from None
        low = self.min_denominator
        metric = get_metric(self.metric)
        return ResolvedQuery(
            metric=metric,
            period=period,
            previous=previous,
            compare=self.compare,
            smooth=self.smooth,
            min_denominator=get_settings().min_denominator if low is None else low,
            coverage=state.coverage(metric_domains(metric)) if metric.timed else None,
        )


def metric_domains(metric: Metric) -> list[str]:
    """The dated domains whose facts a metric counts (none for the grid network now)."""
    names = [MEASURES[m].domain.name for m in metric.measures() if MEASURES[m].timed]
    return list(dict.fromkeys(names))


def covers(coverage: tuple[dt.date, dt.date] | None, period: Period) -> str:
    """How much of ``period`` the data covers: ``full``, ``partial`` or ``none``."""
    if coverage is None or period.end < coverage[0] or period.start > coverage[1]:
        return "none"
    if period.start >= coverage[0] and period.end <= coverage[1]:
        return "full"
    return "partial"


@dataclass(frozen=True)
class ResolvedQuery:
    """A MetricQuery read against the engine's state: the metric, the period, the period
    to compare with (None without compare), and the low-count threshold."""

    metric: Metric
    period: Period
    previous: Period | None
    compare: Compare | None
    smooth: Smooth | None
    min_denominator: int
    coverage: tuple[dt.date, dt.date] | None = None  # first and last day of the data

    @property
    def timed(self) -> bool:
        """True when the metric counts what happened in a period (not the grid network)."""
        return self.metric.timed

    @property
    def base(self) -> str | None:
        """How much of the comparison base the data covers (full, partial, none; None
        without a comparison). A base not fully covered (基期不完整) gives no change."""
        if self.previous is None or not self.timed:
            return None
        return covers(self.coverage, self.previous)

    @property
    def base_partial(self) -> bool:
        """True when the comparison base is not fully covered by data."""
        return self.base in ("partial", "none")

    def describe(self) -> dict:
        """What every figures answer opens with: metric, period, comparison, smoothing."""
        return {
            "metric": self.metric.describe(),
            "period": self.period.describe(),
            "compare": self.compare,
            "previous_period": self._previous(),
            "base_partial": self.base_partial,
            "data_coverage": (
                {"start": self.coverage[0].isoformat(), "end": self.coverage[1].isoformat()}
                if self.coverage
                else None
            ),
            "smooth": self.smooth,
        }

    def _previous(self) -> dict | None:
        if self.previous is None:
            return None
        return {**self.previous.describe(), "covered": self.base}


def check_classes(classes: str, k: int, breaks: tuple[float, ...] | None) -> None:
    """MetricsError unless ``classes`` is a scheme of SCHEMES with 2 ≤ k ≤ 12, and
    ``fixed`` comes with strictly ascending ``breaks``."""
    if classes not in SCHEMES:
        raise MetricsError(f"bad classes {classes!r}: use {', '.join(SCHEMES)}")
    if not 2 <= k <= 12:
        raise MetricsError("k (number of classes) must be between 2 and 12")
    if breaks and not all(math.isfinite(b) for b in breaks):
        raise MetricsError("breaks must be finite numbers (no nan or inf)")
    if classes == "fixed":
        if not breaks:
            raise MetricsError("classes=fixed needs breaks=b1,b2,... (ascending upper bounds)")
        if any(b >= c for b, c in itertools.pairwise(breaks)):
            raise MetricsError("breaks must be strictly ascending")


@dataclass(frozen=True)
class MapQuery:
    """What a map shows and how: the units of ``level`` (None: the next level down) under
    ``parent`` (None: the caller's root, set by the caller before the engine reads it),
    classed by ``classes`` (quantiles | natural_breaks | equal_interval | fixed) into
    ``k`` classes, or by ``breaks`` (ascending upper bounds) with classes=fixed."""

    parent: str | None = None
    level: str | None = None
    classes: str = "quantiles"
    k: int = 5
    breaks: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.breaks is not None:
            object.__setattr__(self, "breaks", tuple(float(b) for b in self.breaks) or None)
        check_classes(self.classes, self.k, self.breaks)

    def under(self, parent: str) -> MapQuery:
        """This map under ``parent`` (a unit the caller holds in scope)."""
        return replace(self, parent=parent)


__all__ = [
    "COMPARES",
    "SCHEMES",
    "MapQuery",
    "MetricQuery",
    "MetricsError",
    "ResolvedQuery",
    "check_classes",
    "covers",
    "last_data_day",
    "metric_domains",
]
