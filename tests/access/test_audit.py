"""The audit log: what is recorded, who may read it, and that paging loses nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DatabaseError

from api.db.models import AuditLog
from api.db.session import session_scope
from tests.access.conftest import make_user
from tests.conftest import token_for

PASSWORD = "pass-word-123"


def read_all(client: TestClient, **params) -> list[dict]:
    """Every entry, following the cursor page by page."""
    entries, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/audit", params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        entries += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return entries


def test_admins_read_the_entries_of_their_subtree_only(app, db_url, world) -> None:
    east, west = world.towns[0], world.towns[1]
    east_village = world.villages[0]
    names = {
        "east": make_user(db_url, "official", east_village, PASSWORD),
        "west": make_user(db_url, "official", west, PASSWORD),
    }
    with TestClient(app) as browser:
        for name in names.values():
            browser.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
            browser.post("/api/v1/auth/login", json={"name": name, "password": "wrong-pass"})
        browser.post("/api/v1/auth/login", json={"name": "ghost", "password": "wrong-pass"})
    city_admin = token_for(db_url, "admin", world.city)
    east_admin = token_for(db_url, "admin", east)

    with session_scope(db_url) as session:  # the truth, straight from the table
        rows = session.execute(select(AuditLog.id, AuditLog.unit_code)).all()
    in_east = {i for i, unit in rows if unit is not None and unit.startswith(east)}

    with TestClient(app, headers={"Authorization": f"Bearer {east_admin}"}) as c:
        seen = read_all(c, limit=2)
    assert {e["id"] for e in seen} == in_east  # tiny pages: nothing lost, nothing twice
    assert len(seen) == len(in_east)
    assert [e["id"] for e in seen] == sorted((e["id"] for e in seen), reverse=True)
    assert not any(e["user_name"] in (names["west"], "ghost") for e in seen)

    with TestClient(app, headers={"Authorization": f"Bearer {city_admin}"}) as c:
        everything = read_all(c, limit=500)
        assert sorted(e["id"] for e in everything) == sorted(i for i, _ in rows)
        logins = read_all(c, action="login.")
        assert {e["action"] for e in logins} == {"login.success", "login.failure"}
        assert sum(e["target"] == "ghost" for e in logins) == 1
        mine = read_all(c, user=names["east"], action="login.failure")
        assert len(mine) == 1 and mine[0]["detail"]["reason"] == "invalid"


def test_only_admins_read_the_audit_log(app, db_url, world) -> None:
    for role in ("official", "analyst", "display", "intake", "village_worker"):
        token = token_for(db_url, role, world.city)
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.get("/api/v1/audit").status_code == 403
    admin = token_for(db_url, "admin", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {admin}"}) as c:
        for params in ({"limit": 0}, {"limit": 501}, {"cursor": -1}, {"start": "yesterday"}):
            response = c.get("/api/v1/audit", params=params)
            assert response.status_code == 400 and response.json()["message"]


def test_exports_and_case_changes_leave_a_trace(app, db_url, world) -> None:
    east = world.towns[0]
    official = token_for(db_url, "official", east, name="east-official")
    intake = token_for(db_url, "intake", world.city, name="hotline")
    admin = token_for(db_url, "admin", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {official}"}) as c:
        export = c.get(
            "/api/v1/choropleth",
            params={"parent": east, "level": "village", "metric": "caseload", "format": "csv"},
        )
        assert export.status_code == 200, export.text
        rows = len(export.content.decode("utf-8-sig").strip().splitlines()) - 1
    with TestClient(app, headers={"Authorization": f"Bearer {intake}"}) as c:
        posted = c.post(
            "/api/v1/cases",
            json={
                "source": "12345",
                "external_id": "A-1",
                "category": "neighbour",
                "channel": "hotline_12345",
                "reported_at": "2026-01-05T09:00:00+08:00",
                "unit_code": world.grids[0],
            },
        )
        assert posted.json()["created"] == 1
        case_id = posted.json()["items"][0]["id"]
        moved = c.patch(f"/api/v1/cases/{case_id}", json={"step": "scheduled"})
        assert moved.status_code == 200, moved.text
    with TestClient(app, headers={"Authorization": f"Bearer {admin}"}) as c:
        exports = read_all(c, action="export")
        cases = read_all(c, action="case.")
    assert len(exports) == 1
    entry = exports[0]
    assert (entry["user_name"], entry["unit_code"]) == ("east-official", east)
    assert entry["detail"]["level"] == "village" and entry["detail"]["parent"] == east
    assert entry["detail"]["metric"] == "caseload" and entry["detail"]["format"] == "csv"
    assert entry["detail"]["rows"] == rows == 2
    assert entry["detail"]["start"] and entry["detail"]["end"]
    assert [e["user_name"] for e in cases] == ["hotline", "hotline"]
    assert cases[0]["target"] == f"case:{case_id}"


def test_the_database_refuses_to_change_or_delete_audit_entries(app, db_url, world) -> None:
    """Append-only is enforced by the database itself (triggers), not only by the code."""
    token_for(db_url, "admin", world.city)  # user.create and token.create entries
    with session_scope(db_url) as session:
        before = session.execute(select(AuditLog.id, AuditLog.action)).all()
    assert before
    for statement in (
        update(AuditLog).values(action="nothing"),
        delete(AuditLog),
    ):
        with pytest.raises(DatabaseError, match="append-only"), session_scope(db_url) as session:
            session.execute(statement)
    with session_scope(db_url) as session:
        assert session.execute(select(AuditLog.id, AuditLog.action)).all() == before
        session.add(AuditLog(at=dt.datetime.now(dt.UTC), action="still.appends"))
    with session_scope(db_url) as session:
        assert session.scalar(select(AuditLog.id).where(AuditLog.action == "still.appends"))


def test_an_export_from_the_dashboard_session_is_audited_too(app, db_url, world) -> None:
    """The dashboard's export links fetch the API with the session cookie: GeoJSON included."""
    east = world.towns[0]
    name = make_user(db_url, "analyst", east, PASSWORD)
    with TestClient(app) as browser:
        assert browser.post(
            "/api/v1/auth/login", json={"name": name, "password": PASSWORD}
        ).is_success
        for fmt in ("geojson", "csv"):
            export = browser.get(
                "/api/v1/choropleth",
                params={"parent": east, "level": "village", "metric": "caseload", "format": fmt},
            )
            assert export.status_code == 200, export.text
    admin = token_for(db_url, "admin", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {admin}"}) as c:
        exports = read_all(c, action="export", user=name)
    assert sorted(e["detail"]["format"] for e in exports) == ["csv", "geojson"]
    assert {e["detail"]["rows"] for e in exports} == {2}  # 东镇's two villages
