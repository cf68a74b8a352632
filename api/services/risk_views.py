"""What the risk register shows: the items a caller may read (list, one item, a map's
GeoJSON, the calendar of coming large events) and the agencies with their figures.

A unit's code is named only inside the caller's subtree: an item decided above the caller
(read because its area overlaps the caller's) shows its deciding unit's name, not its code.
"""

from __future__ import annotations

import datetime as dt

from shapely.geometry import mapping
from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session, defer

from api.db.models import AdminUnit, UnitAncestry
from api.db.risk import (
    RiskAgency,
    RiskAssessment,
    RiskFollowUp,
    RiskItem,
    RiskLink,
    RiskReport,
)
from api.errors import ApiError
from api.principal import Principal
from api.services.risk import (
    DECISION_NAMES,
    KIND_NAMES,
    _readable,
    agency_of,
    get_item,
    now_utc,
    visible,
)
from api.services.risk_follow import link_incidents

MAX_ITEMS = 2000


def _round(geom: dict) -> dict:
    def r(c):
        return (
            [r(x) for x in c]
            if isinstance(c, list | tuple) and c and isinstance(c[0], list | tuple)
            else [round(float(v), 6) for v in c]
        )

    return {"type": geom["type"], "coordinates": r(geom["coordinates"])}


def _summary(
    item: RiskItem,
    own: set[str],
    names: dict[int, tuple[str, str]],
    agencies: dict[int, RiskAgency],
) -> dict:
    name, level = names.get(item.deciding_unit_id, ("", ""))
    agency = agencies.get(item.agency_id) if item.agency_id else None
    return {
        "id": item.id,
        "kind": item.kind,
        "kind_name": KIND_NAMES[item.kind][0],
        "title": item.title,
        "deciding_unit": {
            "code": item.deciding_unit_code if item.deciding_unit_code in own else None,
            "name": name,
            "level": level,
            "above": item.deciding_unit_code not in own,
        },
        "lon": item.lon,
        "lat": item.lat,
        "planned_at": item.planned_at.isoformat(),
        "people_affected": item.people_affected,
        "department": item.department,
        "status": item.status,
        "risk_level": item.risk_level,
        "agency": {"code": agency.code, "name": agency.name} if agency else None,
        "assessment_due_at": item.assessment_due_at.isoformat() if item.assessment_due_at else None,
        "assessed_at": item.assessed_at.isoformat() if item.assessed_at else None,
        "decision": item.decision,
        "decision_name": DECISION_NAMES[item.decision][0] if item.decision else None,
        "decided_at": item.decided_at.isoformat() if item.decided_at else None,
        "without_assessment": item.decision is not None
        and (item.assessed_at is None or item.assessed_at > item.decided_at),
        "follow_until": item.follow_until.isoformat() if item.follow_until else None,
        "incidents": item.incidents,
    }


def own_codes(session: Session, user: Principal, codes: set[str]) -> set[str]:
    """Those of ``codes`` inside ``user``'s subtree (the only codes an answer may name)."""
    if not codes:
        return set()
    under = exists().where(
        UnitAncestry.unit_id == AdminUnit.id, UnitAncestry.ancestor_code == user.unit_code
    )
    return set(session.scalars(select(AdminUnit.code).where(AdminUnit.code.in_(codes), under)))


def _context(session: Session, user: Principal, items: list[RiskItem]):
    own = own_codes(session, user, {i.deciding_unit_code for i in items})
    ids = {i.deciding_unit_id for i in items}
    names = {
        uid: (name, level)
        for uid, name, level in session.execute(
            select(AdminUnit.id, AdminUnit.name, AdminUnit.level).where(AdminUnit.id.in_(ids))
        )
    } if ids else {}  # fmt: skip
    agencies = {a.id: a for a in session.scalars(select(RiskAgency))}
    return own, names, agencies


def list_items(
    session: Session,
    user: Principal,
    *,
    kind: str | None = None,
    status: str | None = None,
    risk_level: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    limit: int = 500,
    with_place: bool = False,
) -> dict:
    """The items ``user`` may read, by planned date (newest first), filtered."""
    _readable(user)
    link_incidents(session)
    stmt = select(RiskItem).where(visible(session, user))
    if not with_place:
        stmt = stmt.options(defer(RiskItem.place))
    if kind:
        stmt = stmt.where(RiskItem.kind == kind)
    if status == "open":
        stmt = stmt.where(RiskItem.status != "decided")
    elif status:
        stmt = stmt.where(RiskItem.status == status)
    if risk_level:
        stmt = stmt.where(RiskItem.risk_level == risk_level)
    if start:
        stmt = stmt.where(RiskItem.planned_at >= dt.datetime.combine(start, dt.time(), dt.UTC))
    if end:
        stmt = stmt.where(
            RiskItem.planned_at < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
        )
    items = list(
        session.scalars(
            stmt.order_by(RiskItem.planned_at.desc(), RiskItem.id.desc()).limit(
                min(limit, MAX_ITEMS)
            )
        )
    )
    own, names, agencies = _context(session, user, items)
    out = []
    for item in items:
        row = _summary(item, own, names, agencies)
        if with_place:
            row["place"] = _round(mapping(item.place))
        out.append(row)
    return {"items": out, "count": len(out)}


def item_detail(session: Session, user: Principal, item_id: int) -> dict:
    """One item with its place, assessments, reports (status and the review's reasons,
    not their text: reading a report is ``read_report``'s, and audited), links and
    follow-up reviews."""
    _readable(user)
    item = get_item(session, user, item_id)
    if item.decided_at is not None:
        link_incidents(session)
        session.refresh(item)
    own, names, agencies = _context(session, user, [item])
    out = _summary(item, own, names, agencies)
    out["place"] = _round(mapping(item.place))
    out["description"] = item.description
    reports = select(RiskReport).where(RiskReport.item_id == item.id)
    if user.role == "assessor":
        reports = reports.where(RiskReport.agency_id == item.agency_id)
    out["reports"] = [
        {
            "number": r.number,
            "status": r.status,
            "agency": agencies[r.agency_id].code,
            "submitted_at": r.submitted_at.isoformat(),
            "risk_level": r.risk_level,
            "failures": r.failures,
        }
        for r in session.scalars(reports.order_by(RiskReport.number))
    ]
    out["links"] = [
        {"kind": link.kind, "id": link.ref_id, "at": link.at.isoformat()}
        for link in session.scalars(
            select(RiskLink).where(RiskLink.item_id == item.id).order_by(RiskLink.at)
        )
    ]
    ups = select(RiskFollowUp).where(RiskFollowUp.item_id == item.id)
    today = now_utc().date()
    out["follow_ups"] = [
        {
            "days": f.days,
            "due_on": f.due_on.isoformat(),
            "done_at": f.done_at.isoformat() if f.done_at else None,
            "overdue": f.done_at is None and f.due_on < today,
        }
        for f in session.scalars(ups.order_by(RiskFollowUp.days))
    ]
    return out


def report_out(report: RiskReport) -> dict:
    """A report as the API returns it."""
    return {
        "item_id": report.item_id,
        "number": report.number,
        "status": report.status,
        "passed": report.status == "passed",
        "risk_level": report.risk_level,
        "submitted_at": report.submitted_at.isoformat(),
        "submitted_by": report.submitted_by,
        "failures": report.failures,
        "body": report.body,
    }


def coming_events(
    session: Session, user: Principal, days: int = 60, today: dt.date | None = None
) -> list[dict]:
    """The calendar: large events, gatherings and religious activities planned in the next
    ``days`` days, with their risk level (None: not assessed yet). A wall display reads
    the calendar too (not the items themselves)."""
    if user.role not in ("admin", "official", "analyst", "display", "assessor"):
        raise ApiError(403, f"role {user.role!r} cannot read the calendar of the register")
    today = today or (now_utc() + dt.timedelta(hours=8)).date()
    start = dt.datetime.combine(today, dt.time(), dt.UTC) - dt.timedelta(hours=8)
    stmt = (
        select(RiskItem)
        .where(visible(session, user))
        .where(RiskItem.kind.in_(("large_event", "gathering", "religious")))
        .where(RiskItem.planned_at >= start, RiskItem.planned_at < start + dt.timedelta(days=days))
        .order_by(RiskItem.planned_at)
        .limit(200)
    )
    items = list(session.scalars(stmt))
    own, names, agencies = _context(session, user, items)
    return [_summary(i, own, names, agencies) for i in items]


# ---------------------------------------------------------------- agencies


def list_agencies(session: Session, user: Principal) -> dict:
    """The agencies and, over the items ``user`` may read: workload (open assessments),
    assessments, reports and how many failed review, items assessed and how many of the
    decided ones were followed by incidents."""
    _readable(user)
    stmt = select(RiskAgency).order_by(RiskAgency.code)
    if user.role == "assessor":
        mine = agency_of(session, user)
        stmt = stmt.where(RiskAgency.id == (mine.id if mine else -1))
    agencies = list(session.scalars(stmt))
    seen = select(RiskItem.id).where(visible(session, user))
    asm = dict.fromkeys([a.id for a in agencies])
    rows = session.execute(
        select(
            RiskAssessment.agency_id,
            func.count(),
            func.sum(case((RiskAssessment.status == "open", 1), else_=0)),
            func.sum(case((RiskAssessment.status == "passed", 1), else_=0)),
        )
        .where(RiskAssessment.item_id.in_(seen))
        .group_by(RiskAssessment.agency_id)
    ).all()
    asm = {r[0]: r[1:] for r in rows}
    reports = {
        r[0]: r[1:]
        for r in session.execute(
            select(
                RiskReport.agency_id,
                func.count(),
                func.sum(case((RiskReport.status == "draft", 1), else_=0)),
            )
            .where(RiskReport.item_id.in_(seen))
            .group_by(RiskReport.agency_id)
        )
    }
    passed = and_(RiskAssessment.status == "passed", RiskAssessment.item_id == RiskItem.id)
    followed = {
        r[0]: r[1:]
        for r in session.execute(
            select(
                RiskAssessment.agency_id,
                func.count(),
                func.sum(case((RiskItem.incidents > 0, 1), else_=0)),
            )
            .join(RiskItem, passed)
            .where(RiskItem.decided_at.is_not(None), RiskItem.id.in_(seen))
            .group_by(RiskAssessment.agency_id)
        )
    }
    own = own_codes(session, user, {a.unit_code for a in agencies})
    out = []
    for a in agencies:
        total, open_, done = asm.get(a.id, (0, 0, 0))
        n_reports, drafts = reports.get(a.id, (0, 0))
        decided, with_incidents = followed.get(a.id, (0, 0))
        out.append(
            {
                "code": a.code,
                "name": a.name,
                "kind": a.kind,
                "unit_code": a.unit_code if a.unit_code in own else None,
                "active": a.active,
                "assessments": int(total or 0),
                "workload": int(open_ or 0),
                "assessed": int(done or 0),
                "reports": int(n_reports or 0),
                "reports_failed": int(drafts or 0),
                "review_failure_rate": round(drafts / n_reports, 4) if n_reports else None,
                "decided_after_assessment": int(decided or 0),
                "followed_by_incidents": int(with_incidents or 0),
                "incident_share": round(with_incidents / decided, 4) if decided else None,
            }
        )
    return {"agencies": out, "count": len(out)}


def register_agency(
    session: Session, user: Principal, code: str, name: str, kind: str
) -> RiskAgency:
    """Register an agency (admin); its home unit is the caller's."""
    if not user.is_admin:
        raise ApiError(403, "only an admin registers agencies")
    if kind not in ("in_house", "third_party"):
        raise ApiError(422, "kind: in_house or third_party")
    if session.scalar(select(RiskAgency.id).where(RiskAgency.code == code)):
        raise ApiError(409, f"an agency {code!r} is registered already")
    agency = RiskAgency(code=code, name=name, kind=kind, unit_code=user.unit_code, active=True,
                        created_at=now_utc())  # fmt: skip
    session.add(agency)
    session.commit()
    return agency
