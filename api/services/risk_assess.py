"""The register's middle steps: 评估 assign an agency, 报告提交 the agency's report and its
自动审查 review (the rules in ``api.services.risk_review``), and the audited read of a report.
A failing report is kept as a draft with each failed rule's reason; nothing is lost."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db.risk import RiskAgency, RiskAssessment, RiskItem, RiskReport, RiskReviewRule
from api.db.versions import bump_version
from api.errors import ApiError
from api.principal import Principal
from api.services.audit import audit
from api.services.risk import (
    DEFAULT_LEAD_DAYS,
    VERSION,
    _aware,
    _writer,
    agency_of,
    get_item,
    now_utc,
)
from api.services.risk_review import ReviewContext, RiskReportBody, active_rules, review

# ---------------------------------------------------------------- 评估 assign


def lead_days(session: Session) -> int:
    """The lead time the review rule ``lead_time`` asks for (days before the planned date)."""
    rule = session.get(RiskReviewRule, "lead_time")
    if rule is None or not rule.active:
        return DEFAULT_LEAD_DAYS
    return int((rule.params or {}).get("min_days", DEFAULT_LEAD_DAYS))


def assign_agency(
    session: Session,
    user: Principal,
    item_id: int,
    agency_code: str,
    due_at: dt.datetime | None = None,
    at: dt.datetime | None = None,
) -> RiskItem:
    """评估: assign the item to a registered, active agency (a reassignment withdraws the
    open assessment; its drafts stay)."""
    _writer(user)
    item = get_item(session, user, item_id, lock=True)
    agency = session.scalar(select(RiskAgency).where(RiskAgency.code == agency_code))
    if agency is None or not agency.active:
        known = session.scalars(select(RiskAgency.code).where(RiskAgency.active)).all()
        raise ApiError(
            422, f"agency: no registered agency {agency_code!r}; known: {', '.join(sorted(known))}"
        )
    if item.status in ("assessed", "decided"):
        raise ApiError(409, f"risk item {item.id} is {item.status}: it cannot be assigned again")
    at = _aware(at) if at else now_utc()
    due = (
        _aware(due_at)
        if due_at
        else _aware(item.planned_at) - dt.timedelta(days=lead_days(session))
    )
    if due < at:
        due = at if not due_at else due
    if due_at is not None and _aware(due_at) < at:
        raise ApiError(
            422, f"dates in the wrong order: due_at {due_at} is before the assignment {at}"
        )
    for open_one in session.scalars(
        select(RiskAssessment).where(
            RiskAssessment.item_id == item.id, RiskAssessment.status == "open"
        )
    ):
        open_one.status = "withdrawn"
    session.add(
        RiskAssessment(
            item_id=item.id,
            agency_id=agency.id,
            assigned_at=at,
            due_at=due,
            status="open",
            assigned_by=user.name,
        )
    )
    item.agency_id, item.assessment_due_at, item.status = agency.id, due, "assessing"
    item.version += 1
    audit(session, user.name, user.unit_code, "risk.assign", f"risk_item:{item.id}",
          {"agency": agency.code})  # fmt: skip
    bump_version(session, VERSION)
    session.commit()
    return item


# ---------------------------------------------------------------- 报告提交 + 自动审查


def submit_report(
    session: Session,
    user: Principal,
    item_id: int,
    body: RiskReportBody,
    at: dt.datetime | None = None,
) -> RiskReport:
    """报告提交 and 自动审查: store the report (every submission kept), review it by the
    rules in the table; passed → the item is assessed at the report's level; failed → a
    draft with each rule's reason, back to the agency."""
    if user.role not in ("assessor", "admin"):
        raise ApiError(403, f"role {user.role!r} cannot submit reports (an assessor does)")
    item = get_item(session, user, item_id, lock=True)
    if user.role == "assessor":
        agency = agency_of(session, user)
        if agency is None or agency.id != item.agency_id:
            raise ApiError(404, f"no risk item {item_id} assigned to your agency")
    if item.status != "assessing":
        raise ApiError(
            409, f"risk item {item.id} is {item.status}: reports are taken while it is assessed"
        )
    assessment = session.scalar(
        select(RiskAssessment).where(
            RiskAssessment.item_id == item.id, RiskAssessment.status == "open"
        )
    )
    at = _aware(at) if at else now_utc()
    if at < _aware(assessment.assigned_at):
        raise ApiError(422, f"dates in the wrong order: submitted {at} before the assignment")
    local = dt.timedelta(hours=8)  # dates as the center reads them (Asia/Shanghai)
    ctx = ReviewContext(
        item.people_affected,
        (_aware(item.planned_at) + local).date(),
        (at + local).date(),
    )
    failures = review(active_rules(session), body, ctx)
    number = (session.scalar(
        select(func.max(RiskReport.number)).where(RiskReport.item_id == item.id)
    ) or 0) + 1  # fmt: skip
    report = RiskReport(
        item_id=item.id,
        assessment_id=assessment.id,
        agency_id=assessment.agency_id,
        number=number,
        status="draft" if failures else "passed",
        body=body.model_dump(mode="json"),
        failures=[f.as_dict() for f in failures],
        risk_level=body.risk_level,
        submitted_at=at,
        submitted_by=user.name,
    )
    session.add(report)
    if not failures:
        assessment.status, assessment.passed_at = "passed", at
        item.status, item.risk_level, item.assessed_at = "assessed", body.risk_level, at
    item.version += 1
    audit(session, user.name, user.unit_code, "risk.report.submit", f"risk_item:{item.id}",
          {"number": number, "passed": not failures})  # fmt: skip
    bump_version(session, VERSION)
    session.commit()
    return report


def read_report(
    session: Session, user: Principal, item_id: int, number: int | None = None
) -> RiskReport:
    """A report of the item (the latest unless ``number``); every read is audited."""
    item = get_item(session, user, item_id)
    stmt = select(RiskReport).where(RiskReport.item_id == item.id)
    if user.role == "assessor":  # an earlier agency's drafts are not this agency's to read
        stmt = stmt.where(RiskReport.agency_id == item.agency_id)
    if number is not None:
        stmt = stmt.where(RiskReport.number == number)
    report = session.scalar(stmt.order_by(RiskReport.number.desc()).limit(1))
    if report is None:
        raise ApiError(404, f"risk item {item_id} has no report{f' {number}' if number else ''}")
    audit(session, user.name, user.unit_code, "risk.report.read", f"risk_item:{item.id}",
          {"number": report.number})  # fmt: skip
    session.commit()
    return report
