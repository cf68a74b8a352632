"""The register's last steps: 决策 the decision and 跟踪 the follow-up after it.

After the decision, the incidents in the item's area within its follow-up period are linked
(风险转化为案事件) in ``risk_link``, keyed by kind: cases of ``LINKED_CATEGORIES`` and
dispatch events of ``LINKED_EVENT_TYPES`` (save neighbours' and family quarrels). An event
that became a case already linked is not counted twice. Follow-up reviews (回访) fall due at
30 and 90 days."""

from __future__ import annotations

import datetime as dt

import shapely
from shapely.prepared import prep
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from api.db.events import DispatchEvent
from api.db.models import AdminUnit, Case
from api.db.risk import DECISIONS, RiskFollowUp, RiskItem, RiskItemArea, RiskLink
from api.db.versions import bump_version, get_version
from api.errors import ApiError
from api.principal import Principal
from api.services.audit import audit
from api.services.risk import (
    FOLLOW_DAYS,
    FOLLOW_UPS,
    LINKED_CATEGORIES,
    LINKED_EVENT_TYPES,
    UNLINKED_EVENT_CATEGORIES,
    VERSION,
    _aware,
    _writer,
    decided_under,
    get_item,
    influence_area,
    now_utc,
)

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


def _candidates(session: Session, item: RiskItem) -> list[tuple]:
    """(kind, id, when, lon, lat, case it became) of the cases and events of the linked kinds
    reported in the item's area's units within its follow-up period (not yet point-tested)."""
    codes = select(RiskItemArea.unit_code).where(RiskItemArea.item_id == item.id)
    leaves = select(AdminUnit.id).where(AdminUnit.code.in_(codes))
    cases = session.execute(
        select(Case.id, Case.reported_at, Case.lon, Case.lat).where(
            Case.leaf_unit_id.in_(leaves),
            Case.reported_at >= item.decided_at,
            Case.reported_at <= item.follow_until,
            Case.lon.is_not(None),
            Case.category.in_(LINKED_CATEGORIES),
        )
    ).all()
    E = DispatchEvent
    events = session.execute(
        select(E.id, E.received_at, E.lon, E.lat, E.case_id).where(
            E.leaf_unit_id.in_(leaves),
            E.received_at >= item.decided_at,
            E.received_at <= item.follow_until,
            E.lon.is_not(None),
            E.type.in_(LINKED_EVENT_TYPES),
            E.category.is_(None) | E.category.not_in(UNLINKED_EVENT_CATEGORIES),
        )
    ).all()
    return [("case", r.id, r.reported_at, r.lon, r.lat, None) for r in cases] + [
        ("event", r.id, r.received_at, r.lon, r.lat, r.case_id) for r in events
    ]


def link_items(session: Session, items: list[RiskItem]) -> int:
    """Link the cases and dispatch events in each decided item's area within its follow-up
    period; returns how many links were added. Candidates come by the area's units (an
    index on the leaf and time), then their points are tested against the area; an event
    that became a case linked to the item is not counted again."""
    added = 0
    for item in items:
        if item.decided_at is None or item.follow_until is None:
            continue
        have = {tuple(r) for r in session.execute(
            select(RiskLink.kind, RiskLink.ref_id).where(RiskLink.item_id == item.id)
        )}  # fmt: skip
        area = prep(influence_area(item.place))
        inside = [c for c in _candidates(session, item) if area.contains(shapely.Point(c[3], c[4]))]
        cases = {c[1] for c in inside if c[0] == "case"} | {
            ref for kind, ref in have if kind == "case"
        }
        new = [
            RiskLink(item_id=item.id, kind=kind, ref_id=ref, at=at)
            for kind, ref, at, _lon, _lat, became in inside
            if (kind, ref) not in have and not (kind == "event" and became in cases)
        ]
        session.add_all(new)
        if new or item.incidents != len(have):
            item.incidents = len(have) + len(new)
        added += len(new)
    return added


_linked_at: dict[str, tuple[int, int]] = {}  # database → (cases, events) versions last linked


def link_incidents(session: Session, everything: bool = False) -> int:
    """Link cases and events to the decided items whose follow-up period has not ended
    (``everything``: every decided item); a no-op while neither cases nor events moved
    since the last run. Commits (and bumps the register's version) when a link was added."""
    key = session.get_bind().url.render_as_string(hide_password=True)
    moved = (get_version(session, "cases"), get_version(session, "events"))
    if not everything and _linked_at.get(key) == moved:
        return 0
    stmt = select(RiskItem).where(RiskItem.decided_at.is_not(None))
    if not everything:
        stmt = stmt.where(RiskItem.follow_until >= now_utc() - dt.timedelta(days=FOLLOW_DAYS))
    added = link_items(session, list(session.scalars(stmt)))
    if added or session.dirty:
        bump_version(session, VERSION)
    session.commit()
    _linked_at[key] = moved
    return added


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
