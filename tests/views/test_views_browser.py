"""The map views in headless Chromium: the level picker (and drill-down after it), layer
toggles with legends in the URL, a saved view's short link, a composed wall with a
threshold in red that picks up an admin's change at its next tick, and the offline
basemap's tiles served by the app. Nothing is fetched from another host; screenshots go
to the artifacts folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.db.models import AdminUnit
from api.db.session import session_scope
from api.settings import Settings
from tests.conftest import LiveServer
from tests.dashboard.conftest import login_cookie, watched_page
from tests.views.basemap import build_mbtiles

pytestmark = [pytest.mark.browser]
# the figures' shapes (the plain basemap's, when drawn, come after them)
SHAPES = "#unit-map .choroplethlayer > .trace:first-child path.choroplethlocation"


def count(town, level: str, under: str) -> int:
    with session_scope(town.url) as session:
        return session.scalar(
            select(func.count()).where(
                AdminUnit.level == level,
                AdminUnit.valid_to.is_(None),
                AdminUnit.code.like(f"{under}%"),
            )
        )


@pytest.fixture(scope="module")
def server(town):
    with LiveServer(town.settings) as live:
        yield live


@pytest.fixture
def admin(browser, server, town):
    cookie = login_cookie(town.url, town.settings, "admin", town.city)
    watched = watched_page(browser, server.url, cookie)
    yield watched
    assert watched.external() == [], "requests left 127.0.0.1"
    assert watched.errors == [], "console errors"
    watched.page.context.close()


def shapes(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('{SHAPES}').length === {n}", timeout=30_000)


def test_level_picker_then_drill_down(admin, server, town, artifacts) -> None:
    page = admin.page
    page.goto(f"{server.url}/dashboard/unit/{town.city}")
    shapes(page, count(town, "town", town.city))
    page.click("#unit-level-picker")
    page.get_by_role("option", name=re.compile("村")).click()
    page.wait_for_url(re.compile(r"show=village"), timeout=20_000)
    villages = count(town, "village", town.city)
    shapes(page, villages)
    page.screenshot(path=str(artifacts / "views_city_villages.png"), full_page=True)
    village = page.evaluate(
        "document.querySelector('#unit-map .js-plotly-plot').data[0].locations[0]"
    )
    page.goto(f"{server.url}/dashboard/unit/{village}?show=village")  # a click lands here
    page.wait_for_selector(f'#unit-page[data-unit="{village}"]', timeout=20_000)
    shapes(page, count(town, "grid", village))  # below a village: its grids


def test_layers_and_short_link(admin, server, town, artifacts) -> None:
    page = admin.page
    page.goto(f"{server.url}/dashboard/unit/{town.east}")
    shapes(page, count(town, "village", town.east))
    page.get_by_label(re.compile("中心与联动站")).check()
    page.wait_for_url(re.compile(r"layers=facilities"), timeout=20_000)
    page.wait_for_function(
        "(document.querySelector('#unit-map .js-plotly-plot').data || [])"
        ".some(t => t.name === 'layer-facilities' && t.lon.length > 0)",
        timeout=20_000,
    )
    assert "已建成" in page.inner_text("#unit-layer-legend")
    page.click(".saved-views summary")
    page.fill("#saved-view-name", "东镇设施")
    page.get_by_label(re.compile("辖区共享")).check()
    page.click("#saved-view-save")
    page.wait_for_selector("#saved-view-result a", timeout=20_000)
    assert page.inner_text("#saved-view-result a").startswith("/v/")
    page.screenshot(path=str(artifacts / "views_layers.png"), full_page=True)
    from api.principal import Principal
    from api.services.auth import find_user
    from api.services.saved_views import save_view

    with session_scope(town.url) as session:
        user = find_user(session, "short-link-owner")
        if user is None:
            from api.services.auth import create_user

            user = create_user(session, "short-link-owner", "official", town.east)
        who = Principal(user.id, user.name, "official", town.east)
        spec = {"unit": town.east, "level": "grid", "layers": ["facilities"]}
        slug = save_view(session, who, "东镇网格", True, spec).slug
    page.goto(f"{server.url}/v/{slug}")
    page.wait_for_url(re.compile(rf"/dashboard/unit/{town.east}\?.*show=grid"), timeout=20_000)
    shapes(page, count(town, "grid", town.east))


def test_composed_wall_thresholds_and_live_change(browser, server, town, artifacts) -> None:
    from api.principal import Principal
    from api.services.auth import create_user
    from api.services.saved_views import put_wall

    def compose(title: str) -> None:
        with session_scope(town.url) as session:
            from api.services.auth import find_user

            user = find_user(session, "wall-admin") or create_user(
                session, "wall-admin", "admin", town.city
            )
            who = Principal(user.id, user.name, "admin", town.city)
            body = {"title": title, "unit": town.city, "ticker": True,
                    "views": [{"spec": {"unit": town.city, "metric": "resolution_rate"},
                               "seconds": 5}],
                    "kpis": ["caseload", "resolution_rate"],
                    "thresholds": {"resolution_rate": {"below": 1.0}}}  # fmt: skip
            put_wall(session, who, "city", body)

    compose("市级大屏")
    cookie = login_cookie(town.url, town.settings, "display", town.city)
    watched = watched_page(browser, server.url, cookie, viewport={"width": 1920, "height": 1080})
    page = watched.page
    page.goto(f"{server.url}/dashboard/wall/city")
    page.wait_for_selector("#cwall-map path.choroplethlocation", timeout=30_000)
    assert "市级大屏" in page.inner_text("#cwall-title")
    assert page.get_attribute("#cwall-kpi-resolution_rate", "data-breach") == "1"
    assert page.get_attribute("#cwall-kpi-caseload", "data-breach") == "0"
    page.screenshot(path=str(artifacts / "views_wall.png"))
    compose("市级大屏（新）")  # reaches the running wall at its next tick
    page.wait_for_function(
        "document.querySelector('#cwall-title').innerText.includes('新')", timeout=20_000
    )
    west = login_cookie(town.url, town.settings, "display", town.west)
    other = watched_page(browser, server.url, west)
    other.page.goto(f"{server.url}/dashboard/wall/city")
    other.page.wait_for_selector(".message", timeout=20_000)  # not in its jurisdiction
    for w in (watched, other):
        assert w.external() == [] and w.errors == []
        w.page.context.close()


def test_basemap_tiles_come_from_the_app(browser, town, tmp_path: Path, artifacts) -> None:
    with session_scope(town.url) as session:
        from api.services.units import get_unit

        bbox = get_unit(session, town.city).geom.bounds
    data = tmp_path / "data"
    data.mkdir()
    assert build_mbtiles(data / "basemap.mbtiles", bbox) > 0
    settings = Settings(database_url=town.url, cache_dir=town.settings.cache_dir, data_dir=data)
    with LiveServer(settings) as live:
        cookie = login_cookie(town.url, settings, "admin", town.city)
        watched = watched_page(browser, live.url, cookie)
        page = watched.page
        page.goto(f"{live.url}/dashboard/unit/{town.city}")
        page.wait_for_selector("#unit-map canvas", timeout=30_000)
        page.wait_for_timeout(2000)  # let MapLibre ask for its tiles
        tiles = [u for u in watched.requests if "/api/v1/tiles/" in u]
        assert tiles and all(u.startswith(live.url) for u in tiles)
        page.screenshot(path=str(artifacts / "views_basemap.png"), full_page=True)
        assert watched.external() == [], "requests left 127.0.0.1"
        assert watched.errors == [], "console errors"
        watched.page.context.close()


BASEMAP = """() => {
    const data = document.querySelector('#unit-map .js-plotly-plot').data;
    const names = data.find(t => t.name === 'basemap-names');
    return [data.filter(t => (t.name || '').startsWith('basemap-') && t.locations)
                .map(t => t.locations), names ? names.text : null, data[0].locations];
}"""


def test_plain_basemap_from_the_boundaries(admin, browser, server, town, artifacts) -> None:
    """No tile file and no tile server: around a town, the city's other towns and their
    villages in grey with their names, from the app; a town's official sees only their
    own town's villages around one of them, and nothing around their own town."""
    with session_scope(town.url) as session:
        west_name = session.scalar(
            select(AdminUnit.name).where(AdminUnit.code == town.west, AdminUnit.valid_to.is_(None))
        )
    page = admin.page
    page.goto(f"{server.url}/dashboard/unit/{town.east}")
    n = count(town, "village", town.east)
    every = "#unit-map path.choroplethlocation"  # the figures' and the basemap's
    page.wait_for_function(f"document.querySelectorAll('{every}').length > {n}", timeout=30_000)
    layers, names, shown = page.evaluate(BASEMAP)
    assert layers and town.west in layers[0] and town.east not in layers[0]
    assert not set(shown) & {c for layer in layers for c in layer}  # never under the figures
    assert west_name in names
    page.screenshot(path=str(artifacts / "views_plain_basemap.png"), full_page=True)
    cookie = login_cookie(town.url, town.settings, "official", town.east)
    official = watched_page(browser, server.url, cookie)
    official.page.goto(f"{server.url}/dashboard/unit/{town.village}")
    official.page.wait_for_selector(SHAPES, timeout=30_000)
    layers, names, _ = official.page.evaluate(BASEMAP)
    drawn = {c for layer in layers for c in layer}
    assert drawn and all(c.startswith(town.east) for c in drawn)  # only their own town
    assert west_name not in names
    official.page.goto(f"{server.url}/dashboard/unit/{town.east}")
    official.page.wait_for_selector(SHAPES, timeout=30_000)
    layers, names, _ = official.page.evaluate(BASEMAP)
    assert layers == [] and names is None  # the home unit: nothing of theirs around it
    assert official.external() == [] and official.errors == []
    official.page.context.close()


def test_pivot_page_sorts_and_downloads(admin, browser, server, town, artifacts) -> None:
    """The pivot page: villages × month × category, a column's header sorts the rows,
    the controls write the URL, CSV and XLSX are the API's downloads; out of scope: a
    message, never another town's figures."""
    page = admin.page
    query = f"unit={town.city}&level=village&columns=category&period=2026-Q1"
    page.goto(f"{server.url}/dashboard/pivot?{query}")
    page.wait_for_selector("#pivot-table tbody tr", timeout=30_000)
    rows = page.locator("#pivot-table tbody tr").count()
    assert rows > count(town, "village", town.city)  # village × month, and the totals
    page.click('#pivot-table th[data-sort="total"] a')
    page.wait_for_url(re.compile(r"sort=total"), timeout=20_000)
    page.wait_for_selector('#pivot-table th[data-sort="total"] a:has-text("▼")', timeout=20_000)
    totals = page.eval_on_selector_all(
        "#pivot-table tbody tr:not(.total-row) td:last-child", "cs => cs.map(c => c.innerText)"
    )
    numbers = [float(t.replace(",", "").rstrip(" *")) for t in totals if t[:1].isdigit()]
    assert numbers and numbers == sorted(numbers, reverse=True)
    page.screenshot(path=str(artifacts / "views_pivot.png"))
    csv_href = page.get_attribute("#pivot-csv", "href")
    assert csv_href.startswith("/api/v1/pivot?") and "sort=total" in csv_href
    for link, kind in (("#pivot-csv", "text/csv"), ("#pivot-xlsx", "spreadsheetml")):
        answer = page.request.get(server.url + page.get_attribute(link, "href"))
        assert answer.status == 200 and kind in answer.headers["content-type"]
    page.get_by_role("radio", name="周").check()
    page.click("#pivot-go")
    page.wait_for_url(re.compile(r"interval=week"), timeout=20_000)
    page.wait_for_selector("#pivot-table tbody tr", timeout=30_000)
    page.goto(f"{server.url}/dashboard/pivot?{query}&lang=en")
    page.wait_for_selector("#pivot-table", timeout=30_000)
    assert "Pivot" in page.inner_text("#pivot-page")
    cookie = login_cookie(town.url, town.settings, "official", town.west)
    west = watched_page(browser, server.url, cookie)
    west.page.goto(f"{server.url}/dashboard/pivot?unit={town.east}")
    west.page.wait_for_selector("#page-problem", timeout=30_000)
    assert west.page.locator("#pivot-table").count() == 0
    assert west.external() == [] and west.errors == []
    west.page.context.close()
