"""The case desk's reads beside the cases: departments (职能部门) of a unit, and the flow
of a unit's cases level to level (a Sankey)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Reader, ScopedUnit, SessionDep
from api.errors import ApiError
from api.services.desk_flow import case_flow
from api.services.desk_queue import list_departments

router = APIRouter(tags=["desk"])


@router.get("/departments")
def departments(
    session: SessionDep,
    user: Reader,
    unit: Annotated[str | None, Query(max_length=32)] = None,
) -> list[dict]:
    """The departments of ``unit`` (or of every unit in your jurisdiction): id, unit,
    kind, name — the targets of 下派 dispatch and 转办 transfer."""
    return list_departments(session, user, unit)


@router.get("/units/{code}/flow")
def flow(
    session: SessionDep,
    unit: ScopedUnit,
    start: dt.date,
    end: dt.date,
) -> dict:
    """Where the cases of a unit went in a period (a Sankey): level to level and to
    departments (上报 下派 转办 退回), and the closes (办) at each."""
    if end < start:
        raise ApiError(422, "end is before start")
    if (end - start).days > 3660:
        raise ApiError(422, "a period of at most ten years")
    return case_flow(session, unit.code, start, end)
