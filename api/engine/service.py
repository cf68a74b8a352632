"""The figures the routers and the dashboard ask for: children's figures, time series,
breakdown, ranking and several metrics of one unit, each for a ``MetricQuery``; and the
facts of a unit (``unit_summary``, ``children_of``) that the answers carry. Every function
takes a unit that the caller already holds in scope (``check_scope``); everything below it
is in scope too. A request the engine cannot answer raises ``MetricsError``."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.domain import STEP_NAMES_ZH, STEPS
from api.engine.disclosure import is_protected
from api.engine.figures import Figures, Frame, evaluate, is_low_count
from api.engine.periods import Period, PeriodError, bins, compare_period
from api.engine.query import MetricQuery, MetricsError, ResolvedQuery, covers
from api.engine.registry import MEASURES, REGISTRY
from api.engine.sql import SqlDialect
from api.engine.state import State, engine_state
from api.engine.stats import eb_smooth
from api.engine.units import UnderKey


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def list_metrics() -> list[dict]:
    """Every metric of the registry."""
    return [m.describe() for m in REGISTRY.values()]


# ---------------------------------------------------------------- units


def unit_summary(state: State, i: int) -> dict:
    """The facts of the unit of code index ``i`` that every answer names it by: code,
    name, level, parent_code, is_leaf (no current child) and current."""
    return state.units.summary(i).as_dict()


def children_of(state: State, code: str, period: Period | None) -> list[int]:
    """Code indexes of the children of ``code`` that existed during ``period`` (current
    children when no period), sorted by code."""
    if period is None:
        return state.units.children_during(code, None, None)
    return state.units.children_during(code, period.start, period.end)


# ---------------------------------------------------------------- figures


def _figures(
    state: State,
    q: ResolvedQuery,
    shown: list[int],
    period: Period | None,
    within: int | None = None,
    intervals: bool = True,
    shown_key: UnderKey | None = None,
) -> Figures:
    frame = Frame(state, shown, period if q.timed else None, within, shown_key)
    return evaluate(q.metric, frame, intervals)


def figure_rows(
    state: State, q: ResolvedQuery, shown: list[int], within: int | None = None
) -> list[dict]:
    """One row per unit: its summary (code, name, level...), value, numerator, denominator,
    count, low_count, 95% interval, previous value, change and base_partial (with compare;
    a base the data does not fully cover, 基期不完整, gives no change) and the smoothed
    value with smooth=eb. ``within``: count only what lay under that unit (see ``Frame``)."""
    return rows_of(state, shown, figure_columns(state, q, shown, within))


def rows_of(state: State, shown: list[int], columns: dict[str, np.ndarray | list]) -> list[dict]:
    """One dict per unit shown: its summary, then its value in each column (NaN → None)."""
    summaries = state.units.summaries
    names = list(columns)
    values = [python_values(column) for column in columns.values()]
    return [
        {**summaries[i].as_dict(), **dict(zip(names, row, strict=True))}
        for i, row in zip(shown, zip(*values, strict=True), strict=True)
    ]


def figure_columns(
    state: State,
    q: ResolvedQuery,
    shown: list[int],
    within: int | None = None,
    shown_key: UnderKey | None = None,
) -> dict[str, np.ndarray]:
    """``figure_rows`` without the unit summaries, as columns in ``shown`` order: floats
    (NaN where there is no value) and the ``low_count`` booleans. ``shown_key``: what
    ``shown`` is (a map's units), see ``Frame``."""
    if q.smooth == "eb" and is_protected(q.metric):
        # smoothing borrows from the neighbours' counts, suppressed ones included
        raise MetricsError(
            f"smooth=eb does not apply to {q.metric.id!r}: its small counts are protected"
        )
    fig = _figures(state, q, shown, q.period, within, shown_key=shown_key)
    prev = None
    if q.previous is not None and q.timed:
        prev = _figures(state, q, shown, q.previous, within, False, shown_key)
    low = is_low_count(q.metric, fig.count, q.min_denominator)
    smoothed = None
    if q.smooth == "eb" and fig.denominator is not None:
        smoothed = eb_smooth(fig.numerator, fig.denominator) * q.metric.scale
    n = len(shown)
    columns: dict[str, list] = {
        "value": _column(fig.value, n),
        "numerator": _column(fig.numerator, n),
        "denominator": _column(fig.denominator, n),
        "count": _column(fig.count, n),
        "low_count": np.asarray(low, dtype=bool),
        "ci_low": _column(fig.ci_low, n),
        "ci_high": _column(fig.ci_high, n),
    }
    if smoothed is not None:
        columns["smoothed"] = _column(smoothed, n)
    if fig.suppressed is not None:  # a protected count: "value": null, "suppressed": true
        columns["suppressed"] = np.asarray(fig.suppressed, dtype=bool)
    if q.compare:
        now = np.asarray(fig.value, dtype=float)
        before = np.asarray(prev.value, dtype=float) if prev is not None else np.full(n, np.nan)
        if q.base == "none":  # no data in the base: nothing to compare with, not zero
            before = np.full(n, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            change = now - before
            pct = np.where(before != 0, change / np.abs(before), np.nan)
        if q.base_partial:  # 基期不完整: the base holds only part of its days' data
            change, pct = np.full(n, np.nan), np.full(n, np.nan)
        columns |= {
            "previous": _column(before, n),
            "change": _column(change, n),
            "change_pct": _column(pct, n),
            "base_partial": np.full(n, q.base_partial, dtype=bool),
        }
    return columns


def _column(values: np.ndarray | None, n: int) -> np.ndarray:
    """Floats, NaN where the value is missing (NaN, infinite or no array)."""
    if values is None:
        return np.full(n, np.nan)
    arr = np.array(values, dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def python_values(column: np.ndarray | list) -> list:
    """A column as Python values: floats with None for NaN, booleans, ints."""
    if not isinstance(column, np.ndarray):
        return list(column)
    if column.dtype.kind != "f":
        return column.tolist()
    out = column.astype(object)
    out[np.isnan(column)] = None
    return out.tolist()


def children_metrics(session: Session, code: str, query: MetricQuery) -> dict:
    """The metric for each child of ``code`` and for the unit itself (``self``). A unit
    without children is its own leaf: ``children`` is empty, ``self`` carries its figures."""
    state = engine_state(session)
    q = query.resolve(state)
    i = state.units.index[code]
    kids = children_of(state, code, q.period if q.timed else None)
    rows = figure_rows(state, q, [*kids, i], within=i)
    return {**q.describe(), "unit": code, "self": rows[-1], "children": rows[:-1]}


def unit_values(
    session: Session, code: str, metrics: list[str], query: MetricQuery
) -> dict[str, dict]:
    """Several metrics for one unit (the dashboard's KPI tiles): ``query`` with each of
    ``metrics`` in turn (its own ``metric`` is not used)."""
    state = engine_state(session)
    i = state.units.index[code]
    out = {}
    for metric in metrics:
        q = replace(query, metric=metric).resolve(state)
        out[metric] = figure_rows(state, q, [i])[0]
    return out


def ranking(session: Session, code: str, query: MetricQuery) -> dict:
    """Children sorted best first (by value; ties by code), with their rank in the
    comparison period (default: the previous period) and the rank change."""
    state = engine_state(session)
    q = query.compared(query.compare or "prev").resolve(state)
    kids = children_of(state, code, q.period if q.timed else None)
    rows = figure_rows(state, q, kids, within=state.units.index[code])
    best_high = q.metric.higher_is_better is not False

    def ranks(key: str) -> dict[str, int]:
        have = [r for r in rows if r.get(key) is not None]
        have.sort(key=lambda r: ((-r[key] if best_high else r[key]), r["code"]))
        out, last, rank = {}, None, 0
        for n, r in enumerate(have, start=1):
            if r[key] != last:
                rank, last = n, r[key]
            out[r["code"]] = rank
        return out

    now, before = ranks("value"), ranks("previous")
    for r in rows:
        r["rank"] = now.get(r["code"])
        r["previous_rank"] = before.get(r["code"])
        r["rank_change"] = (
            r["previous_rank"] - r["rank"]
            if r["rank"] is not None and r["previous_rank"] is not None
            else None
        )
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["code"]))
    return {**q.describe(), "unit": code, "items": rows}


def timeseries(session: Session, code: str, query: MetricQuery, interval: str = "month") -> dict:
    """The metric for the unit in consecutive day/week/month bins of the period
    (default period: the last 365 days of data), with the same bins a year before when
    compare=yoy (the bin before with compare=prev)."""
    state = engine_state(session)
    compare = query.compare  # per bin, not for the whole period
    q = query.or_period("last-365d").compared(None).resolve(state)
    if interval != "month" and is_protected(q.metric):
        raise MetricsError(
            f"{q.metric.id!r} is published per calendar month: ask interval=month (a "
            f"{interval}'s bin would show a month's figure as its own)"
        )
    if not q.timed:
        raise MetricsError(f"{q.metric.id!r} describes the grid network now: no time series")
    try:
        parts = bins(q.period, interval)
    except PeriodError as exc:
        raise MetricsError(str(exc)) from None
    i = state.units.index[code]
    points = []
    low_min = q.min_denominator
    span = q.coverage  # the days the metric's own domains have data for

    def covered(part: Period) -> bool:  # a bin the data reach: its figures are figures
        return span is not None and part.end >= span[0] and part.start <= span[1]

    for part in parts:
        fig = _figures(state, q, [i], part)
        has_data = covered(part)
        point = {
            "start": part.start.isoformat(),
            "end": part.end.isoformat(),
            "has_data": has_data,
            "value": _num(fig.value[0]) if has_data else None,
            "numerator": _num(fig.numerator[0]),
            "denominator": _num(fig.denominator[0]) if fig.denominator is not None else None,
            "count": _num(fig.count[0]),
            "low_count": bool(is_low_count(q.metric, fig.count, low_min)[0]),
        }
        if fig.suppressed is not None:
            point["suppressed"] = bool(fig.suppressed[0])
        if compare:
            before = compare_period(part, compare)
            base = covers(q.coverage, before)  # no data then: nothing to compare, not zero
            previous = _num(_figures(state, q, [i], before).value[0]) if base != "none" else None
            point["previous"] = previous
            point["base_partial"] = base != "full"
            point["change"] = (
                point["value"] - previous
                if point["value"] is not None and previous is not None and base == "full"
                else None
            )
        points.append(point)
    return {**q.describe(), "unit": code, "interval": interval, "points": points}


# ---------------------------------------------------------------- breakdown


def breakdown(session: Session, code: str, query: MetricQuery, by: str = "category") -> dict:
    """The metric for the unit split by category, channel or workflow status (status:
    caseload only, from the cases). Period metrics come from the cube's daily rollup rows
    (in memory); stocks from one GROUP BY over the flow table of the unit's leaves."""
    state = engine_state(session)
    q = query.resolve(state)
    m = q.metric
    if by not in m.breakdowns:
        raise MetricsError(
            f"metric {m.id!r} has no breakdown by {by!r}; it has: "
            + (", ".join(m.breakdowns) or "none")
        )
    bind = _date_binds(session, code, q.period)
    leaves = "SELECT unit_id FROM unit_ancestry WHERE ancestor_code = :code"
    if by == "status":
        return _status_breakdown(session, state, q, code)
    ref = MEASURES[m.numerator]
    if m.kind == "stock":  # the flow table's events up to the period's end
        stock, flow = ref.measure, ref.domain.tables.flow
        sql = (
            f"SELECT f.{by}, SUM(f.{stock.up} - f.{stock.down}) FROM {flow} f "
            f"WHERE f.leaf_unit_id IN ({leaves}) AND f.day <= :end GROUP BY f.{by}"
        )
        raw = {k: (float(v or 0), None) for k, v in session.execute(text(sql), bind)}
    else:
        raw = _period_breakdown(state, q, code, by)
    items = []
    dimension = ref.domain.dimension(by)
    for key in dimension.codes:
        n, d = raw.pop(key, (0.0, 0.0 if m.denominator else None))
        items.append(_breakdown_item(q, key, *dimension.label(key), n, d))
    for key, (n, d) in sorted(raw.items()):  # codes outside the vocabulary, if any
        items.append(_breakdown_item(q, key, key, key, n, d))
    return {**q.describe(), "unit": code, "by": by, "items": items}


def _period_breakdown(state: State, q: ResolvedQuery, code: str, by: str) -> dict:
    """{key: (numerator, denominator)} of a period metric over the unit's leaves, from the
    cube's daily rollup rows."""
    m = q.metric
    domain = MEASURES[m.numerator].domain
    u, cube = state.units, state.cubes[domain.name]
    i = u.index[code]
    leaves = state.leaves[domain.name].ancestor_at(u.level[i]) == i
    # a denominator the cube does not split (residents: the network now) is the unit's own
    split = m.denominator is not None and m.denominator in cube.measure_index
    measures = [m.numerator] + ([m.denominator] if split else [])
    sums = cube.key_sums(q.period.start, q.period.end, leaves, by, measures)
    population = None
    if m.denominator is not None and not split:
        population = _figures(state, q, [i], q.period).denominator
    out = {}
    codes = [*domain.dimension(by).codes, "other"]
    for key, row in zip(codes, sums, strict=True):
        if key == "other" and not row.any():
            continue
        n = float(row[0])
        if population is not None:
            d = float(population[0])
        else:
            d = float(row[1]) if m.denominator else None
        out[key] = (n, d)
    return out


def _date_binds(session: Session, code: str, period: Period) -> dict:
    """Bind values for a unit and a period (ISO strings on SQLite, dates elsewhere)."""
    if session.get_bind().dialect.name == "sqlite":
        return {"code": code, "start": period.start.isoformat(), "end": period.end.isoformat()}
    return {"code": code, "start": period.start, "end": period.end}


def _breakdown_item(
    q: ResolvedQuery, key: str, zh: str, en: str, n: float, d: float | None
) -> dict:
    m = q.metric
    value = n if d is None else (n / d * m.scale if d else None)
    count = n if m.kind == "per_capita" else d
    low = d is not None and bool(is_low_count(m, np.array([count]), q.min_denominator)[0])
    return {
        "key": key,
        "label_zh": zh,
        "label_en": en,
        "value": value,
        "numerator": n,
        "denominator": d,
        "low_count": bool(low),
    }


def _status_breakdown(session: Session, state: State, q: ResolvedQuery, code: str) -> dict:
    """Caseload of the period by workflow status 接-约-办-访-评 (from table ``case``)."""
    dialect = session.get_bind().dialect.name
    parts = SqlDialect.of(dialect)
    leaves = "SELECT unit_id FROM unit_ancestry WHERE ancestor_code = :code"
    bind: dict = {"code": code}
    if dialect == "postgresql":  # a range on reported_at: the index (leaf, time, status)
        within = (
            "c.reported_at >= CAST(:start AS timestamp) AT TIME ZONE :tz "
            "AND c.reported_at < CAST(:end AS timestamp) AT TIME ZONE :tz"
        )
        bind |= {"start": q.period.start, "end": q.period.end + dt.timedelta(days=1)}
        bind |= parts.binds
    else:
        within = parts.day("c.reported_at") + " BETWEEN :start AND :end"
        bind |= {"start": q.period.start.isoformat(), "end": q.period.end.isoformat()}
    sql = (
        f'SELECT c.status, COUNT(*) FROM "case" c WHERE c.leaf_unit_id IN ({leaves}) '
        f"AND {within} GROUP BY c.status"
    )
    counts = dict(session.execute(text(sql), bind).all())

    items = [
        {
            "key": s,
            "label_zh": STEP_NAMES_ZH[s],
            "label_en": s,
            "value": float(counts.get(s, 0)),
            "numerator": float(counts.get(s, 0)),
            "denominator": None,
            "low_count": False,
        }
        for s in STEPS
    ]
    return {**q.describe(), "unit": code, "by": "status", "items": items}


__all__ = [
    "MetricsError",
    "breakdown",
    "children_metrics",
    "children_of",
    "list_metrics",
    "ranking",
    "timeseries",
    "unit_summary",
    "unit_values",
]
