"""The state now (the grid network's measures) per unit: each ``Current`` measure read
from its declaration, every value counted for its unit and each of the unit's ancestors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from api.engine.domain import Current
from api.engine.units import UnitIndex


@dataclass(frozen=True)
class NetworkVersion:
    """The dataset versions a network was read at."""

    boundaries: int
    grid_network: int


@dataclass(frozen=True)
class Network:
    """Current measures per code index (a unit and everything below it)."""

    version: NetworkVersion
    values: dict[str, np.ndarray]  # measure → float per code index

    def __getitem__(self, measure: str) -> np.ndarray:
        return self.values[measure]


def load_network(
    session: Session, units: UnitIndex, measures: list[Current], version: NetworkVersion
) -> Network:
    """Read each of ``measures`` and sum it to every ancestor of the unit it is read for
    (only current units count)."""
    n = len(units.codes)
    ancestors = np.full((n, len(units.levels)), -1, dtype=np.int64)
    for code, uid in units.current_unit_id.items():
        for number, level in enumerate(units.levels):
            ancestors[units.index[code], number] = units.ancestors.get(uid, {}).get(level, -1)
    deepest = units.levels[-1] if units.levels else "grid"
    values = {}
    for measure in measures:
        out = np.zeros(n)
        pairs = [
            (units.index[code], value)
            for code, value in measure.read(session, deepest)
            if code in units.current_unit_id
        ]
        if pairs:
            at = np.array([i for i, _ in pairs], dtype=np.int64)
            amount = np.array([v for _, v in pairs], dtype=np.float64)
            for number in range(len(units.levels)):
                target = ancestors[at, number]
                keep = target >= 0
                np.add.at(out, target[keep], amount[keep])
        values[measure.name] = out
    return Network(version, values)
