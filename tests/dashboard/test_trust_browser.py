"""Issue 26 in headless Chromium, on one live server over the ``small`` seed world (a
year of cases, four levels): the dashboard never dies (a refused view, an unknown unit or
path show a message inside the frame), every string in the page's language, the legend,
the ranking, the trend's gaps, the wall, alerts and downloads."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.db.session import dispose_engines
from api.settings import Settings
from tests.conftest import LiveServer
from tests.dashboard.conftest import Watched, login_cookie, watched_page

pytestmark = [pytest.mark.browser]

CITY = "320599"
TOWN = "320599103"  # 沙溪镇
VILLAGE = "320599103206"  # 光头村, 21 grids


@dataclass
class Small:
    url: str
    settings: Settings
    server: LiveServer
    failed: list[str] = field(default_factory=list)  # responses of 500 and more


@pytest.fixture(scope="module")
def small(small_world_url: str, tmp_path_factory) -> Iterator[Small]:
    """A copy of the small world served by the whole app."""
    folder = tmp_path_factory.mktemp("trust")
    path = folder / "small.db"
    shutil.copy(small_world_url.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, cache_dir=folder / "cache")
    with LiveServer(settings) as server:
        yield Small(url, settings, server)
    dispose_engines()


@pytest.fixture(scope="module")
def city_page(browser, small: Small) -> Iterator[Watched]:
    """One browser context of the city's admin for the whole module."""
    cookie = login_cookie(small.url, small.settings, "admin", CITY)
    watched = watched_page(browser, small.server.url, cookie)
    watched.page.on("response", lambda r: small.failed.append(r.url) if r.status >= 500 else None)
    yield watched
    watched.page.context.close()


@pytest.fixture
def page(city_page: Watched, small: Small):
    """The module's page, its errors and failures cleared for this test."""
    city_page.errors.clear()
    small.failed.clear()
    return city_page.page


def open_unit(page, small: Small, code: str, query: str = "", shapes: bool = True) -> None:
    page.goto(f"{small.server.url}/dashboard/unit/{code}{query}")
    page.wait_for_selector(f'#unit-page[data-unit="{code}"]', timeout=20_000)
    if shapes:
        page.wait_for_selector("#unit-map path.choroplethlocation", timeout=20_000)


def navigate(page, path_and_query: str) -> None:
    """Move inside the app (no page load), as a link or a control would."""
    page.evaluate(
        """(u) => { history.pushState({}, '', u);
                    window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""",
        path_and_query,
    )


def assert_clean(watched: Watched, small: Small) -> None:
    assert watched.external() == [], "requests left 127.0.0.1"
    assert watched.errors == [], "console errors"
    assert small.failed == [], "server errors"


# ---------------------------------------------------------------- 1, 2: no dead ends

REFUSED = {
    "?metric=nonsense": "nonsense",
    "?start=1900-01-01&end=2100-12-31": "1900-01-01",
    "?start=1995-01-01&end=2100-12-31": "20 years",
}


def test_refused_views_show_the_message_in_the_frame(page, city_page, small, artifacts):
    for query, words in REFUSED.items():
        page.goto(f"{small.server.url}/dashboard/unit/{CITY}{query}")
        page.wait_for_selector("#page-problem", timeout=20_000)
        assert words in page.locator("#page-problem").inner_text()
        assert "澜江市" in page.locator("#unit-breadcrumb").inner_text()
        assert page.locator(".zhili-logout").count() == 1
        assert (
            page.locator("#page-back")
            .get_attribute("href")
            .startswith(f"/dashboard/unit/{CITY}?metric=caseload")
        )
    page.screenshot(path=str(artifacts / "trust_refused.png"))
    page.locator("#page-back").click()
    page.wait_for_selector("#unit-map path.choroplethlocation", timeout=20_000)
    # inside the app: a map, a refused view, and back to the map
    navigate(page, f"/dashboard/unit/{CITY}?metric=nonsense")
    page.wait_for_selector("#page-problem", timeout=20_000)
    page.go_back()
    page.wait_for_selector("#unit-map path.choroplethlocation", timeout=20_000)
    assert_clean(city_page, small)


def test_not_found_pages_have_the_frame(page, city_page, small):
    for path in ("/dashboard/unit/999999", "/dashboard/no-such-page"):
        page.goto(f"{small.server.url}{path}")
        page.wait_for_selector("#page-problem", timeout=20_000)
        assert page.locator("#frame-home a").get_attribute("href") == f"/dashboard/unit/{CITY}"
        assert page.locator(".zhili-logout").count() == 1
        assert page.locator("h1").inner_text() == "综治中心"
    assert_clean(city_page, small)


# ---------------------------------------------------------------- 10: one language a page

CJK = re.compile(r"[\u3400-\u9fff\uff08\uff09\uff0c\uff1a]")
WORD = re.compile(r"[A-Za-z]{3,}")
ZH_ALLOWED = {"GeoJSON", "CSV", "GPKG", "English"}  # formats, and the way to English
EN_ALLOWED = {"中文"}  # the way to Chinese
MARKUP = re.compile(r"%\{[^}]*\}|<[^>]*>")  # hover templates' fields and tags


def unit_names(small: Small) -> list[str]:
    from sqlalchemy import select

    from api.db.models import AdminUnit
    from api.db.session import session_scope

    with session_scope(small.url) as session:
        names = session.scalars(select(AdminUnit.name)).all()
    return sorted(set(names), key=len, reverse=True)  # longest first


def page_text(page) -> str:
    """What the page says: its text, the charts' and map's text, the hover templates;
    not the API's messages it quotes (the API answers in English), nor data shown as it was
    entered (a risk item's title)."""
    quoted = page.locator(".api-message, .data-text").all_inner_texts()  # data: as entered
    text = page.evaluate(
        """() => document.body.innerText + '\\n' +
            [...document.querySelectorAll('.js-plotly-plot')].flatMap(gd =>
              [...gd.querySelectorAll('text')].map(t => t.textContent)
              .concat((gd.data || []).map(t => t.hovertemplate || ''))).join('\\n')"""
    )
    for q in quoted:
        text = text.replace(q, " ")
    return MARKUP.sub(" ", text)


def other_language(text: str, lang: str, names: list[str], user: str) -> list[str]:
    """The words of the other language in ``text`` (place names and the user's name
    are names, not words)."""
    for name in names:
        text = text.replace(name, " ")
    if lang == "en":
        lines = {line.strip() for line in text.splitlines() if CJK.search(line)}
        return sorted(lines - EN_ALLOWED)
    text = text.replace(user, " ")
    return sorted(set(WORD.findall(text)) - ZH_ALLOWED)


def grid_of(small: Small, village: str) -> str:
    from sqlalchemy import select

    from api.db.models import AdminUnit
    from api.db.session import session_scope

    with session_scope(small.url) as session:
        return session.scalars(
            select(AdminUnit.code).where(AdminUnit.parent_code == village).limit(1)
        ).one()


def test_every_page_speaks_one_language(page, city_page, small, artifacts):
    names = unit_names(small)
    user = page.locator(".user-name").first.inner_text() if page.url.startswith("http") else ""
    pages = [
        (f"/dashboard/unit/{CITY}", True),
        (f"/dashboard/unit/{TOWN}", True),
        (f"/dashboard/unit/{VILLAGE}", True),
        (f"/dashboard/unit/{grid_of(small, VILLAGE)}", False),
        (f"/dashboard/unit/{CITY}?metric=nonsense", False),
        ("/dashboard/unit/999999", False),
        ("/dashboard/wall", True),
    ]
    found = {}
    for lang in ("zh", "en"):
        for path, has_map in pages:
            join = "&" if "?" in path else "?"
            page.goto(
                f"{small.server.url}{path}{join}lang={lang}"
                if lang == "en"
                else f"{small.server.url}{path}"
            )
            if has_map:
                page.wait_for_selector("path.choroplethlocation", timeout=20_000)
            else:
                page.wait_for_selector("#unit-page, #wall-page", timeout=20_000)
            if "/unit/" in path and has_map:
                page.locator("#unit-ranking-box td").first.wait_for(timeout=20_000)
                page.locator(".ctl-dates input").first.click()  # the date picker open
                page.wait_for_selector(".dash-datepicker-calendar", timeout=5_000)
            user = (
                page.locator(".user-name").first.inner_text()
                if page.locator(".user-name").count()
                else user
            )
            words = other_language(page_text(page), lang, names, user.split(" ")[0])
            if words:
                found[f"{lang} {path}"] = words
            if "/unit/" in path and has_map:
                page.keyboard.press("Escape")
        if lang == "en":
            page.goto(f"{small.server.url}/dashboard/unit/{CITY}?lang=en")
            page.wait_for_selector("path.choroplethlocation", timeout=20_000)
            page.locator("#unit-ranking-box td").first.wait_for(timeout=20_000)
            page.screenshot(path=str(artifacts / "trust_city_en.png"), full_page=True)
    assert found == {}


# ---------------------------------------------------------------- 7, 11: ranking, downloads


def ranking_heads(page) -> list[str]:
    page.locator("#unit-ranking td").first.wait_for(timeout=20_000)
    return [h.strip() for h in page.locator("#unit-ranking th").all_inner_texts()]


def test_ranking_columns_say_what_they_hold(page, city_page, small, artifacts):
    open_unit(page, small, CITY, "?metric=station_build_rate&period=year")
    heads = ranking_heads(page)
    assert "联动站数" in heads and "案件数" not in heads, heads
    open_unit(page, small, TOWN, "?metric=grid_coverage&period=year")
    heads = ranking_heads(page)
    assert "面积 (km²)" in heads, heads
    column = heads.index("面积 (km²)")
    areas = page.locator(f"#unit-ranking tr:nth-child(2) td:nth-child({column + 1})").inner_text()
    assert re.fullmatch(r"[\d,]+\.\d", areas.strip()), areas  # 82.7, not 82.6884
    open_unit(page, small, CITY, "?metric=caseload&period=year")
    heads = ranking_heads(page)
    assert heads[3] == "案件量 (件)" and "案件数" not in heads  # the count is the value
    page.screenshot(path=str(artifacts / "trust_ranking.png"), full_page=True)
    assert_clean(city_page, small)


def test_ranking_csv_holds_numbers_and_downloads_are_named(page, city_page, small):
    open_unit(page, small, TOWN, "?metric=resolution_rate&period=year")
    page.locator("#unit-ranking td").first.wait_for(timeout=20_000)
    with page.expect_download() as info:
        page.locator("#unit-ranking-csv").click()
    download = info.value
    name = download.suggested_filename
    assert name.startswith(f"沙溪镇_{TOWN}_resolution_rate_") and name.endswith("_ranking.csv")
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "rank,code,name,resolution_rate,count,previous,low_count"
    for line in lines[1:]:
        value = line.split(",")[3]
        assert value == "" or 0 <= float(value) <= 1, line  # a share, not "99.2%" or "—"
    href_name = page.locator("#export-geojson").get_attribute("download")
    assert re.match(
        rf"沙溪镇_{TOWN}_resolution_rate_\d{{4}}-01-01_\d{{4}}-\d\d-\d\d\.geojson", href_name
    )
    assert href_name.endswith(".geojson")
    assert page.locator("#export-gpkg").get_attribute("download").endswith(".gpkg")
    assert_clean(city_page, small)


# ---------------------------------------------------------------- 4: trends


def trend_ready(page) -> None:
    page.wait_for_selector("#unit-trend", timeout=20_000)


def test_trend_has_gaps_and_the_network_its_state_now(page, city_page, small, artifacts):
    open_unit(page, small, CITY, "?metric=safety_index&period=year")
    trend_ready(page)
    last_year = page.evaluate("document.querySelector('#unit-trend .js-plotly-plot').data[1].y")
    assert all(v is None for v in last_year)  # the year before the data: gaps, not 0 or 100
    open_unit(page, small, CITY, "?metric=grid_coverage&period=year")
    trend_ready(page)
    assert page.locator("#unit-trend .js-plotly-plot").count() == 0
    assert "%" in page.locator("#unit-trend .kpi-value").inner_text()
    page.screenshot(path=str(artifacts / "trust_network_now.png"), full_page=True)
    assert_clean(city_page, small)


# ---------------------------------------------------------------- 25: the map, the login

OVERLAPS = """() => {
    const boxes = [...document.querySelectorAll('#unit-map text')]
        .filter(t => t.textContent.trim()).map(t => t.getBoundingClientRect());
    let n = 0;
    boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => {
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) n++;
    }));
    return [boxes.length, n];
}"""
FILL = """() => {
    const box = document.querySelector('#unit-map').getBoundingClientRect();
    const shapes = [...document.querySelectorAll(
        '#unit-map .choroplethlayer > .trace:first-child path.choroplethlocation')]
        .map(p => p.getBoundingClientRect());
    const w = Math.max(...shapes.map(s => s.right)) - Math.min(...shapes.map(s => s.left));
    const h = Math.max(...shapes.map(s => s.bottom)) - Math.min(...shapes.map(s => s.top));
    return [w / box.width, h / box.height];
}"""


def test_map_fills_its_panel_and_names_do_not_collide(page, city_page, small, artifacts):
    for code in (CITY, TOWN, VILLAGE):
        open_unit(page, small, code, "?metric=caseload&period=year")
        page.wait_for_timeout(300)
        labels, overlaps = page.evaluate(OVERLAPS)
        assert labels >= 3 and overlaps == 0, (code, labels, overlaps)
        width, height = page.evaluate(FILL)
        assert height > 0.85 or width > 0.85, (code, width, height)
        if code == TOWN:
            page.screenshot(path=str(artifacts / "trust_town.png"), full_page=True)
    page.screenshot(path=str(artifacts / "trust_village.png"), full_page=True)
    assert_clean(city_page, small)


def test_a_wrong_password_keeps_the_user_name(browser, small):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{small.server.url}/dashboard/login")
    page.fill("#login-name", "someone")
    page.fill("#login-password", "not-the-password")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"error=invalid"), timeout=20_000)
    page.wait_for_selector("#login-name", timeout=20_000)
    assert page.input_value("#login-name") == "someone"
    assert page.input_value("#login-password") == ""
    context.close()


# ---------------------------------------------------------------- 23, 24: wall, alerts


def open_grid_alert(small: Small, grid: str) -> None:
    import datetime as dt

    from api.db.models import Alert
    from api.db.session import session_scope

    today = dt.date.today()
    with session_scope(small.url) as session:
        session.add(
            Alert(unit_code=grid, kind="unstaffed_grid", category=None, observed=0.0,
                  expected=1.0, probability=None, status="open",
                  opened_on=today - dt.timedelta(days=2), last_seen_on=today)
        )  # fmt: skip


def test_alerts_name_their_path_and_markers_sit_above_names(page, city_page, small, artifacts):
    grid = grid_of(small, VILLAGE)
    open_grid_alert(small, grid)
    open_unit(page, small, CITY, "?metric=caseload&period=year")
    names = page.locator("#unit-alerts li a").all_inner_texts()
    assert any(n.startswith("沙溪镇 › 光头村 › 第") for n in names), names
    marker, label = page.evaluate(
        """(town) => {
            const data = document.querySelector('#unit-map .js-plotly-plot').data;
            const m = data.find(t => t.name === 'alerts');
            const l = data[1], i = data[0].locations.indexOf(town);
            return [[m.lon[0], m.lat[0]], [l.lon[i], l.lat[i]]];
        }""",
        TOWN,
    )
    assert marker[0] == label[0] and marker[1] > label[1]  # above the town's name
    page.screenshot(path=str(artifacts / "trust_alerts_city.png"))
    assert_clean(city_page, small)


def test_wall_shows_period_data_end_and_alerts(browser, small, artifacts):
    cookie = login_cookie(small.url, small.settings, "display", CITY)
    for size, name in (((1920, 1080), "1080"), ((3840, 2160), "4k")):
        watched = watched_page(
            browser, small.server.url, cookie, viewport={"width": size[0], "height": size[1]}
        )
        page = watched.page
        page.goto(f"{small.server.url}/dashboard/wall")
        page.wait_for_selector("#wall-map path.choroplethlocation", timeout=20_000)
        period = page.locator("#wall-period").inner_text()
        days = re.findall(r"\d{4}-\d\d-\d\d", period)
        assert len(days) == 3 and days[1] == days[2], period  # start – end, data's last day
        refreshed = page.locator("#wall-asof").inner_text()
        assert "刷新于" in refreshed and days[2] not in refreshed
        alerts = page.locator("#wall-alerts").inner_text()
        assert "预警" in alerts and "沙溪镇 › 光头村 ›" in alerts
        assert page.evaluate(
            "document.documentElement.scrollHeight <= innerHeight"
            " && document.documentElement.scrollWidth <= innerWidth"
        )
        page.screenshot(path=str(artifacts / f"trust_wall_{name}.png"))
        assert watched.errors == [] and watched.external() == []
        page.context.close()


# ---------------------------------------------------------------- 6, 9: low-count units


def test_low_count_units_are_hatched(page, city_page, small, artifacts):
    open_unit(page, small, VILLAGE, "?metric=resolution_rate&period=month")
    page.wait_for_selector("#unit-map path[data-low-count]", timeout=20_000)
    z, fills = page.evaluate(
        """() => [document.querySelector('#unit-map .js-plotly-plot').data[0].z,
                  [...document.querySelectorAll(
                        '#unit-map .choroplethlayer > .trace:first-child path.choroplethlocation')]
                    .map(p => p.style.fill)]"""
    )
    assert -1 in z
    for klass, fill in zip(z, fills, strict=True):
        assert (fill == 'url("#zhili-hatch")') == (klass == -1)
    legend = page.locator("#unit-legend").inner_text()
    assert "—" not in legend and "0.0%" not in legend  # no class of nothing
    assert page.locator("#unit-legend .swatch.hatched").count() == 1
    page.screenshot(path=str(artifacts / "trust_low_count.png"))
    assert_clean(city_page, small)


# ---------------------------------------------------------------- 8: EB smoothing


def test_eb_smoothing_is_offered_and_said(page, city_page, small, artifacts):
    open_unit(page, small, TOWN, "?metric=caseload_per_10k&period=year")
    smooth = page.locator("#unit-smooth input[value='eb']")
    assert not smooth.is_checked() and smooth.is_enabled()
    smooth.check()
    page.wait_for_url(re.compile(r"smooth=eb"), timeout=20_000)
    legend = page.locator("#unit-legend")
    legend.locator(".legend-note").wait_for(timeout=20_000)
    assert "已平滑" in legend.inner_text()
    assert "smooth=eb" in page.locator("#export-geojson").get_attribute("href")
    # 光头村: its 21 grids differ no more than chance (the between-grid variance of the
    # moment estimator is below zero), so every grid is shrunk to the village's rate
    open_unit(page, small, VILLAGE, "?metric=caseload_per_10k&period=year&smooth=eb")
    assert "平滑后全部等于上级比率" in page.locator("#unit-legend").inner_text()
    page.screenshot(path=str(artifacts / "trust_eb_village.png"))
    open_unit(page, small, TOWN, "?metric=caseload&period=year&smooth=eb")
    assert page.locator("#unit-smooth input[value='eb']").is_disabled()  # counts: no EB
    assert_clean(city_page, small)
