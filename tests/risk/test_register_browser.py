"""The whole workflow in Chromium, through the dashboard's forms: an item registered (a
click on the map fills its point; a place outside the city is refused with the service's
message, nothing written; the polygon pasted), assigned, a report that fails review (its
failed rules and reasons shown, the draft back filled in), fixed, decided, a case after the
decision linked, a follow-up review recorded; then the map, calendar, agencies and the
wall's calendar. No request leaves the machine."""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest

from api.db.session import session_scope
from tests.conftest import token_for
from tests.dashboard.conftest import login_cookie, watched_page
from tests.risk.helpers import EAST_SOUTH, good_report, item_body, square

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_kind", ["sqlite"])]


def f(field: str) -> str:
    """The CSS selector of a form field (pattern-matching ids are JSON)."""
    return f"[id='{json.dumps({'field': field, 'type': 'risk-f'}, separators=(',', ':'))}']"


def cookie_of(db_url: str, settings, role: str, unit: str, agency: str | None = None) -> str:
    from api.services.auth import create_user
    from api.services.risk import add_member
    from api.services.sessions import open_session

    with session_scope(db_url) as session:
        user = create_user(session, f"{role}-{agency or 'x'}", role, unit)
        if agency:
            add_member(session, agency, user.id)
        return open_session(session, settings, user)


def choose(page, field: str, option: str) -> None:
    page.click(f(field))
    page.get_by_role("option", name=option).click()


def send(page, form: str) -> None:
    """Press the form's button and wait for the page the step leads to."""
    before = page.url
    page.click(f"#{form} .risk-f-send")
    page.wait_for_function(f"window.location.href !== {json.dumps(before)}", timeout=20_000)
    page.wait_for_selector("#risk-item", timeout=20_000)


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

    # 登记: a click on the map fills the point; outside the city is refused, nothing written
    cookie = cookie_of(db_url, settings, "admin", world.city)
    watched = watched_page(browser, live_server.url, cookie)
    page = watched.page
    page.goto(f"{live_server.url}/dashboard/risk")
    page.wait_for_selector("#risk-map path.choroplethlocation", timeout=20_000)
    box = page.evaluate(
        "(() => { const r = document.querySelector('#risk-map .js-plotly-plot')._fullLayout"
        ".geo._subplot.bgRect.node().getBoundingClientRect();"
        " return {x: r.left, y: r.top, width: r.width, height: r.height}; })()"
    )
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(f"document.querySelector({json.dumps(f('lon'))}).value !== ''")
    lon, lat = float(page.input_value(f("lon"))), float(page.input_value(f("lat")))
    assert 120.9 < lon < 121.3 and 31.3 < lat < 31.7, (lon, lat)
    planned = (dt.datetime.now(dt.UTC) + dt.timedelta(days=40)).date().isoformat()
    page.fill(f("title"), "垃圾焚烧厂选址")
    page.fill(f("planned"), planned)
    page.fill(f("people"), "5000")
    page.fill(f("department"), "住建局")
    page.fill(f("geojson"), json.dumps(square(100.0, 30.0, 100.1, 30.1)))
    page.click("#risk-register-form .risk-f-send")
    page.wait_for_selector("#risk-f-message:has-text('outside every unit')", timeout=20_000)
    assert "item=" not in page.url
    page.set_input_files(  # the polygon uploaded as a file, read into the box
        "#risk-f-upload input[type=file]",
        files=[{"name": "site.geojson", "mimeType": "application/geo+json",
                "buffer": json.dumps(square(*EAST_SOUTH)).encode()}],
    )  # fmt: skip
    page.wait_for_function(
        f"document.querySelector({json.dumps(f('geojson'))}).value.includes('121.02')"
    )
    send(page, "risk-register-form")
    rid = int(re.search(r"item=(\d+)", page.url).group(1))
    assert page.inner_text("#risk-status") == "已登记"

    # 评估: assigned to an agency
    choose(page, "agency", "恒信评估所 (AG7)")
    send(page, "risk-assign-form")
    assert page.inner_text("#risk-status") == "评估中"
    page.context.close()

    # 报告提交: the assessor's report fails review, comes back filled in, is fixed
    watched = watched_page(browser, live_server.url, cookie_of(db_url, settings, "assessor",
                                                              world.city, "AG7"))  # fmt: skip
    page = watched.page
    page.goto(f"{live_server.url}/dashboard/risk?item={rid}&lang=en")
    page.wait_for_selector("#risk-report-form", timeout=20_000)
    report = good_report()
    page.fill(f("risk_points"), "邻避情绪 | 高")
    page.fill(f("consulted"), "8")
    page.fill(f("objections"), "气味\n交通")
    for section in ("legality", "reasonableness", "feasibility", "controllability"):
        page.fill(f(section), report[section])
    choose(page, "risk_level", "High")
    page.fill(f("measures"), "邻避情绪 | 公开听证 | 王科长 | 2027-01-10")
    send(page, "risk-report-form")
    assert "consulted 8 of 5000" in page.inner_text("#risk-f-failed")
    assert page.input_value(f("measures")) == "邻避情绪 | 公开听证 | 王科长 | 2027-01-10"
    page.screenshot(path=str(artifacts / "risk_report_failed.png"), full_page=True)
    page.fill(f("consulted"), "120")
    send(page, "risk-report-form")
    assert page.inner_text("#risk-status") == "已评估"
    assert watched.external() == [] and watched.errors == []
    page.context.close()

    # 决策, then a case in the area is linked, and the 30-day review recorded
    watched = watched_page(browser, live_server.url, cookie)
    page = watched.page
    page.goto(f"{live_server.url}/dashboard/risk?item={rid}")
    page.wait_for_selector("#risk-decide-form", timeout=20_000)
    choose(page, "decision", "调整后实施")
    send(page, "risk-decide-form")
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

    page.fill(f("note"), "走访群众，无异常")
    send(page, "risk-follow-form")
    page.wait_for_selector(f"#{'risk-map'} path.choroplethlocation", timeout=20_000)
    story = page.locator("#risk-item").inner_text()
    assert "退回（草稿）" in story and "consulted 8 of 5000" in story
    assert "通过" in story and "调整后实施" in story
    assert f"案件 #{case}" in page.locator("#risk-links").inner_text()
    assert "30天回访" in story and "90天回访" in story and "✓" in story
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
