"""The events' figures in headless Chromium: the on-scene-within-5 share on the unit page's
map by village, drilled down to its grids, and the wall rotating the event metrics; nothing
fetched from outside 127.0.0.1, no console errors. Screenshots go to the artifacts."""

from __future__ import annotations

import httpx
import pytest

from api.db.events import PatrolUnit
from api.db.session import session_scope
from tests.conftest import token_for
from tests.dashboard.conftest import login_cookie, watched_page
from tests.dashboard.test_map_browser import click_shape, wait_for_unit
from tests.events.test_events import FORCES, make_events

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_kind", ["sqlite"])]


@pytest.fixture
def events(live_server, db_url, world) -> list[dict]:
    with session_scope(db_url) as session:
        session.add_all([PatrolUnit(code=f"P{k}", force_kind=k) for k in FORCES])
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
    page.screenshot(path=str(artifacts / "events_on_scene_by_village.png"), full_page=True)
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
    wall.page.screenshot(path=str(artifacts / "events_wall.png"))
    assert wall.external() == [] and wall.errors == []
    wall.page.context.close()
