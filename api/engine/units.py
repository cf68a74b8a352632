"""The units as the engine knows them: every code with its latest version, the level table,
each unit version's ancestors, and what is derived from them (kept with the index, which
is never changed: a boundaries change makes a new one)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from cachetools import LRUCache
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.db.models import AdminLevel, AdminUnit

# the units of a level under a parent, kept per (parent, level): a map's units
UNITS_UNDER_KEPT = 512


@dataclass(frozen=True)
class UnitSummary:
    """A unit as every answer names it."""

    code: str
    name: str
    level: str
    parent_code: str | None
    is_leaf: bool
    current: bool

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "level": self.level,
            "parent_code": self.parent_code,
            "is_leaf": self.is_leaf,
            "current": self.current,
        }


@dataclass(frozen=True)
class UnderKey:
    """Which units: the current units of ``level`` under ``parent`` (any depth)."""

    parent: str
    level: str


@dataclass(eq=False)
class UnitIndex:
    """Every unit code with its latest version, levels, and each unit version's ancestors."""

    version: int  # the 'boundaries' dataset version it was read at
    codes: list[str]
    index: dict[str, int]
    name: list[str]
    level: list[str]
    parent: list[str | None]
    valid_from: list[dt.date]  # earliest version
    valid_to: list[dt.date | None]  # latest version (None: current)
    current: np.ndarray  # bool per code
    levels: list[str]  # root first
    depth: dict[str, int]
    unit_code_idx: dict[int, int]  # unit version id → code index
    ancestors: dict[int, dict[str, int]]  # unit version id → level → code index
    children: dict[str, list[int]]  # code → child code indexes (any version), by code
    current_children: set[str]  # codes with a current child
    current_unit_id: dict[str, int]  # code → id of its current version
    _under: LRUCache = field(default_factory=lambda: LRUCache(UNITS_UNDER_KEPT), repr=False)

    def is_leaf(self, code: str) -> bool:
        """True when the unit has no current child (it is its own leaf)."""
        return code not in self.current_children

    def summary(self, i: int) -> UnitSummary:
        """The summary of code index ``i``."""
        return self.summaries[i]

    def summary_dicts(self, shown: list[int]) -> list[dict]:
        """The summaries of ``shown`` as dicts (a fresh dict each)."""
        return [self.summaries[i].as_dict() for i in shown]

    @cached_property
    def summaries(self) -> list[UnitSummary]:
        """Every code index's summary."""
        return [
            UnitSummary(
                code,
                self.name[i],
                self.level[i],
                self.parent[i],
                self.is_leaf(code),
                bool(self.current[i]),
            )
            for i, code in enumerate(self.codes)
        ]

    @cached_property
    def level_numbers(self) -> np.ndarray:
        """Each code index's level as its position in ``levels``."""
        number = {lv: n for n, lv in enumerate(self.levels)}
        return np.array([number[lv] for lv in self.level], dtype=np.int64)

    def under(self, key: UnderKey) -> list[int]:
        """Code indexes of the current units of ``key.level`` under ``key.parent`` (any
        depth), sorted by code. The same list object for the same key while it is kept:
        a map's grouping of leaves is kept with it."""
        found = self._under.get(key)
        if found is None:
            p = self.index[key.parent]
            parent_level = self.level[p]
            out = set()
            for uid, anc in self.ancestors.items():
                if anc.get(parent_level) == p:
                    j = self.unit_code_idx.get(uid)
                    if j is not None and self.level[j] == key.level and self.current[j]:
                        out.add(j)
            found = self._under[key] = sorted(out, key=lambda j: self.codes[j])
        return found

    def children_during(self, code: str, start: dt.date | None, end: dt.date | None) -> list[int]:
        """Code indexes of the children of ``code`` that existed between ``start`` and
        ``end`` (current children when no dates), sorted by code."""
        out = []
        for j in self.children.get(code, []):
            if start is None or end is None:
                if self.current[j]:
                    out.append(j)
            elif self.valid_from[j] <= end and (
                self.valid_to[j] is None or self.valid_to[j] > start
            ):
                out.append(j)
        return out


def load_units(session: Session, version: int) -> UnitIndex:
    """Read ``admin_unit``, ``admin_level`` and ``unit_ancestry`` into a UnitIndex."""
    levels = session.execute(select(AdminLevel.code, AdminLevel.depth).order_by("depth")).all()
    rows = session.execute(
        select(
            AdminUnit.id,
            AdminUnit.code,
            AdminUnit.name,
            AdminUnit.level,
            AdminUnit.parent_code,
            AdminUnit.valid_from,
            AdminUnit.valid_to,
        ).order_by(AdminUnit.valid_from)
    ).all()
    codes: list[str] = []
    index: dict[str, int] = {}
    name, level, parent, vfrom, vto = [], [], [], [], []
    unit_code_idx: dict[int, int] = {}
    current_unit_id: dict[str, int] = {}
    for r in rows:
        i = index.get(r.code)
        if i is None:
            i = index[r.code] = len(codes)
            codes.append(r.code)
            name.append(r.name)
            level.append(r.level)
            parent.append(r.parent_code)
            vfrom.append(r.valid_from)
            vto.append(r.valid_to)
        else:  # a later version: its attributes win, the earliest valid_from stays
            name[i], level[i], parent[i], vto[i] = r.name, r.level, r.parent_code, r.valid_to
        unit_code_idx[r.id] = i
        if r.valid_to is None:
            current_unit_id[r.code] = r.id
    ancestors: dict[int, dict[str, int]] = {}
    for unit_id, code, lvl in session.execute(
        text("SELECT unit_id, ancestor_code, ancestor_level FROM unit_ancestry")
    ):
        j = index.get(code)
        if j is not None:
            ancestors.setdefault(unit_id, {})[lvl] = j
    children: dict[str, list[int]] = {}
    current_children: set[str] = set()
    seen: set[tuple[str, int]] = set()
    for r in rows:
        if r.parent_code is None:
            continue
        i = index[r.code]
        if (r.parent_code, i) not in seen:
            seen.add((r.parent_code, i))
            children.setdefault(r.parent_code, []).append(i)
        if r.valid_to is None:
            current_children.add(r.parent_code)
    for kids in children.values():
        kids.sort(key=lambda i: codes[i])
    return UnitIndex(
        version=version,
        codes=codes,
        index=index,
        name=name,
        level=level,
        parent=parent,
        valid_from=vfrom,
        valid_to=vto,
        current=np.array([v is None for v in vto], dtype=bool),
        levels=[lv.code for lv in levels],
        depth={lv.code: lv.depth for lv in levels},
        unit_code_idx=unit_code_idx,
        ancestors=ancestors,
        children=children,
        current_children=current_children,
        current_unit_id=current_unit_id,
    )
