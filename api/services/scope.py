"""Jurisdiction: every read is limited to the subtree of the caller's home unit.

One query helper (``subtree_codes`` / ``in_scope``) so that no route writes its own check.
"""

from __future__ import annotations

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, UnitAncestry


def in_scope(session: Session, root_code: str, code: str) -> bool:
    """True when unit ``code`` (any version) lies in the subtree of ``root_code``."""
    return bool(
        session.scalar(
            select(
                exists()
                .where(UnitAncestry.unit_id == AdminUnit.id)
                .where(AdminUnit.code == code)
                .where(UnitAncestry.ancestor_code == root_code)
            )
        )
    )


def subtree_unit_ids(root_code: str) -> Select:
    """A sub-select of the ids of every unit version under (and including) ``root_code``."""
    return select(UnitAncestry.unit_id).where(UnitAncestry.ancestor_code == root_code)


def subtree_codes(root_code: str) -> Select:
    """A sub-select of the codes of every unit under (and including) ``root_code``."""
    return (
        select(AdminUnit.code)
        .join(UnitAncestry, UnitAncestry.unit_id == AdminUnit.id)
        .where(UnitAncestry.ancestor_code == root_code)
    )
