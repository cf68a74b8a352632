"""The case desk through the API: routing by the rules, the whole path of a case level by
level, the role-by-action matrix, bad actions (nothing changed), client keys."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api.db.desk import CaseAction, RoutingRule
from api.db.models import AuditLog, Case
from api.db.session import session_scope
from tests.desk.conftest import new_case

SQLITE_ONLY = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)


def test_new_cases_are_routed_by_the_rules_and_a_rule_change_applies_to_new_ones(desk) -> None:
    w = desk.world
    east, village, grid = w.towns[0], w.villages[0], w.grids[0]
    expect = {
        "neighbour": (village, None),  # a neighbour dispute starts at the village
        "safety_hazard": (grid, None),  # a hazard at the grid
        "labour": (east, desk.departments["labour"]),  # wages: the town's 劳动保障所
        "petition": (w.city, "petition"),  # 信访: the city's petitions bureau
    }
    ids = {cat: desk.post(category=cat) for cat in expect}
    for cat, (unit, dep) in expect.items():
        case = desk.state(ids[cat])["case"]
        assert case["handling_unit_code"] == unit, cat
        if dep == "petition":
            assert case["department_name"] == "信访局"
        else:
            assert case["department_id"] == dep, cat
    with session_scope(desk.db_url) as session:
        session.add(
            RoutingRule(
                category="neighbour",
                level="town",
                department_kind="mediation",
                priority=0,
                active=True,
                created_at=func.now(),
            )
        )
    later = desk.post(category="neighbour")
    assert desk.state(later)["case"]["handling_unit_code"] == east
    assert desk.state(later)["case"]["department_id"] == desk.departments["mediation"]
    assert desk.state(ids["neighbour"])["case"]["handling_unit_code"] == village  # kept


def test_the_whole_path_level_by_level_with_its_timeline(desk) -> None:
    w = desk.world
    case_id = desk.post(category="neighbour")
    queue = desk.clients["village_worker"].get("/api/v1/cases", params={"queue": "mine"})
    assert case_id in [i["id"] for i in queue.json()["items"]]
    r = desk.act("village_worker", case_id, "escalate", reason="涉及多户，村里调不动")
    assert r.status_code == 200, r.text
    assert r.json()["case"]["handling_level"] == "town"  # its code is above the worker
    assert r.json()["case"]["handling_unit_code"] is None
    assert case_id not in [
        i["id"]
        for i in desk.clients["village_worker"].get("/api/v1/cases?queue=mine").json()["items"]
    ]
    town_queue = desk.clients["official"].get("/api/v1/cases?queue=mine&show=open").json()
    assert case_id in [i["id"] for i in town_queue["items"]]
    deps = desk.clients["official"].get("/api/v1/departments", params={"unit": w.towns[0]})
    labour = next(d for d in deps.json() if d["kind"] == "labour")
    r = desk.act("official", case_id, "accept")
    assert r.status_code == 200, r.text
    r = desk.act("official", case_id, "dispatch", department=labour["id"])
    assert r.status_code == 200, r.text
    dep_queue = desk.clients["department"].get("/api/v1/cases?queue=mine").json()["items"]
    assert [i["id"] for i in dep_queue] == [case_id]
    for action, extra in (("accept", {}), ("schedule", {}), ("handle", {"outcome": "resolved"})):
        r = desk.act("department", case_id, action, **extra)
        assert r.status_code == 200, (action, r.text)
    awaiting = desk.clients["village_worker"].get("/api/v1/cases?queue=mine&show=awaiting")
    assert [(i["id"], i["awaiting"]) for i in awaiting.json()["items"]] == [(case_id, "visit")]
    assert desk.act("village_worker", case_id, "visit").status_code == 200
    r = desk.act("village_worker", case_id, "evaluate", satisfaction=5)
    assert r.status_code == 200, r.text
    detail = desk.state(case_id, "official")
    assert detail["case"]["status"] == "evaluated"
    assert [e["action"] for e in detail["timeline"]] == [
        "escalate",
        "accept",
        "dispatch",
        "accept",
        "schedule",
        "handle",
        "visit",
        "evaluate",
    ]
    assert detail["timeline"][0]["reason"] == "涉及多户，村里调不动"
    assert detail["timeline"][2]["to_department"] == labour["name"]
    assert detail["actions"] == ["note"]
    # the village worker sees the town by level only, never its code
    seen = desk.state(case_id, "village_worker")
    units = {seen["case"]["handling_unit_code"]}
    units |= {e[k] for e in seen["timeline"] for k in ("from_unit", "to_unit")}
    assert units == {None, w.villages[0]}
    with session_scope(desk.db_url) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "case.action")
            )
            == 8
        )


def _snapshot(db_url: str, case_id: int) -> tuple:
    with session_scope(db_url) as session:
        case = session.get(Case, case_id)
        return (
            case.version,
            case.status,
            case.handling_unit_code,
            case.department_id,
            case.accepted_at,
            session.scalar(select(func.count()).select_from(CaseAction)),
            session.scalar(select(func.count()).select_from(AuditLog)),
        )


@SQLITE_ONLY
def test_bad_actions_are_refused_with_a_message_and_change_nothing(desk) -> None:
    case_id = desk.post(category="neighbour")
    assert desk.act("village_worker", case_id, "accept").status_code == 200
    before = _snapshot(desk.db_url, case_id)
    version = desk.state(case_id)["case"]["version"]
    bad = [
        ("village_worker", "handle", {}, 409, "next step"),  # wrong step: 约 first
        ("village_worker", "dispatch", {"to_unit": desk.world.grids[0]}, 403, "cannot"),
        ("department", "accept", {}, 403, "not by you"),  # not routed to it
        ("official@west", "escalate", {"reason": "x"}, 404, "jurisdiction"),
        ("village_worker@other", "note", {"reason": "x"}, 404, "jurisdiction"),
        ("intake", "accept", {}, 403, "intake"),
        ("display", "note", {"reason": "x"}, 403, "display"),
        ("village_worker", "escalate", {}, 422, "reason"),
        ("official", "dispatch", {"department": 999999}, 404, "no department"),
        ("official", "dispatch", {"department": desk.departments["west_labour"]}, 404, "no dep"),
        ("official", "dispatch", {"to_unit": desk.world.towns[1]}, 404, "jurisdiction"),
        ("official", "dispatch", {"to_unit": desk.world.towns[0]}, 409, "goes down"),
        ("official", "transfer", {"to_unit": desk.world.grids[0]}, 409, "sideways"),
        ("official", "fly", {}, 422, "unknown action"),
        ("village_worker", "evaluate", {"satisfaction": 9}, 422, "satisfaction"),
    ]
    for who, action, body, status, words in bad:
        r = desk.act(who, case_id, action, version=version, **body)
        assert r.status_code == status, (who, action, r.text)
        assert words.split()[0].lower() in r.json()["message"].lower(), (who, action, r.text)
    stale = desk.act("village_worker", case_id, "schedule", version=version - 1)
    assert stale.status_code == 409
    assert stale.json()["case"]["version"] == version  # the current state comes back
    assert "changed since you read it" in stale.json()["message"]
    missing = desk.clients["admin"].post(f"/api/v1/cases/{case_id}/actions", json={"action": "x"})
    assert missing.status_code == 422
    assert desk.act("admin", 10**9, "note", version=1, reason="x").status_code == 404
    assert _snapshot(desk.db_url, case_id) == before


@SQLITE_ONLY
def test_a_client_key_sent_twice_acts_once(desk) -> None:
    case_id = desk.post(category="neighbour")
    version = desk.state(case_id)["case"]["version"]
    body = {"action": "accept", "version": version, "key": "k-accept-1"}
    c = desk.clients["village_worker"]
    first = c.post(f"/api/v1/cases/{case_id}/actions", json=body)
    again = c.post(f"/api/v1/cases/{case_id}/actions", json=body)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    assert again.json()["case"]["version"] == version + 1
    assert [e["action"] for e in desk.state(case_id)["timeline"]] == ["accept"]
    other = desk.post(category="neighbour")
    reused = c.post(f"/api/v1/cases/{other}/actions", json=body | {"version": 1})
    assert reused.status_code == 409 and "another case" in reused.json()["message"]


# role → action → status on a fresh case held by 东镇南村 (received, not accepted)
MATRIX = {
    "village_worker": dict(
        accept=200,
        escalate=200,
        return_=409,
        schedule=409,
        handle=409,
        visit=409,
        evaluate=409,
        note=200,
        dispatch=403,
        transfer=403,
    ),
    "official": dict(
        accept=200,
        escalate=200,
        return_=409,
        dispatch=200,
        transfer=200,
        schedule=409,
        handle=409,
        visit=409,
        note=200,
    ),
    "department": dict(accept=403, escalate=403, dispatch=403, handle=403, visit=409, note=200),
    "admin": dict(accept=200, dispatch=200, escalate=200, note=200, handle=409),
    "intake": dict(accept=403, note=403),
    "analyst": dict(accept=403, note=403),
    "display": dict(note=403),
    "official@west": dict(accept=404, note=404),
    "village_worker@other": dict(accept=404, note=404),
}


@SQLITE_ONLY
def test_the_role_by_action_matrix(desk) -> None:
    w = desk.world
    body = {
        "escalate": {"reason": "beyond us"},
        "return": {"reason": "not ours"},
        "note": {"reason": "called back"},
        "dispatch": {"to_unit": w.grids[0]},
        "transfer": {"to_unit": w.villages[1]},
        "evaluate": {"satisfaction": 4},
    }
    pairs = [
        (who, a.rstrip("_"), status) for who, row in MATRIX.items() for a, status in row.items()
    ]
    posted = desk.clients["intake"].post(
        "/api/v1/cases", json=[new_case(category="neighbour") for _ in pairs]
    )
    ids = [item["id"] for item in posted.json()["items"]]
    got, want = {}, {}
    for (who, action, status), case_id in zip(pairs, ids, strict=True):
        r = desk.act(who, case_id, action, version=1, **body.get(action, {}))
        got[(who, action)], want[(who, action)] = r.status_code, status
    assert got == want


@SQLITE_ONLY
def test_a_supervisor_dispatches_then_the_department_returns_it(desk) -> None:
    case_id = desk.post(category="labour")  # routed to 东镇's 劳动保障所
    assert desk.act("department", case_id, "accept").status_code == 200
    r = desk.act("department", case_id, "transfer", department=desk.departments["mediation"])
    assert r.status_code == 200, r.text
    assert desk.act("department", case_id, "note", reason="x").status_code == 200  # scope
    assert desk.act("department", case_id, "schedule").status_code == 403  # not its own now
    assert desk.act("official", case_id, "accept").status_code == 403  # its, not the town's
    r = desk.act("official", case_id, "return", reason="转回劳动保障所")
    assert r.status_code == 200, r.text
    assert r.json()["case"]["department_id"] == desk.departments["labour"]


@SQLITE_ONLY
def test_a_department_user_from_the_command_line(desk) -> None:
    from click.testing import CliRunner

    from api.cli import main

    def zhili(*args: str):
        return CliRunner().invoke(main, [*args, "--database-url", desk.db_url])

    east = desk.world.towns[0]
    made = zhili("user", "add", "labour-1", "--role", "department", "--unit", east,
                 "--department", "labour")  # fmt: skip
    assert made.exit_code == 0, made.output
    case_id = desk.post(category="labour")
    headers = {"Authorization": f"Bearer {made.output.strip()}"}
    queue = desk.clients["admin"].get("/api/v1/cases?queue=mine", headers=headers)
    assert [i["id"] for i in queue.json()["items"]] == [case_id]
    wrong = zhili("user", "add", "x-1", "--role", "department", "--unit", east,
                  "--department", "bakery")  # fmt: skip
    assert wrong.exit_code != 0 and "has no 'bakery' department" in wrong.output
    alone = zhili("user", "add", "x-2", "--role", "department", "--unit", east)
    assert alone.exit_code != 0 and "--department" in alone.output


@SQLITE_ONLY
def test_a_case_transferred_to_a_sibling_village_is_its_to_work(desk) -> None:
    w = desk.world
    case_id = desk.post(category="neighbour")  # at 东镇南村
    r = desk.act("official", case_id, "transfer", to_unit=w.villages[1], reason="属北村")
    assert r.status_code == 200, r.text
    other = desk.clients["village_worker@other"]
    queue = other.get("/api/v1/cases?queue=mine").json()["items"]
    assert [i["id"] for i in queue] == [case_id]
    assert desk.act("village_worker@other", case_id, "accept").status_code == 200
    assert desk.act("village_worker", case_id, "schedule").status_code == 403  # not its now
