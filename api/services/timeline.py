"""A case's timeline (table ``case_action``): one row per action, written in the caller's
transaction with the ``desk`` domain's rollups moved by it (``apply_changes``: the daily
row of its leaf, day, action and flow; the version bumped and the change logged).

The vocabulary is here, one source of truth for the desk, the figures and the dashboard.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from api.db.desk import CaseAction, Department
from api.db.models import Case
from api.domain import DESK_ACTIONS, desk_node
from api.engine import DESK, apply_changes

ACTIONS = DESK_ACTIONS  # code → (zh, en)
MOVES = frozenset({"dispatch", "escalate", "transfer", "return"})  # change the handler
STEP_OF = {
    "schedule": "scheduled",
    "handle": "handled",
    "visit": "visited",
    "evaluate": "evaluated",
}
ACTION_OF_STEP = {step: action for action, step in STEP_OF.items()}
DESK_DATASET = "desk"


def seconds_between(later: dt.datetime, earlier: dt.datetime | None) -> float | None:
    """Whole seconds from ``earlier`` to ``later`` (None when unknown), never negative."""
    if earlier is None:
        return None
    return max(0.0, float(round((later - earlier).total_seconds())))


def record_action(
    session: Session,
    case: Case,
    action: str,
    *,
    at: dt.datetime,
    user_name: str | None,
    role: str | None,
    from_unit: tuple[str | None, str | None, int | None],
    to_unit: tuple[str | None, str | None, int | None] | None = None,
    reason: str | None = None,
    held_seconds: float | None = None,
    wait_seconds: float | None = None,
    key: str | None = None,
) -> None:
    """Append one action to ``case``'s timeline (``from_unit``/``to_unit``: unit code,
    level, department id) and move the ``desk`` rollups by it (bumps its version)."""
    to_unit = to_unit or from_unit
    kinds = _kinds(session, {from_unit[2], to_unit[2]} - {None})
    row = {
        "case_id": case.id,
        "leaf_unit_id": case.leaf_unit_id,
        "at": at,
        "action": action,
        "user_name": user_name,
        "role": role,
        "from_unit": from_unit[0],
        "from_level": from_unit[1],
        "from_department_id": from_unit[2],
        "to_unit": to_unit[0],
        "to_level": to_unit[1],
        "to_department_id": to_unit[2],
        "reason": reason,
        "held_seconds": held_seconds,
        "wait_seconds": wait_seconds,
        "version": case.version,
        "key": key,
        "from_node": desk_node(from_unit[1], kinds.get(from_unit[2])),
        "to_node": desk_node(to_unit[1], kinds.get(to_unit[2])),
    }
    session.execute(insert(CaseAction), row)
    columns = {
        name: np.array([row[name]], dtype=object)
        for name in ("action", "from_level", "from_node", "to_node")
    }
    columns |= {
        "leaf_unit_id": np.array([row["leaf_unit_id"]], dtype=np.int64),
        "at": np.array([at], dtype=object),
        "from_department_id": _floats([from_unit[2]]),
        "held_seconds": _floats([held_seconds]),
        "wait_seconds": _floats([wait_seconds]),
    }
    apply_changes(session, DESK, [(columns, 1)])


def _floats(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _kinds(session: Session, ids: set[int]) -> dict[int, str]:
    """The kind of each department of ``ids``."""
    if not ids:
        return {}
    return dict(
        session.execute(select(Department.id, Department.kind).where(Department.id.in_(ids))).all()
    )


def timeline(session: Session, case_id: int) -> list[CaseAction]:
    """The actions of a case, oldest first."""
    return list(
        session.scalars(
            select(CaseAction).where(CaseAction.case_id == case_id).order_by(CaseAction.id)
        )
    )
