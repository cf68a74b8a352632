"""Cases: intake (one or a batch), the scoped list, and the 接-约-办-访-评 workflow."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from api.deps import CaseReader, CaseWriter, CurrentUser, SessionDep
from api.errors import ApiError
from api.schemas.cases import (
    MAX_BATCH,
    BatchError,
    CaseActionIn,
    CaseAdvance,
    CaseIn,
    CaseOut,
    CasePage,
    IngestOut,
    parse_batch,
)
from api.services.case_workflow import advance_case, list_cases
from api.services.cases import frame_from_items, ingest_frame
from api.services.desk import ActionRequest, act
from api.services.desk_queue import case_detail, work_queue

router = APIRouter(prefix="/cases", tags=["cases"])


async def capped_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes the app's ``max_body_bytes``
    (20 MiB by default; ``RequestLimits`` guards it too). A typical batch of 5,000 cases is
    a few MB; a 10 MB description inside a smaller body is a rejected item, with its reason.
    """
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    too_big = f"the body is larger than {limit:,} bytes: send smaller batches"
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, too_big)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, too_big)
        chunks.append(chunk)
    return b"".join(chunks)


Body = Annotated[bytes, Depends(capped_body)]


@router.post(
    "",
    response_model=IngestOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            CaseIn.model_json_schema(),
                            {
                                "type": "array",
                                "items": CaseIn.model_json_schema(),
                                "minItems": 1,
                                "maxItems": MAX_BATCH,
                            },
                        ]
                    }
                }
            },
        }
    },
)
def post_cases(session: SessionDep, user: CaseWriter, body: Body) -> dict:
    """Submit one case or a batch (≤ 5,000); idempotent on (source, external_id). Each item
    is created, unchanged, updated or rejected (with the reason); good items land."""
    try:
        items, bad, _ = parse_batch(body)
    except BatchError as exc:
        raise ApiError(exc.status, str(exc)) from None
    report = ingest_frame(
        session,
        frame_from_items(items),
        user_name=user.name,
        scope_code=user.unit_code,
        prior=bad,
    )
    return report.as_dict()


@router.get("", response_model=CasePage)
def get_cases(
    session: SessionDep,
    user: CaseReader,
    unit: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[str | None, Query(description="a step, open or closed")] = None,
    category: str | None = None,
    channel: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    period: Annotated[
        str | None, Query(max_length=16, description="2026, 2026-Q3, 2026-10, 2026-W05, last-30d")
    ] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    queue: Annotated[
        Literal["mine"] | None, Query(description="mine: your work queue, most urgent first")
    ] = None,
    show: Annotated[
        str | None, Query(max_length=16, description="with queue: open|overdue|due_soon|awaiting")
    ] = None,
) -> dict:
    """Cases in your jurisdiction (or in ``unit``'s subtree), newest first, cursor-paged;
    with ``queue=mine``, your work queue (cases your unit or department handles, open or
    awaiting 访/评), most urgent first, filtered by ``show`` and ``category``."""
    if queue == "mine":
        return work_queue(session, user, show=show, category=category, limit=limit)
    return list_cases(
        session,
        user,
        unit_code=unit,
        status=status,
        category=category,
        channel=channel,
        start=start,
        end=end,
        period=period,
        overdue=overdue,
        limit=limit,
        cursor=cursor,
    )


@router.patch("/{case_id}", response_model=CaseOut)
def patch_case(session: SessionDep, user: CaseWriter, case_id: int, move: CaseAdvance) -> dict:
    """Advance a case one step of 接-约-办-访-评; an illegal move is a 409 with the reason."""
    return advance_case(
        session,
        user,
        case_id,
        move.step,
        at=move.at,
        outcome=move.outcome,
        satisfaction=move.satisfaction,
    )


@router.get("/{case_id}")
def get_case(session: SessionDep, user: CaseReader, case_id: int) -> dict:
    """One case in your jurisdiction: its state, its timeline (who did what, when, from
    whom to whom, why) and the actions you may take on it now."""
    return case_detail(session, user, case_id)


@router.post("/{case_id}/actions")
def post_action(session: SessionDep, user: CurrentUser, case_id: int, body: CaseActionIn) -> dict:
    """Act on a case (受理 下派 上报 转办 退回 约 办 访 评, notes): 409 with the case's
    current state on a stale ``version``; a ``key`` sent again returns what it did."""
    return act(session, user, case_id, ActionRequest(**body.model_dump()))
