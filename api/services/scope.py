"""Jurisdiction: every read is limited to the subtree of the caller's home unit.

One query helper (``subtree_codes`` / ``in_scope``) so that no route writes its own check,
and ``trim_above`` so that no answer names the unit above the caller's home unit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, exists, select
from sqlalchemy.orm import Session, aliased, defer

from api.db.models import AdminUnit, UnitAncestry
from api.errors import ApiError
from api.principal import Principal


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


def _unit_in_scope_statement() -> Select:
    version = aliased(AdminUnit)
    in_subtree = (
        exists()
        .where(UnitAncestry.unit_id == version.id)
        .where(version.code == bindparam("code"))
        .where(UnitAncestry.ancestor_code == bindparam("root"))
    )
    return (
        select(AdminUnit)
        .options(defer(AdminUnit.geom))
        .where(AdminUnit.code == bindparam("code"), in_subtree)
        .order_by(AdminUnit.valid_to.is_not(None), AdminUnit.valid_from.desc())
        .limit(1)
    )


# built once: building it (a fresh alias each time) cost ~4 ms a call, ten times its query
_UNIT_IN_SCOPE = _unit_in_scope_statement()


def unit_in_scope(session: Session, root_code: str, code: str) -> AdminUnit | None:
    """The current version of unit ``code`` (or, for a retired unit, its last version),
    boundary deferred, when some version of it lies in the subtree of ``root_code``; else
    None. One query: every figure request runs it."""
    return session.scalars(_UNIT_IN_SCOPE, {"code": code, "root": root_code}).first()


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


def trim_above(value: Any, root_code: str) -> Any:
    """``value`` (JSON-like dicts and lists) with the parent of ``root_code`` blanked: the
    one code above a caller's subtree that a response about its own home unit would carry
    (``parent_code``). Returns copies; the input (often a cached row) is left as it was."""
    if isinstance(value, dict):
        out = {k: trim_above(v, root_code) for k, v in value.items()}
        if out.get("code") == root_code and out.get("parent_code") is not None:
            out["parent_code"] = None
        return out
    if isinstance(value, list):
        return [trim_above(v, root_code) for v in value]
    return value


def check_scope(session: Session, user: Principal, code: str) -> AdminUnit:
    """The current version of unit ``code`` (the last one of a retired unit: its history
    stays readable) if it lies in ``user``'s subtree, else 404 (a unit outside the scope
    is never confirmed to exist)."""
    unit = unit_in_scope(session, user.unit_code, code)
    if unit is None:
        raise ApiError(404, f"no unit {code!r} in your jurisdiction")
    return unit
