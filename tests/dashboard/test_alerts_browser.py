"""Early-warning alerts on the unit page: listed beside the map, marked on the child that
holds them, linked to the unit whose page shows observed against expected."""

from __future__ import annotations

import datetime as dt

import pytest

from api.db.models import Alert
from api.db.session import session_scope
from tests.dashboard.test_map_browser import assert_clean, wait_for_unit

pytestmark = [pytest.mark.browser]
SQLITE_ONLY = pytest.mark.parametrize("db_kind", ["sqlite"])


def open_alert(db_url: str, unit_code: str, **fields) -> None:
    today = dt.date.today()
    values = {"kind": "caseload", "category": None, "observed": 14.0, "expected": 2.5,
              "probability": 3e-7, "status": "open", "opened_on": today - dt.timedelta(days=2),
              "last_seen_on": today} | fields  # fmt: skip
    with session_scope(db_url) as session:
        session.add(Alert(unit_code=unit_code, **values))


@SQLITE_ONLY
def test_alerts_are_listed_marked_and_explained(admin_page, live_server, db_url, world, artifacts):
    village = world.villages[1]  # in the first town
    open_alert(db_url, village)
    open_alert(db_url, world.villages[3], status="closed", closed_on=dt.date.today())
    page = admin_page.page

    page.goto(f"{live_server.url}/dashboard/unit/{world.city}")
    wait_for_unit(page, world.city, shapes=3)
    items = page.locator("#unit-alerts li")
    assert items.count() == 1  # the closed alert is not listed
    assert "14" in items.first.inner_text() and "2.5" in items.first.inner_text()
    marked = page.evaluate(
        """() => document.querySelector('#unit-map .js-plotly-plot').data
                 .filter(t => t.name === 'alerts').flatMap(t => t.customdata.map(c => c[0]))"""
    )
    assert marked == [world.towns[0]]  # the town that holds the village, not the others
    page.screenshot(path=str(artifacts / "unit_alerts_city.png"))

    items.first.locator("a").click()
    wait_for_unit(page, village, shapes=2)  # its grids
    page.locator(".alert-pattern .js-plotly-plot").wait_for(timeout=20_000)
    names = page.evaluate(
        "() => document.querySelector('.alert-pattern .js-plotly-plot').data.map(t => t.name)"
    )
    assert len(names) == 2  # observed and expected
    page.screenshot(path=str(artifacts / "unit_alerts_village.png"))
    assert_clean(admin_page)
