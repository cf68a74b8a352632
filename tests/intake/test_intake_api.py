"""POST /api/v1/cases: validation, location, idempotency, rollups in the same transaction."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import func, select

from api.db.models import AdminUnit, AuditLog, Case, CaseRollupDaily
from api.db.session import session_scope
from api.services.units import UnitRecord, add_units
from tests.intake.conftest import assert_rollups_equal_recount, case
from tests.utils.world import mbox

SHANGHAI = ZoneInfo("Asia/Shanghai")


def count_cases(db_url: str) -> int:
    with session_scope(db_url) as session:
        return session.scalar(select(func.count()).select_from(Case))


def unit_id(db_url: str, code: str) -> int:
    with session_scope(db_url) as session:
        return session.scalar(
            select(AdminUnit.id).where(AdminUnit.code == code, AdminUnit.valid_to.is_(None))
        )


def test_a_posted_case_is_located_stored_and_counted(writer, db_url, world):
    reported = dt.datetime(2025, 3, 4, 23, 30, tzinfo=dt.UTC)  # 2025-03-05 07:30 in Shanghai
    r = writer.post("/api/v1/cases", json=case(reported_at=reported.isoformat()))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 1 and body["items"][0]["status"] == "created"
    grid = world.grids[0]  # 121.00-121.05 × 31.4-31.5 holds (121.02, 31.45)
    with session_scope(db_url) as session:
        stored = session.get(Case, body["items"][0]["id"])
        assert (stored.grid_code, stored.village_code) == (grid, world.villages[0])
        assert stored.description == "楼上漏水"  # trimmed
        assert stored.status == "received" and stored.reported_at == reported
        assert stored.deadline == reported + dt.timedelta(days=15)  # neighbour SLA
        row = session.scalar(
            select(CaseRollupDaily).where(
                CaseRollupDaily.leaf_unit_id == unit_id(db_url, grid),
                CaseRollupDaily.day == dt.date(2025, 3, 5),
            )
        )
        assert (row.category, row.channel, row.cases, row.closed) == (
            "neighbour",
            "hotline_12345",
            1,
            0,
        )
    assert_rollups_equal_recount(db_url)


def test_naive_times_are_shanghai_and_chinese_names_are_understood(writer, db_url):
    r = writer.post(
        "/api/v1/cases",
        json=case(reported_at="2024-03-05T07:30:00", category="邻里纠纷", channel="12345热线"),
    )
    assert r.json()["created"] == 1, r.text
    with session_scope(db_url) as session:
        stored = session.scalar(select(Case))
        assert stored.reported_at == dt.datetime(2024, 3, 4, 23, 30, tzinfo=dt.UTC)
        assert (stored.category, stored.channel) == ("neighbour", "hotline_12345")


def test_gcj02_points_are_moved_to_wgs84(writer, db_url):
    r = writer.post("/api/v1/cases", json=case(lon=121.02, lat=31.45, crs="gcj02"))
    assert r.json()["created"] == 1, r.text
    with session_scope(db_url) as session:
        stored = session.scalar(select(Case))
    # GCJ-02 is shifted a few hundred metres east and south-ish of WGS84 around Suzhou
    assert 0.001 < 121.02 - stored.lon < 0.01
    assert 0.0005 < abs(31.45 - stored.lat) < 0.01


def test_unit_codes_locate_cases_and_retired_or_unknown_codes_are_refused(writer, db_url, world):
    with session_scope(db_url) as session:
        add_units(
            session,
            [
                UnitRecord(
                    "320583001001099",
                    "撤并网格",
                    "grid",
                    world.villages[0],
                    mbox(121.0, 31.4, 121.01, 31.41),
                    valid_to=dt.date(2024, 1, 1),
                )
            ],
        )
    items = [
        case(lon=None, lat=None, unit_code=world.leaf_village),
        case(lon=None, lat=None, unit_code=world.grids[3]),
        case(lon=None, lat=None, unit_code="320583001001099"),
        case(lon=None, lat=None, unit_code="999999"),
    ]
    body = writer.post("/api/v1/cases", json=items).json()
    assert [i["status"] for i in body["items"]] == ["created", "created", "rejected", "rejected"]
    assert "retired" in body["items"][2]["reason"]
    assert "no unit with code '999999'" in body["items"][3]["reason"]
    with session_scope(db_url) as session:
        stored = {c.external_id: c for c in session.scalars(select(Case))}
    a, b = stored[items[0]["external_id"]], stored[items[1]["external_id"]]
    assert (a.village_code, a.grid_code) == (world.leaf_village, None)
    assert a.leaf_unit_id == unit_id(db_url, world.leaf_village)
    assert (b.village_code, b.grid_code) == (world.parent[world.grids[3]], world.grids[3])


FUTURE = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
BAD_ITEMS = {
    "missing category": ({"category": None}, "category"),
    "unknown category": ({"category": "ufo"}, "unknown category 'ufo'"),
    "unknown channel": ({"channel": "fax"}, "unknown channel 'fax'"),
    "swapped lon/lat": ({"lon": 31.45, "lat": 121.02}, "swapped"),
    "outside the city": ({"lon": 116.4, "lat": 39.9}, "outside every unit"),
    "future": ({"reported_at": FUTURE}, "in the future"),
    "before 1990": ({"reported_at": "1989-12-31T12:00:00+08:00"}, "before 1990"),
    "long description": ({"description": "长" * 2001}, "at most 2,000"),
    "wrong type of lon": ({"lon": "east"}, "lon: must be a JSON number"),
    "lon as text": ({"lon": "121.02"}, "lon: must be a JSON number"),
    "lat as a boolean": ({"lat": True}, "lat: must be a JSON number"),
    "wrong type of date": ({"reported_at": [2024]}, "reported_at: must be an ISO 8601"),
    "date as a number": ({"reported_at": 1700000000}, "reported_at: must be an ISO 8601"),
    "wrong type of category": ({"category": 7}, "category"),
    "wrong type of external_id": ({"external_id": {"id": 1}}, "external_id"),
    "10 MB description": ({"description": "x" * 10_000_000}, "10,000,000 characters"),
    "no location": ({"lon": None, "lat": None}, "location"),
    "unknown crs": ({"crs": "bd09"}, "crs"),
    "complainant phone": ({"complainant_phone": "13800000000"}, "unknown field"),
    "deadline before report": ({"deadline": "2000-01-01T00:00:00Z"}, "deadline"),
}


@pytest.mark.parametrize("name", list(BAD_ITEMS))
def test_each_bad_item_is_rejected_with_its_reason_and_nothing_stored(writer, db_url, name):
    override, words = BAD_ITEMS[name]
    item = {**case(), **override}
    item = {k: v for k, v in item.items() if v is not None}
    r = writer.post("/api/v1/cases", json=[item])
    assert r.status_code == 200, r.text
    result = r.json()["items"][0]
    assert result["status"] == "rejected" and words in result["reason"], result
    assert count_cases(db_url) == 0


def test_nan_and_infinity_are_not_json_and_refuse_the_body(writer, db_url):
    """Issue 26, point 19: NaN and Infinity are not JSON: a 400 that says so, nothing stored."""
    good = orjson.dumps(case()).decode()
    for literal in ("NaN", "Infinity", "-Infinity"):
        text = "[" + good + "," + good.replace('"lon":121.02', f'"lon":{literal}') + "]"
        r = writer.post("/api/v1/cases", content=text, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        assert "not JSON" in r.json()["message"] and "NaN" in r.json()["message"], r.text
    assert count_cases(db_url) == 0


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b'[{"source": "12345",', 400, "malformed JSON"),
        (b'"a case"', 422, "one case"),
        (b"[]", 422, "empty"),
        (b"[1, 2]", 200, "not a JSON object"),
        (orjson.dumps([case() for _ in range(5001)]), 413, "at most 5,000"),
        (orjson.dumps([case(description="x" * 11_000_000)] * 2), 413, "too large"),
    ],
    ids=["malformed", "wrong top-level type", "empty", "not objects", "5001 items", "22 MB body"],
)
def test_unreadable_bodies_are_4xx_and_store_nothing(writer, db_url, content, status, words):
    r = writer.post("/api/v1/cases", content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    body = r.json()
    if status == 200:  # a list whose items are unreadable: each is a listed bad row
        assert body["rejected"] == 2 and words in body["items"][0]["reason"]
    else:
        assert words in body["message"].replace("larger than", "too large")
    assert count_cases(db_url) == 0


def test_a_batch_of_5000_is_taken_whole(writer, db_url):
    batch = [case(description="五千") for _ in range(5000)]
    body = writer.post("/api/v1/cases", json=batch).json()
    assert body["created"] == 5000 and body["rejected"] == 0
    assert count_cases(db_url) == 5000


def test_duplicate_external_id_in_one_batch_first_wins(writer, db_url):
    first = case(category="labour")
    second = {**first, "category": "family"}
    body = writer.post("/api/v1/cases", json=[first, case(), second]).json()
    assert [i["status"] for i in body["items"]] == ["created", "created", "rejected"]
    assert "duplicate of item 0" in body["items"][2]["reason"]
    with session_scope(db_url) as session:
        stored = session.scalar(select(Case).where(Case.external_id == first["external_id"]))
        assert stored.category == "labour"
    assert count_cases(db_url) == 2


def test_a_batch_sent_three_times_is_stored_once(writer, db_url):
    batch = [case(category=c) for c in ("neighbour", "family", "labour", "petition") * 5]
    results = [writer.post("/api/v1/cases", json=batch).json() for _ in range(3)]
    assert [r["created"] for r in results] == [20, 0, 0]
    assert [r["unchanged"] for r in results] == [0, 20, 20]
    assert count_cases(db_url) == 20
    assert_rollups_equal_recount(db_url)
    with session_scope(db_url) as session:  # only the batch that changed something is audited
        assert (
            session.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "case.ingest")
            )
            == 1
        )


def test_a_resend_with_changes_updates_and_moves_the_counts(writer, db_url, world):
    item = case(category="neighbour", reported_at="2025-06-01T10:00:00+08:00")
    writer.post("/api/v1/cases", json=item)
    moved = {
        **item,
        "category": "property",
        "reported_at": "2025-06-02T10:00:00+08:00",
        "lon": 121.15,
        "lat": 31.55,
    }  # 西镇北村, another grid and day
    body = writer.post("/api/v1/cases", json=moved).json()
    assert body["updated"] == 1, body
    assert count_cases(db_url) == 1
    with session_scope(db_url) as session:
        rows = session.execute(
            select(CaseRollupDaily.leaf_unit_id, CaseRollupDaily.day, CaseRollupDaily.category)
        ).all()
        stored = session.scalar(select(Case))
    assert rows == [(stored.leaf_unit_id, dt.date(2025, 6, 2), "property")]
    assert stored.grid_code in world.grids[4:6]
    assert_rollups_equal_recount(db_url)
    changed = ["category", "deadline", "grid_code", "lat", "lon", "reported_at", "unit"]
    changed += ["village_code"]
    assert body["items"][0]["changed"] == changed
    with session_scope(db_url) as session:  # both changes are in the audit log
        trail = session.scalars(
            select(AuditLog).where(AuditLog.action == "case.ingest").order_by(AuditLog.id)
        ).all()
    assert [a.detail["created_ids"] for a in trail] == [[stored.id], []]
    assert trail[1].detail["updates"] == [{"id": stored.id, "fields": changed}]


def test_writers_cannot_file_outside_their_subtree_and_readers_cannot_write(app, db_url, world):
    from fastapi.testclient import TestClient

    from tests.conftest import token_for

    town_writer = token_for(db_url, "intake", world.towns[1])
    reader = token_for(db_url, "official", world.city)
    with TestClient(app) as c:
        body = c.post(
            "/api/v1/cases",
            json=[case(), case(lon=121.15, lat=31.45)],  # 东镇, then 西镇
            headers={"Authorization": f"Bearer {town_writer}"},
        ).json()
        assert [i["status"] for i in body["items"]] == ["rejected", "created"]
        assert "outside your jurisdiction" in body["items"][0]["reason"]
        r = c.post("/api/v1/cases", json=case(), headers={"Authorization": f"Bearer {reader}"})
        assert r.status_code == 403
        assert c.post("/api/v1/cases", json=case()).status_code == 401
    assert count_cases(db_url) == 1
