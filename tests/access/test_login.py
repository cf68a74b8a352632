"""Passwords, the session cookie, tokens: what a person logging in relies on."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.db.models import ApiToken, AuditLog, User
from api.db.session import session_scope
from api.services.sessions import COOKIE_NAME
from tests.access.conftest import make_user
from tests.conftest import token_for

PASSWORD = "correct horse battery"


def actions(db_url: str, target: str) -> list[str]:
    with session_scope(db_url) as session:
        return list(
            session.scalars(
                select(AuditLog.action).where(AuditLog.target == target).order_by(AuditLog.id)
            )
        )


def test_login_sets_a_signed_httponly_cookie_the_api_accepts(anonymous, db_url, world) -> None:
    name = make_user(db_url, "official", world.towns[0], PASSWORD)
    response = anonymous.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["unit_code"] == world.towns[0]
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert {"httponly", "path", "samesite"} <= attributes
    assert "samesite=lax" in set_cookie.lower() and "path=/" in set_cookie.lower()
    value = anonymous.cookies[COOKIE_NAME]
    assert PASSWORD not in value and name not in value
    me = anonymous.get("/api/v1/auth/whoami").json()
    assert (me["name"], me["role"], me["via"]) == (name, "official", "session")
    assert anonymous.get("/api/v1/levels").status_code == 200
    with session_scope(db_url) as session:
        stored = session.scalar(select(User.password_hash).where(User.name == name))
    assert stored.startswith("$argon2") and PASSWORD not in stored
    assert actions(db_url, name)[-1] == "login.success"


def test_wrong_password_and_unknown_user_are_refused_alike(anonymous, db_url, world) -> None:
    name = make_user(db_url, "official", world.towns[0], PASSWORD)
    wrong = anonymous.post("/api/v1/auth/login", json={"name": name, "password": "nope-nope"})
    unknown = anonymous.post("/api/v1/auth/login", json={"name": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["message"] == unknown.json()["message"]
    assert COOKIE_NAME not in anonymous.cookies
    assert actions(db_url, name)[-1] == "login.failure"
    assert actions(db_url, "nobody") == ["login.failure"]
    # a user without a password (API only) cannot log in with any password
    api_only = make_user(db_url, "analyst", world.towns[0])
    refused = anonymous.post("/api/v1/auth/login", json={"name": api_only, "password": ""})
    assert refused.status_code == 422


def test_repeated_failures_lock_the_name_for_a_while(anonymous, db_url, world, monkeypatch) -> None:
    from api.services import auth
    from api.services.auth import MAX_FAILED_LOGINS

    name = make_user(db_url, "official", world.towns[0], PASSWORD)
    for _ in range(MAX_FAILED_LOGINS):
        bad = anonymous.post("/api/v1/auth/login", json={"name": name, "password": "guess-guess"})
        assert bad.status_code == 401
    locked = anonymous.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    assert locked.status_code == 429 and "wait" in locked.json()["message"]
    an_hour_later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    monkeypatch.setattr(auth, "now_utc", lambda: an_hour_later)  # the window passes
    ok = anonymous.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    assert ok.status_code == 200


def test_logout_ends_the_session_on_the_server(app, anonymous, db_url, world) -> None:
    name = make_user(db_url, "display", world.city, PASSWORD)
    anonymous.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    cookie = anonymous.cookies[COOKIE_NAME]
    assert anonymous.post("/api/v1/auth/logout").json() == {"logged_out": True}
    assert anonymous.get("/api/v1/levels").status_code == 401
    with TestClient(app, cookies={COOKIE_NAME: cookie}) as replay:  # a copied cookie is dead
        response = replay.get("/api/v1/levels")
    assert response.status_code == 401 and "log in" in response.json()["message"]
    assert actions(db_url, name)[-2:] == ["login.success", "session.close"]


def test_forged_cookies_are_refused(app, settings, db_url, world) -> None:
    from api.services.sessions import _serializer

    token = token_for(db_url, "admin", world.city)
    for cookie in (
        "garbage",
        token,  # an API token is not a session, and is not signed
        _serializer(settings).dumps(token),  # signed, but an API token is still no session
        _serializer(settings).dumps(token)[:-2] + "xx",
    ):
        with TestClient(app, cookies={COOKIE_NAME: cookie}) as c:
            assert c.get("/api/v1/levels").status_code == 401


def test_a_bad_bearer_header_is_not_rescued_by_the_cookie(anonymous, db_url, world) -> None:
    name = make_user(db_url, "official", world.towns[0], PASSWORD)
    anonymous.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    response = anonymous.get("/api/v1/levels", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401


def test_form_login_redirects_within_the_dashboard_only(anonymous, db_url, world) -> None:
    name = make_user(db_url, "official", world.towns[1], PASSWORD)
    form = {"name": name, "password": PASSWORD}
    ok = anonymous.post(
        "/api/v1/auth/login",
        data={**form, "next": f"/dashboard/unit/{world.towns[1]}"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == f"/dashboard/unit/{world.towns[1]}"
    assert COOKIE_NAME in anonymous.cookies
    for target in ("https://evil.example/", "//evil.example/dashboard", "/dashboard\\@x"):
        r = anonymous.post(
            "/api/v1/auth/login", data={**form, "next": target}, follow_redirects=False
        )
        assert r.headers["location"] == "/dashboard/"
    bad = anonymous.post(
        "/api/v1/auth/login", data={**form, "password": "wrong-one"}, follow_redirects=False
    )
    assert bad.status_code == 303 and bad.headers["location"].startswith("/dashboard/login?")
    assert "error=invalid" in bad.headers["location"]


def test_tokens_are_listed_created_and_revoked(app, db_url, world) -> None:
    token = token_for(db_url, "analyst", world.towns[0], name="ana")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        created = c.post("/api/v1/auth/tokens", json={"label": "notebook", "ttl_days": 30})
        assert created.status_code == 201
        new = created.json()
        assert new["token"].startswith("zh_") and new["state"] == "active"
        listed = c.get("/api/v1/auth/tokens").json()
        assert {t["label"] for t in listed} >= {"notebook"}
        assert all("token" not in t for t in listed)
        with TestClient(app, headers={"Authorization": f"Bearer {new['token']}"}) as other:
            assert other.get("/api/v1/levels").status_code == 200
            assert c.delete(f"/api/v1/auth/tokens/{new['id']}").json()["state"] == "revoked"
            assert other.get("/api/v1/levels").status_code == 401
    assert actions(db_url, "ana")[-3:] == ["token.create", "token.create", "token.revoke"][-3:]


def test_expired_tokens_are_refused(app, db_url, world) -> None:
    token = token_for(db_url, "analyst", world.city)
    with session_scope(db_url) as session:
        session.execute(
            update(ApiToken).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/api/v1/levels").status_code == 401


def test_admins_manage_tokens_only_inside_their_jurisdiction(app, db_url, world) -> None:
    east, west = world.towns[0], world.towns[1]
    make_user(db_url, "official", west)  # someone in the other town
    token_for(db_url, "official", west, name="west-official")
    with session_scope(db_url) as session:
        west_token = session.scalar(
            select(ApiToken.id).join(User).where(User.name == "west-official")
        )
    town_admin = token_for(db_url, "admin", east)
    city_admin = token_for(db_url, "admin", world.city)
    official = token_for(db_url, "official", east)
    with TestClient(app, headers={"Authorization": f"Bearer {town_admin}"}) as c:
        assert c.get("/api/v1/auth/tokens", params={"user": "west-official"}).status_code == 404
        assert c.delete(f"/api/v1/auth/tokens/{west_token}").status_code == 404
    with TestClient(app, headers={"Authorization": f"Bearer {official}"}) as c:
        assert c.delete(f"/api/v1/auth/tokens/{west_token}").status_code == 404
    with TestClient(app, headers={"Authorization": f"Bearer {city_admin}"}) as c:
        assert c.get("/api/v1/auth/tokens", params={"user": "west-official"}).status_code == 200
        assert c.delete(f"/api/v1/auth/tokens/{west_token}").json()["state"] == "revoked"


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"name": 1, "password": 2}', b"x" * 5000])
def test_malformed_logins_get_a_clear_4xx(anonymous, body) -> None:
    response = anonymous.post(
        "/api/v1/auth/login", content=body, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert "Traceback" not in response.text and response.json()["message"]
