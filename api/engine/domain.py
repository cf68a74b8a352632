"""Fact domains: each kind of fact the centers count, declared once. The engine's seam.

A ``FactDomain`` names where its facts live (a source table, its leaf-unit and date
columns), its dimensions (category, channel, ...), its measures and how each is derived,
and its metrics. Everything else reads the declaration:

- the rollup maintenance (``api.engine.rollup``) keeps the domain's daily tables from its
  tallies, events and distribution, in SQL (a rebuild) and vectorised (each ingest's
  deltas), from the same declaration;
- the change log carries those tables' deltas by column name;
- the cube (``api.engine.cube``) reads the tables into arrays, one row per measure, by name;
- breakdowns read the dimensions, percentiles the distribution;
- the registry (``api.engine.registry``) lists the metrics and resolves measure names.

Measures come in five kinds:

``Tally``         a period measure: per fact, an SQL expression and the same vectorised,
                  summed over the facts dated in the period (a column of the daily table);
``Share``         a period measure: a tally counted only where a dimension takes some codes;
``Event``         something that happens to a fact on a day of its own (closed on the day it
                  was handled), a column of the daily flow table; not a measure by itself:
``Stock``         a measure at the period's end: Σ ``up`` events − Σ ``down`` events so far;
``Distribution``  a whole number per fact (days to close), kept as a histogram per day in a
                  table of its own, for percentile metrics (a domain may keep several);
``Current``       the state now (the grid network), per unit and summed to every ancestor.

A domain with ``tables`` keeps rollup tables current on every ingest (cases). A small domain
without them is read straight from its source table with one GROUP BY whenever its dataset
version moves (``docs/architecture.md`` walks through one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from api.engine.sql import SqlDialect

Kind = Literal["count", "stock", "proportion", "per_capita", "mean", "ratio", "percentile"]
# How small numbers are treated (小数原则), per kind of metric (see ``Metric``):
#   count            a count (or a stock) is what it is: never flagged;
#   exact            a proportion or ratio of things counted in full, the network now
#                    (stations built of those required, video-linked centers): exact, not a
#                    sample, so no minimum denominator;
#   min_denominator  a rate over a sample of cases: flagged low_count when it rests on
#                    fewer cases than the settings' min_denominator (10).
SmallNumberRule = Literal["count", "exact", "min_denominator"]
Group = Literal["caseload", "resolution", "grid", "populations", "risk"]
Sql = Callable[["SqlDialect"], str]  # an SQL expression over one source row, per dialect
Rows = Callable[[Any], np.ndarray]  # the same expression, vectorised over the domain's facts


@dataclass(frozen=True)
class Dimension:
    """A coded attribute facts are counted by: its codes in order, and their labels."""

    column: str
    codes: tuple[str, ...]
    labels: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # code → (zh, en)

    def label(self, code: str) -> tuple[str, str]:
        """(zh, en) label of ``code`` (the code itself when it has none)."""
        return self.labels.get(code, (code, code))


@dataclass(frozen=True)
class Tally:
    """A period measure and a column of the daily table: ``sql`` per source row, summed;
    ``rows`` the same over the facts' columns. ``read=False``: kept in the table, not in
    the cube (a float no figure reads)."""

    name: str
    sql: Sql
    rows: Rows | None = None
    read: bool = True


@dataclass(frozen=True)
class Share:
    """A period measure: the tally ``of`` counted only where ``dimension`` is in ``codes``."""

    name: str
    of: str
    dimension: str
    codes: frozenset[str]


@dataclass(frozen=True)
class Event:
    """A column of the daily flow table: the facts where ``when`` holds, counted on the
    local day of their column ``on``."""

    name: str
    on: str
    when_sql: Sql | None = None  # None: every fact
    when_rows: Rows | None = None


@dataclass(frozen=True)
class Stock:
    """A measure at the end of a period: Σ ``up`` − Σ ``down`` events up to that day."""

    name: str
    up: str
    down: str


@dataclass(frozen=True)
class Distribution:
    """A whole number per fact where ``when`` holds, capped at ``most``, kept per day as a
    histogram in ``table`` (keys leaf_unit_id, day, days; count n): percentile metrics
    read it."""

    name: str
    table: str
    value_sql: Sql
    value_rows: Rows
    when_sql: Sql
    when_rows: Rows
    most: int

    @property
    def bins(self) -> int:
        """Whole values 0 .. ``most``."""
        return self.most + 1


@dataclass(frozen=True)
class Current:
    """A measure of the state now: ``read(session, deepest_level)`` gives (unit code, value)
    pairs for current units; each value counts for its unit and every ancestor."""

    name: str
    read: Callable[[Session, str], list[tuple[str, float]]]


Measure = Tally | Share | Stock | Current


@dataclass(frozen=True)
class Metric:
    """One figure the product shows: ``value = scale × Σ numerator / Σ denominator`` over
    the leaves below each unit (never an average of rates), or its own ``compute`` over a
    frame of measures, or a quantile of a ``distribution``."""

    id: str
    label_zh: str
    label_en: str
    unit: str
    numerator: str
    denominator: str | None
    format: Literal["integer", "percent", "decimal1", "decimal2"]
    higher_is_better: bool | None
    group: Group
    kind: Kind
    scale: float = 1.0
    breakdowns: tuple[str, ...] = ()
    quantile: float | None = None
    distribution: str | None = field(default=None, repr=False)
    compute: Callable[[Any], tuple[np.ndarray, np.ndarray]] | None = field(
        default=None, compare=False, repr=False
    )
    timed: bool = True  # False: the figure is the state now (set by the registry)
    small_number_rule: SmallNumberRule | None = None  # None: the registry's rule for its kind

    @property
    def is_rate(self) -> bool:
        return self.denominator is not None or self.kind == "percentile"

    def default_small_number_rule(self) -> SmallNumberRule:
        """The rule for this kind of metric: counts and stocks are counts; proportions and
        ratios of the network now (every facility, grid or worker counted) are exact;
        rates, means and percentiles of cases rest on a sample and need a minimum."""
        if self.compute is None and self.kind in ("count", "stock"):
            return "count"
        if self.compute is None and (self.kind == "ratio" or not self.timed):
            return "exact"
        return "min_denominator"

    def measures(self) -> tuple[str, ...]:
        """The measures this metric reads."""
        return tuple(m for m in (self.numerator, self.denominator) if m)

    def describe(self) -> dict:
        """The metric as the API lists it."""
        out = asdict(self)
        out.pop("compute")
        out.pop("distribution")
        return out


@dataclass(frozen=True)
class Protection:
    """Counts of persons a domain keeps from view (``api.engine.disclosure``): its
    protected ``measures``, and those bounded by another (``linked``: visits ≤ under
    management), suppressed wherever their bound is."""

    measures: tuple[str, ...]
    linked: Mapping[str, str] = field(default_factory=dict)  # measure → its bound


@dataclass(frozen=True)
class Source:
    """Where a domain's facts live: a table, its leaf-unit column and its date column."""

    table: str
    leaf: str = "leaf_unit_id"
    date: str = "reported_at"


@dataclass(frozen=True)
class RollupTables:
    """The daily tables kept from a domain's facts (keys: leaf_unit_id, day, then the
    dimensions); each distribution names its own histogram table."""

    daily: str
    flow: str | None = None
    flow_dimensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class FactDomain:
    """One kind of fact, declared once. ``name`` is also its dataset version's name."""

    name: str
    source: Source | None = None
    dimensions: tuple[Dimension, ...] = ()
    measures: tuple[Tally | Share | Stock | Current, ...] = ()
    events: tuple[Event, ...] = ()
    distributions: tuple[Distribution, ...] = ()
    tables: RollupTables | None = None  # None: read from ``source`` with a GROUP BY
    facts: Callable[[Mapping[str, np.ndarray]], Any] | None = None  # columns → what rows read
    metrics: tuple[Metric, ...] = ()
    # counts of persons kept from view (``api.engine.disclosure``): None, nothing is
    protection: Protection | None = None

    def __post_init__(self) -> None:
        names = [m.name for m in self.measures] + [d.name for d in self.distributions]
        events = [e.name for e in self.events]  # columns of the flow table, not measures
        doubled = {n for n in names if names.count(n) > 1} | {
            n for n in events if events.count(n) > 1
        }
        if doubled:
            raise ValueError(f"domain {self.name!r} declares {sorted(doubled)} twice")
        if self.tables is None and (self.events or self.distributions):
            raise ValueError(f"domain {self.name!r}: events and distributions need tables")
        tallies = {t.name for t in self.tallies}
        dimensions = {d.column for d in self.dimensions}
        for s in self.shares:
            if s.of not in tallies or s.dimension not in dimensions:
                raise ValueError(f"share {s.name!r}: no tally {s.of!r} or dimension")
        events = {e.name for e in self.events}
        for s in self.stocks:
            if not {s.up, s.down} <= events:
                raise ValueError(f"stock {s.name!r}: events {s.up!r}, {s.down!r} undeclared")

    @property
    def tallies(self) -> tuple[Tally, ...]:
        return tuple(m for m in self.measures if isinstance(m, Tally))

    @property
    def read_tallies(self) -> tuple[Tally, ...]:
        """The tallies the cube reads (those kept for the cube)."""
        return tuple(t for t in self.tallies if t.read)

    @property
    def shares(self) -> tuple[Share, ...]:
        return tuple(m for m in self.measures if isinstance(m, Share))

    @property
    def period_measures(self) -> tuple[Tally | Share, ...]:
        """Tallies the cube reads and shares, in the cube's row order."""
        return (*self.read_tallies, *self.shares)

    @property
    def stocks(self) -> tuple[Stock, ...]:
        return tuple(m for m in self.measures if isinstance(m, Stock))

    @property
    def currents(self) -> tuple[Current, ...]:
        return tuple(m for m in self.measures if isinstance(m, Current))

    @property
    def count(self) -> str:
        """The tally that counts the facts themselves (the first)."""
        return self.tallies[0].name

    @property
    def dated(self) -> bool:
        """True when the domain has facts in time (False: only the state now)."""
        return self.source is not None

    def distribution(self, name: str) -> Distribution:
        """The distribution ``name``; KeyError when the domain keeps none such."""
        for d in self.distributions:
            if d.name == name:
                return d
        raise KeyError(name)

    def dimension(self, column: str) -> Dimension:
        """The dimension ``column``; KeyError when the domain has none such."""
        for d in self.dimensions:
            if d.column == column:
                return d
        raise KeyError(column)
