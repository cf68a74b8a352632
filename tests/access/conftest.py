"""Fixtures of the access tests: users with passwords, clients acting as them."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from api.db.session import session_scope


def make_user(db_url: str, role: str, unit_code: str, password: str | None = None) -> str:
    """Create a user (with an optional password); returns its name."""
    from api.services.auth import create_user, hash_password

    name = f"{role}-{uuid.uuid4().hex[:8]}"
    with session_scope(db_url) as session:
        create_user(session, name, role, unit_code, hash_password(password) if password else None)
    return name


@pytest.fixture
def anonymous(app, world):
    """A client with no credentials (it keeps cookies, like a browser)."""
    with TestClient(app) as c:
        yield c


@pytest.fixture(autouse=True)
def quick_argon2(monkeypatch):
    """argon2id with a smaller cost than production's, so the suite stays quick (the same
    algorithm and code path; only time and memory parameters differ)."""
    from argon2 import PasswordHasher

    from api.services import auth

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
