"""Worlds with special-population counts, and clients of roles with and without the
permission."""

from __future__ import annotations

import shutil
import uuid

import pytest

from api.db.session import dispose_engines, session_scope
from api.settings import Settings


def token_with(url: str, role: str, unit_code: str, permitted: bool) -> str:
    """A fresh API token of a new user of ``role`` at ``unit_code`` (with the
    special_populations permission when ``permitted``)."""
    from api.services.auth import create_user, grant_permission, issue_token

    with session_scope(url) as session:
        user = create_user(session, f"{role}-{uuid.uuid4().hex[:8]}", role, unit_code)
        if permitted:
            grant_permission(session, user, "special_populations")
        return issue_token(session, user, ttl_days=1)


@pytest.fixture(scope="module")
def small_populations(small_world_url, tmp_path_factory):
    """A copy of the small seed world (with its six months of counts) and an API client
    of an official of its first town, with the permission."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    path = tmp_path_factory.mktemp("pop_small") / "small.db"
    shutil.copy(small_world_url.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, cache_dir=path.parent / "cache")
    with session_scope(url) as s:
        from sqlalchemy import text

        city = s.execute(text("SELECT code FROM admin_unit WHERE parent_code IS NULL")).scalar()
        town = s.execute(
            text("SELECT MIN(code) FROM admin_unit WHERE parent_code = :c"), {"c": city}
        ).scalar()
    token = token_with(url, "official", town, permitted=True)
    app = create_app(settings, with_dashboard=False)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield url, town, client
    dispose_engines()
