"""PATCH /api/v1/cases/{id} (接-约-办-访-评) and GET /api/v1/cases (scoped list)."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db.models import AuditLog, CaseRollupDaily
from api.db.session import session_scope
from tests.conftest import token_for
from tests.intake.conftest import assert_rollups_equal_recount, case

T0 = dt.datetime(2025, 5, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


def at(hours: float) -> str:
    return (T0 + dt.timedelta(hours=hours)).isoformat()


def post(client, **fields) -> int:
    body = client.post("/api/v1/cases", json=case(reported_at=T0.isoformat(), **fields)).json()
    assert body["created"] == 1, body
    return body["items"][0]["id"]


def test_a_case_walks_the_five_steps_and_every_change_is_audited(admin, db_url):
    cid = post(admin)
    moves = [
        {"step": "scheduled", "at": at(1)},
        {"step": "handled", "at": at(30), "outcome": "mediated_success"},
        {"step": "visited", "at": at(50)},
        {"step": "evaluated", "at": at(60), "satisfaction": 4},
    ]
    for move in moves:
        r = admin.patch(f"/api/v1/cases/{cid}", json=move)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == move["step"]
    final = r.json()
    assert final["outcome"] == "mediated_success" and final["satisfaction"] == 4
    assert final["handled_at"].startswith("2025-05-02T08:00")
    with session_scope(db_url) as session:
        row = session.scalar(select(CaseRollupDaily))
        assert (row.cases, row.closed, row.closed_on_time, row.mediation_success) == (1, 1, 1, 1)
        assert (row.visited, row.evaluated, row.satisfaction_sum) == (1, 1, 4)
        trail = session.scalars(
            select(AuditLog).where(AuditLog.action == "case.advance").order_by(AuditLog.id)
        ).all()
    assert [a.detail["step"] for a in trail] == [m["step"] for m in moves]
    assert all(a.target == f"case:{cid}" for a in trail)
    assert_rollups_equal_recount(db_url)


ILLEGAL = {
    "closing an unscheduled case": ([], {"step": "handled", "outcome": "resolved"}, 409),
    "going back": ([{"step": "scheduled", "at": at(1)}], {"step": "scheduled"}, 409),
    "before the report": ([], {"step": "scheduled", "at": at(-1)}, 409),
    "before the previous step": (
        [{"step": "scheduled", "at": at(5)}],
        {"step": "handled", "at": at(4), "outcome": "resolved"},
        409,
    ),
    "in the future": ([], {"step": "scheduled", "at": "2999-01-01T00:00:00Z"}, 422),
    "handled without outcome": ([{"step": "scheduled", "at": at(1)}], {"step": "handled"}, 422),
    "satisfaction 6": (
        [
            {"step": "scheduled", "at": at(1)},
            {"step": "handled", "at": at(2), "outcome": "resolved"},
            {"step": "visited", "at": at(3)},
        ],
        {"step": "evaluated", "satisfaction": 6},
        422,
    ),
    "unknown step": ([], {"step": "closed"}, 422),
    "back to received": ([], {"step": "received"}, 422),
}


@pytest.mark.parametrize("name", list(ILLEGAL))
def test_illegal_moves_are_refused_with_the_reason(admin, db_url, name):
    before, move, status = ILLEGAL[name]
    cid = post(admin)
    for m in before:
        assert admin.patch(f"/api/v1/cases/{cid}", json=m).status_code == 200
    with session_scope(db_url) as session:
        kept = session.scalar(select(CaseRollupDaily.closed))
    r = admin.patch(f"/api/v1/cases/{cid}", json=move)
    assert r.status_code == status, r.text
    assert r.json()["message"]
    with session_scope(db_url) as session:
        assert session.scalar(select(CaseRollupDaily.closed)) == kept
    listed = admin.get("/api/v1/cases").json()["items"][0]
    assert listed["status"] == (before[-1]["step"] if before else "received")


def test_a_case_outside_the_writers_subtree_is_not_found(app, admin, db_url, world):
    cid = post(admin)  # in 东镇
    other = token_for(db_url, "intake", world.towns[1])
    with TestClient(app, headers={"Authorization": f"Bearer {other}"}) as c:
        r = c.patch(f"/api/v1/cases/{cid}", json={"step": "scheduled"})
    assert r.status_code == 404
    assert admin.patch("/api/v1/cases/999999", json={"step": "scheduled"}).status_code == 404


def test_the_list_is_scoped_filtered_and_paged(app, admin, db_url, world):
    east = [post(admin, category="neighbour") for _ in range(5)]  # 东镇
    west = [post(admin, category="labour", lon=121.15, lat=31.55) for _ in range(3)]  # 西镇
    admin.patch(f"/api/v1/cases/{west[0]}", json={"step": "scheduled", "at": at(1)})

    official = token_for(db_url, "official", world.towns[0])
    display = token_for(db_url, "display", world.city)
    intake = token_for(db_url, "intake", world.city)
    with TestClient(app) as c:
        h = {"Authorization": f"Bearer {official}"}
        seen = c.get("/api/v1/cases", headers=h).json()["items"]
        assert sorted(i["id"] for i in seen) == sorted(east)
        assert c.get(f"/api/v1/cases?unit={world.towns[1]}", headers=h).status_code == 404
        assert c.get("/api/v1/cases?unit=nope", headers=h).status_code == 404
        for token in (display, intake):
            r = c.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 403

    def ids(query: str) -> list[int]:
        r = admin.get(f"/api/v1/cases?{query}")
        assert r.status_code == 200, r.text
        return sorted(i["id"] for i in r.json()["items"])

    assert ids(f"unit={world.towns[1]}") == sorted(west)
    assert ids(f"unit={world.villages[3]}") == sorted(west)  # 西镇北村
    assert ids("category=labour") == sorted(west)
    assert ids("status=scheduled") == [west[0]]
    assert ids("status=open") == sorted(east + west)
    assert ids("channel=hotline_12345") == sorted(east + west)
    assert ids("channel=walk_in") == []
    assert ids("start=2025-05-01&end=2025-05-01") == sorted(east + west)
    assert ids("start=2025-05-02") == []
    assert ids("period=2025-05") == ids("period=2025-Q2") == sorted(east + west)
    assert ids("period=2025-04") == ids("period=2024") == []
    for bad in ("period=2025-13", "period=soon", "period=2025&start=2025-01-01"):
        r = admin.get(f"/api/v1/cases?{bad}")
        assert r.status_code == 400 and r.json()["message"], (bad, r.text)
    assert ids("overdue=true") == sorted(east + west)  # 2025 deadlines have passed
    assert ids("overdue=false") == []
    assert admin.get("/api/v1/cases?status=lost").status_code == 400
    assert admin.get("/api/v1/cases?cursor=garbage").status_code == 400

    pages, cursor = [], None
    while True:
        url = "/api/v1/cases?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = admin.get(url).json()
        pages.append([i["id"] for i in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    flat = [i for p in pages for i in p]
    assert flat == sorted(east + west, reverse=True) and len(pages) == 3
    item = page["items"][0]
    assert not {k for k in item if "name" in k or "phone" in k or "complainant" in k}


def test_list_cases_is_a_plain_service_for_the_dashboard(admin, db_url, world):
    from api.db.session import session_factory
    from api.principal import Principal
    from api.services.case_workflow import list_cases

    cid = post(admin)
    session = session_factory(db_url)()
    try:
        who = Principal(user_id=0, name="t", role="official", unit_code=world.towns[0])
        page = list_cases(session, who, unit_code=world.villages[0], status="open", limit=10)
    finally:
        session.close()
    assert [i["id"] for i in page["items"]] == [cid]


def test_overdue_means_past_the_deadline_open_or_handled_late_and_the_filter_agrees(admin):
    deadline = (T0 + dt.timedelta(days=1)).isoformat()
    late = post(admin, deadline=deadline)
    on_time = post(admin, deadline=deadline)
    fresh = admin.post("/api/v1/cases", json=case()).json()["items"][0]["id"]  # 15 days left
    open_late = post(admin, deadline=deadline)
    for cid, hours in ((late, 48), (on_time, 2)):
        for move in (
            {"step": "scheduled", "at": at(1)},
            {"step": "handled", "at": at(hours), "outcome": "resolved"},
        ):
            assert admin.patch(f"/api/v1/cases/{cid}", json=move).status_code == 200

    def listed(query: str = "") -> dict[int, bool]:
        r = admin.get(f"/api/v1/cases?{query}")
        assert r.status_code == 200, r.text
        return {i["id"]: i["overdue"] for i in r.json()["items"]}

    assert listed() == {late: True, on_time: False, fresh: False, open_late: True}
    assert sorted(listed("overdue=true")) == sorted([late, open_late])
    assert sorted(listed("overdue=false")) == sorted([on_time, fresh])
    assert sorted(listed("overdue=true&status=open")) == [open_late]  # 超期未办结


def test_a_time_given_as_a_number_is_refused(admin):
    cid = post(admin)
    r = admin.patch(f"/api/v1/cases/{cid}", json={"step": "scheduled", "at": 1746064800})
    assert r.status_code == 422 and "ISO 8601" in r.text
