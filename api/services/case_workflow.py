"""The 接-约-办-访-评 workflow of one case, and the scoped case list.

``advance_case`` moves a case one step forward (received → scheduled → handled → visited →
evaluated), never back, never skipping, with a time not before the previous step's and not
in the future; the outcome is recorded at 办 (handled), the satisfaction 1-5 at 评
(evaluated). Each change is audited and moves the rollups in the same transaction.

``list_cases`` lists the cases whose leaf unit lies in the caller's subtree, newest first,
with an opaque cursor on the id. No personal data is stored, so none can be listed.
"""

from __future__ import annotations

import base64
import datetime as dt

from sqlalchemy import exists, func, literal, select, text
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, Case, UnitAncestry
from api.domain import CATEGORY_BY_CODE, CHANNEL_BY_CODE, STEP_NAMES_ZH, STEPS
from api.engine import CaseSnapshot, PeriodError, apply_case_changes, parse_shorthand
from api.errors import BAD_PARAMETER, ApiError
from api.principal import Principal
from api.services.audit import audit
from api.services.local_time import CLOCK_SKEW, local_zone
from api.services.scope import in_scope, subtree_unit_ids
from api.services.timeline import ACTION_OF_STEP, record_action, seconds_between
from api.services.units import get_unit

MAX_PAGE = 1000


def _step(name: str) -> str:
    return f"{STEP_NAMES_ZH[name]} {name}"


def _local(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=local_zone()) if at.tzinfo is None else at


def case_dict(case: Case, unit_code: str, now: dt.datetime) -> dict:
    """A case as the API shows it."""
    return {
        "id": case.id,
        "source": case.source,
        "external_id": case.external_id,
        "category": case.category,
        "channel": case.channel,
        "description": case.description,
        "reported_at": case.reported_at,
        "lon": case.lon,
        "lat": case.lat,
        "unit_code": unit_code,
        "village_code": case.village_code,
        "grid_code": case.grid_code,
        "placed_by_tolerance": case.placed_by_tolerance,
        "status": case.status,
        "received_at": case.received_at,
        "scheduled_at": case.scheduled_at,
        "handled_at": case.handled_at,
        "visited_at": case.visited_at,
        "evaluated_at": case.evaluated_at,
        "outcome": case.outcome,
        "satisfaction": case.satisfaction,
        "deadline": case.deadline,
        "overdue": (case.handled_at or now) > case.deadline,  # 超期: open or handled late
        "handling_unit_code": case.handling_unit_code,
        "department_id": case.department_id,
        "version": case.version,
    }


def advance_case(
    session: Session,
    user: Principal,
    case_id: int,
    step: str,
    at: dt.datetime | None = None,
    outcome: str | None = None,
    satisfaction: int | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Advance case ``case_id`` to ``step`` (the next one), commit, and return the case.

    404 when the case is not in ``user``'s subtree; 409 for an illegal move (back, skip,
    before the previous step); 422 for a time in the future."""
    now = now or dt.datetime.now(dt.UTC)
    pg = session.get_bind().dialect.name == "postgresql"
    if not pg:  # take SQLite's write lock before reading (see services.cases)
        session.execute(text("UPDATE dataset_version SET version = version WHERE 0"))
    stmt = select(Case).where(Case.id == case_id)
    if pg:
        stmt = stmt.with_for_update()
    case = session.scalar(stmt)
    if case is None or not session.scalar(
        select(
            exists()
            .where(UnitAncestry.unit_id == case.leaf_unit_id)
            .where(UnitAncestry.ancestor_code == user.unit_code)
        )
    ):
        session.rollback()
        raise ApiError(404, f"no case {case_id} in your jurisdiction")
    handler = case.handling_unit_code or case.village_code
    held = seconds_between(now, case.handler_since or case.received_at or case.reported_at)
    previous = apply_step(session, case, step, at, outcome, satisfaction, now)
    case.version = (case.version or 1) + 1
    level = session.scalar(
        select(AdminUnit.level).where(AdminUnit.code == handler).where(AdminUnit.valid_to.is_(None))
    )
    record_action(
        session,
        case,
        ACTION_OF_STEP[step],
        at=getattr(case, f"{step}_at"),
        user_name=user.name,
        role=user.role,
        from_unit=(handler, level, case.department_id),
        held_seconds=held if step == "handled" else None,
    )
    audit(
        session,
        user.name,
        user.unit_code,
        "case.advance",
        target=f"case:{case_id}",
        detail={
            "step": step,
            "at": getattr(case, f"{step}_at").isoformat(),
            "outcome": outcome,
            "satisfaction": satisfaction,
            "from": previous,
        },
    )
    unit_code = session.scalar(select(AdminUnit.code).where(AdminUnit.id == case.leaf_unit_id))
    out = case_dict(case, unit_code, now)
    session.commit()
    return out


def apply_step(
    session: Session,
    case: Case,
    step: str,
    at: dt.datetime | None,
    outcome: str | None,
    satisfaction: int | None,
    now: dt.datetime,
) -> str:
    """Move ``case`` (locked by the caller) to ``step``, the next one, and its rollups with
    it; returns the step it was at. On an illegal move the session is rolled back and an
    ``ApiError`` raised (409: back, skip, before the previous step; 422: unknown step, a
    time in the future). Neither commits nor audits: the caller does."""
    if step not in STEPS[1:]:
        raise ApiError(422, f"unknown step {step!r}: use one of {', '.join(STEPS[1:])}")
    current = STEPS.index(case.status)
    target = STEPS.index(step)
    if target <= current:
        session.rollback()
        raise ApiError(
            409,
            f"case {case.id} is already at {_step(case.status)}: a step cannot be taken "
            "again or back",
        )
    if target > current + 1:
        session.rollback()
        raise ApiError(
            409,
            f"case {case.id} is at {_step(case.status)}: the next step is "
            f"{_step(STEPS[current + 1])}, not {_step(step)}",
        )
    at = _local(at) if at is not None else now
    if at > now + CLOCK_SKEW:
        session.rollback()
        raise ApiError(422, f"time {at.isoformat()} is in the future")
    previous = getattr(case, f"{case.status}_at") or case.reported_at
    if at < previous:
        session.rollback()
        raise ApiError(
            409,
            f"time {at.isoformat()} is before the previous step {_step(case.status)} "
            f"({previous.isoformat()}): steps cannot go back in time",
        )
    old = CaseSnapshot.of(case)
    setattr(case, f"{step}_at", at)
    case.status = step
    if step == "handled":
        case.outcome = outcome
    if step == "evaluated":
        case.satisfaction = satisfaction
    case.updated_at = now
    session.flush()
    apply_case_changes(session, [(old, CaseSnapshot.of(case))])
    return STEPS[current]


# ---------------------------------------------------------------- list


def encode_cursor(case_id: int) -> str:
    """An opaque cursor after case ``case_id``."""
    return base64.urlsafe_b64encode(f"c1:{case_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The case id a cursor points after; 400 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "c1":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad cursor: pass back the next_cursor of the previous page") from None


def list_cases(
    session: Session,
    user: Principal,
    unit_code: str | None = None,
    status: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    overdue: bool | None = None,
    limit: int = 100,
    cursor: str | None = None,
    now: dt.datetime | None = None,
    period: str | None = None,
) -> dict:
    """One page of the cases in ``user``'s subtree (or in ``unit_code``'s, which must lie in
    it: else 404), newest first: ``{"items": [...], "next_cursor": str | None}``.

    ``status``: a step (received ... evaluated), ``open`` or ``closed``; ``start``/``end``:
    local days of reported_at, both included, or ``period``: a shorthand of the metrics
    (2026, 2026-Q3, 2026-10, 2026-W05, last-30d ending today); ``overdue`` (超期): past
    the deadline — open after it or handled after it — as each item's ``overdue`` says
    (with ``status=open``: 超期未办结), or not.
    """
    if user.role == "display":
        raise ApiError(403, "the display role shows figures only; it cannot list cases")
    if not user.can_read:
        raise ApiError(403, f"role {user.role!r} cannot read cases")
    now = now or dt.datetime.now(dt.UTC)
    root = user.unit_code
    if unit_code is not None:
        if get_unit(session, unit_code) is None or not in_scope(session, root, unit_code):
            raise ApiError(404, f"no unit {unit_code!r} in your jurisdiction")
        root = unit_code
    limit = max(1, min(int(limit), MAX_PAGE))
    stmt = (
        select(Case, AdminUnit.code)
        .join(AdminUnit, AdminUnit.id == Case.leaf_unit_id)
        .where(Case.leaf_unit_id.in_(subtree_unit_ids(root)))
    )
    if status is not None:
        if status == "open":
            stmt = stmt.where(Case.handled_at.is_(None))
        elif status == "closed":
            stmt = stmt.where(Case.handled_at.is_not(None))
        elif status in STEPS:
            stmt = stmt.where(Case.status == status)
        else:
            raise ApiError(
                BAD_PARAMETER,
                f"unknown status {status!r}: use open, closed or one of {', '.join(STEPS)}",
            )
    if category is not None:
        if category not in CATEGORY_BY_CODE:
            raise ApiError(BAD_PARAMETER, f"unknown category {category!r}")
        stmt = stmt.where(Case.category == category)
    if channel is not None:
        if channel not in CHANNEL_BY_CODE:
            raise ApiError(BAD_PARAMETER, f"unknown channel {channel!r}")
        stmt = stmt.where(Case.channel == channel)
    zone = local_zone()
    if period is not None:
        if start is not None or end is not None:
            raise ApiError(BAD_PARAMETER, "give period, or start and end, not both")
        try:
            found = parse_shorthand(period, now.astimezone(zone).date())
        except PeriodError as exc:
            raise ApiError(BAD_PARAMETER, str(exc)) from None
        if found is None:
            raise ApiError(
                BAD_PARAMETER,
                f"bad period {period!r}: use 2026, 2026-Q3, 2026-10, 2026-W05 or last-30d",
            )
        start, end = found.start, found.end
    if start is not None:
        stmt = stmt.where(Case.reported_at >= dt.datetime.combine(start, dt.time(), zone))
    if end is not None:
        after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
        stmt = stmt.where(Case.reported_at < after)
    if start is not None and end is not None and end < start:
        raise ApiError(BAD_PARAMETER, "end is before start")
    late = func.coalesce(Case.handled_at, literal(now, Case.handled_at.type)) > Case.deadline
    if overdue is True:
        stmt = stmt.where(late)
    elif overdue is False:
        stmt = stmt.where(~late)
    if cursor:
        stmt = stmt.where(Case.id < decode_cursor(cursor))
    rows = session.execute(stmt.order_by(Case.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [case_dict(case, code, now) for case, code in rows]
    return {
        "items": items,
        "next_cursor": encode_cursor(rows[-1][0].id) if more and rows else None,
    }
