"""The append-only audit trail: exports, case changes, logins, token changes.

Nothing in the code updates or deletes ``audit_log`` rows. Each entry carries the home unit
of whoever acted, so admins read the entries of their own subtree only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, AuditLog
from api.principal import Principal
from api.services.scope import subtree_codes


def audit(
    session: Session,
    user_name: str | None,
    unit_code: str | None,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry in the caller's transaction (so it lands with what it records).
    A plain INSERT, sent at once: the ORM's flush of an added object (with RETURNING of its
    id) cost a map request ~1 ms more."""
    session.execute(
        _INSERT,
        {
            "at": dt.datetime.now(dt.UTC),
            "user_name": user_name[:64] if user_name else user_name,
            "unit_code": unit_code,
            "action": action[:32],
            "target": target[:128] if target else target,
            "detail": detail,
        },
    )


_INSERT = insert(AuditLog.__table__)


def audit_export(
    session: Session,
    principal: Principal | None,
    *,
    level: str | None,
    parent: str | None,
    metric: str | None,
    start: dt.date | str | None,
    end: dt.date | str | None,
    fmt: str,
    rows: int,
    via: str = "api",
) -> None:
    """Record an export: who, which level under which parent, metric, period, format, rows.
    ``principal`` None means the command line (``zhili export``). Commit with the response
    (or in its own transaction: an export writes nothing else).

    On PostgreSQL the transaction's commit does not wait for its WAL to reach the disk
    (``synchronous_commit`` off, this transaction only): a map request would otherwise
    spend more time in fsync than in building the map. The entry is still atomic and is
    flushed within a fraction of a second; only a crash of the database server in that
    window could lose it. Case changes keep the full guarantee."""
    if session.get_bind().dialect.name == "postgresql":
        # on the connection the entry is written by (the primary, when reads go to a replica)
        on = {"mapper": AuditLog.__mapper__}
        session.connection(bind_arguments=on).exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    audit(
        session,
        principal.name if principal else "cli",
        principal.unit_code if principal else parent,
        "export",
        target=f"{level or ''}:{parent or ''}",
        detail={
            "level": level,
            "parent": parent,
            "metric": metric,
            "start": str(start) if start is not None else None,
            "end": str(end) if end is not None else None,
            "format": fmt,
            "rows": rows,
            "via": via,
        },
    )


def audit_case_change(
    session: Session,
    principal: Principal | None,
    action: str,
    case_id: int | str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a change to a case (``case.create``, ``case.update``, ``case.advance``, ...)."""
    audit(
        session,
        principal.name if principal else "cli",
        principal.unit_code if principal else None,
        action,
        target=f"case:{case_id}",
        detail=detail,
    )


def _is_root(session: Session, code: str) -> bool:
    parent = session.scalar(
        select(AdminUnit.parent_code)
        .where(AdminUnit.code == code)
        .where(AdminUnit.valid_to.is_(None))
        .limit(1)
    )
    return parent is None


def list_audit(
    session: Session,
    principal: Principal,
    *,
    action: str | None = None,
    user_name: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditLog]:
    """Entries of actors in ``principal``'s subtree, newest first, ``limit`` of them before
    id ``before_id`` (keyset paging). Entries with no unit (a failed login under an unknown
    name, the command line) are shown to admins of a root unit only."""
    scope = AuditLog.unit_code.in_(subtree_codes(principal.unit_code))
    if _is_root(session, principal.unit_code):
        scope = or_(scope, AuditLog.unit_code.is_(None))
    stmt = select(AuditLog).where(scope)
    if action:
        stmt = stmt.where(
            AuditLog.action.startswith(action.rstrip("."), autoescape=True)
            if action.endswith(".")
            else AuditLog.action == action
        )
    if user_name:
        stmt = stmt.where(AuditLog.user_name == user_name)
    if start is not None:
        stmt = stmt.where(AuditLog.at >= start)
    if end is not None:
        stmt = stmt.where(AuditLog.at < end)
    if before_id is not None:
        stmt = stmt.where(AuditLog.id < before_id)
    return list(session.scalars(stmt.order_by(AuditLog.id.desc()).limit(limit)))
