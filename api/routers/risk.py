"""The stability-risk register (稳评): items, their assessment, report, decision and
follow-up, and the agencies. Thin: each route calls one service function."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import CurrentUser, SessionDep
from api.schemas.risk import AgencyIn, AssignIn, DecisionIn, FollowUpIn, RiskItemIn
from api.services import risk, risk_assess, risk_follow, risk_views
from api.services.risk_review import RiskReportBody

router = APIRouter(tags=["risk"])


@router.get("/risk-items")
def get_risk_items(
    session: SessionDep,
    user: CurrentUser,
    kind: Literal["decision", "project", "large_event", "gathering", "religious"] | None = None,
    status: Literal["registered", "assessing", "assessed", "decided", "open"] | None = None,
    risk_level: Literal["high", "medium", "low"] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
    place: bool = False,
) -> dict:
    """The register: items decided in your jurisdiction or whose area overlaps it (an
    assessor: its agency's), by planned date, newest first."""
    return risk_views.list_items(
        session, user, kind=kind, status=status, risk_level=risk_level, start=start, end=end,
        limit=limit, with_place=place,
    )  # fmt: skip


@router.post("/risk-items", status_code=201)
def post_risk_item(session: SessionDep, user: CurrentUser, item: RiskItemIn) -> dict:
    """登记: register an item (admin, official)."""
    new = risk.NewItem(**item.model_dump())
    created = risk.register_item(session, user, new)
    return risk_views.item_detail(session, user, created.id)


@router.get("/risk-items/calendar")
def get_risk_calendar(
    session: SessionDep, user: CurrentUser, days: Annotated[int, Query(ge=1, le=366)] = 60
) -> dict:
    """The coming large events, gatherings and religious activities with their risk level."""
    return {"events": risk_views.coming_events(session, user, days)}


@router.get("/risk-items/{risk_item_id}")
def get_risk_item(session: SessionDep, user: CurrentUser, risk_item_id: int) -> dict:
    """One item: place, assessment, reports' review results, decision, links, follow-ups."""
    return risk_views.item_detail(session, user, risk_item_id)


@router.post("/risk-items/{risk_item_id}/assessment")
def post_assessment(
    session: SessionDep, user: CurrentUser, risk_item_id: int, body: AssignIn
) -> dict:
    """评估: assign the item to a registered agency (admin, official)."""
    risk_assess.assign_agency(session, user, risk_item_id, body.agency, body.due_at)
    return risk_views.item_detail(session, user, risk_item_id)


@router.post("/risk-items/{risk_item_id}/report")
def post_report(
    session: SessionDep, user: CurrentUser, risk_item_id: int, body: RiskReportBody
) -> dict:
    """报告提交 + 自动审查: the agency's report, reviewed by the rules; a failing one is kept
    as a draft and lists each failed rule with its reason."""
    report = risk_assess.submit_report(session, user, risk_item_id, body)
    return risk_views.report_out(report)


@router.get("/risk-items/{risk_item_id}/report")
def get_report(
    session: SessionDep,
    user: CurrentUser,
    risk_item_id: int,
    number: Annotated[int | None, Query(ge=1)] = None,
) -> dict:
    """The item's latest report (or report ``number``); every read is audited."""
    return risk_views.report_out(risk_assess.read_report(session, user, risk_item_id, number))


@router.post("/risk-items/{risk_item_id}/decision")
def post_decision(
    session: SessionDep, user: CurrentUser, risk_item_id: int, body: DecisionIn
) -> dict:
    """决策: record the decision; without a passed assessment it is flagged."""
    risk_follow.decide(
        session, user, risk_item_id, body.decision, body.decided_at, body.follow_days
    )
    return risk_views.item_detail(session, user, risk_item_id)


@router.post("/risk-items/{risk_item_id}/follow-up")
def post_follow_up(
    session: SessionDep, user: CurrentUser, risk_item_id: int, body: FollowUpIn
) -> dict:
    """跟踪: record the follow-up review due 30 or 90 days after the decision as done."""
    risk_follow.record_follow_up(session, user, risk_item_id, body.days, body.note, body.done_at)
    return risk_views.item_detail(session, user, risk_item_id)


@router.get("/agencies")
def get_agencies(session: SessionDep, user: CurrentUser) -> dict:
    """The assessment agencies: workload, review failure rate, share of their assessed
    items followed by incidents (over the items you may read)."""
    return risk_views.list_agencies(session, user)


@router.post("/agencies", status_code=201)
def post_agency(session: SessionDep, user: CurrentUser, body: AgencyIn) -> dict:
    """Register an assessment agency (admin)."""
    agency = risk_views.register_agency(session, user, body.code, body.name, body.kind)
    return {"code": agency.code, "name": agency.name, "kind": agency.kind}
