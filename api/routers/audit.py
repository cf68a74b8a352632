"""The audit log, for admins, limited to the actors of their subtree."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api.deps import Admin, SessionDep
from api.services.audit import list_audit

router = APIRouter(tags=["audit"])


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    user_name: str | None
    unit_code: str | None
    action: str
    target: str | None
    detail: dict[str, Any] | None


class AuditPage(BaseModel):
    """One page, newest first; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[AuditEntry]
    next_cursor: int | None


@router.get("/audit", response_model=AuditPage)
def read_audit(
    session: SessionDep,
    user: Admin,
    action: Annotated[
        str | None,
        Query(max_length=32, description="exact action, or a prefix ending in '.' (login.)"),
    ] = None,
    name: Annotated[str | None, Query(alias="user", max_length=64)] = None,
    start: Annotated[dt.date | None, Query(description="first day (UTC), inclusive")] = None,
    end: Annotated[dt.date | None, Query(description="last day (UTC), inclusive")] = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Who did what: exports, case changes, logins, token changes — of your subtree."""
    entries = list_audit(
        session,
        user,
        action=action,
        user_name=name,
        start=dt.datetime.combine(start, dt.time(), dt.UTC) if start else None,
        end=dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
        if end and end < dt.date.max
        else None,
        before_id=cursor,
        limit=limit + 1,
    )
    more = len(entries) > limit
    entries = entries[:limit]
    return AuditPage(
        items=[AuditEntry.model_validate(e) for e in entries],
        next_cursor=entries[-1].id if more else None,
    )
