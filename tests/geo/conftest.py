"""Fixtures of the geo tests: a small synthetic city with jagged, shared borders."""

from __future__ import annotations

import pytest

from api.db.session import session_scope
from api.services.units import CITY_TOWN_VILLAGE_GRID, UnitRecord, add_units, ensure_levels
from geo.synthetic import SyntheticUnit, synthetic_city


@pytest.fixture(scope="session")
def small_city() -> list[SyntheticUnit]:
    """5 towns, 40 villages, 240 grids over 0.2° × 0.15° (built once per session)."""
    return synthetic_city(grids=240, villages=40, towns=5, extent=(120.9, 31.3, 121.1, 31.45))


@pytest.fixture
def city_db(db_url: str, small_city: list[SyntheticUnit]) -> str:
    """A fresh database holding the small synthetic city."""
    with session_scope(db_url) as session:
        ensure_levels(session, CITY_TOWN_VILLAGE_GRID)
        add_units(
            session,
            [UnitRecord(u.code, u.name, u.level, u.parent_code, u.geom) for u in small_city],
        )
    return db_url
