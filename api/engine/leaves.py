"""A cube's leaf unit versions placed in the unit index: each leaf's code index, its
ancestor at each level, and the groupings of leaves a map asks for again and again. Kept
while the leaves and the units are these; leaves first seen by a change make a new one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from api.engine.units import UnderKey, UnitIndex

GROUPINGS_KEPT = 256  # (units shown, within) groupings kept per set of leaves


@dataclass(frozen=True)
class GroupingKey:
    """A grouping of leaves: the units shown (a map's, named by what they are) counted
    within a unit (its code index, or None)."""

    shown: UnderKey
    within: int | None


class Leaves:
    """The leaves of a cube (its ``leaf_ids``) in the units ``units``."""

    def __init__(self, units: UnitIndex, leaf_ids: np.ndarray) -> None:
        self.units = units
        self.ids = leaf_ids
        self.code = np.array(
            [units.unit_code_idx.get(int(i), -1) for i in leaf_ids], dtype=np.int64
        )
        self._ancestors: dict[str, np.ndarray] = {}  # one per level: bounded by the levels
        self.groupings: LRUCache = LRUCache(GROUPINGS_KEPT)

    def ancestor_at(self, level: str) -> np.ndarray:
        """Code index of each leaf's ancestor at ``level`` (−1 where none)."""
        found = self._ancestors.get(level)
        if found is None:
            anc = self.units.ancestors
            found = self._ancestors[level] = np.array(
                [anc.get(int(uid), {}).get(level, -1) for uid in self.ids], dtype=np.int64
            )
        return found

    def for_ids(self, leaf_ids: np.ndarray) -> Leaves:
        """These leaves when the cube's leaves are ``leaf_ids``: itself while they are the
        same, else a new placement."""
        if len(leaf_ids) == len(self.ids):
            return self
        return Leaves(self.units, leaf_ids)
