"""Coverage within 5 minutes of a base, on a world where the answers are known by
construction: one base in the east town's first grid reaches it and nothing of the west
town; the events clustered in one west grid make that grid the best new site, gaining
exactly those events."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.db.events import PatrolBase, PatrolUnit
from api.db.session import session_scope
from api.services.coverage import coverage_reference, greedy_sites
from api.services.patrol_layer import hole_free
from api.services.reach import coverage, greedy_sites_sparse
from tests.conftest import token_for


def test_greedy_maximum_coverage_takes_the_densest_disc_first() -> None:
    points = np.array([[0, 0], [1, 0], [0, 1], [10, 10], [10.5, 10], [30, 30]], dtype=float)
    candidates = np.array([[0, 0], [10, 10], [30, 30], [100, 100]], dtype=float)
    assert greedy_sites(candidates, points, 1.5, 3) == [(0, 3), (1, 2), (2, 1)]
    assert greedy_sites(candidates, points, 1.5, 9)[-1] == (2, 1)  # stops when nothing is left
    assert greedy_sites_sparse(candidates, points, 1.5, 9) == greedy_sites(
        candidates, points, 1.5, 9
    )
    rng = np.random.default_rng(3)
    points, candidates = rng.uniform(0, 50, (2000, 2)), rng.uniform(0, 50, (300, 2))
    assert greedy_sites_sparse(candidates, points, 4, 6) == greedy_sites(candidates, points, 4, 6)


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_the_reach_the_gaps_and_the_best_new_base(app, db_url, world) -> None:
    with session_scope(db_url) as session:  # 121.0-121.05 × 31.4-31.5 is the first grid
        session.add(PatrolBase(code="B1", name="东镇派出所", force_kind="police",
                               lon=121.025, lat=31.45, unit_code=world.grids[0]))  # fmt: skip
        session.add(PatrolUnit(code="U1", force_kind="police", base_code="B1"))
    token = token_for(db_url, "admin", world.city)
    near = [(121.025 + 0.002 * k, 31.45) for k in range(3)]  # within 2.5 km of B1
    west = world.grids[4]  # 121.1-121.15 × 31.5-31.6: about 10 km from B1
    cluster = [(121.125 + 0.001 * k, 31.55) for k in range(5)]
    items = [
        {"source": "t", "external_id": f"E{i}", "type": "help", "force_kind": "police",
         "received_at": "2026-03-05T10:00:00+08:00", "lon": x, "lat": y}
        for i, (x, y) in enumerate(near + cluster)
    ]  # fmt: skip
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.post("/api/v1/events", json=items).status_code == 200
        got = api.get("/api/v1/events/coverage", params={"suggest": 2}).json()
        layer = api.get("/api/v1/layers/patrol", params={"unit": world.city}).json()
        assert "patrol" in [x["name"] for x in api.get("/api/v1/layers").json()]
    # the map layer: reach, gaps, the base, the one site worth suggesting with its gain
    classes = [f["properties"]["class"] for f in layer["features"]]
    assert classes == ["reach", "gap", "base", "suggested"]
    assert layer["features"][-1]["properties"]["events_gained"] == 5
    assert [e["key"] for e in layer["layer"]["legend"]] == ["reach", "gap", "base", "suggested"]
    assert got["radius_m"] == 2500 and got["speed_kmh"] == 30
    assert got["events"] == 8 and got["events_covered"] == 3
    assert got["events_share"] == pytest.approx(3 / 8)
    # the disc of 2.5 km lies inside the first grid's town (0.1° ≈ 9.5 km wide): its area
    # over the city's (0.3° × 0.2°) is π·2.5² / area
    city_km2 = (0.3 * 111.32 * np.cos(np.radians(31.5))) * (0.2 * 110.57)
    assert got["area_share"] == pytest.approx(np.pi * 2.5**2 / city_km2, rel=0.03)
    assert 0 < got["residents_share"] < 1
    best = got["suggestions"][0]
    assert best["unit_code"] == west and best["events_gained"] == 5
    assert len(got["suggestions"]) == 1  # nothing left to gain after it
    kinds = [f["properties"]["kind"] for f in got["layer"]["features"]]
    assert kinds == ["reach", "gap", "base", "suggested_base"]

    # the fast path (cached parts, sampled residents) agrees with the plain reference
    with session_scope(db_url) as session:
        who = SimpleNamespace(unit_code=world.city)  # a reader at the city
        for unit, minutes in ((world.city, 5), (world.city, 12), (world.towns[0], 5)):
            fast = coverage(session, who, unit, minutes, suggest=3)
            ref = coverage_reference(session, who, unit, minutes, suggest=3)
            for key in ("events", "events_covered", "suggestions", "bases", "residents"):
                assert fast[key] == ref[key], (unit, minutes, key)
            assert fast["area_share"] == pytest.approx(ref["area_share"], rel=1e-6)
            assert fast["residents_share"] == pytest.approx(ref["residents_share"], abs=0.01)
            assert [f["properties"] for f in fast["layer"]["features"]] == [
                f["properties"] for f in ref["layer"]["features"]
            ]


def test_hole_free_cuts_every_hole_and_keeps_the_area() -> None:
    import shapely

    square = shapely.box(0, 0, 10, 10)
    holed = square.difference(shapely.Point(3, 3).buffer(1)).difference(
        shapely.Point(7, 6).buffer(1)
    )
    pieces = hole_free(holed)
    assert all(not len(p.interiors) for p in pieces.geoms)
    assert pieces.area == pytest.approx(holed.area)
    assert hole_free(square).area == pytest.approx(100)
