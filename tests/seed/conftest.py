"""Fixtures of the seed tests: the small world's units and cases, loaded once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sqlalchemy import select

from api.db.models import AdminUnit, Case
from api.db.session import session_scope


@dataclass
class Loaded:
    units: list[AdminUnit]
    cases: dict[str, np.ndarray]

    def level(self, level: str) -> list[AdminUnit]:
        return [u for u in self.units if u.level == level]


CASE_COLUMNS = (
    "id",
    "source",
    "external_id",
    "channel",
    "category",
    "reported_at",
    "lon",
    "lat",
    "leaf_unit_id",
    "village_code",
    "grid_code",
    "status",
    "received_at",
    "scheduled_at",
    "handled_at",
    "visited_at",
    "evaluated_at",
    "outcome",
    "deadline",
    "satisfaction",
)


def load_world(url: str) -> Loaded:
    """Units (ORM objects, geometry as shapely) and cases (one numpy array per column)."""
    with session_scope(url) as session:
        units = list(session.scalars(select(AdminUnit).order_by(AdminUnit.code)))
        rows = session.execute(
            select(*(getattr(Case, c) for c in CASE_COLUMNS)).order_by(Case.id)
        ).all()
    cases = {c: np.array([r[i] for r in rows], dtype=object) for i, c in enumerate(CASE_COLUMNS)}
    return Loaded(units, cases)


@pytest.fixture(scope="session")
def small_world(small_world_url: str) -> Loaded:
    return load_world(small_world_url)
