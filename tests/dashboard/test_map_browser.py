"""The unit page in headless Chromium: the city map, drill-down, breadcrumb, URL state,
back/forward, a leaf unit's detail; nothing fetched from outside 127.0.0.1, no console
errors. The map, drill-down and export run on SQLite and PostGIS; the rest on SQLite (the
figures' SQL is tested on both databases by the API tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import Watched

pytestmark = [pytest.mark.browser]
SQLITE_ONLY = pytest.mark.parametrize("db_kind", ["sqlite"])

# the figures' shapes (the plain basemap's, when drawn, come after them)
SHAPES = "#unit-map .choroplethlayer > .trace:first-child path.choroplethlocation"


def wait_for_unit(page, code: str, shapes: int | None = None) -> None:
    """Wait until the page shows unit ``code`` (and, for a map, its ``shapes`` shapes)."""
    page.wait_for_selector(f'#unit-page[data-unit="{code}"]', timeout=20_000)
    if shapes is not None:
        page.wait_for_function(
            f"document.querySelectorAll('{SHAPES}').length === {shapes}", timeout=20_000
        )


def click_shape(page, code: str) -> None:
    """Click inside the map shape of unit ``code`` (found by the plotly datum's location),
    at a point of its fill that no other shape covers."""
    point = page.evaluate(
        """(code) => {
            const gd = document.querySelector('#unit-map .js-plotly-plot');
            const index = gd.data[0].locations.indexOf(code);
            if (index < 0) { return null; }
            const path = document.querySelectorAll('#unit-map path.choroplethlocation')[index];
            const box = path.getBBox(), ctm = path.getScreenCTM(), svg = path.ownerSVGElement;
            for (let n = 4; n <= 32; n *= 2) { for (let i = 1; i < n; i++) {
                for (let j = 1; j < n; j++) {
                    const p = svg.createSVGPoint();
                    p.x = box.x + box.width * i / n; p.y = box.y + box.height * j / n;
                    if (!path.isPointInFill(p)) { continue; }
                    const s = p.matrixTransform(ctm);
                    const hit = document.elementFromPoint(s.x, s.y);
                    if (hit && hit.classList.contains('choroplethlocation') && hit !== path) {
                        continue;
                    }
                    return [s.x, s.y];
                } } }
            return null;
        }""",
        code,
    )
    assert point is not None, f"{code} is not on the map"
    page.mouse.click(*point)


def assert_clean(watched: Watched) -> None:
    assert watched.external() == [], "requests left 127.0.0.1"
    assert watched.errors == [], "console errors"


def test_city_map_has_one_shape_per_town(admin_page, live_server, world, artifacts):
    page = admin_page.page
    page.goto(f"{live_server.url}/dashboard/")
    wait_for_unit(page, world.city, shapes=len(world.towns))
    assert re.search(rf"/dashboard/unit/{world.city}(\?|$)", page.url)
    locations = page.evaluate(
        "document.querySelector('#unit-map .js-plotly-plot').data[0].locations"
    )
    assert sorted(locations) == sorted(world.towns)
    labels = [t.text_content() for t in page.locator("#unit-map text").all()]
    assert {"东镇", "西镇", "城南街道"} <= set(labels)
    page.screenshot(path=str(artifacts / "dashboard_city.png"), full_page=True)
    assert_clean(admin_page)


def test_click_drills_down_and_back_returns(admin_page, live_server, world, artifacts):
    page = admin_page.page
    town = world.towns[0]
    villages = [v for v in world.villages if world.parent[v] == town]
    page.goto(f"{live_server.url}/dashboard/unit/{world.city}?metric=caseload&period=year")
    wait_for_unit(page, world.city, shapes=len(world.towns))

    click_shape(page, town)
    wait_for_unit(page, town, shapes=len(villages))
    assert f"/dashboard/unit/{town}?" in page.url
    assert "metric=caseload" in page.url and "period=year" in page.url
    crumbs = page.locator("#unit-breadcrumb").inner_text()
    assert "示范市" in crumbs and "东镇" in crumbs
    locations = page.evaluate(
        "document.querySelector('#unit-map .js-plotly-plot').data[0].locations"
    )
    assert sorted(locations) == sorted(villages)
    page.screenshot(path=str(artifacts / "dashboard_town.png"), full_page=True)

    page.go_back()
    wait_for_unit(page, world.city, shapes=len(world.towns))
    page.go_forward()
    wait_for_unit(page, town, shapes=len(villages))

    page.locator("#unit-breadcrumb a", has_text="示范市").click()  # one click up
    wait_for_unit(page, world.city, shapes=len(world.towns))
    assert_clean(admin_page)


@SQLITE_ONLY
def test_pasted_link_to_a_grid_level_map(admin_page, live_server, world):
    page = admin_page.page
    village = world.villages[0]
    grids = [g for g in world.grids if world.parent[g] == village]
    page.goto(f"{live_server.url}/dashboard/unit/{village}?metric=caseload&period=30d&lang=en")
    wait_for_unit(page, village, shapes=len(grids))
    crumbs = page.locator("#unit-breadcrumb").inner_text()
    assert "示范市" in crumbs and "东镇" in crumbs and "东镇南村" in crumbs
    assert page.locator("#unit-period input[value='30d']").is_checked()
    assert_clean(admin_page)


@SQLITE_ONLY
def test_unit_without_children_opens_its_detail(admin_page, live_server, world):
    page = admin_page.page
    page.goto(f"{live_server.url}/dashboard/unit/{world.leaf_town}")
    wait_for_unit(page, world.leaf_town)
    assert page.locator("#unit-detail").is_visible()
    assert page.locator(SHAPES).count() == 0
    assert_clean(admin_page)


def map_trace(page) -> dict:
    return page.evaluate(
        """() => {
            const t = document.querySelector('#unit-map .js-plotly-plot').data[0];
            return {locations: t.locations, z: t.z, customdata: t.customdata};
        }"""
    )


@SQLITE_ONLY
def test_map_colours_ranking_and_metric_change(admin_page, live_server, world, cases, artifacts):
    page = admin_page.page
    per_town = {town: 0 for town in world.towns}
    for case in cases:
        code = case.leaf
        while world.parent.get(code) != world.city:
            code = world.parent[code]
        per_town[code] += 1
    page.goto(f"{live_server.url}/dashboard/unit/{world.city}?metric=caseload&period=year")
    wait_for_unit(page, world.city, shapes=len(world.towns))
    trace = map_trace(page)
    z = dict(zip(trace["locations"], trace["z"], strict=True))
    by_count = sorted(world.towns, key=lambda t: per_town[t])
    assert [z[t] for t in by_count] == sorted(z[t] for t in by_count)  # darker = more
    assert z[by_count[-1]] > z[by_count[0]]
    hover = {row[0]: row[1] for row in trace["customdata"]}
    assert hover["东镇"] == str(per_town[world.towns[0]])

    table = page.locator("#unit-ranking")  # filled after the map, by its own callback
    table.locator("td[data-dash-column='name']").first.wait_for(timeout=20_000)
    names = [c.inner_text() for c in table.locator("td[data-dash-column='name']").all()]
    assert names[0] == "东镇"  # the most cases first

    from api.domain import CATEGORY_BY_CODE, CHANNEL_BY_CODE

    for element_id, names_by_code, key in (
        ("unit-breakdown-category", CATEGORY_BY_CODE, "category"),
        ("unit-breakdown-channel", CHANNEL_BY_CODE, "channel"),
    ):
        page.wait_for_function(  # filled after the map, by its own callback
            f"(document.querySelector('#{element_id} .js-plotly-plot').data || []).length === 1",
            timeout=20_000,
        )
        bars = page.evaluate(
            f"(() => {{ const t = document.querySelector('#{element_id} .js-plotly-plot')"
            ".data[0]; return Object.fromEntries(t.y.map((y, i) => [y, t.x[i]])); })()"
        )
        expected: dict[str, int] = {}
        for case in cases:
            name = names_by_code[getattr(case, key)].name_zh
            expected[name] = expected.get(name, 0) + 1
        assert bars == expected
    page.screenshot(path=str(artifacts / "dashboard_city_cases.png"), full_page=True)

    geometry_fetches = [u for u in admin_page.requests if "/dashboard/geometry/" in u]
    assert len(geometry_fetches) == 1
    page.locator("#unit-metric").click()
    page.get_by_role("dialog").get_by_text("办结率", exact=True).click()
    page.wait_for_url(re.compile(r"metric=resolution_rate"), timeout=20_000)
    page.wait_for_function(
        "document.querySelector('#unit-legend').innerText.includes('办结率')", timeout=20_000
    )
    wait_for_unit(page, world.city, shapes=len(world.towns))
    after = map_trace(page)
    assert after["z"] != trace["z"]  # nothing is closed: every town is low-count or no-data
    assert [u for u in admin_page.requests if "/dashboard/geometry/" in u] == geometry_fetches
    assert_clean(admin_page)


def test_export_downloads_the_map_as_geojson(admin_page, live_server, world, cases):
    page = admin_page.page
    town = world.towns[0]
    page.goto(f"{live_server.url}/dashboard/unit/{town}?metric=caseload&period=year")
    villages = [v for v in world.villages if world.parent[v] == town]
    wait_for_unit(page, town, shapes=len(villages))
    trace = map_trace(page)
    with page.expect_download() as info:
        page.locator("#export-geojson").click()
    download = info.value
    collection = json.loads(Path(download.path()).read_text())
    assert collection["type"] == "FeatureCollection"
    exported = {f["properties"]["code"]: f for f in collection["features"]}
    assert sorted(exported) == sorted(trace["locations"])
    per_village = {v: 0 for v in villages}
    for case in cases:
        code = case.leaf if case.leaf in per_village else world.parent.get(case.leaf)
        if code in per_village:
            per_village[code] += 1
    for code, feature in exported.items():
        assert feature["properties"]["value"] == per_village[code]
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    hover = {row[0]: row[1] for row in trace["customdata"]}
    for feature in exported.values():
        assert hover[feature["properties"]["name"]] == str(int(feature["properties"]["value"]))
    assert_clean(admin_page)


@SQLITE_ONLY
def test_village_and_grid_list_their_open_cases(admin_page, live_server, world, cases):
    page = admin_page.page
    village = world.villages[0]
    grid = world.grids[0]
    in_village = [c for c in cases if c.leaf == village or world.parent.get(c.leaf) == village]
    in_grid = [c for c in cases if c.leaf == grid]
    page.goto(f"{live_server.url}/dashboard/unit/{village}?metric=caseload&period=year")
    wait_for_unit(page, village, shapes=2)
    table = page.locator("#unit-cases")
    expect(table.locator("tbody tr:has(td)")).to_have_count(len(in_village))
    headers = table.locator("th").all_inner_texts()
    assert not any("描述" in h or "电话" in h or "姓名" in h for h in headers)

    page.goto(f"{live_server.url}/dashboard/unit/{grid}?metric=caseload&period=year")
    wait_for_unit(page, grid)
    assert page.locator("#unit-detail").is_visible()  # a grid has no units below
    expect(page.locator("#unit-cases tbody tr:has(td)")).to_have_count(len(in_grid))
    assert page.locator("#kpi-caseload .kpi-value").inner_text() == str(len(in_grid))
    assert_clean(admin_page)


@SQLITE_ONLY
def test_language_switch_follows_everywhere(admin_page, live_server, world, cases, artifacts):
    page = admin_page.page
    page.goto(f"{live_server.url}/dashboard/unit/{world.city}?metric=caseload&period=year")
    wait_for_unit(page, world.city, shapes=len(world.towns))
    assert "案件量" in page.locator("#unit-legend").inner_text()
    page.locator("#unit-lang").click()
    page.wait_for_url(re.compile(r"lang=en"), timeout=20_000)
    page.wait_for_function(
        "document.querySelector('#unit-legend').innerText.includes('Caseload')", timeout=20_000
    )
    assert "No data" in page.locator("#unit-legend").inner_text()
    assert page.locator("#kpi-resolution_rate .kpi-label").inner_text() == "Resolution rate"
    expect(page.locator("#unit-page")).to_contain_text("Ranking", timeout=20_000)  # after the map
    page.screenshot(path=str(artifacts / "dashboard_city_en.png"), full_page=True)
    page.locator("#unit-lang").click()  # and back to Chinese
    page.wait_for_function(
        "document.querySelector('#unit-legend').innerText.includes('案件量')", timeout=20_000
    )
    assert_clean(admin_page)


def legend_rows(page) -> list[str]:
    return page.locator("#unit-legend .legend-row .swatch-label").all_inner_texts()


@SQLITE_ONLY
def test_kept_breaks_compare_villages_across_towns(admin_page, live_server, world, cases):
    """Ticking "keep breaks" on one town's village map carries its class breaks to the
    village map of another town: same legend rows, colours placed by those breaks."""
    page = admin_page.page
    east, west = world.towns[0], world.towns[1]
    east_villages = [v for v in world.villages if world.parent[v] == east]
    west_villages = [v for v in world.villages if world.parent[v] == west]
    page.goto(f"{live_server.url}/dashboard/unit/{west}?metric=caseload&period=year")
    wait_for_unit(page, west, shapes=len(west_villages))
    west_own = legend_rows(page)

    page.goto(f"{live_server.url}/dashboard/unit/{east}?metric=caseload&period=year")
    wait_for_unit(page, east, shapes=len(east_villages))
    page.locator("#unit-keep-breaks input[value='keep']").check()
    page.wait_for_url(re.compile(r"breaks_level=village"), timeout=20_000)
    page.wait_for_selector("#unit-legend .legend-kept", timeout=20_000)
    wait_for_unit(page, east, shapes=len(east_villages))
    kept = legend_rows(page)
    assert kept[0].startswith("≤ ") and kept[-3].startswith(("> ", "≥ "))

    page.locator("#unit-breadcrumb a", has_text="示范市").click()
    wait_for_unit(page, world.city, shapes=len(world.towns))
    assert legend_rows(page) != kept  # the towns' map is another level: its own breaks
    click_shape(page, west)
    wait_for_unit(page, west, shapes=len(west_villages))
    assert "breaks_level=village" in page.url
    assert legend_rows(page) == kept != west_own
    assert page.locator("#unit-keep-breaks input[value='keep']").is_checked()
    trace = map_trace(page)
    upper = float(kept[0].removeprefix("≤ ").replace(",", ""))
    values = {row[0]: float(row[1].replace(",", "")) for row in trace["customdata"]}
    for z, row in zip(trace["z"], trace["customdata"], strict=True):
        assert z == (0 if values[row[0]] <= upper else len(kept) - 3)
    assert "classes=fixed" in page.locator("#export-geojson").get_attribute("href")

    page.locator("#unit-keep-breaks input[value='keep']").uncheck()
    page.wait_for_url(lambda url: "breaks" not in url, timeout=20_000)
    page.wait_for_function("!document.querySelector('#unit-legend .legend-kept')", timeout=20_000)
    wait_for_unit(page, west, shapes=len(west_villages))
    assert legend_rows(page) == west_own
    assert_clean(admin_page)


@SQLITE_ONLY
def test_town_official_lands_on_their_town_and_sees_nothing_else(
    browser, live_server, db_url, settings, world
):
    from tests.dashboard.conftest import login_cookie, watched_page

    town, other = world.towns[0], world.towns[1]
    villages = [v for v in world.villages if world.parent[v] == town]
    watched = watched_page(
        browser, live_server.url, login_cookie(db_url, settings, "official", town)
    )
    page = watched.page
    page.goto(f"{live_server.url}/dashboard/")
    wait_for_unit(page, town, shapes=len(villages))
    assert re.search(rf"/dashboard/unit/{town}(\?|$)", page.url)
    assert "示范市" not in page.locator("#unit-breadcrumb").inner_text()  # no way up

    page.goto(f"{live_server.url}/dashboard/unit/{other}")
    page.wait_for_selector("#unit-page .message", timeout=20_000)
    assert "不在您的辖区" in page.locator("#unit-page").inner_text()
    assert page.locator(SHAPES).count() == 0
    for parent, level in ((world.city, "town"), (other, "village")):
        status = page.evaluate(
            "(u) => fetch(u).then(r => r.status)", f"/dashboard/geometry/{level}/{parent}.json"
        )
        assert status == 404
    assert watched.external() == []
    watched.page.context.close()


@SQLITE_ONLY
def test_back_and_forward_across_a_metric_change(admin_page, live_server, world, cases):
    """A metric change patches the map in place (the router sends no new page); back and
    forward patch it to the URL's metric, and the picker follows."""
    page = admin_page.page
    page.goto(f"{live_server.url}/dashboard/unit/{world.city}?metric=caseload&period=year")
    wait_for_unit(page, world.city, shapes=len(world.towns))
    redrawn: list[str] = []  # page contents the router sent from here on

    def router_answer(response) -> None:
        request = response.request
        if "_dash-update-component" in request.url and "_pages_content" in (
            request.post_data or ""
        ):
            body = response.body() if response.status == 200 else b""
            if b'"_pages_content"' in body:
                redrawn.append(request.url)

    page.on("response", router_answer)
    page.locator("#unit-metric").click()
    page.get_by_role("dialog").get_by_text("办结率", exact=True).click()
    page.wait_for_url(re.compile(r"metric=resolution_rate"), timeout=20_000)
    legend = page.locator("#unit-legend")
    expect(legend).to_contain_text("办结率", timeout=20_000)

    page.go_back()
    expect(legend).to_contain_text("案件量", timeout=20_000)
    expect(page.locator("#unit-metric")).to_contain_text("案件量")
    page.go_forward()
    expect(legend).to_contain_text("办结率", timeout=20_000)
    expect(page.locator("#unit-metric")).to_contain_text("办结率")
    wait_for_unit(page, world.city, shapes=len(world.towns))
    assert redrawn == [], "the page was drawn anew instead of patched"
    assert_clean(admin_page)
