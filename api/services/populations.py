"""Who may read the special-population figures, and the audit of every such read.

The figures themselves (and their suppression) are the engine's: a metric of a protected
domain (``api.engine.is_protected``) answers only a reader with the permission
``special_populations``; to anyone else it does not exist (not listed, 403 when asked).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.engine import protected_metric_ids
from api.errors import ApiError
from api.principal import Principal
from api.services.audit import audit


def may_read_metric(principal: Principal | None, metric_id: str) -> bool:
    """True when ``principal`` may read ``metric_id``'s figures."""
    if metric_id not in protected_metric_ids():
        return True
    return principal is not None and principal.can_read_special_populations


def check_metric_access(principal: Principal | None, metric_id: str) -> None:
    """A 403 when ``metric_id`` is a special-population figure and the caller lacks the
    permission."""
    if not may_read_metric(principal, metric_id):
        raise ApiError(
            403,
            f"metric {metric_id!r} is a special-population figure: it needs the "
            "special_populations permission (zhili user add ... --special-populations)",
        )


def visible_metric_ids(principal: Principal | None, ids: list[str]) -> list[str]:
    """``ids`` without the special-population metrics the caller may not read."""
    return [i for i in ids if may_read_metric(principal, i)]


def audit_read(
    session: Session, principal: Principal | None, metric_id: str, what: str, detail: dict
) -> None:
    """Record a read of a special-population figure (who, which metric, what was asked),
    committed at once: a read writes nothing else."""
    if metric_id not in protected_metric_ids():
        return
    audit(
        session,
        principal.name if principal else "cli",
        principal.unit_code if principal else None,
        "populations.read",
        target=f"{metric_id}:{what}"[:128],
        detail=detail,
    )
    session.commit()
