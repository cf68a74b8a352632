"""The case desk's actions (分级分流): 受理 accept, 下派 dispatch, 上报 escalate, 转办
transfer, 退回 return, the steps 约 办 访 评, and notes — each checked against the role, the
case's step and handler, the caller's jurisdiction and the case's version, then written
with its timeline entry and an audit entry in one transaction.

Who may do what (``ROLE_ACTIONS``; admin everything, intake/analyst/display nothing):

- village worker (村/网格): handles cases at its village and grids — accept, escalate,
  return, schedule, handle; records 访 and 评 of any case of its village;
- official (镇/街道, city): supervises its subtree — dispatches down to a unit or a
  department, escalates, transfers, returns, approves a close (办) of any case it holds;
- department (职能部门): handles what is routed to it — accept, transfer to another
  department, return to whoever sent it, schedule, handle;
- 访 and 评 are recorded by whoever made the follow-up (any acting role, in scope).

A case outside the caller's jurisdiction is a 404; a stale ``version`` a 409 carrying the
case's current state; a client ``key`` seen before returns what it did, once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.db.desk import CaseAction, Department, DepartmentMember
from api.db.models import AdminUnit, Case, UnitAncestry
from api.domain import OUTCOMES
from api.errors import ApiError
from api.principal import Principal
from api.services.audit import audit
from api.services.case_workflow import apply_step, case_dict
from api.services.timeline import ACTIONS, MOVES, STEP_OF, record_action, seconds_between

ALL = frozenset(ACTIONS)
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": ALL,
    "official": ALL,
    "village_worker": frozenset(
        {"accept", "escalate", "return", "schedule", "handle", "visit", "evaluate", "note"}
    ),
    "department": frozenset(
        {"accept", "transfer", "return", "schedule", "handle", "visit", "evaluate", "note"}
    ),
}
HOLDER_ACTIONS = frozenset({"accept", "dispatch", "escalate", "transfer", "return"}) | {
    "schedule",
    "handle",
}
MAX_REASON = 1000


@dataclass(frozen=True)
class Handler:
    """Who holds a case: a unit (code, level) and maybe one of its departments."""

    unit_code: str
    level: str
    department_id: int | None = None

    def as_tuple(self) -> tuple[str, str, int | None]:
        return (self.unit_code, self.level, self.department_id)


@dataclass(frozen=True)
class ActionRequest:
    """One action as asked: what, to whom, why, on which version, under which key."""

    action: str
    version: int
    key: str | None = None
    to_unit: str | None = None
    department: int | None = None
    reason: str | None = None
    outcome: str | None = None
    satisfaction: int | None = None


def _label(action: str) -> str:
    zh, en = ACTIONS.get(action, (action, action))
    return f"{zh} {en.lower()}"


def unit_level(session: Session, code: str) -> str | None:
    """The level of the current version of unit ``code``."""
    return session.scalar(
        select(AdminUnit.level)
        .where(AdminUnit.code == code)
        .where(AdminUnit.valid_to.is_(None))
        .limit(1)
    )


def current_handler(session: Session, case: Case) -> Handler:
    """The case's handler; a case stored before routing existed is its village's (or its
    leaf's, when it has no village)."""
    code = case.handling_unit_code or case.village_code
    if code is None:
        code = session.scalar(select(AdminUnit.code).where(AdminUnit.id == case.leaf_unit_id))
    return Handler(code, unit_level(session, code) or "", case.department_id)


def department_of(session: Session, user: Principal) -> int | None:
    """The department a user of role ``department`` works for."""
    if user.role != "department":
        return None
    return session.scalar(
        select(DepartmentMember.department_id).where(DepartmentMember.user_id == user.user_id)
    )


def _below(session: Session, code: str, root: str, strictly: bool = False) -> bool:
    stmt = (
        exists()
        .where(UnitAncestry.unit_id == AdminUnit.id)
        .where(AdminUnit.code == code)
        .where(AdminUnit.valid_to.is_(None))
        .where(UnitAncestry.ancestor_code == root)
    )
    if strictly:
        stmt = stmt.where(UnitAncestry.distance > 0)
    return bool(session.scalar(select(stmt)))


def holds(
    session: Session,
    user: Principal,
    handler: Handler,
    department: int | None,
    action: str | None = None,
) -> bool:
    """Whether ``user`` is (or supervises) the case's current handler for ``action``: a
    supervisor does not accept or schedule for a department (it moves it, or approves its
    close)."""
    for_department = user.role == "official" and handler.department_id is not None
    if for_department and action in ("accept", "schedule"):
        return False
    if user.role == "department":
        return department is not None and handler.department_id == department
    if user.role == "village_worker" and handler.department_id is not None:
        return False
    if user.role in ("admin", "official", "village_worker"):
        return _below(session, handler.unit_code, user.unit_code)
    return False


def allowed_actions(session: Session, user: Principal, case: Case) -> list[str]:
    """The actions ``user`` may take on ``case`` now (for the desk's buttons)."""
    handler = current_handler(session, case)
    department = department_of(session, user)
    mine = {a: holds(session, user, handler, department, a) for a in HOLDER_ACTIONS}
    out = []
    for action in ACTIONS:
        if action not in ROLE_ACTIONS.get(user.role, frozenset()):
            continue
        if action in HOLDER_ACTIONS and not mine[action]:
            continue
        if _step_problem(session, case, action, handler) is None:
            out.append(action)
    return out


def _step_problem(session: Session, case: Case, action: str, handler: Handler) -> str | None:
    """Why ``action`` cannot be taken at the case's step (None: it can)."""
    open_ = case.handled_at is None
    if action in MOVES or action == "accept":
        if not open_:
            return f"case {case.id} is closed (办结): only 访, 评 and notes remain"
        if action == "accept" and case.accepted_at is not None:
            return f"case {case.id} was already accepted by its handler ({handler.unit_code})"
        if action == "dispatch" and handler.department_id is not None:
            return f"case {case.id} is with a department: use 转办 (transfer) instead"
        if action == "return" and _last_move(session, case, handler) is None:
            return (
                f"case {case.id} was routed here by the rules, nobody sent it: use 上报 "
                "(escalate) to send it up"
            )
        return None
    if action == "schedule" and case.accepted_at is None and case.status == "received":
        return f"case {case.id} is not accepted yet: 受理 (accept) it first"
    if action in STEP_OF:
        want = STEP_OF[action]
        order = ("received", "scheduled", "handled", "visited", "evaluated")
        if order.index(want) != order.index(case.status) + 1:
            return f"case {case.id} is at {case.status}: {_label(action)} is not its next step"
    return None


def _last_move(session: Session, case: Case, handler: Handler) -> CaseAction | None:
    """The move that brought the case to its current handler, if any."""
    last = session.scalars(
        select(CaseAction)
        .where(CaseAction.case_id == case.id)
        .where(CaseAction.action.in_(MOVES))
        .order_by(CaseAction.id.desc())
        .limit(1)
    ).first()
    if last is None or last.to_unit != handler.unit_code:
        return None
    if last.to_department_id != handler.department_id:
        return None
    return last


def _lock(session: Session, case_id: int) -> Case | None:
    pg = session.get_bind().dialect.name == "postgresql"
    if not pg:  # SQLite: hold the write lock before reading (see services.cases)
        session.execute(text("UPDATE dataset_version SET version = version WHERE 0"))
    stmt = select(Case).where(Case.id == case_id)
    if pg:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def in_jurisdiction(session: Session, user: Principal, case: Case) -> bool:
    """The case lies in ``user``'s subtree, or is held there (a case transferred to a
    sibling unit is the receiver's to work, though its place is not)."""
    inside = session.scalar(
        select(
            exists()
            .where(UnitAncestry.unit_id == case.leaf_unit_id)
            .where(UnitAncestry.ancestor_code == user.unit_code)
        )
    )
    if inside:
        return True
    held = case.handling_unit_code
    return held is not None and _below(session, held, user.unit_code)


def visible(session: Session, user: Principal | None, code: str | None) -> str | None:
    """``code`` when it lies in ``user``'s subtree, else None: an answer never names a
    unit above the caller (a case escalated past a town shows the level, not the code)."""
    if code is None or user is None or code == user.unit_code:
        return code
    return code if _below(session, code, user.unit_code) else None


def case_state(
    session: Session, case: Case, now: dt.datetime, user: Principal | None = None
) -> dict:
    """A case as the desk shows it (the API's case plus its handler)."""
    code = session.scalar(select(AdminUnit.code).where(AdminUnit.id == case.leaf_unit_id))
    out = case_dict(case, code, now)
    handler = current_handler(session, case)
    out["handling_unit_code"] = visible(session, user, handler.unit_code)
    out["handling_level"] = handler.level
    out["accepted_at"] = case.accepted_at
    return out


def _replay(session: Session, user: Principal, case_id: int, key: str, now: dt.datetime):
    done = session.scalars(select(CaseAction).where(CaseAction.key == key)).first()
    if done is None:
        return None
    if done.case_id != case_id:
        session.rollback()
        raise ApiError(
            409, f"key {key!r} was already used for an action on another case: use a new key"
        )
    case = session.get(Case, case_id)
    out = {
        "case": case_state(session, case, now, user),
        "action": done.action,
        "replayed": True,
    }
    session.rollback()
    return out


def act(
    session: Session,
    user: Principal,
    case_id: int,
    request: ActionRequest,
    now: dt.datetime | None = None,
) -> dict:
    """Take one action on a case, commit, and return ``{"case", "action", "replayed"}``.

    404: no such case in ``user``'s jurisdiction, or an unknown target unit or
    department; 403: the role may not take the action, or the case is not the caller's to
    act on; 409: a stale version (with ``case``, its current state), the wrong step, a
    move the case's place does not allow; 422: a missing reason or target."""
    now = now or dt.datetime.now(dt.UTC)
    if request.action not in ACTIONS:
        raise ApiError(422, f"unknown action {request.action!r}: use one of {', '.join(ACTIONS)}")
    if request.action not in ROLE_ACTIONS.get(user.role, frozenset()):
        raise ApiError(403, f"role {user.role!r} cannot {_label(request.action)} a case")
    if request.key:
        replayed = _replay(session, user, case_id, request.key, now)
        if replayed is not None:
            return replayed
    try:
        out = _act(session, user, case_id, request, now)
        session.commit()
    except _Replayed as done:
        return done.answer
    except IntegrityError:  # the same key, sent twice at once: the other one did it
        session.rollback()
        if request.key:
            replayed = _replay(session, user, case_id, request.key, now)
            if replayed is not None:
                return replayed
        raise
    return out


class _Replayed(Exception):  # control flow: the key acted meanwhile
    def __init__(self, answer: dict) -> None:
        self.answer = answer


def _refuse(session: Session, status: int, message: str) -> ApiError:
    session.rollback()
    return ApiError(status, message)


def _act(
    session: Session, user: Principal, case_id: int, req: ActionRequest, now: dt.datetime
) -> dict:
    case = _lock(session, case_id)
    if case is None or not in_jurisdiction(session, user, case):
        raise _refuse(session, 404, f"no case {case_id} in your jurisdiction")
    if req.key and session.scalar(select(CaseAction.id).where(CaseAction.key == req.key)):
        # the same key acted while this one waited for the case's lock: say what it did
        replayed = _replay(session, user, case_id, req.key, now)
        raise _Replayed(replayed)
    if req.version != case.version:
        state = case_state(session, case, now, user)
        session.rollback()
        raise ApiError(
            409,
            f"case {case_id} changed since you read it (version {req.version}, now "
            f"{state['version']}, at {state['status']}, with the "
            f"{state['handling_level']} {state['handling_unit_code'] or 'above you'}): "
            "look at it again and repeat your action if it still applies",
            case=state,
        )
    handler = current_handler(session, case)
    department = department_of(session, user)
    if user.role == "department" and department is None:
        raise _refuse(session, 403, f"user {user.name!r} belongs to no department")
    if req.action in HOLDER_ACTIONS and not holds(session, user, handler, department, req.action):
        where = (visible(session, user, handler.unit_code) or f"the {handler.level} above") + (
            f" / department {handler.department_id}" if handler.department_id else ""
        )
        raise _refuse(
            session,
            403,
            f"case {case_id} is handled by {where}, not by you: you cannot {_label(req.action)} it",
        )
    problem = _step_problem(session, case, req.action, handler)
    if problem:
        raise _refuse(session, 409, problem)
    reason = (req.reason or "").strip()[:MAX_REASON] or None
    if req.action in ("escalate", "return", "note") and not reason:
        raise _refuse(session, 422, f"{_label(req.action)} needs a reason")
    target = _target(session, user, case, handler, req) if req.action in MOVES else None
    held = seconds_between(now, case.handler_since or case.received_at or case.reported_at)
    kwargs: dict = {"held_seconds": None, "wait_seconds": None}
    if req.action == "accept":
        case.accepted_at = now
        kwargs["wait_seconds"] = held  # arrival at this handler → 受理
    elif target is not None:
        kwargs["held_seconds"] = held
        if req.action == "dispatch":
            kwargs["wait_seconds"] = seconds_between(
                now, case.accepted_at or case.handler_since or case.received_at
            )
        case.handling_unit_code, case.department_id = target.unit_code, target.department_id
        case.handler_since, case.accepted_at = now, None
    elif req.action in STEP_OF:
        if req.outcome is not None and req.outcome not in OUTCOMES:
            raise _refuse(session, 422, f"unknown outcome {req.outcome!r}: {', '.join(OUTCOMES)}")
        if req.action == "evaluate" and req.satisfaction not in (1, 2, 3, 4, 5):
            raise _refuse(session, 422, "评 evaluate needs a satisfaction from 1 to 5")
        if req.action == "handle":
            kwargs["held_seconds"] = held
        apply_step(session, case, STEP_OF[req.action], None, req.outcome, req.satisfaction, now)
    case.version += 1
    case.updated_at = now
    record_action(
        session,
        case,
        req.action,
        at=now,
        user_name=user.name,
        role=user.role,
        from_unit=handler.as_tuple(),
        to_unit=target.as_tuple() if target else None,
        reason=reason,
        key=req.key,
        **kwargs,
    )
    audit(
        session,
        user.name,
        user.unit_code,
        "case.action",
        target=f"case:{case_id}",
        detail={
            "action": req.action,
            "from": list(handler.as_tuple()),
            "to": list(target.as_tuple()) if target else None,
            "reason": reason,
            "version": case.version,
        },
    )
    session.flush()
    return {
        "case": case_state(session, case, now, user),
        "action": req.action,
        "replayed": False,
    }


def _department(session: Session, department_id: int) -> Department:
    found = session.get(Department, department_id)
    if found is None or not found.active:
        raise _refuse(
            session,
            404,
            f"no department {department_id}: list them with GET /api/v1/departments?unit=",
        )
    return found


def _target(
    session: Session, user: Principal, case: Case, handler: Handler, req: ActionRequest
) -> Handler:
    """Where a move sends the case (checked against the move's rule and the scope)."""
    if req.action == "escalate":
        parent = session.scalar(
            select(AdminUnit.parent_code)
            .where(AdminUnit.code == handler.unit_code)
            .where(AdminUnit.valid_to.is_(None))
        )
        if parent is None:
            raise _refuse(session, 409, f"{handler.unit_code} has no unit above it to escalate to")
        return Handler(parent, unit_level(session, parent) or "", None)
    if req.action == "return":
        last = _last_move(session, case, handler)
        assert last is not None  # _step_problem checked
        return Handler(last.from_unit, last.from_level or "", last.from_department_id)
    if req.department is None and req.to_unit is None:
        raise _refuse(session, 422, f"{_label(req.action)} needs to_unit or department")
    if req.department is not None:
        dep = _department(session, req.department)
        if not _below(session, dep.unit_code, user.unit_code):
            raise _refuse(session, 404, f"no department {req.department} in your jurisdiction")
        if req.action == "dispatch" and not _below(session, dep.unit_code, handler.unit_code):
            raise _refuse(
                session,
                409,
                f"下派 dispatch goes down: department {dep.id} ({dep.name}) is not at "
                f"{handler.unit_code} or below it",
            )
        if req.action == "transfer" and dep.unit_code != handler.unit_code:
            raise _refuse(
                session,
                409,
                f"转办 transfer goes sideways: department {dep.id} is at {dep.unit_code}, "
                f"the case is at {handler.unit_code}",
            )
        if dep.id == handler.department_id:
            raise _refuse(session, 409, f"case {case.id} is already with department {dep.id}")
        return Handler(dep.unit_code, unit_level(session, dep.unit_code) or "", dep.id)
    to = req.to_unit or ""
    if not _below(session, to, user.unit_code):
        raise _refuse(session, 404, f"no unit {to!r} in your jurisdiction")
    if user.role == "department":
        raise _refuse(session, 409, "a department transfers to another department, not a unit")
    if req.action == "dispatch" and not _below(session, to, handler.unit_code, strictly=True):
        raise _refuse(
            session, 409, f"下派 dispatch goes down: {to} is not below {handler.unit_code}"
        )
    if req.action == "transfer":
        parents = set(
            session.scalars(
                select(AdminUnit.parent_code)
                .where(AdminUnit.code.in_((to, handler.unit_code)))
                .where(AdminUnit.valid_to.is_(None))
            )
        )
        if len(parents) != 1 or to == handler.unit_code:
            raise _refuse(
                session,
                409,
                f"转办 transfer goes sideways: {to} is not a sibling of {handler.unit_code}",
            )
    return Handler(to, unit_level(session, to) or "", None)
