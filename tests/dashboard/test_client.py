"""Who the dashboard shows figures to: a visitor without a session gets the login page and
nothing else, even when the login module fails to load (the dashboard once made up a city
admin then); a logged-in official sees its own town. No browser: the whole app (API and
dashboard) through its test client, as the browser would call it."""

from __future__ import annotations

import sys

import pytest
from fastapi.testclient import TestClient

from api.settings import Settings
from tests.dashboard.conftest import login_cookie
from tests.utils.callbacks import callback_body

on_sqlite = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)


def _calls(http: TestClient, world) -> dict[str, tuple[str, str, dict | None]]:
    """Every server-side callback of the dashboard and its geometry route, each asked
    about the city as a logged-in page would ask: name → (method, url, body)."""
    from dashboard.state import MapView

    deps = http.get("/dashboard/_dash-dependencies").json()
    view = MapView(world.city, "caseload", level="town").store()
    stored = view | {"bounds": ["1", "2"], "prefix": "/dashboard/unit/"}
    values = {
        "_pages_location.pathname": f"/dashboard/unit/{world.city}",
        "_pages_location.search": "?metric=caseload&period=year",
        "unit-shown.data": {"code": world.city, "lang": "zh", "map": True},
        "unit-drawn.data": stored,
        "wall-tick.n_intervals": 1,
        "wall-state.data": {"views": [view | {"name": "示范市"}] * 2, "shown": 0},
    }
    calls: dict[str, tuple[str, str, dict | None]] = {
        "geometry": ("GET", f"/dashboard/geometry/children/{world.city}.json", None)
    }
    for dep in deps:
        if dep.get("clientside_function"):
            continue
        router = "_pages_content" in dep["output"]  # a first visit: no unit page shown yet
        fed = values | {"unit-shown.data": None} if router else values
        calls["router" if router else dep["output"]] = (
            "POST",
            "/dashboard/_dash-update-component",
            callback_body(dep, fed),
        )
    return calls


@on_sqlite
@pytest.mark.parametrize("login_module", ["loads", "fails to import"])
def test_nobody_logged_in_gets_the_login_and_never_a_figure(
    settings: Settings, world, monkeypatch, login_module: str
) -> None:
    from api.app import create_app
    from dashboard import client

    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as http:
        calls = _calls(http, world)
        if login_module == "fails to import":  # a broken deploy: nobody is still nobody
            monkeypatch.setitem(sys.modules, "dashboard.auth", None)

        landing = http.get("/dashboard/")
        assert landing.status_code in (302, 303, 307)
        assert landing.headers["location"].endswith("/dashboard/login")
        for name, (method, url, body) in calls.items():
            answer = http.request(method, url, json=body)
            assert answer.status_code < 500, (name, answer.text[:300])
            assert world.city not in answer.text and "示范市" not in answer.text, name
            assert not any(town in answer.text for town in world.towns), name
        page = calls["router"]
        routed = http.request(*page[:2], json=page[2]).json()
        shown = routed["response"]["_pages_content"]["children"]["props"]["children"]
        assert shown["type"] == "Location" and shown["props"]["href"] == "/dashboard/login"

    flask_app = next(r for r in app.routes if getattr(r, "path", "") == "/dashboard").app.app
    with flask_app.test_request_context("/unit/x", headers={"Cookie": "zhili_session=forged"}):
        assert client.principal() is None
    with flask_app.test_request_context("/unit/x"):
        assert client.principal() is None


@on_sqlite
def test_a_logged_in_official_sees_its_own_town(settings: Settings, db_url: str, world) -> None:
    from api.app import create_app
    from api.services.sessions import COOKIE_NAME

    town = world.towns[0]
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as http:
        calls = _calls(http, world)
        http.cookies.set(COOKIE_NAME, login_cookie(db_url, settings, "official", town))
        landing = http.get("/dashboard/")
        assert landing.headers["location"].endswith(f"/dashboard/unit/{town}")
        method, url, body = calls["router"]
        body = _body_for(body, f"/dashboard/unit/{town}")
        routed = http.request(method, url, json=body)
        assert routed.status_code == 200 and "东镇" in routed.text
        assert http.get(f"/dashboard/geometry/children/{town}.json").status_code == 200
        # the city is above the official's home: no page, no geometry
        assert http.get(f"/dashboard/geometry/children/{world.city}.json").status_code == 404


def _body_for(body: dict, pathname: str) -> dict:
    """``body`` (the page router's) asking for the page at ``pathname``."""
    inputs = [
        {**i, "value": pathname} if i["property"] == "pathname" else i for i in body["inputs"]
    ]
    return body | {"inputs": inputs}
