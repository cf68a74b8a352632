"""Fixtures of the trust tests (issue 26): one copy of the small seed world per session,
with an admin of its city and an API client over it (no dashboard)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from api.db.session import dispose_engines, session_scope
from api.settings import Settings
from tests.conftest import token_for
from tests.intake.conftest import writer  # noqa: F401  (a fixture the intake tests share)


@dataclass(frozen=True)
class SmallWorld:
    """The small world's copy: its URL, the city's code and an admin token."""

    url: str
    city: str
    token: str
    settings: Settings


@pytest.fixture(scope="session")
def trust_world(small_world_url: str, tmp_path_factory: pytest.TempPathFactory) -> SmallWorld:
    """A copy of the small seed world the trust tests may write users into."""
    from api.db.models import AdminUnit

    src = Path(small_world_url.removeprefix("sqlite:///"))
    folder = tmp_path_factory.mktemp("trust")
    path = folder / "small.db"
    shutil.copy(src, path)
    url = f"sqlite:///{path}"
    with session_scope(url) as session:
        city = session.scalar(select(AdminUnit.code).where(AdminUnit.parent_code.is_(None)))
    token = token_for(url, "admin", city)
    dispose_engines()
    return SmallWorld(url, city, token, Settings(database_url=url, cache_dir=folder / "cache"))


@pytest.fixture(scope="session")
def trust_client(trust_world: SmallWorld) -> Iterator:
    """An API client acting as the city's admin over the small world."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(trust_world.settings, with_dashboard=False)
    headers = {"Authorization": f"Bearer {trust_world.token}"}
    with TestClient(app, headers=headers, raise_server_exceptions=False) as c:
        yield c
