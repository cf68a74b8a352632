"""Rollup maintenance: the three rollup tables kept in step with table ``case``.

Two paths produce exactly the same rows:

- ``apply_case_changes`` moves the counts of created, changed or deleted cases (Python,
  inside the caller's transaction, one ``INSERT .. ON CONFLICT DO UPDATE`` per table);
- ``rebuild_rollups`` recomputes every row from ``case`` with set-based SQL.

A case's day is its ``reported_at`` in the settings' time zone (Asia/Shanghai). On
PostgreSQL the zone's name is used (``AT TIME ZONE``); SQLite has no zone database, so the
zone's current UTC offset is applied (Asia/Shanghai has had no DST since 1991).

Measures (cohort of the reported day, ``case_rollup_daily``): cases; closed (办结, handled);
closed_on_time (handled at or before the deadline); mediated (outcome mediated_success or
mediation_failed); mediation_success; visited (回访); evaluated (a satisfaction rating given,
评); satisfied (rated 4 or 5); satisfaction_sum; close_days_sum (whole seconds / 86400).

Events (``case_flow_daily``, by the day they happen): opened (reported day), closed
(handled day), became_overdue (deadline day, when still open at the deadline),
overdue_closed (handled day, when handled after the deadline).

``case_close_histogram``: closed cases by reported day and whole days to close (0..365).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, text
from sqlalchemy.orm import Session

from api.db.models import Case, CaseCloseHistogram, CaseFlowDaily, CaseRollupDaily
from api.domain import MEDIATION_OUTCOMES
from api.services.versions import bump_version
from api.settings import get_settings

MAX_CLOSE_DAYS = 365
ROLLUP_MEASURES = (
    "cases",
    "closed",
    "closed_on_time",
    "mediated",
    "mediation_success",
    "visited",
    "evaluated",
    "satisfied",
    "satisfaction_sum",
    "close_days_sum",
)
FLOW_MEASURES = ("opened", "closed", "became_overdue", "overdue_closed")


@dataclass(frozen=True)
class CaseSnapshot:
    """The fields of a case the rollups depend on."""

    leaf_unit_id: int
    reported_at: dt.datetime  # UTC-aware
    category: str
    channel: str
    deadline: dt.datetime
    handled_at: dt.datetime | None  # 办结 = closed
    visited_at: dt.datetime | None
    evaluated_at: dt.datetime | None
    outcome: str | None
    satisfaction: int | None

    @classmethod
    def of(cls, case: Case) -> CaseSnapshot:
        """The snapshot of a ``Case`` row as it is now."""
        return cls(
            leaf_unit_id=case.leaf_unit_id,
            reported_at=case.reported_at,
            category=case.category,
            channel=case.channel,
            deadline=case.deadline,
            handled_at=case.handled_at,
            visited_at=case.visited_at,
            evaluated_at=case.evaluated_at,
            outcome=case.outcome,
            satisfaction=case.satisfaction,
        )


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_day(at: dt.datetime) -> dt.date:
    """The day of instant ``at`` in the settings' time zone."""
    return at.astimezone(_zone(get_settings().timezone)).date()


def _seconds(at: dt.datetime) -> int:
    return int(at.timestamp() // 1)


def close_seconds(snap: CaseSnapshot) -> int:
    """Whole seconds from report to close (never negative); the case must be closed."""
    assert snap.handled_at is not None
    return max(0, _seconds(snap.handled_at) - _seconds(snap.reported_at))


def _contributions(snap: CaseSnapshot):
    """(rollup key, measures), [(flow key, measures)], histogram key or None."""
    day = local_day(snap.reported_at)
    closed = snap.handled_at is not None
    on_time = closed and snap.handled_at <= snap.deadline
    mediated = snap.outcome in MEDIATION_OUTCOMES
    rated = snap.satisfaction is not None
    secs = close_seconds(snap) if closed else 0
    measures = {
        "cases": 1,
        "closed": int(closed),
        "closed_on_time": int(on_time),
        "mediated": int(mediated),
        "mediation_success": int(snap.outcome == "mediated_success"),
        "visited": int(snap.visited_at is not None),
        "evaluated": int(rated),
        "satisfied": int(rated and snap.satisfaction >= 4),
        "satisfaction_sum": snap.satisfaction if rated else 0,
        "close_days_sum": secs / 86400.0,
    }
    rollup = ((snap.leaf_unit_id, day, snap.category, snap.channel), measures)
    leaf, cat = snap.leaf_unit_id, snap.category
    flows = [((leaf, day, cat), {"opened": 1})]
    if closed:
        flows.append(((leaf, local_day(snap.handled_at), cat), {"closed": 1}))
    if not closed or snap.handled_at > snap.deadline:
        flows.append(((leaf, local_day(snap.deadline), cat), {"became_overdue": 1}))
    if closed and snap.handled_at > snap.deadline:
        flows.append(((leaf, local_day(snap.handled_at), cat), {"overdue_closed": 1}))
    hist = (leaf, day, min(MAX_CLOSE_DAYS, secs // 86400)) if closed else None
    return rollup, flows, hist


def apply_case_changes(
    session: Session, changes: Iterable[tuple[CaseSnapshot | None, CaseSnapshot | None]]
) -> None:
    """Move the rollup counts for created (None, new), changed (old, new) or deleted
    (old, None) cases, in the caller's transaction; bumps dataset_version 'cases'.

    Deltas are summed in memory first, then written with one upsert per table; rows whose
    counts fall to zero are deleted, so the tables equal what ``rebuild_rollups`` makes."""
    rollup: dict[tuple, dict[str, float]] = defaultdict(lambda: dict.fromkeys(ROLLUP_MEASURES, 0))
    flow: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FLOW_MEASURES, 0))
    hist: dict[tuple, int] = defaultdict(int)
    any_change = False
    for old, new in changes:
        if old == new:
            continue
        any_change = True
        for snap, sign in ((old, -1), (new, 1)):
            if snap is None:
                continue
            (rkey, measures), flows, hkey = _contributions(snap)
            target = rollup[rkey]
            for name, value in measures.items():
                target[name] += sign * value
            for fkey, fmeasures in flows:
                for name, value in fmeasures.items():
                    flow[fkey][name] += sign * value
            if hkey is not None:
                hist[hkey] += sign
    if not any_change:
        return
    rollup_rows = [
        {"leaf_unit_id": k[0], "day": k[1], "category": k[2], "channel": k[3], **m}
        for k, m in rollup.items()
        if any(m.values())
    ]
    flow_rows = [
        {"leaf_unit_id": k[0], "day": k[1], "category": k[2], **m}
        for k, m in flow.items()
        if any(m.values())
    ]
    hist_rows = [
        {"leaf_unit_id": k[0], "day": k[1], "days": k[2], "n": n} for k, n in hist.items() if n
    ]
    _upsert_add(session, CaseRollupDaily.__table__, rollup_rows, ROLLUP_MEASURES)
    _upsert_add(session, CaseFlowDaily.__table__, flow_rows, FLOW_MEASURES)
    _upsert_add(session, CaseCloseHistogram.__table__, hist_rows, ("n",))
    _delete_empty(session, CaseRollupDaily, rollup_rows, CaseRollupDaily.cases == 0)
    flow_empty = (
        (CaseFlowDaily.opened == 0)
        & (CaseFlowDaily.closed == 0)
        & (CaseFlowDaily.became_overdue == 0)
        & (CaseFlowDaily.overdue_closed == 0)
    )
    _delete_empty(session, CaseFlowDaily, flow_rows, flow_empty)
    _delete_empty(session, CaseCloseHistogram, hist_rows, CaseCloseHistogram.n == 0)
    bump_version(session, "cases")


def _upsert_add(session: Session, table: Table, rows: list[dict], measures: Iterable[str]) -> None:
    """``INSERT .. ON CONFLICT (primary key) DO UPDATE SET m = m + excluded.m`` for ``rows``."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _upsert_add_unnest(session, table, rows, measures)
        return
    from sqlalchemy.dialects.sqlite import insert

    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={m: table.c[m] + stmt.excluded[m] for m in measures},
    )
    for i in range(0, len(rows), 5000):
        session.execute(stmt, rows[i : i + 5000])


def _upsert_add_unnest(
    session: Session, table: Table, rows: list[dict], measures: Iterable[str]
) -> None:
    """PostgreSQL: the same upsert with one array parameter per column (``unnest``), so a
    batch of tens of thousands of rows is one statement, not one per row (intake speed)."""
    from sqlalchemy import Float as FloatType
    from sqlalchemy import text as sql_text

    dialect = session.get_bind().dialect
    names = list(rows[0])
    casts = ", ".join(
        f"CAST(:c{i} AS {table.c[n].type.compile(dialect=dialect)}[])" for i, n in enumerate(names)
    )
    keys = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    sets = ", ".join(f'"{m}" = "{table.name}"."{m}" + EXCLUDED."{m}"' for m in measures)
    columns = ", ".join(f'"{n}"' for n in names)
    stmt = sql_text(
        f'INSERT INTO "{table.name}" ({columns}) SELECT * FROM unnest({casts}) '
        f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"
    )
    floats = {n for n in names if isinstance(table.c[n].type, FloatType)}
    measure_names = set(measures)
    # in key order: concurrent writers lock shared rows in the same order (no deadlock),
    # and the index is walked in order
    pk = [c.name for c in table.primary_key.columns]
    rows = sorted(rows, key=lambda r: tuple(r[k] for k in pk))
    for i in range(0, len(rows), 50_000):
        part = rows[i : i + 50_000]
        params = {}
        for j, n in enumerate(names):
            values = [r[n] for r in part]
            if n in floats:
                values = [float(v) for v in values]
            elif n in measure_names:
                values = [int(v) for v in values]
            params[f"c{j}"] = values
        session.execute(stmt, params)


def _delete_empty(session: Session, model, rows: list[dict], empty) -> None:
    """Delete rows that fell to zero among the (leaf, day) pairs just touched. Only a row
    with a decreasing measure can fall to zero: new cases (increments only) delete nothing,
    which keeps intake from probing the large rollup tables."""
    measures = [k for k in (rows[0] if rows else {}) if k not in ("leaf_unit_id", "day")]
    measures = [k for k in measures if k not in ("category", "channel", "days")]
    rows = [r for r in rows if any(r[m] < 0 for m in measures)]
    if not rows:
        return
    pairs = sorted({(r["leaf_unit_id"], r["day"]) for r in rows})
    if session.get_bind().dialect.name == "postgresql":  # exactly the pairs, not a product
        from sqlalchemy import BigInteger, Date, func, literal, select, tuple_
        from sqlalchemy.dialects.postgresql import ARRAY

        for i in range(0, len(pairs), 50_000):
            part = pairs[i : i + 50_000]
            wanted = select(
                func.unnest(literal([p[0] for p in part], ARRAY(BigInteger))),
                func.unnest(literal([p[1] for p in part], ARRAY(Date))),
            )
            session.execute(
                delete(model)
                .where(tuple_(model.leaf_unit_id, model.day).in_(wanted))
                .where(empty)
                .execution_options(synchronize_session=False)
            )
        return
    days = sorted({d for _, d in pairs})
    leaves = sorted({leaf for leaf, _ in pairs})
    for i in range(0, len(days), 500):
        for j in range(0, len(leaves), 500):
            session.execute(
                delete(model)
                .where(model.day.in_(days[i : i + 500]))
                .where(model.leaf_unit_id.in_(leaves[j : j + 500]))
                .where(empty)
                .execution_options(synchronize_session=False)
            )


# ---------------------------------------------------------------- set-based rebuild


def sql_parts(dialect: str) -> dict[str, str]:
    """SQL fragments for the local day of a timestamp and whole seconds between two."""
    tz = get_settings().timezone
    if dialect == "postgresql":
        return {
            "day": "(({col}) AT TIME ZONE :tz)::date",
            "secs": "GREATEST(0, FLOOR(EXTRACT(EPOCH FROM {b}))::bigint"
            " - FLOOR(EXTRACT(EPOCH FROM {a}))::bigint)",
            "le": "{a} <= {b}",
            "gt": "{a} > {b}",
            "max": "LEAST",
            "tz": tz,
        }
    offset = dt.datetime.now(_zone(tz)).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    return {
        "day": f"date({{col}}, '{minutes:+d} minutes')",
        "secs": "MAX(0, CAST(strftime('%s', {b}) AS INTEGER)"
        " - CAST(strftime('%s', {a}) AS INTEGER))",
        "le": "julianday({a}) <= julianday({b})",
        "gt": "julianday({a}) > julianday({b})",
        "max": "MIN",
        "tz": tz,
    }


def rebuild_rollups(session: Session) -> None:
    """Recompute case_rollup_daily, case_flow_daily, case_close_histogram from table
    ``case`` with set-based SQL (both databases); bumps 'cases'."""
    dialect = session.get_bind().dialect.name
    p = sql_parts(dialect)

    def day(col: str) -> str:
        return p["day"].format(col=col)

    secs = p["secs"].format(a="reported_at", b="handled_at")
    on_time = p["le"].format(a="handled_at", b="deadline")
    late = p["gt"].format(a="handled_at", b="deadline")
    mediation = ", ".join(f"'{o}'" for o in sorted(MEDIATION_OUTCOMES))
    for model in (CaseRollupDaily, CaseFlowDaily, CaseCloseHistogram):
        session.execute(delete(model))
    params = {"tz": p["tz"]} if dialect == "postgresql" else {}

    def run(sql: str) -> None:
        session.execute(text(sql), params)

    run(
        f"""
        INSERT INTO case_rollup_daily (leaf_unit_id, day, category, channel, cases, closed,
            closed_on_time, mediated, mediation_success, visited, evaluated, satisfied,
            satisfaction_sum, close_days_sum)
        SELECT leaf_unit_id, d, category, channel, COUNT(*),
            SUM(CASE WHEN handled_at IS NOT NULL THEN 1 ELSE 0 END),
            SUM(CASE WHEN handled_at IS NOT NULL AND {on_time} THEN 1 ELSE 0 END),
            SUM(CASE WHEN outcome IN ({mediation}) THEN 1 ELSE 0 END),
            SUM(CASE WHEN outcome = 'mediated_success' THEN 1 ELSE 0 END),
            SUM(CASE WHEN visited_at IS NOT NULL THEN 1 ELSE 0 END),
            SUM(CASE WHEN satisfaction IS NOT NULL THEN 1 ELSE 0 END),
            SUM(CASE WHEN satisfaction >= 4 THEN 1 ELSE 0 END),
            COALESCE(SUM(satisfaction), 0),
            COALESCE(SUM(CASE WHEN handled_at IS NOT NULL THEN {secs} END) / 86400.0, 0)
        FROM (SELECT c.*, {day("reported_at")} AS d FROM "case" c) AS src
        GROUP BY leaf_unit_id, d, category, channel
        """
    )
    run(
        f"""
        INSERT INTO case_flow_daily (leaf_unit_id, day, category, opened, closed,
            became_overdue, overdue_closed)
        SELECT leaf_unit_id, d, category, SUM(o), SUM(c), SUM(b), SUM(oc) FROM (
            SELECT leaf_unit_id, {day("reported_at")} AS d, category,
                1 AS o, 0 AS c, 0 AS b, 0 AS oc FROM "case"
            UNION ALL
            SELECT leaf_unit_id, {day("handled_at")}, category, 0, 1, 0, 0
                FROM "case" WHERE handled_at IS NOT NULL
            UNION ALL
            SELECT leaf_unit_id, {day("deadline")}, category, 0, 0, 1, 0
                FROM "case" WHERE handled_at IS NULL OR {late}
            UNION ALL
            SELECT leaf_unit_id, {day("handled_at")}, category, 0, 0, 0, 1
                FROM "case" WHERE handled_at IS NOT NULL AND {late}
        ) AS events
        GROUP BY leaf_unit_id, d, category
        """
    )
    run(
        f"""
        INSERT INTO case_close_histogram (leaf_unit_id, day, days, n)
        SELECT leaf_unit_id, d, b, COUNT(*) FROM (
            SELECT leaf_unit_id, {day("reported_at")} AS d,
                {p["max"]}({MAX_CLOSE_DAYS}, ({secs}) / 86400) AS b
            FROM "case" WHERE handled_at IS NOT NULL
        ) AS closed_cases
        GROUP BY leaf_unit_id, d, b
        """
    )
    bump_version(session, "cases")
