"""Dispatch events (警情/事件): intake (one or a batch; idempotent on (source, external_id);
a re-send is a late update), the scoped list, and where help arrives within 5 minutes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.deps import CaseReader, CaseWriter, Reader, SessionDep
from api.errors import ApiError
from api.schemas.events import (
    MAX_BATCH,
    BatchError,
    EventIn,
    EventIngestOut,
    parse_events,
)
from api.services import patrol_layer  # noqa: F401  (registers the ``patrol`` map layer)
from api.services.events import ingest_events, list_events
from api.services.reach import coverage

router = APIRouter(prefix="/events", tags=["events"])


async def capped_body(request: Request) -> bytes:
    """The request body, refused with 413 past the app's ``max_body_bytes``."""
    limit = request.app.state.settings.max_body_bytes
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is larger than {limit:,} bytes: send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


Body = Annotated[bytes, Depends(capped_body)]
_SCHEMA = EventIn.model_json_schema()


@router.post(
    "",
    response_model=EventIngestOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _SCHEMA,
                            {"type": "array", "items": _SCHEMA, "maxItems": MAX_BATCH},
                        ]
                    }
                }
            },
        }
    },
)
def post_events(session: SessionDep, user: CaseWriter, body: Body) -> dict:
    """Submit one event or a batch (≤ 5,000). All or nothing: when any item is refused,
    nothing is stored and the answer (422) gives each refused item's reason."""
    try:
        items, bad = parse_events(body)
    except BatchError as exc:
        raise ApiError(exc.status, str(exc)) from None
    good = [i for i in range(len(items)) if i not in bad]
    report = ingest_events(
        session,
        [items[i] for i in good],
        indexes=good,
        prior=bad,
        user_name=user.name,
        scope_code=user.unit_code,
    )
    refused = report.count("rejected")
    if refused:
        raise ApiError(
            422,
            f"{refused} of {len(items)} event(s) refused, nothing stored: "
            + "; ".join(f"item {o.index}: {o.reason}" for o in report.items[:5]),
            items=[o.as_dict() for o in report.items],
        )
    return report.as_dict()


@router.get("")
def get_events(
    session: SessionDep,
    user: CaseReader,
    unit: Annotated[str | None, Query(max_length=32)] = None,
    type: Annotated[str | None, Query(max_length=16)] = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[int | None, Query(ge=1)] = None,
) -> dict:
    """Events in your jurisdiction (or in ``unit``'s subtree), newest first, cursor-paged."""
    return list_events(session, user, unit, type, start, end, limit, cursor)


@router.get("/coverage")
def get_coverage(
    session: SessionDep,
    user: Reader,
    unit: Annotated[str | None, Query(max_length=32)] = None,
    minutes: Annotated[float, Query(ge=1, le=30)] = 5.0,
    start: dt.date | None = None,
    end: dt.date | None = None,
    suggest: Annotated[int, Query(ge=0, le=10)] = 1,
) -> dict:
    """Where help arrives within ``minutes`` of a patrol base at the configured straight-
    line speed: the share of residents and of events inside, the reach and the gaps as
    GeoJSON, and greedy new-base suggestions with the events each would add."""
    return coverage(session, user, unit, minutes, start, end, suggest)
