"""Unit × day matrices for the detector, read from the rollups in a few set-based queries.

Leaf rows of ``case_rollup_daily`` / ``case_flow_daily`` are summed onto every tested level
(village and town by default) through ``unit_ancestry``, in numpy.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Integer, Select, case, cast, func, literal, select
from sqlalchemy.orm import Session

from api.db.models import AdminLevel, AdminUnit, CaseFlowDaily, CaseRollupDaily, UnitAncestry
from api.domain import CATEGORIES

EPOCH = dt.date(1970, 1, 1)
TESTED_LEVELS = ("village", "town")


@dataclass
class LevelMatrix:
    """One level's matrices; ``series[0]`` all cases, ``series[1 + i]`` CATEGORIES[i]."""

    level: str
    codes: list[str]
    series: list[np.ndarray]  # units × days daily case counts
    overdue: np.ndarray  # units × days overdue open cases at the end of the day


@dataclass
class AlertData:
    """Matrices of every tested level on one day axis ``start`` … ``end``."""

    start: dt.date
    end: dt.date
    levels: list[LevelMatrix]

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=int(index))


def day_number(session: Session, column):
    """Days since 1970-01-01 of a DATE column, as an integer SQL expression."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(column - literal(EPOCH), Integer)
    return cast(func.julianday(column) - 2440587.5, Integer)


def _category_index():
    """SQL: 1 + the index of the row's category in CATEGORIES (0 for an unknown one)."""
    return case(
        {c.code: i + 1 for i, c in enumerate(CATEGORIES)}, value=CaseRollupDaily.category, else_=0
    )


def _leaf_maps(
    session: Session, levels: Sequence[str]
) -> tuple[list[str], dict[str, list[str]], dict[str, np.ndarray]]:
    """Levels present, codes per level, and per level a lookup array unit id → unit index."""
    present = set(session.scalars(select(AdminLevel.code)))
    levels = [lvl for lvl in levels if lvl in present]
    codes: dict[str, list[str]] = {}
    lookup: dict[str, np.ndarray] = {}
    max_id = session.scalar(select(func.max(AdminUnit.id))) or 0
    for lvl in levels:
        codes[lvl] = list(
            session.scalars(
                select(AdminUnit.code)
                .where(AdminUnit.level == lvl, AdminUnit.valid_to.is_(None))
                .order_by(AdminUnit.code)
            )
        )
        index = {c: i for i, c in enumerate(codes[lvl])}
        rows = session.execute(
            select(UnitAncestry.unit_id, UnitAncestry.ancestor_code).where(
                UnitAncestry.ancestor_level == lvl
            )
        ).all()
        arr = np.full(max_id + 1, -1, dtype=np.int64)
        for unit_id, code in rows:
            if code in index:
                arr[unit_id] = index[code]
        lookup[lvl] = arr
    return levels, codes, lookup


def fetch_ints(session: Session, stmt: Select, ncols: int) -> np.ndarray:
    """The rows of an all-integer query as an int64 array (rows × ``ncols``); streamed with
    COPY on PostgreSQL (millions of rows in seconds), fetched row by row elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        return np.array(session.execute(stmt).all(), dtype=np.int64).reshape(-1, ncols)
    sql = str(
        stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    )
    buf = io.BytesIO()
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        with cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:
            for chunk in copy:
                buf.write(chunk)
    finally:
        cursor.close()
    if buf.tell() == 0:
        return np.zeros((0, ncols), dtype=np.int64)
    buf.seek(0)
    return pd.read_csv(buf, sep="\t", header=None, dtype=np.int64).to_numpy().reshape(-1, ncols)


def _matrix(flat: np.ndarray, weights: np.ndarray, n_units: int, n_days: int) -> np.ndarray:
    """Units × days int32 sums of ``weights`` at flat cell indices."""
    counts = np.bincount(flat, weights=weights, minlength=n_units * n_days)
    return counts.astype(np.int32).reshape(n_units, n_days)


def data_range(session: Session) -> tuple[dt.date, dt.date] | None:
    """First and last day of the rollups (cases or flows), None when there are none."""
    lo = [
        session.scalar(select(func.min(CaseRollupDaily.day))),
        session.scalar(select(func.min(CaseFlowDaily.day))),
    ]
    hi = [
        session.scalar(select(func.max(CaseRollupDaily.day))),
        session.scalar(select(func.max(CaseFlowDaily.day))),
    ]
    lo_days = [d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in lo if d]
    hi_days = [d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in hi if d]
    if not lo_days:
        return None
    return min(lo_days), max(hi_days)


def reported_range(session: Session) -> tuple[dt.date, dt.date] | None:
    """First and last day with reported cases (None when there are none). The flow table
    runs on to the open cases' deadlines, weeks after the last report: "today" for an
    alert or an index is the last day cases came in, never a deadline in the future."""
    has = CaseRollupDaily.cases > 0
    lo = session.scalar(select(func.min(CaseRollupDaily.day)).where(has))
    hi = session.scalar(select(func.max(CaseRollupDaily.day)).where(has))
    if lo is None or hi is None:
        return None
    days = [d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in (lo, hi)]
    return days[0], days[1]


def last_reported_day(session: Session) -> dt.date:
    """The last day with reported cases (today when there are none)."""
    span = reported_range(session)
    return span[1] if span else dt.date.today()


def load_matrices(
    session: Session, end: dt.date, levels: Sequence[str] = TESTED_LEVELS
) -> AlertData | None:
    """The matrices of ``levels`` from the first day of data to ``end`` (None: no data)."""
    span = data_range(session)
    if span is None or span[0] > end:
        return None
    start = span[0]
    n_days = (end - start).days + 1
    levels, codes, lookup = _leaf_maps(session, levels)
    base = (start - EPOCH).days
    last = (end - EPOCH).days

    r = CaseRollupDaily
    cases = fetch_ints(
        session,
        select(r.leaf_unit_id, day_number(session, r.day), _category_index(), r.cases).where(
            r.day <= end
        ),
        4,
    )
    f = CaseFlowDaily
    flows = fetch_ints(
        session,
        select(
            f.leaf_unit_id, day_number(session, f.day), f.became_overdue - f.overdue_closed
        ).where(f.day <= end, (f.became_overdue != 0) | (f.overdue_closed != 0)),
        3,
    )
    n_series = 1 + len(CATEGORIES)
    out = []
    for lvl in levels:
        n_units = len(codes[lvl])
        unit = lookup[lvl][np.clip(cases[:, 0], 0, len(lookup[lvl]) - 1)]
        keep = (unit >= 0) & (cases[:, 1] <= last)
        u, d, c, n = unit[keep], cases[keep, 1] - base, cases[keep, 2], cases[keep, 3]
        cells = n_units * n_days

        flat = u * n_days + d
        series = [_matrix(flat, n, n_units, n_days)]
        for ci in range(1, n_series):
            sel = c == ci
            series.append(_matrix(flat[sel], n[sel], n_units, n_days))
        funit = lookup[lvl][np.clip(flows[:, 0], 0, len(lookup[lvl]) - 1)]
        fkeep = (funit >= 0) & (flows[:, 1] <= last)
        net = np.bincount(
            funit[fkeep] * n_days + flows[fkeep, 1] - base,
            weights=flows[fkeep, 2],
            minlength=cells,
        ).reshape(n_units, n_days)
        out.append(LevelMatrix(lvl, codes[lvl], series, np.cumsum(net, axis=1)))
    return AlertData(start=start, end=end, levels=out)
