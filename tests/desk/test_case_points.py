"""The map's ``cases`` layer: the recent cases under the unit shown, by step and overdue,
in the caller's scope; its point links to the desk."""

from __future__ import annotations

import datetime as dt


def test_case_points_by_step_and_overdue_in_scope(desk) -> None:
    fresh = desk.post(category="neighbour")
    late = desk.post(
        category="neighbour",
        reported_at=(dt.datetime.now(dt.UTC) - dt.timedelta(days=20)).isoformat(),
    )
    assert desk.act("village_worker", fresh, "accept").status_code == 200
    assert desk.act("village_worker", fresh, "schedule").status_code == 200
    listed = desk.clients["admin"].get("/api/v1/layers").json()
    assert "cases" in {layer["name"] for layer in listed}
    r = desk.clients["official"].get("/api/v1/layers/cases")
    assert r.status_code == 200, r.text
    body = r.json()
    classes = {f["properties"]["id"]: f["properties"]["class"] for f in body["features"]}
    assert classes[fresh] == "scheduled"
    assert classes[late] == "overdue"  # a neighbour dispute is due within days
    assert {e["key"] for e in body["layer"]["legend"]} >= {"overdue", "received", "evaluated"}
    # outside the caller's subtree: none of them, and another unit's points are a 404
    west = desk.clients["official@west"].get("/api/v1/layers/cases").json()
    assert not {fresh, late} & {f["properties"]["id"] for f in west["features"]}
    other = desk.clients["official@west"].get(
        "/api/v1/layers/cases", params={"unit": desk.world.towns[0]}
    )
    assert other.status_code in (403, 404)
