"""The register's workflow through the API, bad input refused with nothing written, and
every read of a report audited; on both databases."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.db.models import AuditLog
from api.db.risk import RiskItem, RiskReport
from api.db.session import session_scope
from tests.conftest import token_for
from tests.risk.helpers import add_agency, assessor_token, good_report, item_body, square


def counts(db_url: str) -> tuple[int, int]:
    with session_scope(db_url) as s:
        return (
            s.scalar(select(func.count()).select_from(RiskItem)),
            s.scalar(select(func.count()).select_from(RiskReport)),
        )


def test_workflow_register_assign_review_decide_follow(app, client, db_url, world) -> None:
    add_agency(db_url, "AG1")
    add_agency(db_url, "AG2")
    created = client.post("/api/v1/risk-items", json=item_body())
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["status"] == "registered" and item["deciding_unit"]["code"] == "320583001"
    rid = item["id"]
    assigned = client.post(f"/api/v1/risk-items/{rid}/assessment", json={"agency": "AG1"})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "assessing"

    mine = TestClient(app, headers={"Authorization": f"Bearer {assessor_token(db_url, 'AG1')}"})
    other = TestClient(app, headers={"Authorization": f"Bearer {assessor_token(db_url, 'AG2')}"})
    assert [i["id"] for i in mine.get("/api/v1/risk-items").json()["items"]] == [rid]
    assert other.get("/api/v1/risk-items").json()["items"] == []
    assert other.get(f"/api/v1/risk-items/{rid}").status_code == 404

    # a report that fails review: kept as a draft, the reasons listed, the item unchanged
    bad = good_report(measures=[{"risk": "邻避", "action": "听证"}], legality=None)
    failed = mine.post(f"/api/v1/risk-items/{rid}/report", json=bad)
    assert failed.status_code == 200, failed.text
    out = failed.json()
    assert out["status"] == "draft" and not out["passed"]
    assert {f["rule"] for f in out["failures"]} == {"sections", "high_risk_measures"}
    assert all(f["reason"] for f in out["failures"])
    assert client.get(f"/api/v1/risk-items/{rid}").json()["status"] == "assessing"

    # fixed: passes, the item is assessed at the report's level; the draft is still there
    fixed = mine.post(f"/api/v1/risk-items/{rid}/report", json=good_report())
    assert fixed.json()["passed"] and fixed.json()["number"] == 2
    detail = client.get(f"/api/v1/risk-items/{rid}").json()
    assert detail["status"] == "assessed" and detail["risk_level"] == "high"
    assert [r["status"] for r in detail["reports"]] == ["draft", "passed"]
    first = client.get(f"/api/v1/risk-items/{rid}/report", params={"number": 1}).json()
    assert first["body"]["measures"][0]["owner"] is None  # nothing lost

    decided = client.post(f"/api/v1/risk-items/{rid}/decision", json={"decision": "adjust"})
    assert decided.status_code == 200, decided.text
    d = decided.json()
    assert d["status"] == "decided" and not d["without_assessment"]
    assert [f["days"] for f in d["follow_ups"]] == [30, 90]
    early = client.post(f"/api/v1/risk-items/{rid}/follow-up",
                        json={"days": 30, "done_at": "2020-01-01T00:00:00Z"})  # fmt: skip
    assert early.status_code == 422 and "wrong order" in early.json()["message"]
    assert client.post(f"/api/v1/risk-items/{rid}/follow-up", json={"days": 45}).status_code == 404
    done = client.post(f"/api/v1/risk-items/{rid}/follow-up", json={"days": 30, "note": "走访"})
    assert done.status_code == 200 and done.json()["follow_ups"][0]["done_at"]

    # a case in the item's area after the decision is linked; one outside is not
    now = dt.datetime.now(dt.UTC).isoformat()
    case = {"source": "risk-test", "category": "petition", "channel": "hotline_12345",
            "reported_at": now}  # fmt: skip
    inside = client.post("/api/v1/cases", json={**case, "external_id": "in", "lon": 121.05,
                                                 "lat": 31.45})  # fmt: skip
    client.post("/api/v1/cases", json={**case, "external_id": "out", "lon": 121.15, "lat": 31.45})
    linked = client.get(f"/api/v1/risk-items/{rid}").json()
    case_id = inside.json()["items"][0]["id"]
    assert [link["id"] for link in linked["links"]] == [case_id]
    assert linked["incidents"] == 1

    # dispatch events count too: a labour dispute inside is linked; a neighbours' quarrel,
    # a traffic call, a dispute outside and one that became the linked case are not
    event = {"source": "110", "type": "dispute", "received_at": now, "force_kind": "police",
             "lon": 121.05, "lat": 31.45}  # fmt: skip
    sent = client.post("/api/v1/events", json=[
        {**event, "external_id": "labour", "category": "labour"},
        {**event, "external_id": "quarrel", "category": "neighbour"},
        {**event, "external_id": "car", "type": "traffic", "category": "collision"},
        {**event, "external_id": "far", "category": "labour", "lon": 121.15},
        {**event, "external_id": "same", "category": "commercial", "case_id": case_id},
    ])  # fmt: skip
    assert sent.status_code == 200 and sent.json()["created"] == 5, sent.text[:400]
    labour = sent.json()["items"][0]["id"]
    linked = client.get(f"/api/v1/risk-items/{rid}").json()
    assert sorted((link["kind"], link["id"]) for link in linked["links"]) == [
        ("case", case_id), ("event", labour)
    ]  # fmt: skip
    assert linked["incidents"] == 2

    # agencies: workload, failure rate, incident share
    ag = {a["code"]: a for a in client.get("/api/v1/agencies").json()["agencies"]}
    assert ag["AG1"]["reports"] == 2 and ag["AG1"]["review_failure_rate"] == 0.5
    assert ag["AG1"]["incident_share"] == 1.0 and ag["AG2"]["reports"] == 0
    assert [a["code"] for a in mine.get("/api/v1/agencies").json()["agencies"]] == ["AG1"]

    # every read of a report is audited
    with session_scope(db_url) as s:
        reads = s.scalar(select(func.count()).where(AuditLog.action == "risk.report.read"))
    assert reads == 1


def test_decision_without_assessment_is_flagged(client, db_url, world) -> None:
    rid = client.post("/api/v1/risk-items", json=item_body(kind="decision")).json()["id"]
    out = client.post(f"/api/v1/risk-items/{rid}/decision", json={"decision": "implement"})
    assert out.status_code == 200 and out.json()["without_assessment"] is True


def test_bad_input_is_refused_with_a_message_and_nothing_written(
    app, client, db_url, world
) -> None:
    add_agency(db_url, "AG1")
    add_agency(db_url, "AG2")
    rid = client.post("/api/v1/risk-items", json=item_body()).json()["id"]
    before = counts(db_url)
    planned = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    cases = {
        "dates in the wrong order": item_body(ends_at=(planned - dt.timedelta(days=2)).isoformat()),
        "outside the city": item_body(place={"type": "Point", "coordinates": [116.4, 39.9]}),
        "lat/lon swapped": item_body(place={"type": "Point", "coordinates": [31.45, 121.05]}),
        "unknown unit": item_body(deciding_unit="999999999"),
        "unknown kind": item_body(kind="party"),
        "crossed polygon": item_body(
            place={"type": "Polygon", "coordinates": [[[121.02, 31.42], [121.08, 31.48],
                                                       [121.08, 31.42], [121.02, 31.48],
                                                       [121.02, 31.42]]]}),
    }  # fmt: skip
    for label, body in cases.items():
        r = client.post("/api/v1/risk-items", json=body)
        assert 400 <= r.status_code < 500, (label, r.status_code, r.text)
        assert r.json()["message"], label
    unknown = client.post(f"/api/v1/risk-items/{rid}/assessment", json={"agency": "NOPE"})
    assert unknown.status_code == 422 and "NOPE" in unknown.json()["message"]
    assert "AG1" in unknown.json()["message"]
    client.post(f"/api/v1/risk-items/{rid}/assessment", json={"agency": "AG1"})
    stranger = TestClient(app, headers={"Authorization": f"Bearer {assessor_token(db_url, 'AG2')}"})
    r = stranger.post(f"/api/v1/risk-items/{rid}/report", json=good_report())
    assert r.status_code == 404 and "agency" in r.json()["message"]
    official = token_for(db_url, "official", world.towns[0])
    with TestClient(app, headers={"Authorization": f"Bearer {official}"}) as c:
        past = dt.datetime(2001, 1, 1, tzinfo=dt.UTC).isoformat()
        assert c.post(f"/api/v1/risk-items/{rid}/report", json=good_report()).status_code == 403
        r = c.post(f"/api/v1/risk-items/{rid}/decision", json={"decision": "maybe"})
        assert r.status_code == 422
        future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
        r = c.post(f"/api/v1/risk-items/{rid}/decision",
                   json={"decision": "implement", "decided_at": future})  # fmt: skip
        assert r.status_code == 422 and "future" in r.json()["message"]
        r = c.post(f"/api/v1/risk-items/{rid}/assessment",
                   json={"agency": "AG2", "due_at": past})  # fmt: skip
        assert r.status_code == 422 and "wrong order" in r.json()["message"]
    bad_type = client.post("/api/v1/risk-items/1/report", json=good_report(risk_level="severe"))
    assert bad_type.status_code == 422
    assert counts(db_url) == (before[0], 0)
    with session_scope(db_url) as s:
        item = s.get(RiskItem, rid)
        assert item.status == "assessing" and item.decision is None


def test_officials_read_their_subtree_and_the_items_above_that_touch_it(
    app, client, db_url, world
) -> None:
    east, west = world.towns[0], world.towns[1]
    city_item = client.post(
        "/api/v1/risk-items",
        json=item_body(deciding_unit=world.city, title="全市限行",
                       place=square(121.03, 31.43, 121.04, 31.44)),
    ).json()["id"]  # fmt: skip
    west_item = client.post(
        "/api/v1/risk-items",
        json=item_body(deciding_unit=west, place={"type": "Point", "coordinates": [121.15, 31.55]}),
    ).json()["id"]
    for home, expected in ((east, {city_item}), (west, {west_item})):
        token = token_for(db_url, "official", home)
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
            got = c.get("/api/v1/risk-items").json()["items"]
            assert {i["id"] for i in got} == expected
            for i in got:
                if i["id"] == city_item:
                    assert i["deciding_unit"]["code"] is None and i["deciding_unit"]["above"]
            other = west_item if home == east else city_item
            assert c.get(f"/api/v1/risk-items/{other}").status_code == 404
    display = token_for(db_url, "display", east)
    with TestClient(app, headers={"Authorization": f"Bearer {display}"}) as c:
        assert c.get("/api/v1/risk-items").status_code == 403


def test_an_assessor_is_added_with_its_agency_from_the_command_line(app, db_url, world) -> None:
    from click.testing import CliRunner

    from api.cli import main

    add_agency(db_url, "AGC")

    def zhili(*args: str):
        return CliRunner().invoke(main, [*args, "--database-url", db_url])

    base = ("user", "add")
    refused = zhili(*base, "li", "--role", "assessor", "--unit", world.city)
    assert refused.exit_code != 0 and "--agency" in refused.output
    unknown = zhili(*base, "li", "--role", "assessor", "--unit", world.city, "--agency", "NO")
    assert unknown.exit_code != 0 and "NO" in unknown.output
    added = zhili(*base, "li", "--role", "assessor", "--unit", world.city, "--agency", "AGC")
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        assert [a["code"] for a in c.get("/api/v1/agencies").json()["agencies"]] == ["AGC"]
        assert c.get("/api/v1/units").status_code == 403  # no figures for an assessor


def test_items_are_imported_from_geojson_and_bad_features_named(db_url, world, tmp_path) -> None:
    import orjson
    from click.testing import CliRunner

    from api.cli import main

    good = item_body()
    props = {k: v for k, v in good.items() if k != "place"}
    outside = {"type": "Point", "coordinates": [116.4, 39.9]}
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": good["place"], "properties": props},
        {"type": "Feature", "geometry": outside, "properties": props},
        {"type": "Feature", "geometry": good["place"], "properties": {**props, "kind": "x"}},
    ]}  # fmt: skip
    path = tmp_path / "items.geojson"
    path.write_bytes(orjson.dumps(collection))
    out = CliRunner().invoke(main, ["import-risk-items", str(path), "--database-url", db_url])
    assert out.exit_code == 2, out.output
    assert "feature 1: registered" in out.output
    assert "feature 2: refused: place: it lies outside every unit" in out.output
    assert "feature 3: refused: kind" in out.output
    assert counts(db_url)[0] == 1
