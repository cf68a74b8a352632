"""The metric services the routers and the dashboard call: unit detail, children's figures,
time series, breakdown, ranking and choropleth values. Every function takes a unit that the
caller already holds in scope (``check_scope``); everything below it is in scope too."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.domain import CATEGORY_BY_CODE, CHANNEL_BY_CODE, STEPS
from api.engine.domains.cases import CASES
from api.engine.figures import Figures, Frame, evaluate, is_low_count
from api.engine.periods import (
    Period,
    PeriodError,
    bins,
    compare_period,
    resolve_period,
)
from api.engine.registry import MEASURES, REGISTRY, Metric, get_metric
from api.engine.sql import SqlDialect
from api.engine.state import State, engine_state
from api.engine.stats import eb_smooth
from api.engine.units import UnderKey
from api.services.auth import Principal
from api.settings import get_settings


class MetricsError(ValueError):
    """A request the engine cannot answer (unknown metric, bad period...): a 4xx."""


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass
class Query:
    """A resolved request: metric, period, comparison period."""

    metric: Metric
    period: Period
    previous: Period | None
    compare: str | None
    smooth: str | None = None
    min_denominator: int = 10  # rates resting on fewer cases (or items) are low_count


def resolve_query(
    session: Session,
    metric: str,
    start: str | None = None,
    end: str | None = None,
    period: str | None = None,
    compare: str | None = None,
    smooth: str | None = None,
    min_denominator: int | None = None,
) -> tuple[State, Query]:
    """The engine state and the request, checked; MetricsError says what is wrong.
    ``min_denominator``: the low-count threshold (default: the settings')."""
    try:
        m = get_metric(metric)
    except KeyError as exc:
        raise MetricsError(exc.args[0]) from None
    if compare in ("", "none"):
        compare = None
    if smooth not in (None, "", "none", "eb"):
        raise MetricsError(f"bad smooth {smooth!r}: use eb (empirical Bayes) or none")
    if smooth == "eb" and m.kind != "per_capita":
        raise MetricsError(f"smooth=eb applies to per-capita rates, not to {m.id!r}")
    state = engine_state(session)
    try:
        p = resolve_period(start, end, last_data_day(state), period)
        prev = compare_period(p, compare)
    except PeriodError as exc:
        raise MetricsError(str(exc)) from None
    if min_denominator is None:
        min_denominator = get_settings().min_denominator
    return state, Query(m, p, prev, compare, smooth if smooth == "eb" else None, min_denominator)


def last_data_day(state: State) -> dt.date:
    """The last day a case was reported (today when there are none)."""
    return state.last_fact_day()


def list_metrics() -> list[dict]:
    """Every metric of the registry."""
    return [m.describe() for m in REGISTRY.values()]


# ---------------------------------------------------------------- units


def unit_summaries(state: State) -> dict[int, dict]:
    """``unit_summary`` of every code index, built once per boundaries version."""
    return {i: s.as_dict() for i, s in enumerate(state.units.summaries)}


def unit_summary(state: State, i: int) -> dict:
    u = state.units
    return {
        "code": u.codes[i],
        "name": u.name[i],
        "level": u.level[i],
        "parent_code": u.parent[i],
        "is_leaf": u.is_leaf(u.codes[i]),
        "current": bool(u.current[i]),
    }


def unit_detail(session: Session, who: Principal, code: str) -> dict:
    """The unit, its ancestors up to the caller's root (breadcrumb, root first), its current
    children with their level, and whether it is a leaf."""
    state = engine_state(session)
    u = state.units
    i = u.index[code]
    ancestors = []
    parent = u.parent[i]
    if code != who.unit_code:
        while parent is not None and parent in u.index:
            ancestors.append(unit_summary(state, u.index[parent]))
            if parent == who.unit_code:
                break
            parent = u.parent[u.index[parent]]
    children = [unit_summary(state, j) for j in u.children.get(code, []) if u.current[j]]
    depth = u.depth.get(u.level[i])
    return {
        **unit_summary(state, i),
        "depth": depth,
        "ancestors": ancestors[::-1],
        "children": children,
        "child_levels": sorted({c["level"] for c in children}, key=lambda lv: u.depth.get(lv, 0)),
    }


def children_of(state: State, code: str, period: Period | None) -> list[int]:
    """Code indexes of the children of ``code`` that existed during ``period`` (current
    children when no period), sorted by code."""
    u = state.units
    out = []
    for j in u.children.get(code, []):
        if period is None:
            if u.current[j]:
                out.append(j)
        elif u.valid_from[j] <= period.end and (
            u.valid_to[j] is None or u.valid_to[j] > period.start
        ):
            out.append(j)
    return out


# ---------------------------------------------------------------- figures


def _figures(
    state: State,
    q: Query,
    shown: list[int],
    period: Period | None,
    within: int | None = None,
    intervals: bool = True,
    memo_key: UnderKey | None = None,
) -> Figures:
    frame = Frame(state, shown, period if q.metric.timed else None, within, memo_key)
    return evaluate(q.metric, frame, intervals)


def figure_rows(state: State, q: Query, shown: list[int], within: int | None = None) -> list[dict]:
    """One row per unit: its summary (code, name, level...), value, numerator, denominator,
    count, low_count, 95% interval, previous value and change (and the smoothed value with
    smooth=eb). ``within``: count only what lay under that unit (see ``Frame``)."""
    return rows_of(state, shown, figure_columns(state, q, shown, within))


def rows_of(state: State, shown: list[int], columns: dict[str, np.ndarray | list]) -> list[dict]:
    """One dict per unit shown: its summary, then its value in each column (NaN → None)."""
    summaries = unit_summaries(state)
    names = list(columns)
    values = [_python_values(column) for column in columns.values()]
    return [
        {**summaries[i], **dict(zip(names, row, strict=True))}
        for i, row in zip(shown, zip(*values, strict=True), strict=True)
    ]


def figure_columns(
    state: State,
    q: Query,
    shown: list[int],
    within: int | None = None,
    memo_key: UnderKey | None = None,
) -> dict[str, np.ndarray]:
    """``figure_rows`` without the unit summaries, as columns in ``shown`` order: floats
    (NaN where there is no value) and the ``low_count`` booleans. ``memo_key``: see
    ``Frame``."""
    fig = _figures(state, q, shown, q.period, within, memo_key=memo_key)
    prev = None
    if q.previous is not None and q.metric.timed:
        prev = _figures(state, q, shown, q.previous, within, False, memo_key)
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
    if q.compare:
        now = np.asarray(fig.value, dtype=float)
        before = np.asarray(prev.value, dtype=float) if prev is not None else np.full(n, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            change = now - before
            pct = np.where(before != 0, change / np.abs(before), np.nan)
        columns |= {
            "previous": _column(before, n),
            "change": _column(change, n),
            "change_pct": _column(pct, n),
        }
    return columns


def _column(values: np.ndarray | None, n: int) -> np.ndarray:
    """Floats, NaN where the value is missing (NaN, infinite or no array)."""
    if values is None:
        return np.full(n, np.nan)
    arr = np.array(values, dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def _python_values(column: np.ndarray | list) -> list:
    """A column as Python values: floats with None for NaN, booleans, ints."""
    if not isinstance(column, np.ndarray):
        return list(column)
    if column.dtype.kind != "f":
        return column.tolist()
    out = column.astype(object)
    out[np.isnan(column)] = None
    return out.tolist()


def describe_query(q: Query) -> dict:
    return {
        "metric": q.metric.describe(),
        "period": q.period.describe(),
        "compare": q.compare,
        "previous_period": q.previous.describe() if q.previous else None,
        "smooth": q.smooth,
    }


def children_metrics(session: Session, code: str, **params) -> dict:
    """The metric for each child of ``code`` and for the unit itself (``self``). A unit
    without children is its own leaf: ``children`` is empty, ``self`` carries its figures."""
    state, q = resolve_query(session, **params)
    i = state.units.index[code]
    kids = children_of(state, code, q.period if q.metric.timed else None)
    rows = figure_rows(state, q, [*kids, i], within=i)
    return {**describe_query(q), "unit": code, "self": rows[-1], "children": rows[:-1]}


def unit_values(session: Session, code: str, metrics: list[str], **params) -> dict[str, dict]:
    """Several metrics for one unit (the dashboard's KPI tiles)."""
    out = {}
    for metric in metrics:
        state, q = resolve_query(session, metric, **params)
        out[metric] = figure_rows(state, q, [state.units.index[code]])[0]
    return out


def ranking(session: Session, code: str, **params) -> dict:
    """Children sorted best first (by value; ties by code), with their rank in the
    comparison period (default: the previous period) and the rank change."""
    params.setdefault("compare", "prev")
    if not params.get("compare"):
        params["compare"] = "prev"
    state, q = resolve_query(session, **params)
    kids = children_of(state, code, q.period if q.metric.timed else None)
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
    return {**describe_query(q), "unit": code, "items": rows}


def timeseries(session: Session, code: str, interval: str = "month", **params) -> dict:
    """The metric for the unit in consecutive day/week/month bins of the period
    (default period: the last 365 days of data), with the same bins a year before when
    compare=yoy."""
    if not params.get("start") and not params.get("end") and not params.get("period"):
        params["period"] = "last-365d"
    compare = params.pop("compare", None)
    state, q = resolve_query(session, **params)
    if not q.metric.timed:
        raise MetricsError(f"{q.metric.id!r} describes the grid network now: no time series")
    try:
        parts = bins(q.period, interval)
    except PeriodError as exc:
        raise MetricsError(str(exc)) from None
    i = state.units.index[code]
    points = []
    low_min = q.min_denominator
    for part in parts:
        fig = _figures(state, q, [i], part)
        point = {
            "start": part.start.isoformat(),
            "end": part.end.isoformat(),
            "value": _num(fig.value[0]),
            "numerator": _num(fig.numerator[0]),
            "denominator": _num(fig.denominator[0]) if fig.denominator is not None else None,
            "count": _num(fig.count[0]),
            "low_count": bool(is_low_count(q.metric, fig.count, low_min)[0]),
        }
        if compare:
            try:
                before = compare_period(part, compare)
            except PeriodError as exc:
                raise MetricsError(str(exc)) from None
            previous = _num(_figures(state, q, [i], before).value[0])
            point["previous"] = previous
            point["change"] = (
                point["value"] - previous
                if point["value"] is not None and previous is not None
                else None
            )
        points.append(point)
    return {**describe_query(q), "unit": code, "interval": interval, "points": points}


# ---------------------------------------------------------------- breakdown


BREAKDOWN_KEYS = {d.column: [(code, *d.label(code)) for code in d.codes] for d in CASES.dimensions}


def breakdown(session: Session, code: str, by: str = "category", **params) -> dict:
    """The metric for the unit split by category, channel or workflow status (status:
    caseload only, from the cases). Period metrics come from the cube's daily rollup rows
    (in memory); stocks from one GROUP BY over the flow table of the unit's leaves."""
    state, q = resolve_query(session, **params)
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
    if m.kind == "stock":
        ref = MEASURES[m.numerator]
        stock, flow = ref.measure, ref.domain.tables.flow
        sql = (
            f"SELECT f.{by}, SUM(f.{stock.up} - f.{stock.down}) FROM {flow} f "
            f"WHERE f.leaf_unit_id IN ({leaves}) AND f.day <= :end GROUP BY f.{by}"
        )
        raw = {k: (float(v or 0), None) for k, v in session.execute(text(sql), bind)}
    else:
        raw = _period_breakdown(state, q, code, by)
    items = []
    for key, zh, en in BREAKDOWN_KEYS[by]:
        n, d = raw.pop(key, (0.0, 0.0 if m.denominator else None))
        items.append(_breakdown_item(q, key, zh, en, n, d))
    for key, (n, d) in sorted(raw.items()):  # codes outside the vocabulary, if any
        items.append(_breakdown_item(q, key, key, key, n, d))
    return {**describe_query(q), "unit": code, "by": by, "items": items}


def _period_breakdown(state: State, q: Query, code: str, by: str) -> dict:
    """{key: (numerator, denominator)} of a period metric over the unit's leaves, from the
    cube's daily rollup rows."""
    m = q.metric
    domain = MEASURES[m.numerator].domain.name
    u, cube = state.units, state.cubes[domain]
    i = u.index[code]
    leaves = state.leaves[domain].ancestor_at(u.level[i]) == i
    measures = [m.numerator] + ([m.denominator] if m.denominator else [])
    sums = cube.key_sums(q.period.start, q.period.end, leaves, by, measures)
    population = None
    if m.kind == "per_capita":
        population = _figures(state, q, [i], q.period).denominator
    out = {}
    codes = [key for key, _, _ in BREAKDOWN_KEYS[by]] + ["other"]
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


def _breakdown_item(q: Query, key: str, zh: str, en: str, n: float, d: float | None) -> dict:
    m = q.metric
    value = n if d is None else (n / d * m.scale if d else None)
    low = d is not None and (n if m.kind == "per_capita" else d) < q.min_denominator
    return {
        "key": key,
        "label_zh": zh,
        "label_en": en,
        "value": value,
        "numerator": n,
        "denominator": d,
        "low_count": bool(low),
    }


def _status_breakdown(session: Session, state: State, q: Query, code: str) -> dict:
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
    from api.domain import STEP_NAMES_ZH

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
    return {**describe_query(q), "unit": code, "by": "status", "items": items}


__all__ = [
    "CATEGORY_BY_CODE",
    "CHANNEL_BY_CODE",
    "MetricsError",
    "breakdown",
    "children_metrics",
    "list_metrics",
    "ranking",
    "timeseries",
    "unit_detail",
    "unit_values",
]
