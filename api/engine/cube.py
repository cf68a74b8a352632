"""A fact domain's cube: its daily rows in memory, as cumulative sums per leaf unit version.

For each leaf unit version (any version, so a retired village keeps its own rows) and each
period measure of the domain, cumulative sums over days: any date range is
``cum[end + 1] − cum[start]``, then one ``np.bincount`` over the leaves' ancestor at the
level shown. Cost grows with the number of leaves and units shown, never with facts.
Stocks are cumulative event sums read at the period's end. Percentiles read the day-sorted
histogram rows of a distribution. The daily rows themselves are kept, sorted by day, for
breakdowns by a dimension. Every measure is addressed by its name in the domain's declaration.

A cube is never written. The changes logged since it was read (``api.engine.changelog``)
become extra rows beside the dense arrays (``Extra``), summed in at query time:
``with_changes`` makes a new cube that shares the old one's arrays, so readers of the old
one are undisturbed. The answers are exactly those of a cube read anew.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields, replace
from functools import cached_property

import numba
import numpy as np
from cachetools import LRUCache
from sqlalchemy.orm import Session

from api.db.versions import get_version
from api.engine import changelog
from api.engine.domain import FactDomain, Share, Tally
from api.engine.fetch import fetch_ints
from api.engine.sql import EPOCH, SqlDialect, code_index

UNIX_EPOCH = dt.date(1970, 1, 1)
DERIVED_KEPT = 16  # things derived from a cube's arrays (summed histograms per depth)


def today() -> dt.date:
    """Today (a stock asked for a later day is the stock today, plus events ahead)."""
    return dt.date.today()


def _no_rows(width: int | None = None) -> np.ndarray:
    return np.zeros(0 if width is None else (0, width), dtype=np.int64)


@dataclass(frozen=True)
class Histogram:
    """The histogram rows of one distribution: per row its day index, leaf position, value
    (a whole number, the bin) and count. A cube's own rows are sorted by day."""

    day: np.ndarray
    leaf: np.ndarray
    bin: np.ndarray
    n: np.ndarray

    @classmethod
    def empty(cls) -> Histogram:
        return cls(*(_no_rows() for _ in range(4)))

    def __len__(self) -> int:
        return len(self.day)

    def plus(self, other: Histogram) -> Histogram:
        return Histogram(
            *(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self))
        )

    def sorted_between(self, first: int, last: int) -> tuple[np.ndarray, ...]:
        """(leaf, bin, n) of the rows of days ``first``..``last`` (views; rows sorted)."""
        a, b = _rows_between(self.day, first, last)
        return self.leaf[a:b], self.bin[a:b], self.n[a:b]

    def between(self, first: int, last: int) -> tuple[np.ndarray, ...] | None:
        """(leaf, bin, n) of the rows of days ``first``..``last`` (any order); None: none."""
        inside = (self.day >= first) & (self.day <= last)
        if not inside.any():
            return None
        return self.leaf[inside], self.bin[inside], self.n[inside]


@dataclass(frozen=True)
class Extra:
    """Daily rows kept beside a cube's dense arrays and summed in at query time: the
    changes applied since the arrays were built (on any day, even outside the arrays' days;
    leaves first seen since then at positions past the arrays'), and the flow events after
    the arrays' last day (deadlines still ahead when they were built). Never written to:
    applying changes makes a new one."""

    row_day: np.ndarray  # day index (from the cube's day0; may be < 0 or ≥ ndays)
    row_leaf: np.ndarray  # leaf position
    row_keys: np.ndarray  # (rows, dimensions): index in each dimension's codes (−1: other)
    row_measures: np.ndarray  # (rows, period measures)
    flow_day: np.ndarray
    flow_leaf: np.ndarray
    flow_stock: np.ndarray  # (rows, stocks)
    histograms: dict[str, Histogram]  # per distribution

    ROWS = ("row_day", "row_leaf", "row_keys", "row_measures", "flow_day", "flow_leaf",
            "flow_stock")  # fmt: skip

    @classmethod
    def empty(cls, domain: FactDomain) -> Extra:
        widths = {
            "row_keys": len(domain.dimensions),
            "row_measures": len(domain.period_measures),
            "flow_stock": len(domain.stocks),
        }
        rows = {name: _no_rows(widths.get(name)) for name in cls.ROWS}
        return cls(**rows, histograms={d.name: Histogram.empty() for d in domain.distributions})

    @property
    def rows(self) -> int:
        return len(self.row_day) + len(self.flow_day) + sum(map(len, self.histograms.values()))

    def plus(self, other: Extra) -> Extra:
        rows = {
            name: np.concatenate([getattr(self, name), getattr(other, name)]) for name in self.ROWS
        }
        hists = {name: h.plus(other.histograms[name]) for name, h in self.histograms.items()}
        return Extra(**rows, histograms=hists)


@numba.njit(cache=True, nogil=True)
def _add_cells(out, leaf, day, keys, values, columns, slot_base, bin_base, first, other):
    """``out[j, cell] += values[row, columns[j]]`` for each row whose leaf has a slot,
    ``cell = slot_base[leaf] + bin_base[day − first] + key`` (key −1 → ``other``): the
    pivot's cells in one pass over the rows, no temporary arrays."""
    for r in range(len(leaf)):
        base = slot_base[leaf[r]]
        if base < 0:
            continue
        k = keys[r]
        if k < 0:
            k = other
        cell = base + bin_base[day[r] - first] + k
        for j in range(len(columns)):
            out[j, cell] += values[r, columns[j]]


def _rows_between(days: np.ndarray, first: int, last: int) -> tuple[int, int]:
    """The rows ``a:b`` of ``days`` (sorted day indexes) from day ``first`` to ``last``,
    inclusive. The bounds are given in the array's own type: with a Python int, numpy
    converts the whole array first (5 ms for 4.7 million rows, for a binary search)."""
    as_day = days.dtype.type
    return (
        int(np.searchsorted(days, as_day(first), side="left")),
        int(np.searchsorted(days, as_day(last), side="right")),
    )


@dataclass(frozen=True, eq=False)
class Cube:
    """A domain's period and stock measures per leaf unit version and day, cumulative,
    plus the changes applied since (``extra``; see ``with_changes``)."""

    domain: FactDomain
    version: int
    rows: int  # daily rows the arrays were built from
    day0: dt.date
    ndays: int
    leaf_ids: np.ndarray  # int64: the arrays' leaves, sorted, then leaves first seen since
    period_cum: np.ndarray  # (ndays + 1, period measures, leaves) int32 (or int64)
    stock_cum: np.ndarray  # (ndays + 1, stocks, leaves)
    histograms: dict[str, Histogram]  # per distribution, rows sorted by day
    last_fact_day: dt.date | None
    # the daily rows themselves, sorted by day, for breakdowns by a dimension
    row_day: np.ndarray  # day index (int32)
    row_leaf: np.ndarray  # leaf position (int32)
    row_keys: np.ndarray  # (rows, dimensions) int8: index in each dimension's codes
    row_measures: np.ndarray  # (rows, period measures), int16 or int32
    token: int | None = None  # the change log's token of ``version`` (None: no catching up)
    extra: Extra | None = None
    # what is derived from the arrays above, shared by every cube made by ``with_changes``
    derived: LRUCache = field(default_factory=lambda: LRUCache(DERIVED_KEPT), repr=False)

    def __post_init__(self) -> None:
        if self.extra is None:
            object.__setattr__(self, "extra", Extra.empty(self.domain))

    @cached_property
    def measure_index(self) -> dict[str, int]:
        """Each period measure's row in ``period_cum`` and ``row_measures``."""
        return {m.name: i for i, m in enumerate(self.domain.period_measures)}

    @cached_property
    def stock_index(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.domain.stocks)}

    def day_index(self, day: dt.date) -> int:
        return (day - self.day0).days

    def first_fact_day(self) -> dt.date | None:
        """The first day with a fact: the arrays' first (their rows are sorted by day) or
        an earlier one added since. With ``last_fact_day``, what the data covers."""
        count = self.measure_index[self.domain.count]
        first = None
        column = self.row_measures[:, count]
        for stop in (4096, len(column)):  # the first rows nearly always hold it
            hit = np.flatnonzero(column[:stop] > 0)
            if len(hit):
                first = int(self.row_day[hit[0]])
                break
        e = self.extra
        added = e.row_day[e.row_measures[:, count] > 0] if e.rows else e.row_day[:0]
        if len(added):
            first = int(added.min()) if first is None else min(first, int(added.min()))
        return None if first is None else self.day0 + dt.timedelta(days=first)

    def _clamp(self, index: int) -> int:
        return min(max(index, 0), self.ndays)

    def _with_extra(
        self,
        dense: np.ndarray,
        inside: np.ndarray,
        leaf: np.ndarray,
        values: np.ndarray,
        columns: list[int],
    ) -> np.ndarray:
        """(measures, leaves) int64: ``dense`` (measures, the arrays' leaves) plus the
        ``columns`` of the extra rows where ``inside``, summed per leaf position."""
        n = len(self.leaf_ids)
        if dense.shape[1] == n and not inside.any():
            return dense.astype(np.int64, copy=False)
        out = np.zeros((len(columns), n), dtype=np.int64)
        out[:, : dense.shape[1]] = dense
        rows = slice(None) if inside.all() else np.flatnonzero(inside)
        leaf = leaf[rows]
        for j, m in enumerate(columns):
            out[j] += np.bincount(leaf, weights=values[rows, m], minlength=n).astype(np.int64)
        return out

    def period_sums(self, start: dt.date, end: dt.date, measures: list[str]) -> np.ndarray:
        """(measures, leaves) sums of the named period measures over the inclusive range."""
        columns = [self.measure_index[m] for m in measures]
        first, stop = self.day_index(start), self.day_index(end) + 1
        a, b = self._clamp(first), self._clamp(stop)
        if b > a:
            dense = self.period_cum[b, columns].astype(np.int64) - self.period_cum[a, columns]
        else:
            dense = np.zeros((len(columns), self.period_cum.shape[2]), dtype=np.int64)
        e = self.extra
        inside = (e.row_day >= first) & (e.row_day < stop)
        return self._with_extra(dense, inside, e.row_leaf, e.row_measures, columns)

    def last_day(self) -> int:
        """Day index of the last day with data: today or the last fact's day, whichever is
        later (a stock asked for a later day is the stock on that day, as a rebuild says)."""
        last = self.day_index(today())
        if self.last_fact_day is not None:
            last = max(last, self.day_index(self.last_fact_day))
        return last

    def stock_at(self, day: dt.date, stocks: list[str]) -> np.ndarray:
        """(stocks, leaves) at the end of ``day``."""
        columns = [self.stock_index[s] for s in stocks]
        d = min(self.day_index(day), self.last_day())
        dense = self.stock_cum[self._clamp(d + 1), columns]
        e = self.extra
        inside = e.flow_day <= d
        return self._with_extra(dense, inside, e.flow_leaf, e.flow_stock, columns)

    def key_sums(
        self, start: dt.date, end: dt.date, leaves: np.ndarray, by: str, measures: list[str]
    ) -> np.ndarray:
        """(codes + 1, measures) sums over the days of the range and the leaves where
        ``leaves`` (bool per leaf position) is true, by the codes of dimension ``by`` (the
        last row: codes outside the dimension's)."""
        d = [dim.column for dim in self.domain.dimensions].index(by)
        ncodes = len(self.domain.dimensions[d].codes)
        columns = [self.measure_index[m] for m in measures]
        e = self.extra
        first, last = self.day_index(start), self.day_index(end)
        a, b = _rows_between(self.row_day, first, last)
        inside = np.flatnonzero(leaves[self.row_leaf[a:b]]) + a
        extra = np.flatnonzero((e.row_day >= first) & (e.row_day <= last))
        extra = extra[leaves[e.row_leaf[extra]]]
        out = np.zeros((ncodes + 1, len(columns)))
        for rows, keys, values in (
            (inside, self.row_keys, self.row_measures),
            (extra, e.row_keys, e.row_measures),
        ):
            slot = keys[rows, d].astype(np.int64)
            slot[slot < 0] = ncodes
            for j, m in enumerate(columns):
                out[:, j] += np.bincount(slot, weights=values[rows, m], minlength=ncodes + 1)
        return out

    def cell_sums(
        self,
        first_day: dt.date | int,
        day_bin: np.ndarray,
        leaf_slot: np.ndarray,
        nslots: int,
        by: str,
        measures: list[str],
    ) -> np.ndarray:
        """(measures, slots, bins, codes + 1) sums of the daily rows from ``first_day`` over
        ``len(day_bin)`` days, each day in bin ``day_bin[day − first]``, each leaf (by
        position) in slot ``leaf_slot[leaf]`` (−1: not counted), by the codes of
        dimension ``by`` (the last: codes outside the dimension's). The pivot's cells:
        one composite cell index per row (int32), one ``np.bincount`` per measure."""
        first = first_day if isinstance(first_day, int) else self.day_index(first_day)
        last = first + len(day_bin) - 1
        nbins = int(day_bin.max()) + 1 if len(day_bin) else 1
        d = [dim.column for dim in self.domain.dimensions].index(by)
        ncodes = len(self.domain.dimensions[d].codes) + 1
        columns = [self.measure_index[m] for m in measures]
        size = nslots * nbins * ncodes
        wide = np.int64 if size >= 2**31 else np.int32
        out = np.zeros((len(columns), size))
        slots = np.full(len(self.leaf_ids) + 1, -1, dtype=wide)
        slots[: len(leaf_slot)] = leaf_slot
        # a leaf's slot and a day's bin, pre-multiplied: cell = slot_base + bin_base + key
        slot_base = np.where(slots >= 0, slots * (nbins * ncodes), -1).astype(wide)
        bin_base = (day_bin * ncodes).astype(wide)
        e = self.extra
        a, b = _rows_between(self.row_day, first, last)
        extra = np.flatnonzero((e.row_day >= first) & (e.row_day <= last))
        picked = np.asarray(columns, dtype=np.int64)
        bases = (picked, slot_base, bin_base, first, ncodes - 1)
        rows = (self.row_leaf[a:b], self.row_day[a:b], self.row_keys[a:b, d])
        _add_cells(out, *rows, self.row_measures[a:b], *bases)
        if len(extra):
            rows = (e.row_leaf[extra], e.row_day[extra], e.row_keys[extra, d])
            _add_cells(out, *rows, e.row_measures[extra], *bases)
        return out.reshape(len(columns), nslots, nbins, ncodes)

    def histogram(
        self, distribution: str, start: dt.date, end: dt.date
    ) -> list[tuple[np.ndarray, ...]]:
        """The rows of ``distribution`` of the facts dated in the inclusive range of days, as
        parts of (leaf position, bin, count) columns (the arrays' rows, then any extra rows:
        kept apart, not copied into one)."""
        first, last = self.day_index(start), self.day_index(end)
        base = self.histograms[distribution].sorted_between(first, last)
        return [base, *self.extra_histogram(distribution, start, end)]

    def extra_histogram(
        self, distribution: str, start: dt.date, end: dt.date
    ) -> list[tuple[np.ndarray, ...]]:
        """The extra rows' part of ``histogram`` (none, or one part)."""
        found = self.extra.histograms[distribution].between(
            self.day_index(start), self.day_index(end)
        )
        return [] if found is None else [found]

    # ------------------------------------------------------------ changes

    def with_changes(self, changes: list[changelog.Change]) -> Cube:
        """A new cube: this one with the logged ``changes`` applied, as extra rows (the
        arrays are shared and never written: readers of this cube are undisturbed, and a
        cube mapped from a snapshot needs no copy). Exactly what a rebuild would answer."""
        if not changes:
            return self
        domain = self.domain

        def column(frame: str, name: str) -> np.ndarray:
            return np.concatenate([c.frames[frame][name] for c in changes]).astype(np.int64)

        flows = ["flow"] if domain.tables.flow else []
        frames = ["rollup", *flows, *(d.name for d in domain.distributions)]
        leaf_ids, positions = self._positions(
            np.concatenate([column(f, "leaf_unit_id") for f in frames])
        )
        sizes = np.cumsum([sum(len(c.frames[f]["leaf_unit_id"]) for c in changes) for f in frames])
        leaf_of = dict(zip(frames, np.split(positions, sizes[:-1]), strict=True))
        shift = (self.day0 - UNIX_EPOCH).days

        def keys_of(dimension: str, codes: tuple[str, ...]) -> np.ndarray:
            """Each change's codes of ``dimension`` as indexes in the dimension's codes."""
            index = {code: i for i, code in enumerate(codes)}
            out = []
            for c in changes:
                table = [index.get(code, -1) for code in c.codes.get(dimension, [])] + [-1]
                out.append(np.array(table)[c.frames["rollup"][dimension]])
            return np.concatenate(out)

        nrows = len(leaf_of["rollup"])
        keys = np.zeros((nrows, len(domain.dimensions)), dtype=np.int64)
        for d, dim in enumerate(domain.dimensions):
            keys[:, d] = keys_of(dim.column, dim.codes)
        tallies = {t.name: column("rollup", t.name) for t in domain.read_tallies}
        measures = period_values(domain, keys, tallies)
        kept = measures.any(axis=1)
        day = column("rollup", "day") - shift
        parts = {
            "row_day": day[kept],
            "row_leaf": leaf_of["rollup"][kept],
            "row_keys": keys[kept],
            "row_measures": measures[kept],
        }
        if "flow" in leaf_of:
            stock = np.column_stack(
                [column("flow", s.up) - column("flow", s.down) for s in domain.stocks]
            )
            moved = stock.any(axis=1)
            parts |= {
                "flow_day": (column("flow", "day") - shift)[moved],
                "flow_leaf": leaf_of["flow"][moved],
                "flow_stock": stock[moved],
            }
        hists = {
            d.name: Histogram(
                day=column(d.name, "day") - shift,
                leaf=leaf_of[d.name],
                bin=column(d.name, "days"),
                n=column(d.name, "n"),
            )
            for d in domain.distributions
        }
        delta = replace(Extra.empty(domain), **parts, histograms=hists)
        extra = self.extra.plus(delta)
        return replace(
            self,
            version=changes[-1].version,
            token=changes[-1].token,
            leaf_ids=leaf_ids,
            extra=extra,
            last_fact_day=self._last_fact_day(delta, extra),
        )

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the leaf ids with those first seen appended, each of ``ids``' leaf position)."""
        nbase = self.period_cum.shape[2]
        base = self.leaf_ids[:nbase]
        pos = np.minimum(np.searchsorted(base, ids), max(nbase - 1, 0))
        found = base[pos] == ids if nbase else np.zeros(len(ids), dtype=bool)
        pos = np.where(found, pos, -1)
        if found.all():
            return self.leaf_ids, pos
        later = {int(i): nbase + k for k, i in enumerate(self.leaf_ids[nbase:])}
        for i in ids[~found].tolist():
            later.setdefault(i, nbase + len(later))
        pos[~found] = [later[i] for i in ids[~found].tolist()]
        return np.concatenate([base, np.array(list(later), dtype=np.int64)]), pos

    def _last_fact_day(self, delta: Extra, extra: Extra) -> dt.date | None:
        """The last day with a fact once ``delta`` (the rows just added to ``extra``) is
        applied: a later day that gained facts; else the last day still, unless its facts
        all went (moved or deleted), then the last day that has some, counted in full."""
        count = self.measure_index[self.domain.count]
        last = None if self.last_fact_day is None else self.day_index(self.last_fact_day)
        days, inverse = np.unique(delta.row_day, return_inverse=True)
        gained = np.bincount(inverse, weights=delta.row_measures[:, count], minlength=len(days))
        later = days[gained > 0]
        if last is not None:
            later = later[later > last]
        if len(later):
            return self.day0 + dt.timedelta(days=int(later.max()))
        if last is None:
            return None
        on_last = int(extra.row_measures[extra.row_day == last, count].sum())
        if 0 <= last < self.ndays:
            cum = self.period_cum[:, count, :]
            on_last += int(cum[last + 1].sum(dtype=np.int64) - cum[last].sum(dtype=np.int64))
        if on_last > 0:
            return self.last_fact_day
        low = min(0, int(extra.row_day.min(initial=0)))
        high = max(self.ndays, int(extra.row_day.max(initial=0)) + 1)
        totals = np.zeros(high - low)
        totals[-low : -low + self.ndays] = np.diff(
            self.period_cum[:, count, :].sum(axis=1, dtype=np.int64)
        )
        totals += np.bincount(
            extra.row_day - low, weights=extra.row_measures[:, count], minlength=high - low
        )
        found = np.flatnonzero(totals > 0)
        return self.day0 + dt.timedelta(days=int(found[-1]) + low) if len(found) else None


def period_values(
    domain: FactDomain, keys: np.ndarray, tallies: dict[str, np.ndarray]
) -> np.ndarray:
    """(rows, period measures) of daily rows, by name: each tally as read, each share its
    tally where the row's code of the share's dimension is among the share's codes."""
    dims = [d.column for d in domain.dimensions]
    columns = []
    for m in domain.period_measures:
        if isinstance(m, Tally):
            columns.append(tallies[m.name])
        elif isinstance(m, Share):
            d = dims.index(m.dimension)
            member = np.array([c in m.codes for c in domain.dimensions[d].codes] + [False])
            columns.append(tallies[m.of] * member[keys[:, d]])
    if not columns:
        return np.zeros((len(keys), 0), dtype=np.int64)
    return np.column_stack(columns)


# ---------------------------------------------------------------- reading


def _daily_sql(domain: FactDomain, d: SqlDialect) -> str:
    """The daily rows: leaf, day number, each dimension's code index, each read tally."""
    keys = [code_index(dim.column, dim.codes) for dim in domain.dimensions]
    if domain.tables is not None:  # kept by every ingest: read as they are
        tallies = [t.name for t in domain.read_tallies]
        columns = ["leaf_unit_id", d.day_number("day"), *keys, *tallies]
        return f"SELECT {', '.join(columns)} FROM {domain.tables.daily}"
    source = domain.source  # a small domain: summed from its facts here
    day = d.day_number(d.day(source.date))
    sums = [f"SUM({t.sql(d)})" for t in domain.read_tallies]
    group = ", ".join(str(i) for i in range(1, 3 + len(keys)))  # by position: binds differ
    columns = ", ".join([source.leaf, day, *keys, *sums])
    return f'SELECT {columns} FROM "{source.table}" GROUP BY {group}'


def load_cube(session: Session, domain: FactDomain) -> Cube:
    """Read ``domain``'s daily rows into a Cube at its current version: the rows as they
    are (kept for breakdowns), summed per leaf and day into cumulative arrays; flow events
    after the last day (deadlines ahead) as extra rows. ``session`` should see one
    snapshot of the database (``api.engine.state``)."""
    version = get_version(session, domain.name)
    token = changelog.token_at(session, domain.name, version) if domain.tables else None
    d = SqlDialect.of(session.get_bind().dialect.name)
    ndims, tallies = len(domain.dimensions), domain.read_tallies
    binds = None if domain.tables else d.binds
    raw = fetch_ints(session, _daily_sql(domain, d), 2 + ndims + len(tallies), binds)
    stocks, tables = domain.stocks, domain.tables
    flow = _no_rows(2 + len(stocks))
    if stocks:
        moves = ", ".join(f"{s.up} - {s.down}" for s in stocks)
        sql = f"SELECT leaf_unit_id, {d.day_number('day')}, {moves} FROM {tables.flow}"
        flow = fetch_ints(session, sql, 2 + len(stocks))  # summed per leaf and day below
    hists = {}
    for dist in domain.distributions:
        sql = f"SELECT leaf_unit_id, {d.day_number('day')}, days, n FROM {dist.table}"
        rows = fetch_ints(session, sql, 4)
        hists[dist.name] = rows[np.argsort(rows[:, 1], kind="stable")]
    raw = raw[np.argsort(raw[:, 1], kind="stable")]
    keys = raw[:, 2 : 2 + ndims]
    codes = [dim.codes for dim in domain.dimensions]
    named = {t.name: raw[:, 2 + ndims + i] for i, t in enumerate(tallies)}
    row_measures = period_values(domain, keys, named)
    count = [m.name for m in domain.period_measures].index(domain.count)
    with_facts = raw[row_measures[:, count] > 0, 1] if len(raw) else raw[:, 1]
    now = (today() - EPOCH).days
    last_fact = int(with_facts.max()) if len(with_facts) else None
    first = min([int(a[:, 1].min()) for a in (raw, flow) if len(a)] or [now])
    last = max(now, int(raw[-1, 1]) if len(raw) else now)
    ndays = last - first + 1
    hist_leaves = [h[:, 0] for h in hists.values()]
    leaf_ids = np.unique(np.concatenate([raw[:, 0], flow[:, 0], *hist_leaves]))

    def cumulative(leaf: np.ndarray, days: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Dense (ndays + 1, measures, leaves) cumulative sums of per-row values."""
        keep = (days >= first) & (days <= last)
        leaf, days, values = leaf[keep], days[keep], values[keep]
        pos = np.searchsorted(leaf_ids, leaf)
        flat = (days - first + 1) * len(leaf_ids) + pos
        size = (ndays + 1) * len(leaf_ids)
        bound = np.abs(values).sum(axis=0).max() if len(values) else 0
        dtype = np.int32 if bound < 2**31 else np.int64
        dense = np.zeros((ndays + 1, values.shape[1], len(leaf_ids)), dtype=dtype)
        for m in range(values.shape[1]):
            sums = np.bincount(flat, weights=values[:, m], minlength=size)
            dense[:, m, :] = sums.reshape(ndays + 1, len(leaf_ids))
        np.cumsum(dense, axis=0, out=dense)
        return dense

    ahead = flow[:, 1] > last
    extra = replace(
        Extra.empty(domain),
        flow_day=flow[ahead, 1] - first,
        flow_leaf=np.searchsorted(leaf_ids, flow[ahead, 0]),
        flow_stock=flow[ahead, 2:],
    )
    small = row_measures.max(initial=0) < 2**15 and row_measures.min(initial=0) > -(2**15)
    return Cube(
        domain=domain,
        version=version,
        rows=len(raw) + len(flow) + sum(map(len, hists.values())),
        day0=EPOCH + dt.timedelta(days=first),
        ndays=ndays,
        leaf_ids=leaf_ids,
        period_cum=cumulative(raw[:, 0], raw[:, 1], row_measures),
        stock_cum=cumulative(flow[:, 0], flow[:, 1], flow[:, 2:]),
        histograms={
            name: Histogram(
                day=(h[:, 1] - first).astype(np.int32),
                leaf=np.searchsorted(leaf_ids, h[:, 0]).astype(np.int32),
                bin=h[:, 2].astype(np.int32),
                n=h[:, 3].astype(np.int64),
            )
            for name, h in hists.items()
        },
        last_fact_day=EPOCH + dt.timedelta(days=last_fact) if last_fact is not None else None,
        row_day=(raw[:, 1] - first).astype(np.int32),
        row_leaf=np.searchsorted(leaf_ids, raw[:, 0]).astype(np.int32),
        row_keys=keys.astype(np.int8 if max(map(len, codes), default=0) < 127 else np.int16),
        row_measures=row_measures.astype(np.int16 if small else np.int32),
        token=token,
        extra=extra,
    )
