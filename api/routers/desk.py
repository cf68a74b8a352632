"""The case desk's reads beside the cases: departments (职能部门) of a unit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Reader, SessionDep
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
