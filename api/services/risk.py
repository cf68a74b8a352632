"""The stability-risk register (社会稳定风险评估): 登记 → 评估 → 报告提交 → 自动审查 → 决策 → 跟踪.

- **Register** (``register_item``): kind, deciding unit (any level, in the caller's
  subtree), place (a GeoJSON point or polygon inside the city), planned date, people
  affected, responsible department. The units its area touches (a polygon, or a circle of
  ``POINT_RADIUS_M`` around a point) are stored in ``risk_item_area``: officials of those
  units read it even when it was decided above them.
Here: the register itself (kinds, areas, who reads what, registering). The steps after it
live beside it: ``risk_assess`` (assign, report, review) and ``risk_follow`` (decide, link
incidents, follow-up reviews); ``risk_views`` reads.

- **Assign** (``risk_assess.assign_agency``): to a registered, active agency; due before
  the planned date by the lead time of the review rule ``lead_time``.
- **Submit** (``risk_assess.submit_report``): an assessor of the assigned agency submits a
  structured report; the review (``api.services.risk_review``) runs the rules in the table; a
  failing report is kept as a draft with each rule's reason, and the agency submits again.
- **Decide** (``risk_follow.decide``): 实施 / 调整后实施 / 暂缓 / 不实施; a decision without
  a passed assessment is allowed and flagged. Follow-up reviews fall due at 30 and 90 days.
- **Follow** (``risk_follow.link_incidents``): cases and dispatch events in the item's area
  from the decision to the end of the follow-up period are linked (风险转化为案事件); re-run
  whenever cases or events moved.

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
from shapely.validation import explain_validity
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, UnitAncestry
from api.db.risk import (
    RISK_KINDS,
    RiskAgency,
    RiskAgencyMember,
    RiskItem,
    RiskItemArea,
)
from api.db.versions import bump_version, get_version
from api.errors import ApiError
from api.principal import RISK_READ_ROLES, RISK_WRITE_ROLES, Principal
from api.services.audit import audit
from api.services.scope import unit_in_scope

VERSION = "risk_register"  # the dataset version (and fact domain) of the register
POINT_RADIUS_M = 150.0  # a point item's area: a circle of this radius
# the cases that count as the risk turning into an incident (风险转化): petitions, disputes
# over land and housing, pollution; not every neighbours' quarrel nearby
LINKED_CATEGORIES = ("petition", "land_housing", "environment")
# dispatch events that count too: disputes (labour, commercial, …), not neighbours' or
# family quarrels, which any block has whatever was decided nearby
LINKED_EVENT_TYPES = ("dispute",)
UNLINKED_EVENT_CATEGORIES = ("neighbour", "family")
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
