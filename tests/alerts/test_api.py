"""GET /api/v1/alerts and /alerts/{id}: scoped like every read."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from api.alerts.lifecycle import open_alerts
from api.db.models import Alert
from api.db.session import session_scope
from api.principal import Principal
from tests.conftest import token_for

DAY = dt.date(2025, 5, 1)


def _alert(unit: str, kind: str = "caseload", status: str = "open", **kw) -> Alert:
    return Alert(
        unit_code=unit,
        kind=kind,
        category=kw.get("category"),
        status=status,
        observed=kw.get("observed", 20.0),
        expected=kw.get("expected", 4.0),
        probability=kw.get("probability", 1e-7),
        opened_on=DAY,
        last_seen_on=DAY,
        closed_on=None if status == "open" else DAY,
        detail={"level": "village"},
    )


@pytest.fixture
def alerts(db_url, world):
    """Two open alerts in town 1, one in town 2, one closed in town 1."""
    v1, v2 = world.villages[0], world.villages[1]  # town 1
    v3 = world.villages[3]  # town 2
    with session_scope(db_url) as session:
        rows = [
            _alert(v1, category="labour"),
            _alert(v2, kind="overdue"),
            _alert(v3, category="neighbour", probability=1e-9),
            _alert(v1, status="closed", category="family"),
        ]
        session.add_all(rows)
        session.flush()
        return {(a.unit_code, a.kind, a.status): a.id for a in rows}


def test_admin_sees_every_open_alert_with_a_checkable_message(client, alerts, world):
    body = client.get("/api/v1/alerts", params={"status": "open"}).json()
    assert body["count"] == 3
    assert {a["unit_code"] for a in body["alerts"]} == {
        world.villages[0],
        world.villages[1],
        world.villages[3],
    }
    labour = next(a for a in body["alerts"] if a["category"] == "labour")
    assert labour["category_zh"] == "劳资纠纷"
    assert labour["observed"] == 20 and labour["expected"] == 4
    assert labour["opened_on"] == DAY.isoformat()
    assert "20 cases in the last 7 days" in labour["message"]
    assert body["by_kind"] == {"caseload": 2, "overdue": 1}
    closed = client.get("/api/v1/alerts", params={"status": "all"}).json()
    assert closed["count"] == 4


def test_town_official_sees_only_their_town(app, db_url, alerts, world):
    town1, town2 = world.towns[0], world.towns[1]
    token = token_for(db_url, "official", town1)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        mine = c.get("/api/v1/alerts").json()
        assert {a["unit_code"] for a in mine["alerts"]} == {world.villages[0], world.villages[1]}
        assert c.get("/api/v1/alerts", params={"unit": town2}).status_code == 404
        assert c.get("/api/v1/alerts", params={"unit": "nope"}).status_code == 404
        one = c.get("/api/v1/alerts", params={"unit": world.villages[1]}).json()
        assert [a["kind"] for a in one["alerts"]] == ["overdue"]
        other = alerts[(world.villages[3], "caseload", "open")]
        assert c.get(f"/api/v1/alerts/{other}").status_code == 404
        own = alerts[(world.villages[0], "caseload", "open")]
        detail = c.get(f"/api/v1/alerts/{own}").json()
        assert detail["unit_code"] == world.villages[0] and detail["detail"]["level"] == "village"


def test_bad_filters_are_explained(client, alerts):
    r = client.get("/api/v1/alerts", params={"category": "aliens"})
    assert r.status_code == 400 and "unknown category" in r.json()["message"]
    assert client.get("/api/v1/alerts", params={"status": "sleeping"}).status_code == 400
    assert client.get("/api/v1/alerts/0").status_code == 400
    assert client.get("/api/v1/alerts/999999").status_code == 404


def test_open_alerts_service_for_the_dashboard(db_url, alerts, world):
    with session_scope(db_url) as session:
        town2 = Principal(user_id=0, name="t", role="official", unit_code=world.towns[1])
        assert [a["unit_code"] for a in open_alerts(session, town2)] == [world.villages[3]]
        city = Principal(user_id=0, name="c", role="admin", unit_code=world.city)
        found = open_alerts(session, city, unit_code=world.towns[0])
        assert {a["unit_code"] for a in found} == {world.villages[0], world.villages[1]}


def test_absurd_ids_and_units_are_refused_cleanly(client, alerts):
    assert client.get(f"/api/v1/alerts/{2**70}").status_code == 400
    assert client.get("/api/v1/alerts", params={"unit": "x" * 40}).status_code == 400
    assert client.get("/api/v1/alerts", params={"limit": 0}).status_code == 400


def test_caseload_pattern_is_scoped(app, db_url, world):
    token = token_for(db_url, "official", world.towns[1])
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        url = "/api/v1/units/{}/caseload-pattern"
        assert c.get(url.format(world.villages[0])).status_code == 404
        ok = c.get(url.format(world.villages[3]), params={"days": 14})
        assert ok.status_code == 200 and len(ok.json()["days"]) == 14
        bad = c.get(url.format(world.villages[3]), params={"category": "x"})
        assert bad.status_code == 400


def test_alert_list_and_map_markers_point_at_the_alerted_units(db_url, alerts, world):
    """The dashboard's alert panel: a line per open alert linking to its unit, a marker
    on the child of the shown unit that holds it (the alert's path from that unit down)."""
    from dash import dcc

    from dashboard.components.alerts import alert_list, alert_marker_trace

    with session_scope(db_url) as session:
        city = Principal(user_id=0, name="c", role="admin", unit_code=world.city)
        found = open_alerts(session, city)
    v1 = world.villages[0]
    town1, town2 = world.parent[v1], world.parent[world.villages[3]]
    by_unit = {a["unit_code"]: a for a in found}
    assert by_unit[v1]["path"] == [world.city, town1, v1]

    panel = alert_list(found, "en", lambda code: f"/dashboard/unit/{code}")
    links = [c for li in panel.children[1].children for c in li.children if isinstance(c, dcc.Link)]
    assert sorted(link.href for link in links) == sorted(
        f"/dashboard/unit/{a['unit_code']}" for a in found
    )
    labour = next(li for li in panel.children[1].children if li.className.endswith("caseload"))
    assert "20 cases in 7 days" in labour.children[1].children
    assert DAY.isoformat() in labour.children[1].children

    points = {town1: (116.0, 39.0, True), town2: (117.0, 40.0, True)}
    trace = alert_marker_trace(found, points, "en")
    marked = {code: text for code, text in trace["customdata"]}
    assert marked == {town1: "open alerts: 2", town2: "open alerts: 1"}
    assert trace["lon"] == [points[c][0] for c in marked]
