"""Routing (分级分流): which unit and department first handle a new case, by rules that are
data (table ``routing_rule``), and the departments (职能部门) attached to units.

A rule says: cases of a category (or any) and a severity (or any) within a unit's subtree
(or anywhere) start at the ancestor of their leaf at a level (village, town, city, grid,
...) and, if it names a department kind, at that unit's department of that kind (or the
nearest ancestor's, when the unit has none). The most specific active rule wins: one with
an area nearer the leaf, then one naming the category, then the severity, then the higher
``priority``. No rule → the case's leaf's village level (or the leaf itself).

A case is routed once, when it is created, and the result is stored on it
(``case.handling_unit_code``, ``case.department_id``): a rule changed later applies to new
cases only. Severity is the category's (``api.domain.Category.serious``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.desk import Department, DepartmentMember, RoutingRule
from api.db.models import AdminLevel, AdminUnit, UnitAncestry
from api.domain import CATEGORY_BY_CODE, DEPARTMENT_KINDS

# 职能部门 kinds: DEPARTMENT_KINDS (api.domain), code → (zh, en)
# the city's offices are bureaus (局) rather than stations (所)
CITY_NAMES = {
    "police": "公安局",
    "mediation": "司法局",
    "petition": "信访局",
    "urban": "城管局",
    "housing": "住建局",
    "labour": "人社局",
    "market": "市场监管局",
    "environment": "生态环境局",
    "health": "卫健委",
}

# The default rules a new city starts with: (category, severity, level, department kind).
DEFAULT_RULES: tuple[tuple[str | None, str | None, str, str | None], ...] = (
    (None, None, "village", None),  # anything else: the village (村/社区) first
    ("safety_hazard", None, "grid", None),  # a hazard: the grid worker who found it
    ("labour", None, "town", "labour"),  # wage arrears: the town's 劳动保障所
    ("medical", None, "town", "mediation"),  # medical disputes: 医调委 at the 司法所
    ("environment", None, "town", "environment"),
    ("consumer", None, "town", "market"),
    ("petition", None, "city", "petition"),  # 信访: the city's petitions bureau
)


def severity_of(category: str) -> str:
    """``serious`` or ``normal``: the category's severity."""
    found = CATEGORY_BY_CODE.get(category)
    return "serious" if found is not None and found.serious else "normal"


@dataclass(frozen=True)
class Route:
    """Where a case starts: a unit (its code and level) and maybe a department."""

    unit_code: str
    level: str
    department_id: int | None


class Router:
    """The rules, levels and departments of a database, read once; ``route`` answers per
    leaf unit version and category (cached: a batch has few distinct pairs)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rules = list(
            session.execute(
                select(
                    RoutingRule.category,
                    RoutingRule.severity,
                    RoutingRule.area_code,
                    RoutingRule.level,
                    RoutingRule.department_kind,
                    RoutingRule.priority,
                )
                .where(RoutingRule.active.is_(True))
                .order_by(RoutingRule.id)
            ).all()
        )
        self.depth = dict(session.execute(select(AdminLevel.code, AdminLevel.depth)).all())
        self.departments = {
            (unit, kind): id_
            for id_, unit, kind in session.execute(
                select(Department.id, Department.unit_code, Department.kind).where(
                    Department.active.is_(True)
                )
            )
        }
        self.ancestry: dict[int, list[tuple[str, str, int]]] = {}
        self.cache: dict[tuple[int, str], Route] = {}

    def load(self, leaf_ids: Iterable[int]) -> None:
        """Read the ancestry of the leaves not read yet (one query)."""
        wanted = sorted({int(i) for i in leaf_ids} - self.ancestry.keys())
        for i in range(0, len(wanted), 5000):
            chunk = wanted[i : i + 5000]
            for unit_id, code, level, distance in self.session.execute(
                select(
                    UnitAncestry.unit_id,
                    UnitAncestry.ancestor_code,
                    UnitAncestry.ancestor_level,
                    UnitAncestry.distance,
                ).where(UnitAncestry.unit_id.in_(chunk))
            ):
                self.ancestry.setdefault(unit_id, []).append((code, level, distance))
        for rows in self.ancestry.values():
            rows.sort(key=lambda r: r[2])  # the leaf first

    def _rule(self, chain: list[tuple[str, str, int]], category: str):
        severity = severity_of(category)
        distance = {code: d for code, _, d in chain}
        best, best_score = None, None
        for rule in self.rules:
            if rule.category is not None and rule.category != category:
                continue
            if rule.severity is not None and rule.severity != severity:
                continue
            if rule.area_code is not None and rule.area_code not in distance:
                continue
            score = (
                rule.area_code is not None,
                -distance.get(rule.area_code, 0),
                rule.category is not None,
                rule.severity is not None,
                rule.priority,
            )
            if best_score is None or score > best_score:
                best, best_score = rule, score
        return best

    def route(self, leaf_unit_id: int, category: str) -> Route:
        """The first handler of a new case in ``leaf_unit_id`` of ``category``."""
        key = (int(leaf_unit_id), category)
        if key in self.cache:
            return self.cache[key]
        if key[0] not in self.ancestry:
            self.load([key[0]])
        chain = self.ancestry.get(key[0]) or []
        if not chain:
            raise LookupError(f"leaf unit {leaf_unit_id} has no ancestry")
        rule = self._rule(chain, category)
        level = rule.level if rule is not None else "village"
        unit = pick_level(chain, level, self.depth)
        department = None
        if rule is not None and rule.department_kind:
            start = next(i for i, (code, _, _) in enumerate(chain) if code == unit[0])
            for code, _, _ in chain[start:]:
                department = self.departments.get((code, rule.department_kind))
                if department is not None:
                    break
        out = Route(unit[0], unit[1], department)
        self.cache[key] = out
        return out

    def route_many(
        self, leaf_ids: Sequence[int], categories: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Handling unit codes and department ids (-1 for none) of many new cases."""
        self.load(leaf_ids)
        codes = np.empty(len(leaf_ids), dtype=object)
        departments = np.full(len(leaf_ids), -1, dtype=np.int64)
        for i, (leaf, category) in enumerate(zip(leaf_ids, categories, strict=True)):
            found = self.route(leaf, category)
            codes[i] = found.unit_code
            departments[i] = -1 if found.department_id is None else found.department_id
        return codes, departments


def pick_level(
    chain: list[tuple[str, str, int]], level: str, depth: dict[str, int]
) -> tuple[str, str]:
    """The unit of ``chain`` (a leaf's ancestry, leaf first) at ``level``; when the leaf
    has none there (a village without grids asked for its grid), the deepest ancestor
    above that level — the leaf itself when the leaf is shallower."""
    for code, lvl, _ in chain:
        if lvl == level:
            return code, lvl
    want = depth.get(level, 99)
    for code, lvl, _ in chain:  # leaf first: the deepest one not below the level
        if depth.get(lvl, 0) <= want:
            return code, lvl
    return chain[-1][0], chain[-1][1]


# ---------------------------------------------------------------- set-up


def ensure_departments(
    session: Session, unit_codes: Iterable[str], kinds: Iterable[str] | None = None
) -> int:
    """Give each of ``unit_codes`` (towns, the city) a department of each kind it lacks;
    returns how many were added."""
    kinds = list(kinds or DEPARTMENT_KINDS)
    codes = list(unit_codes)
    levels = dict(
        session.execute(
            select(AdminUnit.code, AdminUnit.level)
            .where(AdminUnit.code.in_(codes))
            .where(AdminUnit.valid_to.is_(None))
        ).all()
    )
    have = {tuple(r) for r in session.execute(select(Department.unit_code, Department.kind))}
    rows = [
        Department(
            unit_code=code,
            kind=kind,
            name=(CITY_NAMES[kind] if levels.get(code) == "city" else DEPARTMENT_KINDS[kind][0]),
            active=True,
        )
        for code in codes
        for kind in kinds
        if (code, kind) not in have
    ]
    session.add_all(rows)
    session.flush()
    return len(rows)


def ensure_default_rules(session: Session, now: dt.datetime | None = None) -> int:
    """Write ``DEFAULT_RULES`` when the table has no rule yet; returns how many."""
    if session.scalar(select(RoutingRule.id).limit(1)) is not None:
        return 0
    now = now or dt.datetime.now(dt.UTC)
    session.add_all(
        RoutingRule(
            category=category,
            severity=severity,
            area_code=None,
            level=level,
            department_kind=kind,
            priority=0,
            active=True,
            created_at=now,
        )
        for category, severity, level, kind in DEFAULT_RULES
    )
    session.flush()
    return len(DEFAULT_RULES)


def set_up_routing(session: Session) -> None:
    """Departments at the city and every town, and the default rules (idempotent)."""
    codes = session.scalars(
        select(AdminUnit.code)
        .where(AdminUnit.level.in_(("city", "district", "town")))
        .where(AdminUnit.valid_to.is_(None))
    ).all()
    ensure_departments(session, codes)
    ensure_default_rules(session)


ROUTE_FIELDS = ("handling_unit_code", "department_id")


def route_frame(session: Session, frame) -> None:
    """Add ``handling_unit_code`` and ``department_id`` (-1: none) to a batch frame of
    valid new or re-sent cases (a re-sent one keeps its stored route: only inserts read
    these columns)."""
    if frame.empty:
        frame["handling_unit_code"] = np.empty(0, dtype=object)
        frame["department_id"] = np.empty(0, dtype=np.int64)
        return
    codes, departments = Router(session).route_many(
        frame["leaf_unit_id"].astype("int64").tolist(), frame["category"].tolist()
    )
    frame["handling_unit_code"] = codes
    frame["department_id"] = departments


def join_department(session: Session, user_id: int, unit_code: str, kind: str) -> int:
    """Make user ``user_id`` a member of ``unit_code``'s department of ``kind``; its id.
    LookupError (with the kinds there are) when the unit has none such."""
    found = session.scalar(
        select(Department.id).where(Department.unit_code == unit_code, Department.kind == kind)
    )
    if found is None:
        kinds = session.scalars(
            select(Department.kind).where(Department.unit_code == unit_code)
        ).all()
        raise LookupError(
            f"unit {unit_code} has no {kind!r} department"
            + (f": it has {', '.join(sorted(kinds))}" if kinds else ": it has none")
        )
    session.merge(DepartmentMember(user_id=user_id, department_id=found))
    session.flush()
    return found
