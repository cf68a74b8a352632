"""A unit's caseload against its pattern, day by day: what an alert's "observed against
expected" rests on, for the unit detail screen. Same model as the detector, computed for
one unit from its own counts and its level's daily totals (two grouped queries)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.alerts.data import last_reported_day
from api.alerts.detector import DetectorConfig, score_series
from api.db.models import AdminUnit, CaseRollupDaily, UnitAncestry
from api.domain import CATEGORY_BY_CODE


def _daily(session: Session, where, start: dt.date, end: dt.date, category: str | None):
    r, ua = CaseRollupDaily, UnitAncestry
    stmt = (
        select(r.day, func.sum(r.cases))
        .join(ua, ua.unit_id == r.leaf_unit_id)
        .where(where, r.day >= start, r.day <= end)
        .group_by(r.day)
    )
    if category is not None:
        stmt = stmt.where(r.category == category)
    n_days = (end - start).days + 1
    out = np.zeros(n_days)
    for day, n in session.execute(stmt):
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
        out[(day - start).days] = n
    return out


def unit_pattern(
    session: Session,
    unit: AdminUnit,
    category: str | None = None,
    days: int = 120,
    end: dt.date | None = None,
    cfg: DetectorConfig | None = None,
) -> dict:
    """Observed 7-day cases, expected and the probability of at least that many, for the
    last ``days`` days up to ``end`` (default: the last day with reported cases); all cases or one
    category. The probability uses the unit's own dispersion only, so it can differ a
    little from the alert's (which also borrows the level's)."""
    cfg = cfg or DetectorConfig()
    if end is None:
        end = last_reported_day(session)
    history = 7 * (cfg.guard_weeks + cfg.baseline_weeks) + 7
    start = end - dt.timedelta(days=days - 1 + history)
    mine = UnitAncestry.ancestor_code == unit.code
    level = UnitAncestry.ancestor_level == unit.level  # each leaf has one such ancestor
    total = score_series(
        _daily(session, mine, start, end, None)[None, :],
        cfg,
        level_counts=_daily(session, level, start, end, None),
    )
    score = total
    if category is not None:
        score = score_series(
            _daily(session, mine, start, end, category)[None, :],
            cfg,
            ratio_fallback=total.ratio,
            level_counts=_daily(session, level, start, end, category),
        )
    keep = slice(history, None)

    def clean(x: np.ndarray, digits: int) -> list[float | None]:
        return [None if not np.isfinite(v) else round(float(v), digits) for v in x[0, keep]]

    return {
        "unit": unit.code,
        "category": category,
        "category_zh": CATEGORY_BY_CODE[category].name_zh if category else "全部案件",
        "window_days": 7,
        "days": [
            (start + dt.timedelta(days=history + i)).isoformat()
            for i in range(score.observed.shape[1] - history)
        ],
        "observed": clean(score.observed, 2),
        "expected": clean(score.expected, 2),
        "probability": [
            None if not np.isfinite(v) else float(f"{v:.3g}") for v in score.p[0, keep]
        ],
    }
