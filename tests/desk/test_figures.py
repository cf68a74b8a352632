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


def test_rollups_kept_by_each_action_equal_a_rebuild(desk) -> None:
    """The daily rows every action moved (``apply_changes``) are those a rebuild from the
    whole timeline makes; the cube caught up from the change log, not a reload."""
    from sqlalchemy import text

    from api.engine import DESK, rebuild
    from api.engine import state as state_module

    wages = desk.post(category="labour")  # routed to the town's 劳动保障所
    moved = desk.post(category="neighbour")
    assert desk.act("department", wages, "accept").status_code == 200
    # the state is built
    figures(desk, "desk_dispatches")
    loads = sum(state_module.loads.values())
    for action, extra in (("schedule", {}), ("handle", {"outcome": "resolved"})):
        assert desk.act("department", wages, action, **extra).status_code == 200
    steps = (
        ("village_worker", "accept", {}),
        ("village_worker", "escalate", {"reason": "needs the town"}),
        ("official", "accept", {}),
        ("official", "dispatch", {"department": desk.departments["labour"]}),
        ("department", "return", {"reason": "not ours"}),
    )
    for who, action, extra in steps:
        assert desk.act(who, moved, action, **extra).status_code == 200, (action, who)

    east = desk.world.towns[0]
    assert figures(desk, "desk_dispatches")[east][0] >= 1
    assert figures(desk, "desk_returns")[east][0] >= 1
    assert sum(state_module.loads.values()) == loads  # caught up from the log: no reload

    def rows(session) -> list[tuple]:
        return sorted(
            tuple(r) for r in session.execute(text("SELECT * FROM desk_rollup_daily")).all()
        )

    with session_scope(desk.db_url) as session:
        kept = rows(session)
        nodes = set(
            session.execute(text("SELECT action, from_node, to_node FROM case_action")).all()
        )
        assert ("dispatch", "level:town", "dept:town:labour") in nodes
        assert ("return", "dept:town:labour", "level:town") in nodes
        assert ("handle", "dept:town:labour", "dept:town:labour") in nodes
        rebuild(session, DESK)
        session.flush()
        assert rows(session) == kept and kept
        session.rollback()
