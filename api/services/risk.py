"""The stability-risk register (社会稳定风险评估): 登记 → 评估 → 报告提交 → 自动审查 → 决策 → 跟踪.

- **Register** (``register_item``): kind, deciding unit (any level, in the caller's
  subtree), place (a GeoJSON point or polygon inside the city), planned date, people
  affected, responsible department. The units its area touches (a polygon, or a circle of
  ``POINT_RADIUS_M`` around a point) are stored in ``risk_item_area``: officials of those
  units read it even when it was decided above them.
- **Assign** (``assign_agency``): to a registered, active agency; due before the planned
  date by the lead time of the review rule ``lead_time``.
- **Submit** (``submit_report``): an assessor of the assigned agency submits a structured
  report; the review (``api.services.risk_review``) runs the rules in the table; a failing
  report is kept as a draft with each rule's reason, and the agency submits again.
- **Decide** (``decide``): 实施 / 调整后实施 / 暂缓 / 不实施; a decision without a passed
  assessment is allowed and flagged. Follow-up reviews fall due at 30 and 90 days.
- **Follow** (``link_incidents``): cases in the item's area from the decision to the end of
  the follow-up period are linked (风险转化为案事件); re-run whenever cases moved.

Every write bumps the dataset version ``risk_register`` (the engine's fact domain reads
the items again). Bad input is a 4xx with a message and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import dataclass

import shapely
from shapely.affinity import scale
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep
from shapely.validation import explain_validity
from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, Case, UnitAncestry
from api.db.risk import (
    DECISIONS,
    RISK_KINDS,
    RiskAgency,
    RiskAgencyMember,
    RiskAssessment,
    RiskFollowUp,
    RiskItem,
    RiskItemArea,
    RiskLink,
    RiskReport,
    RiskReviewRule,
)
from api.db.versions import bump_version, get_version
from api.errors import ApiError
from api.principal import RISK_READ_ROLES, RISK_WRITE_ROLES, Principal
from api.services.audit import audit
from api.services.risk_review import ReviewContext, RiskReportBody, active_rules, review
from api.services.scope import unit_in_scope

VERSION = "risk_register"  # the dataset version (and fact domain) of the register
POINT_RADIUS_M = 150.0  # a point item's area: a circle of this radius
# the cases that count as the risk turning into an incident (风险转化): petitions, disputes
# over land and housing, pollution; not every neighbours' quarrel nearby
LINKED_CATEGORIES = ("petition", "land_housing", "environment")
FOLLOW_DAYS = 90  # default follow-up period after the decision
FOLLOW_UPS = (30, 90)  # follow-up reviews due these many days after the decision
DEFAULT_LEAD_DAYS = 10
KIND_NAMES = {
    "decision": ("重大决策", "Major decision"),
    "project": ("重大项目", "Major project"),
    "large_event": ("大型活动", "Large event"),
    "gathering": ("群众自发性节庆聚集", "Spontaneous festive gathering"),
    "religious": ("宗教活动", "Religious activity"),
}
DECISION_NAMES = {
    "implement": ("实施", "Go ahead"),
    "adjust": ("调整后实施", "Go ahead after changes"),
    "postpone": ("暂缓", "Postpone"),
    "reject": ("不实施", "Do not go ahead"),
}


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------- the units an area touches


@dataclass(frozen=True)
class _AreaIndex:
    codes: list[str]
    geoms: list[BaseGeometry]
    tree: shapely.STRtree


_areas: dict[tuple[str, int], _AreaIndex] = {}
_areas_lock = threading.Lock()


def _area_index(session: Session) -> _AreaIndex:
    """Every current unit's geometry in an STRtree, per database and boundaries version."""
    key = (
        session.get_bind().url.render_as_string(hide_password=True),
        get_version(session, "boundaries"),
    )
    with _areas_lock:
        found = _areas.get(key)
    if found is not None:
        return found
    rows = session.execute(
        select(AdminUnit.code, AdminUnit.geom).where(
            AdminUnit.valid_to.is_(None), AdminUnit.geom.is_not(None)
        )
    ).all()
    index = _AreaIndex(
        [r[0] for r in rows], [r[1] for r in rows], shapely.STRtree([r[1] for r in rows])
    )
    with _areas_lock:
        _areas.clear()  # one database's current boundaries at a time is plenty
        _areas[key] = index
    return index


def influence_area(place: BaseGeometry) -> BaseGeometry:
    """The item's area: the polygon itself, or a circle of ``POINT_RADIUS_M`` around a point."""
    if place.geom_type in ("Point", "MultiPoint"):
        lat = place.centroid.y
        dy = POINT_RADIUS_M / 111_320.0
        dx = dy / max(math.cos(math.radians(lat)), 0.01)
        return scale(place.buffer(dy, 16), xfact=dx / dy, yfact=1.0)
    return place


def touched_units(session: Session, place: BaseGeometry) -> list[str]:
    """Codes of the current units (any level) the item's area overlaps (not only touches)."""
    index = _area_index(session)
    area = influence_area(place)
    hits = index.tree.query(area, predicate="intersects")
    return sorted({index.codes[i] for i in hits if not index.geoms[i].touches(area)})


# ---------------------------------------------------------------- who sees what


def agency_of(session: Session, user: Principal) -> RiskAgency | None:
    """The agency an assessor works for (None: none, or not an assessor)."""
    if user.role != "assessor":
        return None
    return session.scalar(
        select(RiskAgency)
        .join(RiskAgencyMember, RiskAgencyMember.agency_id == RiskAgency.id)
        .where(RiskAgencyMember.user_id == user.user_id)
    )


def visible(session: Session, user: Principal):
    """The SQL condition on ``RiskItem`` of the items ``user`` may read: an assessor, its
    agency's; anyone else, those decided in its subtree or whose area overlaps it."""
    if user.role == "assessor":
        agency = agency_of(session, user)
        return RiskItem.agency_id == (agency.id if agency else -1)
    touches = exists().where(
        RiskItemArea.item_id == RiskItem.id, RiskItemArea.unit_code == user.unit_code
    )
    return or_(decided_under(user.unit_code), touches)


def decided_under(root_code: str):
    """SQL: the item was decided by a unit in ``root_code``'s subtree (one probe of the
    ancestry's key per item, not a list of the whole subtree)."""
    return exists().where(
        UnitAncestry.unit_id == RiskItem.deciding_unit_id,
        UnitAncestry.ancestor_code == root_code,
    )


def _readable(user: Principal) -> None:
    if user.role not in RISK_READ_ROLES:
        raise ApiError(403, f"role {user.role!r} cannot read the risk register")


def _writer(user: Principal) -> None:
    if user.role not in RISK_WRITE_ROLES:
        raise ApiError(403, f"role {user.role!r} cannot change the risk register (admin, official)")


def get_item(session: Session, user: Principal, item_id: int, lock: bool = False) -> RiskItem:
    """Item ``item_id`` if ``user`` may read it, else 404 (never confirmed to exist)."""
    _readable(user)
    stmt = select(RiskItem).where(RiskItem.id == item_id, visible(session, user))
    if lock:
        stmt = stmt.with_for_update()
    item = session.scalar(stmt)
    if item is None:
        where = "assigned to your agency" if user.role == "assessor" else "in your jurisdiction"
        raise ApiError(404, f"no risk item {item_id} {where}")
    return item


# ---------------------------------------------------------------- 登记 register


@dataclass(frozen=True)
class NewItem:
    """What registering an item takes (validated at the edge by pydantic)."""

    kind: str
    title: str
    deciding_unit: str
    place: dict
    planned_at: dt.datetime
    people_affected: int
    department: str
    description: str | None = None
    ends_at: dt.datetime | None = None


def parse_place(place: dict) -> BaseGeometry:
    """A GeoJSON Point, Polygon or MultiPolygon (WGS84 lon/lat) as a valid geometry."""
    kind = place.get("type") if isinstance(place, dict) else None
    if kind not in ("Point", "Polygon", "MultiPolygon"):
        raise ApiError(422, "place: give a GeoJSON Point, Polygon or MultiPolygon (lon, lat)")
    try:
        geom = shape(place)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ApiError(422, f"place: not a readable {kind}: {exc}") from None
    if geom.is_empty:
        raise ApiError(422, "place: the geometry is empty")
    x0, y0, x1, y1 = geom.bounds
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise ApiError(422, "place: coordinates must be lon (-180..180), lat (-90..90) in WGS84")
    if not geom.is_valid:
        why = explain_validity(geom)
        raise ApiError(422, f"place: the polygon is invalid ({why}); redraw it")
    return geom


def register_item(session: Session, user: Principal, new: NewItem) -> RiskItem:
    """登记: store a new item, with the units its area touches. 4xx and nothing written
    on a bad kind, unit, place or dates."""
    _writer(user)
    if new.kind not in RISK_KINDS:
        raise ApiError(422, f"kind: {new.kind!r} is not one of {', '.join(RISK_KINDS)}")
    unit = unit_in_scope(session, user.unit_code, new.deciding_unit)
    if unit is None or unit.valid_to is not None:
        raise ApiError(404, f"no current unit {new.deciding_unit!r} in your jurisdiction")
    if new.ends_at is not None and _aware(new.ends_at) < _aware(new.planned_at):
        raise ApiError(
            422,
            f"dates in the wrong order: ends_at {new.ends_at} is before planned_at "
            f"{new.planned_at}",
        )
    place = parse_place(new.place)
    touched = touched_units(session, place)
    if not touched:
        raise ApiError(422, "place: it lies outside every unit of the city; check lon/lat order")
    point = place if place.geom_type == "Point" else place.representative_point()
    now = now_utc()
    item = RiskItem(
        kind=new.kind,
        title=new.title,
        description=new.description,
        deciding_unit_id=unit.id,
        deciding_unit_code=unit.code,
        place=place,
        lon=round(point.x, 6),
        lat=round(point.y, 6),
        planned_at=_aware(new.planned_at),
        people_affected=new.people_affected,
        department=new.department,
        status="registered",
        incidents=0,
        registered_by=user.name,
        registered_at=now,
        version=1,
    )
    session.add(item)
    session.flush()
    session.add_all(RiskItemArea(item_id=item.id, unit_code=c) for c in touched)
    audit(session, user.name, user.unit_code, "risk.register", f"risk_item:{item.id}")
    bump_version(session, VERSION)
    session.commit()
    return item


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


# ---------------------------------------------------------------- 决策 decide


def decide(
    session: Session,
    user: Principal,
    item_id: int,
    decision: str,
    decided_at: dt.datetime | None = None,
    follow_days: int = FOLLOW_DAYS,
) -> RiskItem:
    """决策: record the decision; without a passed assessment it is taken and flagged.
    Follow-up reviews fall due at 30 and 90 days; cases already in the area are linked."""
    _writer(user)
    if decision not in DECISIONS:
        raise ApiError(422, f"decision: {decision!r} is not one of {', '.join(DECISIONS)}")
    item = get_item(session, user, item_id, lock=True)
    if user.role != "admin" and not session.scalar(
        select(func.count()).where(RiskItem.id == item.id, decided_under(user.unit_code))
    ):
        raise ApiError(403, f"risk item {item.id} is decided by a unit above yours")
    if item.status == "decided":
        raise ApiError(409, f"risk item {item.id} was decided already ({item.decision})")
    at = _aware(decided_at) if decided_at else now_utc()
    if at < _aware(item.registered_at) - dt.timedelta(days=3650):
        raise ApiError(422, "decided_at: more than ten years before the item was registered")
    if item.assessed_at is not None and at < _aware(item.assessed_at):
        raise ApiError(
            422,
            f"dates in the wrong order: decided_at {at} is before the assessment passed "
            f"({item.assessed_at})",
        )
    if at > now_utc() + dt.timedelta(minutes=5):
        raise ApiError(422, f"decided_at {at} is in the future: record a decision once taken")
    item.decision, item.decided_at, item.status = decision, at, "decided"
    item.follow_until = at + dt.timedelta(days=follow_days)
    item.version += 1
    session.execute(delete(RiskFollowUp).where(RiskFollowUp.item_id == item.id))
    session.add_all(
        RiskFollowUp(item_id=item.id, days=d, due_on=(at + dt.timedelta(days=d)).date())
        for d in FOLLOW_UPS
    )
    audit(session, user.name, user.unit_code, "risk.decide", f"risk_item:{item.id}",
          {"decision": decision, "assessed": item.assessed_at is not None})  # fmt: skip
    session.flush()
    link_items(session, [item])
    bump_version(session, VERSION)
    session.commit()
    return item


# ---------------------------------------------------------------- 跟踪 follow


def link_items(session: Session, items: list[RiskItem]) -> int:
    """Link the cases in each decided item's area within its follow-up period; returns how
    many links were added. Candidates come by the area's units (an index on the case's
    leaf and time), then their points are tested against the area."""
    added = 0
    for item in items:
        if item.decided_at is None or item.follow_until is None:
            continue
        codes = select(RiskItemArea.unit_code).where(RiskItemArea.item_id == item.id)
        leaves = select(AdminUnit.id).where(AdminUnit.code.in_(codes))
        rows = session.execute(
            select(Case.id, Case.reported_at, Case.lon, Case.lat).where(
                Case.leaf_unit_id.in_(leaves),
                Case.reported_at >= item.decided_at,
                Case.reported_at <= item.follow_until,
                Case.lon.is_not(None),
                Case.category.in_(LINKED_CATEGORIES),
            )
        ).all()
        have = set(session.scalars(
            select(RiskLink.ref_id).where(RiskLink.item_id == item.id, RiskLink.kind == "case")
        ))  # fmt: skip
        area = prep(influence_area(item.place))
        new = [
            RiskLink(item_id=item.id, kind="case", ref_id=r.id, at=r.reported_at)
            for r in rows
            if r.id not in have and area.contains(shapely.Point(r.lon, r.lat))
        ]
        session.add_all(new)
        if new or item.incidents != len(have):
            item.incidents = len(have) + len(new)
        added += len(new)
    return added


_linked_at: dict[str, int] = {}  # database → the cases version links were last made at


def link_incidents(session: Session, everything: bool = False) -> int:
    """Link cases to the decided items whose follow-up period has not ended (``everything``:
    every decided item); a no-op while the cases have not moved since the last run. Commits
    (and bumps the register's version) when a link was added."""
    key = session.get_bind().url.render_as_string(hide_password=True)
    cases = get_version(session, "cases")
    if not everything and _linked_at.get(key) == cases:
        return 0
    stmt = select(RiskItem).where(RiskItem.decided_at.is_not(None))
    if not everything:
        stmt = stmt.where(RiskItem.follow_until >= now_utc() - dt.timedelta(days=FOLLOW_DAYS))
    added = link_items(session, list(session.scalars(stmt)))
    if added or session.dirty:
        bump_version(session, VERSION)
    session.commit()
    _linked_at[key] = cases
    return added


def add_member(session: Session, agency_code: str, user_id: int) -> None:
    """Make user ``user_id`` (an assessor) work for agency ``agency_code``."""
    agency = session.scalar(select(RiskAgency).where(RiskAgency.code == agency_code))
    if agency is None:
        raise ApiError(422, f"agency: no registered agency {agency_code!r}")
    member = session.get(RiskAgencyMember, user_id)
    if member is None:
        session.add(RiskAgencyMember(user_id=user_id, agency_id=agency.id))
    else:
        member.agency_id = agency.id
    session.flush()


def record_follow_up(
    session: Session,
    user: Principal,
    item_id: int,
    days: int,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> RiskFollowUp:
    """Record the follow-up review due ``days`` after the decision as done (回访)."""
    _writer(user)
    item = get_item(session, user, item_id, lock=True)
    due = session.get(RiskFollowUp, (item.id, days))
    if due is None:
        planned = ", ".join(str(d) for d in FOLLOW_UPS)
        raise ApiError(
            404, f"risk item {item.id} has no follow-up review at {days} days (they are due "
            f"at {planned} days after the decision)"
        )  # fmt: skip
    at = _aware(at) if at else now_utc()
    if at < _aware(item.decided_at):
        raise ApiError(422, f"dates in the wrong order: the review at {at} precedes the decision")
    if at > now_utc() + dt.timedelta(minutes=5):
        raise ApiError(422, f"done_at {at} is in the future: record a review once done")
    due.done_at, due.note = at, note
    audit(session, user.name, user.unit_code, "risk.follow_up", f"risk_item:{item.id}",
          {"days": days})  # fmt: skip
    session.commit()
    return due
