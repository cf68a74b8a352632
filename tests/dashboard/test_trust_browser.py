"""Issue 26 in headless Chromium, on one live server over the ``small`` seed world (a
year of cases, four levels): the dashboard never dies (a refused view, an unknown unit or
path show a message inside the frame), every string in the page's language, the legend,
the ranking, the trend's gaps, the wall, alerts and downloads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

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
