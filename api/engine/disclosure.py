"""Disclosure control for counts of persons (special populations): the one place every
figure of a protected domain passes through (``api.engine.figures.evaluate``), so the
API's JSON, CSV, GeoPackage, OGC items, the dashboard and the wall all carry the same
suppression.

**Primary suppression.** A count of 1 .. threshold−1 persons (``ZHILI_SUPPRESSION_THRESHOLD``,
default 5) is never shown: the figure is ``value: null, suppressed: true`` (``<5`` in CSV
and on screen).

**Complementary suppression** (the hierarchical method of τ-ARGUS's HiTaS and sdcTable's
``protectTable(method="HITAS")``, simplified: each relation of a hierarchical table is
protected on its own, and the relations are revisited until nothing changes). Every
published relation is ``parent = Σ children`` of one measure in one month (the figures are
published per calendar month only, so no period is a sum of others). In each relation:

- when the parent is shown and some children are suppressed, the suppressed children must
  be at least two and their counts must add up to at least the protection width
  (``ZHILI_PROTECTION_WIDTH``); otherwise the smallest non-zero shown child is suppressed
  too (a suppressed zero protects nothing); when no such child is left, the parent is;
- when the parent is suppressed, at least one child must be (else the parent is the sum of
  shown children); the parent's own uncertainty is its own relation's affair, one level up.

A linked measure (visits, lost contact: ``≤`` under management) is also suppressed
wherever its bound is, since a rate shows both. A rate is suppressed when its numerator or
denominator is. ``tests/populations/test_disclosure.py`` is the adversary: it gathers every
figure a role can read and solves, for each suppressed cell, the linear programmes of its
least and greatest value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from api.engine.domain import Protection  # noqa: F401  (declared with the domains)
from api.engine.periods import Period
from api.engine.query import MetricsError
from api.engine.registry import MEASURES
from api.engine.state import State
from api.settings import get_settings

if TYPE_CHECKING:
    from api.engine.domain import FactDomain, Metric


class PeriodNotPublished(MetricsError):
    """A protected figure asked for a period other than one calendar month."""


ROOMY = 10**12  # the room above a count nothing bounds


def protect_hierarchy(
    values: np.ndarray,
    parent: np.ndarray,
    threshold: int,
    width: int,
    forced: np.ndarray | None = None,
    room: np.ndarray | None = None,
) -> np.ndarray:
    """The suppressed cells of a hierarchical table: ``values`` (tables, units) counts,
    each table protected alike (a month each); ``parent`` (units,) the position of each
    unit's parent (−1: a root). ``forced``: cells suppressed whatever their count;
    ``room``: how far each count could rise for a reader (visits: up to the shown number
    under management), unbounded where None. Primary suppression of 1 .. threshold−1,
    then complementary suppression until every relation holds (module docstring).
    Returns a boolean array like ``values``."""
    values = np.asarray(values, dtype=np.int64)
    supp = (values >= 1) & (values < threshold)
    # a cell suppressed because its bound is (visits where under management is) may rise
    # with its bound: its own rise is not capped by its slack (it still makes up for
    # others only by its slack)
    exempt = np.zeros(values.shape, dtype=bool) if forced is None else forced.copy()
    if forced is not None:
        supp |= forced
    room = np.full(values.shape, ROOMY, dtype=np.int64) if room is None else room
    room = np.minimum(np.asarray(room, dtype=np.int64), ROOMY)
    children = np.flatnonzero(parent >= 0)
    if not len(children) or not values.size:
        return supp
    order = children[np.argsort(parent[children], kind="stable")]
    owner = parent[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    parents = owner[starts]
    sizes = np.diff(np.r_[starts, len(order)])
    v, r = values[:, order], room[:, order]
    pv, pr = values[:, parents], room[:, parents]
    pex = exempt[:, parents]
    n_child = len(order)
    position = np.arange(n_child, dtype=np.int64)
    tier_of = np.where((v > 0) & (r > 0), 0, np.where(v > 0, 1, np.where(r > 0, 2, 3)))
    base = tier_of * 10**15 + np.minimum(v, 10**8) * n_child + position
    levels = _levels_deepest_first(parent)
    own_room = np.where(exempt, ROOMY, room)
    while True:
        s = supp[:, order]
        top = supp[:, parents]
        # a count with children moves only as far as its suppressed children can
        cv = _through_children(values, supp, parent, levels)[:, order]
        cr = _through_children(room, supp, parent, levels)[:, order]
        own_r = _through_children(own_room, supp, parent, levels)[:, order]
        sum_v = np.add.reduceat(np.where(s, cv, 0), starts, axis=1)
        sum_r = np.add.reduceat(np.where(s, cr, 0), starts, axis=1)
        up_v, up_r = np.where(top, pv, 0), np.where(top, pr, 0)
        # how far each suppressed member can move with the others making up for it
        rise = np.repeat(sum_v + up_r, sizes, axis=1) - cv  # others fall, or the parent rises
        fall = np.repeat(sum_r + up_v, sizes, axis=1) - cr  # others rise, or the parent falls
        spread = np.minimum(cv, fall) + np.minimum(own_r, rise)
        worst = np.minimum.reduceat(np.where(s, spread, ROOMY), starts, axis=1)
        parent_spread = np.minimum(pv, sum_v) + np.minimum(np.where(pex, ROOMY, pr), sum_r)
        worst = np.where(top, np.minimum(worst, parent_spread), worst)
        bad = worst < width  # (a relation with nothing suppressed is never bad)
        if not bad.any():
            return supp
        key = np.where(~s & (tier_of < 3), base, np.iinfo(np.int64).max)
        best = np.minimum.reduceat(key, starts, axis=1)
        has = best < np.iinfo(np.int64).max
        tables, groups = np.nonzero(bad & has)
        supp[tables, order[best[tables, groups] % 10**15 % n_child]] = True
        tables, groups = np.nonzero(bad & ~has & ~top)
        supp[tables, parents[groups]] = True
        if not (bad & (has | ~top)).any():
            return supp  # nothing left to add: the LP test is the judge


def _levels_deepest_first(parent: np.ndarray) -> list[np.ndarray]:
    """The units with a parent, grouped by depth, deepest first."""
    depth = np.zeros(len(parent), dtype=np.int64)
    up = parent.copy()
    while (up >= 0).any():
        depth[up >= 0] += 1
        up = np.where(up >= 0, parent[np.maximum(up, 0)], -1)
    return [np.flatnonzero(depth == d) for d in range(int(depth.max()), 0, -1)]


def _through_children(
    amount: np.ndarray, supp: np.ndarray, parent: np.ndarray, levels: list[np.ndarray]
) -> np.ndarray:
    """``amount`` per cell, capped for a unit with children by what its suppressed
    children can give (bottom-up): a parent is the sum of its children, so it moves
    only as they do."""
    out = amount.astype(np.int64, copy=True)
    for kids in levels:
        up = parent[kids]
        total = np.zeros_like(out)
        np.add.at(total, (slice(None), up), np.where(supp[:, kids], out[:, kids], 0))
        ups = np.unique(up)
        out[:, ups] = np.minimum(amount[:, ups], total[:, ups])
    return out


def month_of(period: Period) -> dt.date | None:
    """The one calendar month a protected figure may be asked for: ``period`` must be
    that month (its first day to its last). None when the period holds no month's first
    day; ``PeriodNotPublished`` when it is anything else."""
    first = period.start.replace(day=1)
    if first < period.start:
        first = (first + dt.timedelta(days=32)).replace(day=1)
    if first > period.end:
        return None
    following = (first + dt.timedelta(days=32)).replace(day=1)
    if following <= period.end:
        raise PeriodNotPublished(
            "special-population figures are published per calendar month: ask for one "
            f"month (e.g. start={first.isoformat()}&end="
            f"{(following - dt.timedelta(days=1)).isoformat()}), not {period.start} .. "
            f"{period.end}"
        )
    return first


@dataclass(frozen=True)
class DisclosureTable:
    """A protected domain's suppression pattern: each published month's row, and per
    protected measure a (months, code indexes) mask of suppressed cells and the counts."""

    months: dict[dt.date, int]
    masks: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    reported: np.ndarray  # (months, code indexes): rows delivered below each unit
    threshold: int
    width: int


def _months(first: dt.date, last: dt.date) -> list[dt.date]:
    out, m = [], first.replace(day=1)
    if m < first:
        m = (m + dt.timedelta(days=32)).replace(day=1)
    while m <= last:
        out.append(m)
        m = (m + dt.timedelta(days=32)).replace(day=1)
    return out


def unit_counts(state: State, domain: FactDomain, measures: list[str]) -> tuple:
    """(months, {measure: (months, code indexes) counts}) of every unit at every level."""
    cube, units = state.cubes[domain.name], state.units
    leaves = state.leaves[domain.name]
    last = cube.day0 + dt.timedelta(days=max(cube.ndays - 1, 0))
    months = _months(cube.day0, last)
    n = len(units.codes)
    out = {m: np.zeros((len(months), n), dtype=np.int64) for m in measures}
    anc = [leaves.ancestor_at(level) for level in units.levels]
    for row, first in enumerate(months):
        end = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        sums = cube.period_sums(first, end, measures)
        for k, measure in enumerate(measures):
            per_leaf = sums[k]
            for a in anc:
                inside = a >= 0
                out[measure][row] += np.bincount(
                    a[inside], weights=per_leaf[inside], minlength=n
                ).astype(np.int64)
    return months, out


def parent_positions(state: State) -> np.ndarray:
    """Each code index's parent code index (−1: none)."""
    units = state.units
    return np.array([units.index.get(p, -1) if p else -1 for p in units.parent], dtype=np.int64)


def disclosure_table(state: State, domain: FactDomain) -> DisclosureTable:
    """The suppression pattern of ``domain`` (kept with its cube: computed once per data
    and boundaries version and setting)."""
    settings = get_settings()
    threshold = settings.suppression_threshold
    width = min(settings.protection_width, threshold)
    cube = state.cubes[domain.name]
    key = ("disclosure", cube.version, state.units.version, id(state.units), threshold, width)
    found = cube.derived.get(key)
    if found is not None:
        return found
    protection = domain.protection
    measures = list(protection.measures)
    months, counts = unit_counts(state, domain, [*measures, domain.count])
    reported = counts.pop(domain.count)
    with_data = reported.max(axis=1) > 0 if reported.size else np.zeros(0, dtype=bool)
    months = [m for m, has in zip(months, with_data, strict=True) if has]
    counts = {m: c[with_data] for m, c in counts.items()}
    reported = reported[with_data]
    parent = parent_positions(state)
    masks: dict[str, np.ndarray] = {}
    ordered = [m for m in measures if m not in protection.linked]
    ordered += [m for m in measures if m in protection.linked]
    for measure in ordered:
        bound = protection.linked.get(measure)
        forced = room = None
        if bound:  # shown where its bound is shown, and never above it
            forced = masks[bound]
            # its true slack below the bound, even where the bound is suppressed: the
            # bounds of a group add up to what is shown, and so do the slacks
            room = counts[bound] - counts[measure]
        masks[measure] = protect_hierarchy(counts[measure], parent, threshold, width, forced, room)
    table = DisclosureTable(
        {m: i for i, m in enumerate(months)}, masks, counts, reported, threshold, width
    )
    cube.derived[key] = table
    return table


def suppressed_shown(
    metric: Metric, state: State, shown: np.ndarray, period: Period | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(suppressed, no data) of ``metric`` for the units ``shown`` (code indexes) in
    ``period``; None when the metric reads no protected count. A protected figure is asked
    for one calendar month (``PeriodNotPublished`` otherwise); a unit with nothing delivered
    below it that month has no data (never a zero)."""
    hidden = nodata = None
    for name in metric.measures():
        ref = MEASURES.get(name)
        protection = ref.domain.protection if ref is not None else None
        if protection is None or name not in protection.measures:
            continue
        if period is None:
            raise MetricsError(f"{metric.id!r} is published per month: give a month")
        month = month_of(period)
        table = disclosure_table(state, ref.domain)
        row = table.months.get(month) if month is not None else None
        if row is None:
            mask, empty = np.zeros(len(shown), dtype=bool), np.ones(len(shown), dtype=bool)
        else:
            mask, empty = table.masks[name][row, shown], table.reported[row, shown] == 0
        hidden = mask if hidden is None else hidden | mask
        nodata = empty if nodata is None else nodata | empty
    if hidden is None:
        return None
    return hidden & ~nodata, nodata


def is_protected(metric: Metric) -> bool:
    """True when ``metric`` reads a measure of a protected domain (its figures, counts of
    persons or not, need the permission)."""
    for name in metric.measures():
        ref = MEASURES.get(name)
        if ref is not None and ref.domain.protection is not None:
            return True
    return False


def protected_metric_ids() -> frozenset[str]:
    """The ids of every metric of a protected domain."""
    from api.engine.registry import REGISTRY

    return frozenset(m.id for m in REGISTRY.values() if is_protected(m))


def published_months(state: State, metric: Metric) -> list[dt.date]:
    """The calendar months (first days, oldest first) in which ``metric``'s protected
    domain has data: the periods it may be asked for. Empty for a metric of no protected
    domain."""
    for name in metric.measures():
        ref = MEASURES.get(name)
        if ref is not None and ref.domain.protection is not None:
            return sorted(disclosure_table(state, ref.domain).months)
    return []
