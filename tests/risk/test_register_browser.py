"""The whole workflow in Chromium: registered, assigned, a report that fails review, fixed,
decided, and a case after the decision linked — driven through the API (the dashboard has
no forms for the register yet), then read on the register page (map, item story,
calendar, agencies) and on the wall's calendar. No request leaves the machine."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from tests.conftest import token_for
from tests.dashboard.conftest import login_cookie, watched_page
from tests.risk.helpers import assessor_token, good_report, item_body

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_kind", ["sqlite"])]


def test_the_register_workflow_shown_on_the_dashboard(
    browser, live_server, db_url, settings, world, artifacts
) -> None:
    admin = httpx.Client(
        base_url=live_server.url,
        timeout=30,
        headers={"Authorization": f"Bearer {token_for(db_url, 'admin', world.city)}"},
    )
    assert (
        admin.post(
            "/api/v1/agencies", json={"code": "AG7", "name": "恒信评估所", "kind": "third_party"}
        ).status_code
        == 201
    )
    item = admin.post("/api/v1/risk-items", json=item_body(title="垃圾焚烧厂选址")).json()
    rid = item["id"]
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=12)).isoformat()
    event = admin.post(
        "/api/v1/risk-items",
        json=item_body(
            kind="large_event",
            title="元宵灯会",
            planned_at=soon,
            deciding_unit=world.towns[1],
            place={"type": "Point", "coordinates": [121.15, 31.55]},
        ),
    ).json()
    assert event["status"] == "registered"
    admin.post(f"/api/v1/risk-items/{rid}/assessment", json={"agency": "AG7"}).raise_for_status()
    assessor = httpx.Client(
        base_url=live_server.url,
        timeout=30,
        headers={"Authorization": f"Bearer {assessor_token(db_url, 'AG7')}"},
    )
    failed = assessor.post(
        f"/api/v1/risk-items/{rid}/report", json=good_report(consultation={"consulted": 8})
    ).json()
    assert failed["status"] == "draft"
    assert assessor.post(f"/api/v1/risk-items/{rid}/report", json=good_report()).json()["passed"]
    decided = admin.post(f"/api/v1/risk-items/{rid}/decision", json={"decision": "adjust"})
    assert decided.status_code == 200, decided.text
    case = admin.post(
        "/api/v1/cases",
        json={
            "source": "risk-browser",
            "external_id": "1",
            "category": "petition",
            "channel": "walk_in",
            "reported_at": dt.datetime.now(dt.UTC).isoformat(),
            "lon": 121.05,
            "lat": 31.45,
        },
    ).json()["items"][0]["id"]

    cookie = login_cookie(db_url, settings, "admin", world.city)
    watched = watched_page(browser, live_server.url, cookie)
    page = watched.page
    page.goto(f"{live_server.url}/dashboard/risk?item={rid}")
    page.wait_for_selector("#risk-item", timeout=20_000)
    page.wait_for_selector(f"#{'risk-map'} path.choroplethlocation", timeout=20_000)
    story = page.locator("#risk-item").inner_text()
    assert "退回（草稿）" in story and "consulted 8 of 5000" in story
    assert "通过" in story and "调整后实施" in story
    assert f"案件 #{case}" in page.locator("#risk-links").inner_text()
    assert "30天回访" in story and "90天回访" in story
    assert "元宵灯会" in page.locator("#risk-calendar").inner_text()
    agencies = page.locator("#risk-agencies").inner_text()
    assert "恒信评估所" in agencies and "50.0%" in agencies
    points = page.evaluate(
        "document.getElementById('risk-map').querySelector('.js-plotly-plot').data"
        ".filter(t => (t.name || '').startsWith('risk-items')).map(t => t.lon.length)"
    )
    assert sum(points) == 2
    page.screenshot(path=str(artifacts / "risk_register.png"), full_page=True)
    assert watched.external() == [] and watched.errors == []
    page.context.close()

    wall = watched_page(
        browser,
        live_server.url,
        login_cookie(db_url, settings, "display", world.city),
        viewport={"width": 1920, "height": 1080},
    )
    wall.page.goto(f"{live_server.url}/dashboard/wall")
    wall.page.wait_for_selector("#wall-risk-calendar .wall-calendar", timeout=20_000)
    assert "元宵灯会" in wall.page.locator("#wall-risk-calendar").inner_text()
    wall.page.wait_for_selector("#wall-map path.choroplethlocation", timeout=20_000)
    wall.page.screenshot(path=str(artifacts / "risk_wall_calendar.png"))
    assert wall.external() == [] and wall.errors == []
    wall.page.context.close()
