"""One writable copy of the small seed world per module, its app, and users of the city,
of two sibling towns and of a village (tokens), shared by the tests of saved views,
walls, layers, the pivot and the monthly report."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db.models import AdminUnit
from api.db.session import dispose_engines, session_scope
from api.settings import Settings
from tests.conftest import token_for


@dataclass
class Town:
    """The small world's city, two towns, a village of the first and their users."""

    url: str
    settings: Settings
    city: str
    east: str
    west: str
    village: str
    tokens: dict[str, str]  # "admin@city", "official@east", ...

    def client(self, app, who: str) -> TestClient:
        return TestClient(app, headers={"Authorization": f"Bearer {self.tokens[who]}"})


@pytest.fixture(scope="module")
def town(small_world_url: str, tmp_path_factory: pytest.TempPathFactory) -> Town:
    folder = tmp_path_factory.mktemp("views")
    path = folder / "world.db"
    shutil.copy(small_world_url.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    with session_scope(url) as session:
        units = session.execute(
            select(AdminUnit.code, AdminUnit.level, AdminUnit.parent_code)
            .where(AdminUnit.valid_to.is_(None))
            .order_by(AdminUnit.code)
        ).all()
    city = next(c for c, lv, p in units if p is None)
    towns = [c for c, lv, p in units if p == city]
    east, west = towns[0], towns[1]
    village = next(c for c, lv, p in units if p == east)
    tokens = {}
    for role, where, code in (
        ("admin", "city", city),
        ("analyst", "city", city),
        ("admin", "east", east),
        ("official", "east", east),
        ("official", "west", west),
        ("display", "west", west),
        ("village_worker", "village", village),
    ):
        tokens[f"{role}@{where}"] = token_for(url, role, code)
    settings = Settings(database_url=url, cache_dir=Path(folder) / "cache")
    yield Town(url, settings, city, east, west, village, tokens)
    dispose_engines()


@pytest.fixture(scope="module")
def views_app(town: Town):
    from api.app import create_app

    return create_app(town.settings, with_dashboard=False)
