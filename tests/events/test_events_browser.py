"""The events' figures in headless Chromium: the on-scene-within-5 share on the unit page's
map by village, drilled down to its grids, and the wall rotating the event metrics; nothing
fetched from outside 127.0.0.1, no console errors. Screenshots go to the artifacts."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from api.db.events import PatrolBase, PatrolUnit
from api.db.session import session_scope
from tests.conftest import token_for
from tests.dashboard.conftest import login_cookie, watched_page
from tests.dashboard.test_map_browser import click_shape, wait_for_unit
from tests.events.test_events import FORCES, grid_box, make_events

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_kind", ["sqlite"])]


@pytest.fixture
def events(live_server, db_url, world) -> list[dict]:
    with session_scope(db_url) as session:
        session.add_all([PatrolUnit(code=f"P{k}", force_kind=k) for k in FORCES])
        session.add(PatrolBase(code="B1", name="东镇派出所", force_kind="police",
                               lon=121.025, lat=31.45, unit_code=world.grids[0]))  # fmt: skip
    token = token_for(db_url, "intake", world.city)
    items = make_events(world)
    answer = httpx.post(f"{live_server.url}/api/v1/events", json=items,
                        headers={"Authorization": f"Bearer {token}"}, timeout=60)  # fmt: skip
    assert answer.status_code == 200, answer.text[:300]
    return items


def test_on_scene_share_by_village_and_grid_and_the_wall(
    browser, live_server, db_url, settings, world, events, artifacts
) -> None:
    cookie = login_cookie(db_url, settings, "official", world.city)
    watched = watched_page(browser, live_server.url, cookie)
    page = watched.page
    town = world.towns[0]
    villages = [v for v in world.villages if world.parent[v] == town]
    page.goto(f"{live_server.url}/dashboard/unit/{town}?metric=on_scene_5min_rate&period=year")
    wait_for_unit(page, town, shapes=len(villages))
    values = page.evaluate("document.querySelector('#unit-map .js-plotly-plot').data[0].z")
    assert len(values) == len(villages) and all(v is not None for v in values)
    # the breakdown panels split the metric by its own dimensions: type, force kind, shift
    mine = [e for e in events if world.parent[world.parent[_grid_of(world, e)]] == town]
    for by, key in (("type", "type"), ("force_kind", "force_kind"), ("shift", None)):
        element = f"#unit-breakdown-{by} .js-plotly-plot"
        page.wait_for_function(
            f"(document.querySelector('{element}') || {{}}).data", timeout=20_000
        )
        bars = page.evaluate(f"document.querySelector('{element}').data[0].x")
        groups: dict[str, list[bool]] = {}
        for e in mine:
            group = e[key] if key else _shift(e)
            groups.setdefault(group, []).append(_on_scene_in_5(e))
        expected = sorted(sum(v) / len(v) for v in groups.values() if sum(v))
        assert sorted(bars) == pytest.approx(expected), by
    titles = page.locator(".below h3").all_inner_texts()
    assert "按警情类型" in titles and "按处警力量" in titles and "白天与夜间" in titles
    page.screenshot(path=str(artifacts / "events_on_scene_by_village.png"), full_page=True)
    # the patrol layer: the base, its 5-minute reach, the gaps and the suggested sites
    page.goto(f"{live_server.url}/dashboard/unit/{town}?metric=on_scene_5min_rate&period=year"
              "&layers=patrol")  # fmt: skip
    wait_for_unit(page, town, shapes=len(villages))
    names = page.evaluate(
        "document.querySelector('#unit-map .js-plotly-plot').data.map(t => t.name)"
    )
    assert {"layer-patrol-reach", "layer-patrol-gap", "layer-patrol"} <= set(names)
    legend = page.locator("#unit-layer-legend").inner_text()
    assert "巡防基地 (1)" in legend and "建议新设点位 (3)" in legend
    page.screenshot(path=str(artifacts / "events_patrol_layer.png"), full_page=True)
    village = villages[0]
    grids = [g for g in world.grids if world.parent[g] == village]
    click_shape(page, village)
    wait_for_unit(page, village, shapes=len(grids))
    assert "metric=on_scene_5min_rate" in page.url
    page.screenshot(path=str(artifacts / "events_on_scene_by_grid.png"), full_page=True)
    assert watched.external() == [] and watched.errors == []
    watched.page.context.close()

    cookie = login_cookie(db_url, settings, "display", world.city)
    wall = watched_page(browser, live_server.url, cookie, viewport={"width": 1920, "height": 1080})
    query = "metrics=on_scene_5min_rate,median_minutes_to_scene,set_off_3min_rate"
    wall.page.goto(f"{live_server.url}/dashboard/wall?{query}&units={world.city}")
    wall.page.wait_for_selector("#wall-map path.choroplethlocation", timeout=20_000)
    assert "5分钟现场处警率" in wall.page.locator("#wall-title").inner_text()
    cards = wall.page.locator("#wall-kpis")  # the event KPIs asked for get their cards
    for metric in ("on_scene_5min_rate", "median_minutes_to_scene", "set_off_3min_rate"):
        assert cards.locator(f"#kpi-{metric} .kpi-value").inner_text() not in ("", "—")
    assert cards.locator("#kpi-caseload").count() == 1  # beside the headline cards
    wall.page.screenshot(path=str(artifacts / "events_wall.png"))
    assert wall.external() == [] and wall.errors == []
    wall.page.context.close()


def _grid_of(world, event: dict) -> str:
    for grid in world.grids:
        x0, y0, x1, y1 = grid_box(world, grid)
        if x0 <= event["lon"] <= x1 and y0 <= event["lat"] <= y1:
            return grid
    raise AssertionError(event)


def _shift(event: dict) -> str:
    hour = dt.datetime.fromisoformat(event["received_at"]).hour  # +08:00, local
    return "day" if 7 <= hour < 19 else "night"


def _on_scene_in_5(event: dict) -> bool:
    if "on_scene_at" not in event:
        return False
    received = dt.datetime.fromisoformat(event["received_at"])
    return (dt.datetime.fromisoformat(event["on_scene_at"]) - received).total_seconds() <= 300
