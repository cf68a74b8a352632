"""Figures by level from the timelines equal a recount of the actions, on both databases,
and change (with the flow chart) on the request after an action."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from api.db.desk import CaseAction
from api.db.session import session_scope


def figures(desk, metric: str) -> dict:
    today = dt.datetime.now(dt.UTC).date()
    r = desk.clients["admin"].get(
        f"/api/v1/units/{desk.world.city}/children/metrics",
        params={
            "metric": metric,
            "start": (today - dt.timedelta(days=30)).isoformat(),
            "end": (today + dt.timedelta(days=1)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    return {u["code"]: (u["numerator"], u["denominator"]) for u in r.json()["children"]}


def recount(desk) -> dict:
    """Per town: (closes at village or grid, closes), escalations, village turns."""
    towns = {t: [0, 0, 0, 0, 0] for t in desk.world.towns}
    with session_scope(desk.db_url) as session:
        from api.db.models import AdminUnit, UnitAncestry

        rows = session.execute(
            select(CaseAction, UnitAncestry.ancestor_code)
            .join(UnitAncestry, UnitAncestry.unit_id == CaseAction.leaf_unit_id)
            .join(AdminUnit, AdminUnit.id == CaseAction.leaf_unit_id)
            .where(UnitAncestry.ancestor_level == "town")
        ).all()
        for a, town in rows:
            t = towns[town]
            if a.action == "handle":
                t[1] += 1
                t[0] += a.from_level in ("village", "grid") and a.from_department_id is None
            t[2] += a.action == "escalate"
            turn = a.action in ("escalate", "dispatch", "transfer", "return", "handle")
            if turn and a.from_level == "village":
                t[3] += 1
                t[4] += int(a.held_seconds or 0)
    return towns


def test_figures_by_level_equal_a_recount_and_follow_each_action(desk) -> None:
    east = desk.world.towns[0]
    local = desk.post(category="neighbour")
    moved = desk.post(category="neighbour")
    for action, extra in (("accept", {}), ("schedule", {}), ("handle", {"outcome": "resolved"})):
        assert desk.act("village_worker", local, action, **extra).status_code == 200
    assert desk.act("village_worker", moved, "escalate", reason="too big").status_code == 200
    flow_before = (
        desk.clients["official"]
        .get(
            f"/api/v1/units/{east}/flow",
            params={
                "start": "2020-01-01",
                "end": (dt.date.today() + dt.timedelta(days=1)).isoformat(),
            },
        )
        .json()
    )
    assert {(link["source"], link["target"], link["value"]) for link in flow_before["links"]} == {
        ("level:village", "closed", 1),
        ("level:village", "level:town", 1),
    }
    before = recount(desk)
    assert figures(desk, "resolved_locally_rate")[east] == (before[east][0], before[east][1])
    assert figures(desk, "escalation_rate")[east][0] == before[east][2] == 1
    assert figures(desk, "hours_at_village")[east] == (before[east][4], before[east][3])
    # the town closes the escalated case: the share resolved locally falls on the next request
    for action, extra in (("accept", {}), ("schedule", {}), ("handle", {"outcome": "resolved"})):
        assert desk.act("official", moved, action, **extra).status_code == 200
    after = recount(desk)
    assert after[east][:2] == [1, 2]
    assert figures(desk, "resolved_locally_rate")[east] == (1, 2)
    flow_after = (
        desk.clients["official"]
        .get(
            f"/api/v1/units/{east}/flow",
            params={
                "start": "2020-01-01",
                "end": (dt.date.today() + dt.timedelta(days=1)).isoformat(),
            },
        )
        .json()
    )
    assert ("level:town", "closed", 1) in {
        (link["source"], link["target"], link["value"]) for link in flow_after["links"]
    }
    assert flow_after["closes"] == 2
