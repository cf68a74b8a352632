"""Early-warning alerts and the 平安指数 safety index, scoped to the caller's jurisdiction."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.alerts.data import reported_range
from api.alerts.lifecycle import alert_counts, get_alert, list_alerts
from api.alerts.pattern import unit_pattern
from api.alerts.safety import safety_index
from api.deps import Reader, ScopedUnit, SessionDep
from api.domain import CATEGORY_BY_CODE
from api.errors import ApiError

router = APIRouter(tags=["alerts"])


@router.get("/alerts")
def alerts(
    session: SessionDep,
    user: Reader,
    unit: Annotated[str | None, Query(max_length=32)] = None,
    status: Literal["open", "closed", "all"] = "open",
    kind: Literal["caseload", "overdue", "unstaffed_grid", "slow_response"] | None = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict:
    """Alerts on units under ``unit`` (default: your home unit), open ones first and the
    most significant first; each says observed against expected and since when."""
    if category is not None and category not in CATEGORY_BY_CODE:
        raise ApiError(
            400, f"unknown category {category!r}: use one of {', '.join(CATEGORY_BY_CODE)}"
        )
    found = list_alerts(session, user, unit, status, kind, category, limit)
    return {
        "unit": unit or user.unit_code,
        "status": status,
        "count": len(found),
        "by_kind": alert_counts(found),
        "alerts": found,
    }


@router.get("/alerts/{alert_id}")
def alert_detail(
    session: SessionDep, user: Reader, alert_id: Annotated[int, Path(ge=1, le=2**62)]
) -> dict:
    """One alert with its peak and the observed-against-expected trace of its days."""
    found = get_alert(session, user, alert_id)
    if found is None:
        raise ApiError(404, f"no alert {alert_id} in your jurisdiction")
    return found


@router.get("/units/{code}/safety-index")
def unit_safety_index(
    session: SessionDep,
    unit: ScopedUnit,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", examples=["2024-03"])] = None,
) -> dict:
    """平安指数 of a unit for a month (YYYY-MM, default: the latest month with cases):
    0–100 with every weighted component (value, score, weight, contribution); see
    docs/safety_index.md."""
    span = reported_range(session)
    if month is None:  # the month of the latest cases (a seeded or stale world has no "now")
        first = (span[1] if span else dt.date.today()).replace(day=1)
    else:
        try:
            first = dt.date.fromisoformat(month + "-01")
        except ValueError:
            raise ApiError(400, f"month {month!r} is not a month: use YYYY-MM") from None
        if span is None:
            raise ApiError(400, "there are no cases yet: no month has a safety index")
        if not span[0].replace(day=1) <= first <= span[1]:
            raise ApiError(
                400,
                f"month {month} is outside the data: give a month from "
                f"{span[0]:%Y-%m} to {span[1]:%Y-%m} (the months with reported cases)",
            )
    result = safety_index(session, [unit.code], first)[unit.code]
    return {"unit": unit.code, "name": unit.name, "level": unit.level, **result}


@router.get("/units/{code}/caseload-pattern")
def caseload_pattern(
    session: SessionDep,
    unit: ScopedUnit,
    category: Annotated[str | None, Query(max_length=32)] = None,
    days: Annotated[int, Query(ge=7, le=730)] = 120,
) -> dict:
    """A unit's cases of the last 7 days, day by day, against what its own pattern
    expects (all cases or one category): the evidence behind its caseload alerts."""
    if category is not None and category not in CATEGORY_BY_CODE:
        raise ApiError(
            400, f"unknown category {category!r}: use one of {', '.join(CATEGORY_BY_CODE)}"
        )
    return unit_pattern(session, unit, category, days)
