"""Fixtures of the case desk's tests: the tiny world with departments and the default
routing rules, and a client per desk role."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db.desk import Department, DepartmentMember
from api.db.models import User
from api.db.session import session_scope
from api.services.routing import set_up_routing
from tests.conftest import token_for

_ids = itertools.count(1)
EAST_GRID_POINT = (121.02, 31.45)  # 东镇南村 (320583001001), its first grid


def new_case(**fields) -> dict:
    """A case in 东镇南村's first grid, reported two days ago, with overrides."""
    base = {
        "source": "desk",
        "external_id": f"D{next(_ids):06d}-{uuid.uuid4().hex[:4]}",
        "category": "neighbour",
        "channel": "hotline_12345",
        "reported_at": (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat(),
        "lon": EAST_GRID_POINT[0],
        "lat": EAST_GRID_POINT[1],
    }
    return base | fields


def department_user(db_url: str, unit_code: str, kind: str) -> tuple[str, int]:
    """A token of a new user of role ``department`` in ``unit_code``'s department of
    ``kind``, and that department's id."""
    token = token_for(db_url, "department", unit_code)
    with session_scope(db_url) as session:
        dep = session.scalar(
            select(Department.id)
            .where(Department.unit_code == unit_code)
            .where(Department.kind == kind)
        )
        user = session.scalars(
            select(User).where(User.role == "department").order_by(User.id.desc())
        ).first()
        session.add(DepartmentMember(user_id=user.id, department_id=dep))
    return token, dep


@dataclass
class Desk:
    """The tiny world's desk: a client per role (keyed ``role@where``) and helpers."""

    app: object
    db_url: str
    world: object
    clients: dict[str, TestClient] = field(default_factory=dict)
    departments: dict[str, int] = field(default_factory=dict)

    def post(self, **fields) -> int:
        """Post a case as the city's intake system; its id."""
        r = self.clients["intake"].post("/api/v1/cases", json=new_case(**fields))
        assert r.status_code == 200 and r.json()["created"] == 1, r.text
        return r.json()["items"][0]["id"]

    def state(self, case_id: int, who: str = "admin") -> dict:
        r = self.clients[who].get(f"/api/v1/cases/{case_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def act(self, who: str, case_id: int, action: str, version: int | None = None, **body):
        """Post an action as ``who`` (the case's current version unless given)."""
        if version is None:
            version = self.state(case_id)["case"]["version"]
        payload = {"action": action, "version": version, "key": uuid.uuid4().hex} | body
        return self.clients[who].post(f"/api/v1/cases/{case_id}/actions", json=payload)


@pytest.fixture
def desk(app, db_url: str, world):
    """The tiny world with routing set up and clients for every role of the path."""
    with session_scope(db_url) as session:
        set_up_routing(session)
    east, west = world.towns[0], world.towns[1]
    village = world.villages[0]
    d = Desk(app, db_url, world)
    tokens = {
        "intake": token_for(db_url, "intake", world.city),
        "admin": token_for(db_url, "admin", world.city),
        "village_worker": token_for(db_url, "village_worker", village),
        "village_worker@other": token_for(db_url, "village_worker", world.villages[1]),
        "official": token_for(db_url, "official", east),
        "official@west": token_for(db_url, "official", west),
        "official@city": token_for(db_url, "official", world.city),
        "analyst": token_for(db_url, "analyst", east),
        "display": token_for(db_url, "display", east),
    }
    tokens["department"], d.departments["labour"] = department_user(db_url, east, "labour")
    tokens["department@west"], d.departments["west_labour"] = department_user(
        db_url, west, "labour"
    )
    with session_scope(db_url) as session:
        d.departments["mediation"] = session.scalar(
            select(Department.id)
            .where(Department.unit_code == east)
            .where(Department.kind == "mediation")
        )
    clients = [TestClient(app, headers={"Authorization": f"Bearer {t}"}) for t in tokens.values()]
    for name, c in zip(tokens, clients, strict=True):
        c.__enter__()
        d.clients[name] = c
    yield d
    for c in clients:
        c.__exit__(None, None, None)
