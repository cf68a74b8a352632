"""Rollup maintenance: the three rollup tables kept in step with table ``case``.

Two paths produce exactly the same rows:

- ``apply_case_changes`` moves the counts of created, changed or deleted cases (deltas
  summed with numpy/pandas, inside the caller's transaction, one
  ``INSERT .. ON CONFLICT DO UPDATE`` per table);
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Table, delete, text
from sqlalchemy.orm import Session

from api.db.models import Case, CaseCloseHistogram, CaseFlowDaily, CaseRollupDaily
from api.db.versions import bump_version
from api.domain import MEDIATION_OUTCOMES
from api.engine import changelog
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


def _utc_us(values) -> np.ndarray:
    """Datetimes (aware, or naive UTC), pandas or numpy, as datetime64[us] UTC (NaT for
    None)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[us]")
    stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
    return stamps.dt.tz_localize(None).to_numpy("datetime64[us]")


def _local_days(at: np.ndarray) -> np.ndarray:
    """Local day (settings' zone, with its history) of each UTC instant, datetime64[D]."""
    zone = get_settings().timezone
    local = pd.DatetimeIndex(at).tz_localize("UTC").tz_convert(zone).tz_localize(None)
    return local.to_numpy("datetime64[D]")


def _floor_seconds(at: np.ndarray) -> np.ndarray:
    return at.astype("datetime64[us]").astype(np.int64) // 1_000_000


def case_columns(snaps: Sequence[CaseSnapshot]) -> dict[str, np.ndarray]:
    """Snapshots as the columns ``apply_case_columns`` takes."""

    def col(name: str) -> list:
        return [getattr(s, name) for s in snaps]

    return {
        "leaf_unit_id": np.array(col("leaf_unit_id"), dtype=np.int64),
        "reported_at": _utc_us(col("reported_at")),
        "category": np.array(col("category"), dtype=object),
        "channel": np.array(col("channel"), dtype=object),
        "deadline": _utc_us(col("deadline")),
        "handled_at": _utc_us(col("handled_at")),
        "visited_at": _utc_us(col("visited_at")),
        "evaluated_at": _utc_us(col("evaluated_at")),
        "outcome": np.array(col("outcome"), dtype=object),
        "satisfaction": np.array(
            [np.nan if v is None else float(v) for v in col("satisfaction")], dtype=np.float64
        ),
    }


def _deltas(cases: Mapping[str, np.ndarray], sign: np.ndarray):
    """The summed contributions of ``cases`` (each counted ``sign`` times: +1 added, -1
    removed) to the three tables, as frames keyed like the tables; all-zero rows dropped.

    Vectorised; the same rules as ``rebuild_rollups``' SQL (see the module docstring)."""
    n = len(sign)
    leaf = np.asarray(cases["leaf_unit_id"], dtype=np.int64)
    category = np.asarray(cases["category"], dtype=object)
    reported = _utc_us(cases["reported_at"])
    deadline = _utc_us(cases["deadline"])
    handled = _utc_us(cases["handled_at"]) if "handled_at" in cases else np.full(n, "NaT", "M8[us]")
    closed = ~np.isnat(handled)
    day = _local_days(reported)
    sign = np.asarray(sign, dtype=np.int64)
    zero = np.zeros(n, dtype=np.int64)

    def optional(name: str, default) -> np.ndarray:
        return np.asarray(cases[name]) if name in cases else default

    visited = ~np.isnat(_utc_us(optional("visited_at", np.full(n, "NaT", "M8[us]"))))
    outcome = optional("outcome", np.full(n, None, dtype=object))
    satisfaction = np.asarray(optional("satisfaction", np.full(n, np.nan)), dtype=np.float64)
    rated = ~np.isnan(satisfaction)
    with np.errstate(invalid="ignore"):
        late = closed & (handled > deadline)
        secs = np.where(
            closed, np.maximum(0, _floor_seconds(handled) - _floor_seconds(reported)), 0
        )
    measures = {
        "cases": sign,
        "closed": sign * closed,
        "closed_on_time": sign * (closed & ~late),
        "mediated": sign * np.isin(outcome, list(MEDIATION_OUTCOMES)),
        "mediation_success": sign * (outcome == "mediated_success"),
        "visited": sign * visited,
        "evaluated": sign * rated,
        "satisfied": sign * (rated & (np.nan_to_num(satisfaction) >= 4)),
        "satisfaction_sum": sign * np.nan_to_num(satisfaction).astype(np.int64),
        "close_days_sum": sign * (secs / 86400.0),
    }
    keys = {"leaf_unit_id": leaf, "day": day, "category": category}
    rollup = _summed(
        pd.DataFrame({**keys, "channel": np.asarray(cases["channel"], dtype=object), **measures}),
        ["leaf_unit_id", "day", "category", "channel"],
    )

    handled_day = _local_days(handled)
    due = ~closed | late
    events = []
    for mask, days, name in (
        (np.ones(n, bool), day, "opened"),
        (closed, handled_day, "closed"),
        (due, _local_days(deadline), "became_overdue"),
        (late, handled_day, "overdue_closed"),
    ):
        if not mask.any():
            continue
        part = {m: zero[mask] for m in FLOW_MEASURES}
        part[name] = sign[mask]
        events.append(
            pd.DataFrame(
                {"leaf_unit_id": leaf[mask], "day": days[mask], "category": category[mask], **part}
            )
        )
    flow = _summed(pd.concat(events, ignore_index=True), ["leaf_unit_id", "day", "category"])

    hist = _summed(
        pd.DataFrame(
            {
                "leaf_unit_id": leaf[closed],
                "day": day[closed],
                "days": np.minimum(MAX_CLOSE_DAYS, secs[closed] // 86400),
                "n": sign[closed],
            }
        ),
        ["leaf_unit_id", "day", "days"],
    )
    return rollup, flow, hist


def _summed(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows summed per key, without the rows whose measures are all zero."""
    if frame.empty:
        return frame
    out = frame.groupby(keys, sort=False, observed=True).sum().reset_index()
    measures = [c for c in out.columns if c not in keys]
    return out[(out[measures] != 0).any(axis=1)].reset_index(drop=True)


def apply_case_changes(
    session: Session,
    changes: Iterable[tuple[CaseSnapshot | None, CaseSnapshot | None]],
    added: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Move the rollup counts for created (None, new), changed (old, new) or deleted
    (old, None) cases, and for the new cases given as columns in ``added`` (see
    ``case_columns``; a bulk of new cases need no snapshot each), in the caller's
    transaction; bumps dataset_version 'cases' and logs the deltas under the new version
    (``api.engine.changelog``: the cube catches up from them).

    The deltas are summed vectorised first, then written with one merge per table in key
    order (concurrent writers lock shared rows in the same order); rows whose counts fall
    to zero are deleted, so the tables equal what ``rebuild_rollups`` makes."""
    olds: list[CaseSnapshot] = []
    news: list[CaseSnapshot] = []
    for old, new in changes:
        if old == new:
            continue
        if old is not None:
            olds.append(old)
        if new is not None:
            news.append(new)
    parts: list[tuple[Mapping[str, np.ndarray], np.ndarray]] = []
    if olds:
        parts.append((case_columns(olds), np.full(len(olds), -1, dtype=np.int64)))
    if news:
        parts.append((case_columns(news), np.ones(len(news), dtype=np.int64)))
    if added is not None and len(added["leaf_unit_id"]):
        n = len(added["leaf_unit_id"])
        parts.append((added, np.ones(n, dtype=np.int64)))
    if not parts:
        return
    frames = [_deltas(cols, sign) for cols, sign in parts]
    rollup, flow, hist = (
        _summed(pd.concat([f[i] for f in frames], ignore_index=True), keys)
        if len(frames) > 1
        else frames[0][i]
        for i, keys in enumerate(
            (
                ["leaf_unit_id", "day", "category", "channel"],
                ["leaf_unit_id", "day", "category"],
                ["leaf_unit_id", "day", "days"],
            )
        )
    )
    _upsert_add(session, CaseRollupDaily.__table__, rollup, ROLLUP_MEASURES)
    _upsert_add(session, CaseFlowDaily.__table__, flow, FLOW_MEASURES)
    _upsert_add(session, CaseCloseHistogram.__table__, hist, ("n",))
    _delete_empty(session, CaseRollupDaily, rollup, ROLLUP_MEASURES, CaseRollupDaily.cases == 0)
    flow_empty = (
        (CaseFlowDaily.opened == 0)
        & (CaseFlowDaily.closed == 0)
        & (CaseFlowDaily.became_overdue == 0)
        & (CaseFlowDaily.overdue_closed == 0)
    )
    _delete_empty(session, CaseFlowDaily, flow, FLOW_MEASURES, flow_empty)
    _delete_empty(session, CaseCloseHistogram, hist, ("n",), CaseCloseHistogram.n == 0)
    deltas, rows = changelog.encode({"rollup": rollup, "flow": flow, "hist": hist})
    # last: the bump locks the version row until commit (concurrent writers wait here)
    changelog.record(session, bump_version(session, "cases"), deltas, rows)


def _upsert_add(
    session: Session, table: Table, rows: pd.DataFrame, measures: Sequence[str]
) -> None:
    """``INSERT .. ON CONFLICT (primary key) DO UPDATE SET m = m + excluded.m`` for ``rows``
    (a frame with the table's key and ``measures`` columns; ``day`` as datetime64[D])."""
    if rows.empty:
        return
    if session.get_bind().dialect.name == "postgresql":
        _upsert_add_arrays(session, table, rows, measures)
        return
    from sqlalchemy.dialects.sqlite import insert

    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={m: table.c[m] + stmt.excluded[m] for m in measures},
    )
    names = list(rows.columns)
    values = zip(*(_python_values(rows[c]) for c in names), strict=True)
    records = [dict(zip(names, vals, strict=True)) for vals in values]
    for i in range(0, len(records), 5000):
        session.execute(stmt, records[i : i + 5000])


def _python_values(values: pd.Series) -> list:
    if values.dtype.kind == "M":
        return [d.date() for d in pd.DatetimeIndex(values.to_numpy()).to_pydatetime()]
    return values.tolist()


def _array_literal(values: np.ndarray) -> str:
    """A column as a PostgreSQL array literal (``{1,2}``): one text parameter per column,
    made by numpy, instead of a Python object per value for the driver to adapt."""
    kind = values.dtype.kind
    if kind == "M":
        cells = np.datetime_as_string(values.astype("datetime64[D]"), unit="D")
    elif kind in "iub":
        cells = values.astype(np.int64).astype(str)
    elif kind == "f":
        cells = values.astype(np.float64).astype(str)  # shortest round-trip repr
    else:
        cells = np.array(
            ['"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values],
            dtype=object,
        )
    return "{" + ",".join(cells.tolist()) + "}"


def _upsert_add_arrays(
    session: Session, table: Table, rows: pd.DataFrame, measures: Sequence[str]
) -> None:
    """PostgreSQL: the upsert as one statement per table, each column sent as one array
    (``unnest``), the rows merged in key order: concurrent writers lock shared rows in the
    same order (no deadlock) and the primary key's index is walked in order."""
    dialect = session.get_bind().dialect
    names = list(rows.columns)
    keys = [c.name for c in table.primary_key.columns]
    types = [table.c[n].type.compile(dialect=dialect) for n in names]
    unnest = ", ".join(f"CAST(:c{i} AS {t}[])" for i, t in enumerate(types))
    alias = ", ".join(f"c{i}" for i in range(len(names)))
    order = ", ".join(f"c{names.index(k)}" for k in keys)
    columns = ", ".join(f'"{n}"' for n in names)
    sets = ", ".join(f'"{m}" = "{table.name}"."{m}" + EXCLUDED."{m}"' for m in measures)
    stmt = text(
        f'INSERT INTO "{table.name}" ({columns}) '
        f"SELECT * FROM unnest({unnest}) AS d({alias}) ORDER BY {order} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    )
    for start in range(0, len(rows), 100_000):
        part = rows.iloc[start : start + 100_000]
        params = {f"c{i}": _array_literal(part[n].to_numpy()) for i, n in enumerate(names)}
        session.execute(stmt, params)


def _delete_empty(
    session: Session, model, rows: pd.DataFrame, measures: Sequence[str], empty
) -> None:
    """Delete rows that fell to zero among the (leaf, day) pairs just touched. Only a row
    with a decreasing measure can fall to zero: new cases (increments only) delete nothing,
    which keeps intake from probing the large rollup tables."""
    if rows.empty:
        return
    falling = rows[(rows[list(measures)] < 0).any(axis=1)]
    if falling.empty:
        return
    pairs = falling[["leaf_unit_id", "day"]].drop_duplicates()
    pairs = pairs.sort_values(["leaf_unit_id", "day"])
    leaves = pairs["leaf_unit_id"].to_numpy()
    days = pairs["day"].to_numpy()
    if session.get_bind().dialect.name == "postgresql":  # exactly the pairs, not a product
        stmt = text(
            f'DELETE FROM "{model.__tablename__}" WHERE (leaf_unit_id, day) IN '
            "(SELECT * FROM unnest(CAST(:leaves AS bigint[]), CAST(:days AS date[])))"
        )
        # the "empty" condition, rendered as SQL on the same table
        condition = empty.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        stmt = text(f"{stmt.text} AND {condition}")
        for i in range(0, len(leaves), 50_000):
            session.execute(
                stmt,
                {
                    "leaves": _array_literal(leaves[i : i + 50_000]),
                    "days": _array_literal(days[i : i + 50_000]),
                },
            )
        return
    day_values = sorted(set(_python_values(pairs["day"])))
    leaf_values = sorted(set(leaves.tolist()))
    for i in range(0, len(day_values), 500):
        for j in range(0, len(leaf_values), 500):
            session.execute(
                delete(model)
                .where(model.day.in_(day_values[i : i + 500]))
                .where(model.leaf_unit_id.in_(leaf_values[j : j + 500]))
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
    ``case`` with set-based SQL (both databases); bumps 'cases' and resets the change log
    (a cube older than the rebuild reloads)."""
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
    changelog.record_reset(session, bump_version(session, "cases"))
