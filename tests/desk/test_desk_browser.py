"""The whole path of a case in Chromium, level by level: the intake system posts it, the
village worker escalates it from the desk, the town official accepts it and dispatches it
to a department, the department handles it, the village worker records 访 and 评, and the
figures by level and the flow chart change on the next request."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from api.db.desk import Department, DepartmentMember
from api.db.models import User
from api.db.session import session_scope
from api.services.routing import set_up_routing
from tests.conftest import token_for
from tests.dashboard.conftest import login_cookie, watched_page
from tests.dashboard.test_map_browser import assert_clean
from tests.desk.conftest import new_case

pytestmark = [pytest.mark.browser]


def act_in_browser(page, case_id: int, action: str, reason: str | None = None,
                   target: str | None = None) -> None:  # fmt: skip
    """Open the case from the queue (unless open) and press the action's button."""
    if not page.locator("#desk-case-state").count():
        row = page.locator(f"#desk-queue button:text-is('#{case_id}')")
        row.wait_for(timeout=20_000)
        row.click()
    button = page.locator(f".desk-action-{action}")
    button.wait_for(timeout=20_000)
    if target:
        page.locator("#desk-target label", has_text=target).first.click()
    if reason:
        page.locator("#desk-reason").fill(reason)
    timeline = page.locator("#desk-timeline li").count()
    button.click()
    page.wait_for_function(
        f"document.querySelectorAll('#desk-timeline li').length > {timeline}", timeout=20_000
    )


def desk_page(browser, live_server, settings, db_url, role: str, unit: str, lang: str = "zh"):
    watched = watched_page(browser, live_server.url, login_cookie(db_url, settings, role, unit))
    watched.page.goto(f"{live_server.url}/dashboard/desk?lang={lang}")
    watched.page.locator("#desk-queue").wait_for(timeout=20_000)
    return watched


def figures_of(page) -> tuple[str, int]:
    """The resolved-locally card's text and the number of links of the flow chart."""
    page.locator("#desk-fig-resolved_locally_rate").wait_for(timeout=20_000)
    page.wait_for_function("document.querySelector('#desk-flow .js-plotly-plot') !== null")
    links = page.evaluate(
        """() => { const d = document.querySelector('#desk-flow .js-plotly-plot').data;
                   return d.length ? d[0].link.source.length : 0; }"""
    )
    return page.locator("#desk-fig-resolved_locally_rate b").inner_text(), links


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_the_whole_path_in_chromium(browser, live_server, settings, db_url, world, artifacts):
    with session_scope(db_url) as session:
        set_up_routing(session)
    east, village = world.towns[0], world.villages[0]
    intake = token_for(db_url, "intake", world.city)
    posted = httpx.post(
        f"{live_server.url}/api/v1/cases",
        json=new_case(category="neighbour", description="楼上漏水，多次协商不成"),
        headers={"Authorization": f"Bearer {intake}"},
    )
    assert posted.status_code == 200, posted.text
    case_id = posted.json()["items"][0]["id"]
    others = [
        httpx.post(
            f"{live_server.url}/api/v1/cases",
            json=new_case(category="family"),
            headers={"Authorization": f"Bearer {intake}"},
        ).json()["items"][0]["id"]
        for _ in range(2)
    ]

    town = desk_page(browser, live_server, settings, db_url, "official", east)
    before = figures_of(town.page)
    assert before[1] == 0  # no moves yet: the flow says so instead of drawing nothing

    worker = desk_page(browser, live_server, settings, db_url, "village_worker", village)
    act_in_browser(worker.page, case_id, "escalate", reason="涉及多户，需镇里协调")
    worker.page.screenshot(path=str(artifacts / "desk_worker_escalated.png"))

    town.page.reload()
    town.page.locator("#desk-queue").wait_for()
    act_in_browser(town.page, case_id, "accept")
    act_in_browser(town.page, case_id, "dispatch", target="司法所")
    town.page.screenshot(path=str(artifacts / "desk_town_dispatched.png"))

    token = token_for(db_url, "department", east)
    with session_scope(db_url) as session:
        dep = session.scalar(
            select(Department.id).where(
                Department.unit_code == east, Department.kind == "mediation"
            )
        )
        user = session.scalars(select(User).where(User.role == "department")).one()
        session.add(DepartmentMember(user_id=user.id, department_id=dep))
    assert token
    department = watched_page(browser, live_server.url, _cookie_for(db_url, settings, user.id))
    department.page.goto(f"{live_server.url}/dashboard/desk?lang=en")
    for action in ("accept", "schedule", "handle"):
        act_in_browser(department.page, case_id, action)
    department.page.screenshot(path=str(artifacts / "desk_department_handled_en.png"))

    worker.page.reload()
    worker.page.locator(f"#desk-queue button:text-is('#{case_id}')").wait_for(timeout=20_000)
    assert "回访" in worker.page.locator("#desk-queue").inner_text()  # awaiting 访
    act_in_browser(worker.page, case_id, "visit")
    act_in_browser(worker.page, case_id, "evaluate")
    steps = worker.page.locator("#desk-timeline li").all_inner_texts()
    assert len(steps) == 8 and "上报" in steps[0] and "评价" in steps[-1]
    worker.page.screenshot(path=str(artifacts / "desk_worker_evaluated.png"))

    town.page.reload()
    after = figures_of(town.page)
    assert after != before and after[1] >= 2  # village → town → 司法所 → 办结
    town.page.screenshot(path=str(artifacts / "desk_town_figures.png"), full_page=True)

    # supervisors' bulk reassignment: both other cases (at 东镇南村) down to its first grid
    town.page.locator("#desk-scope label", has_text="辖区在办").click()
    for other in others:
        town.page.locator("#desk-bulk label", has_text=f"#{other}").click()
    town.page.locator("#desk-bulk-target label", has_text=world.grids[0]).click()
    town.page.locator("#desk-bulk-go").click()
    town.page.locator("#desk-message", has_text="× 2").wait_for(timeout=20_000)
    town.page.screenshot(path=str(artifacts / "desk_town_bulk.png"), full_page=True)
    with session_scope(db_url) as session:
        from api.db.models import Case

        held = {session.get(Case, i).handling_unit_code for i in others}
    assert held == {world.grids[0]}
    for watched in (town, worker, department):
        assert_clean(watched)
        watched.page.context.close()


def _cookie_for(db_url: str, settings, user_id: int) -> str:
    from api.services.sessions import open_session

    with session_scope(db_url) as session:
        return open_session(session, settings, session.get(User, user_id))
