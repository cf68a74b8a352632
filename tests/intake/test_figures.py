"""End to end: a case posted (or moved, or advanced) shows in the dashboard's figures on the
next request, through the same API the dashboard reads (the metrics cache is invalidated
by the intake transaction)."""

from __future__ import annotations

from tests.intake.conftest import case

PERIOD = {"start": "2025-03-01", "end": "2025-03-31"}


def figures(client, parent: str, metric: str) -> dict[str, float | None]:
    """Each child's value of ``metric`` under ``parent`` over March 2025, and ``self``."""
    r = client.get(f"/api/v1/units/{parent}/children/metrics", params={"metric": metric, **PERIOD})
    assert r.status_code == 200, r.text
    body = r.json()
    return {row["code"]: row["value"] for row in body["children"]} | {"self": body["self"]["value"]}


def test_posted_moved_and_closed_cases_change_the_children_figures(admin, world):
    village = world.villages[0]  # grids 0 and 1
    g0, g1 = world.grids[0], world.grids[1]
    before = figures(admin, village, "caseload")  # warms the metrics cache
    assert before[g0] == before[g1] == before["self"] == 0

    item = case(reported_at="2025-03-05T09:00:00+08:00", lon=121.02, lat=31.45)  # grid 0
    assert admin.post("/api/v1/cases", json=item).json()["created"] == 1
    after = figures(admin, village, "caseload")
    assert (after[g0], after[g1], after["self"]) == (1, 0, 1)
    assert figures(admin, world.towns[0], "caseload")[village] == 1

    moved = {**item, "lon": 121.07}  # a re-send places it in grid 1: the count moves
    body = admin.post("/api/v1/cases", json=moved).json()
    assert body["updated"] == 1 and body["items"][0]["changed"] == [
        "grid_code",
        "lon",
        "unit",
    ], body
    after = figures(admin, village, "caseload")
    assert (after[g0], after[g1], after["self"]) == (0, 1, 1)

    cid = body["items"][0]["id"]
    assert figures(admin, village, "resolution_rate")[g1] == 0
    for move in (
        {"step": "scheduled", "at": "2025-03-05T10:00:00+08:00"},
        {"step": "handled", "at": "2025-03-06T10:00:00+08:00", "outcome": "resolved"},
    ):
        assert admin.patch(f"/api/v1/cases/{cid}", json=move).status_code == 200
    assert figures(admin, village, "resolution_rate")[g1] == 1
