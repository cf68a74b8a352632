"""What the case desk reads: a user's work queue, one case with its timeline and the
actions open to the caller, and the departments of a unit.

The queue (``GET /api/v1/cases?queue=mine``) holds the cases the caller's desk handles:

- village worker: open cases held by its village or one of its grids (no department), and
  the cases of its village awaiting 访 (visit) or 评 (evaluation), whoever handled them;
- official, admin: open cases held by its own unit (not by one of its departments), and
  those of them awaiting 访 or 评;
- department: open cases held by its department, and those awaiting 访 or 评.

Each item says whether it is overdue (超期), due soon (within ``DUE_SOON``) or awaiting
a follow-up; most urgent first (deadline, then id).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from api.db.desk import Department
from api.db.models import AdminUnit, Case, UnitAncestry
from api.domain import CATEGORY_BY_CODE
from api.errors import ApiError
from api.principal import Principal
from api.services.case_workflow import case_dict
from api.services.desk import (
    allowed_actions,
    case_state,
    department_of,
    in_jurisdiction,
    visible,
)
from api.services.scope import in_scope, subtree_codes
from api.services.timeline import ACTIONS, timeline

DUE_SOON = dt.timedelta(days=2)
QUEUE_ROLES = frozenset({"admin", "official", "village_worker", "department"})
FILTERS = ("open", "overdue", "due_soon", "awaiting")
AWAITING = ("handled", "visited")  # 访 is next, 评 is next


def _subtree_ids(session: Session, code: str):
    """The unit versions under ``code``, by its level too (so the ancestry index serves)."""
    level = session.scalar(select(AdminUnit.level).where(AdminUnit.code == code).limit(1))
    return select(UnitAncestry.unit_id).where(
        UnitAncestry.ancestor_level == level, UnitAncestry.ancestor_code == code
    )


def _queue_filter(session: Session, user: Principal):
    """Open cases the caller's desk holds, and its cases awaiting 访/评."""
    open_ = Case.handled_at.is_(None)
    awaiting = Case.status.in_(AWAITING)
    if user.role == "department":
        department = department_of(session, user)
        if department is None:
            raise ApiError(403, f"user {user.name!r} belongs to no department")
        return Case.department_id == department
    if user.role == "village_worker":
        held = and_(
            Case.handling_unit_code.in_(subtree_codes(user.unit_code)),
            Case.department_id.is_(None),
        )
        mine = Case.leaf_unit_id.in_(_subtree_ids(session, user.unit_code))
        return or_(and_(open_, held), and_(awaiting, mine))
    return and_(Case.handling_unit_code == user.unit_code, Case.department_id.is_(None))


def work_queue(
    session: Session,
    user: Principal,
    show: str | None = None,
    category: str | None = None,
    limit: int = 200,
    now: dt.datetime | None = None,
) -> dict:
    """The caller's work queue, most urgent first: ``{"items": [...], "counts": {...}}``.
    ``show``: open, overdue, due_soon or awaiting (访/评); ``category``: one category."""
    if user.role not in QUEUE_ROLES:
        raise ApiError(403, f"role {user.role!r} has no work queue")
    now = now or dt.datetime.now(dt.UTC)
    if show is not None and show not in FILTERS:
        raise ApiError(422, f"unknown queue filter {show!r}: use one of {', '.join(FILTERS)}")
    if category is not None and category not in CATEGORY_BY_CODE:
        raise ApiError(422, f"unknown category {category!r}")
    base = (  # plain rows, not ORM objects: a queue is read, never changed
        select(*Case.__table__.c, AdminUnit.code.label("leaf_code"))
        .join(AdminUnit, AdminUnit.id == Case.leaf_unit_id)
        .where(_queue_filter(session, user))
        .where(Case.status != "evaluated")
    )
    if category is not None:
        base = base.where(Case.category == category)
    open_ = Case.handled_at.is_(None)
    if show == "open":
        base = base.where(open_)
    elif show == "overdue":
        base = base.where(open_, Case.deadline < now)
    elif show == "due_soon":
        base = base.where(open_, Case.deadline >= now, Case.deadline < now + DUE_SOON)
    elif show == "awaiting":
        base = base.where(Case.status.in_(AWAITING))
    limit = max(1, min(int(limit), 1000))
    rows = session.execute(base.order_by(Case.deadline, Case.id).limit(limit)).all()
    items, shown = [], {}
    for row in rows:
        item = queue_item(row, row.leaf_code, now)
        held = item["handling_unit_code"]
        if held not in shown:
            shown[held] = visible(session, user, held)
        item["handling_unit_code"] = shown[held]
        items.append(item)
    return {"items": items, "next_cursor": None}


def queue_item(case, unit_code: str, now: dt.datetime) -> dict:
    """One line of a queue (``case``: a ``Case`` or a row of its columns): the case as
    the API shows it and why it is in the queue."""
    open_ = case.handled_at is None
    return case_dict(case, unit_code, now) | {
        "accepted": case.accepted_at is not None,
        "due_soon": open_ and now <= case.deadline < now + DUE_SOON,
        "awaiting": {"handled": "visit", "visited": "evaluate"}.get(case.status),
    }


def case_detail(session: Session, user: Principal, case_id: int) -> dict:
    """One case in the caller's jurisdiction: its state, timeline, and the actions the
    caller may take now; 404 outside the jurisdiction."""
    case = session.get(Case, case_id)
    if case is None or not in_jurisdiction(session, user, case):
        raise ApiError(404, f"no case {case_id} in your jurisdiction")
    now = dt.datetime.now(dt.UTC)
    names = _department_names(session)
    entries = [
        {
            "at": a.at,
            "action": a.action,
            "label_zh": ACTIONS.get(a.action, (a.action,))[0],
            "user_name": a.user_name,
            "role": a.role,
            "from_unit": visible(session, user, a.from_unit),
            "from_level": a.from_level,
            "from_department": names.get(a.from_department_id),
            "to_unit": visible(session, user, a.to_unit),
            "to_level": a.to_level,
            "to_department": names.get(a.to_department_id),
            "reason": a.reason,
            "version": a.version,
        }
        for a in timeline(session, case_id)
    ]
    state = case_state(session, case, now, user)
    state["department_name"] = names.get(case.department_id)
    return {
        "case": state,
        "timeline": entries,
        "actions": allowed_actions(session, user, case),
    }


def _department_names(session: Session) -> dict[int | None, str]:
    return {id_: name for id_, name in session.execute(select(Department.id, Department.name))}


def list_departments(session: Session, user: Principal, unit_code: str | None) -> list[dict]:
    """The departments of ``unit_code`` (or of every unit of the caller's subtree), which
    must lie in the caller's jurisdiction (else 404)."""
    stmt = select(Department).where(Department.active.is_(True))
    if unit_code is not None:
        if not in_scope(session, user.unit_code, unit_code):
            raise ApiError(404, f"no unit {unit_code!r} in your jurisdiction")
        stmt = stmt.where(Department.unit_code == unit_code)
    else:
        stmt = stmt.where(Department.unit_code.in_(subtree_codes(user.unit_code)))
    return [
        {"id": d.id, "unit_code": d.unit_code, "kind": d.kind, "name": d.name}
        for d in session.scalars(stmt.order_by(Department.unit_code, Department.kind))
    ]
