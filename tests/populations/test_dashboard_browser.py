"""The special-population figures on the dashboard, in headless Chromium over the small
seed world: listed (特殊人群 / Special populations) only for a user with the permission,
shown per whole calendar month (the last complete one by default), suppressed cells read
"<5" on the map's hover, the ranking and the legend, never 0; without the permission
nothing of it shows."""

from __future__ import annotations

import shutil
import uuid

import pytest

from api.db.session import dispose_engines, session_scope
from api.settings import Settings
from tests.conftest import LiveServer
from tests.dashboard.conftest import watched_page

pytestmark = [pytest.mark.browser]

TOWN = "320599103"  # 沙溪镇
SHOTS = "/tmp/r23shots"


def _cookie(url: str, settings: Settings, permitted: bool) -> str:
    from api.services.auth import create_user, grant_permission
    from api.services.sessions import open_session

    with session_scope(url) as session:
        user = create_user(session, f"official-{uuid.uuid4().hex[:6]}", "official", TOWN)
        if permitted:
            grant_permission(session, user, "special_populations")
        return open_session(session, settings, user)


@pytest.fixture(scope="module")
def served(small_world_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pop_dash")
    path = folder / "small.db"
    shutil.copy(small_world_url.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, cache_dir=folder / "cache")
    with LiveServer(settings) as server:
        yield url, settings, server
    dispose_engines()


def _open(page, server, query: str) -> None:
    page.goto(f"{server.url}/dashboard/unit/{TOWN}{query}")
    page.wait_for_selector(f'#unit-page[data-unit="{TOWN}"]', timeout=60_000)


def test_special_populations_on_the_map_only_with_the_permission(browser, served):
    url, settings, server = served
    watched = watched_page(browser, server.url, _cookie(url, settings, permitted=True))
    page = watched.page
    try:
        langs = (("zh", "特殊人群", "年"), ("en", "Special populations", " 20"))
        for lang, group, month_word in langs:
            suffix = "&lang=en" if lang == "en" else ""
            # the picker lists the group
            _open(page, server, f"?metric=caseload{suffix}")
            page.wait_for_selector("#unit-map path.choroplethlocation", timeout=60_000)
            page.click("#unit-metric")
            heading = page.get_by_role("dialog").get_by_text(f"— {group} —", exact=True)
            heading.wait_for(timeout=5_000)
            if lang == "zh":  # picked in the app: the page redraws with month periods
                page.get_by_role("dialog").get_by_text("走访帮扶覆盖率", exact=True).click()
                page.wait_for_selector("#unit-period input[value='2026-10']", timeout=60_000)
            else:  # a 30-day period in a link becomes the last complete calendar month
                page.keyboard.press("Escape")
                _open(page, server, f"?metric=visit_coverage_rate&period=30d{suffix}")
            page.wait_for_selector("#unit-map path.choroplethlocation", timeout=60_000)
            radio = page.locator("#unit-period input:checked")
            value = radio.get_attribute("value")
            assert value and len(value) == 7 and value[4] == "-", value
            labels = page.locator("#unit-period label").all_inner_texts()
            assert all(month_word in x for x in labels), labels
            assert not page.locator("#unit-dates").is_visible()
            legend = page.locator("#unit-legend").inner_text()
            assert "<5" in legend
            page.wait_for_selector("#unit-ranking", timeout=30_000)
            ranking = page.locator("#unit-ranking").inner_text()
            page.screenshot(path=f"{SHOTS}/populations_{lang}.png", full_page=True)
            assert "<5" in ranking, ranking[:600]
            page.screenshot(path=f"{SHOTS}/populations_{lang}.png", full_page=True)
        # the wall draws the same month and the same "<5"
        page.goto(f"{server.url}/dashboard/wall?metrics=visit_coverage_rate&units={TOWN}")
        page.wait_for_selector("#wall-legend", timeout=60_000)
        page.wait_for_function(
            "document.querySelector('#wall-legend').innerText.includes('<5')", timeout=60_000
        )
        page.screenshot(path=f"{SHOTS}/populations_wall.png")
        assert not [e for e in watched.errors if "favicon" not in e], watched.errors
        assert all(r.startswith(server.url) or r.startswith("data:") for r in watched.requests)
    finally:
        page.context.close()

    watched = watched_page(browser, server.url, _cookie(url, settings, permitted=False))
    page = watched.page
    try:
        _open(page, server, "?metric=caseload")
        page.wait_for_selector("#unit-map path.choroplethlocation", timeout=60_000)
        page.click("#unit-metric")
        page.get_by_role("dialog").get_by_text("— 化解 —", exact=True).wait_for(timeout=5_000)
        assert page.get_by_role("dialog").get_by_text("特殊人群").count() == 0
        assert page.get_by_role("dialog").get_by_text("走访帮扶覆盖率").count() == 0
        page.keyboard.press("Escape")
        _open(page, server, "?metric=visit_coverage_rate&period=2026-10")
        page.wait_for_selector("#page-problem", timeout=60_000)
        assert "visit_coverage_rate" in page.locator("#page-problem").inner_text()
        body = page.locator("#unit-page").inner_text()
        assert "<5" not in body and "走访帮扶覆盖率" not in body
        page.screenshot(path=f"{SHOTS}/populations_denied.png", full_page=True)
    finally:
        page.context.close()
