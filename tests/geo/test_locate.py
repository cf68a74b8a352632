"""Point location: leaves of a ragged hierarchy, shared borders, outside points, GCJ-02."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, box
from sqlalchemy import select

from api.db.models import AdminUnit
from api.db.session import session_scope
from api.services.locate import point_locator
from api.services.units import add_units
from geo.locate import PointLocator, gcj02_to_wgs84, wgs84_to_gcj02

# Published test vectors of the reference implementation (eviltransform): WGS84 → GCJ-02.
EVILTRANSFORM = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]


def ids_by_code(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        return dict(session.execute(select(AdminUnit.code, AdminUnit.id)).all())


def test_points_go_to_the_deepest_unit_even_in_ragged_branches(db_url, world):
    ids = ids_by_code(db_url)
    grid_1 = world.grids[0]  # 东镇南村 第1网格: 121.00-121.05 × 31.4-31.5
    cases = {
        (121.02, 31.45): (grid_1, world.villages[0], grid_1),
        (121.15, 31.45): (world.leaf_village, world.leaf_village, None),  # village, no grids
        (121.25, 31.50): (world.leaf_town, None, None),  # 街道 with no villages
    }
    lon = np.array([p[0] for p in cases] + [122.0, np.nan])
    lat = np.array([p[1] for p in cases] + [31.5, np.nan])
    with session_scope(db_url) as session:
        result = point_locator(session).locate(lon, lat)
    for i, (leaf, village, grid) in enumerate(cases.values()):
        assert result.leaf_unit_id[i] == ids[leaf]
        assert result.leaf_code[i] == leaf
        assert result.village_code[i] == village
        assert result.grid_code[i] == grid
    # outside every unit (and a missing coordinate): reported as -1, never dropped
    assert len(result.leaf_unit_id) == len(lon)
    assert list(result.leaf_unit_id[-2:]) == [-1, -1]
    assert list(result.outside) == [False, False, False, True, True]


def test_a_point_on_a_shared_border_goes_to_exactly_one_unit(db_url, world):
    ids = ids_by_code(db_url)
    left, right = world.grids[0], world.grids[1]  # share the line lon = 121.05
    with session_scope(db_url) as session:
        locator = point_locator(session)
    lon = np.full(50, 121.05)
    lat = np.linspace(31.41, 31.49, 50)
    first = locator.locate(lon, lat).leaf_unit_id
    again = locator.locate(lon[::-1], lat[::-1]).leaf_unit_id[::-1]
    assert set(first) == {min(ids[left], ids[right])}
    assert np.array_equal(first, again)
    # the corner where four grids meet also lands in one of them
    corner = locator.locate(np.array([121.05]), np.array([31.5])).leaf_code[0]
    assert corner in world.grids


def test_locator_follows_boundary_versions_and_dates(db_url, world):
    far = (121.9, 31.9)
    with session_scope(db_url) as session:
        before = point_locator(session).locate(np.array([far[0]]), np.array([far[1]]))
        assert before.leaf_unit_id[0] == -1
        add_units(session, [world.new_town((121.8, 31.8, 122.0, 32.0), dt.date(2030, 1, 1))])
    with session_scope(db_url) as session:
        now = point_locator(session).locate(np.array([far[0]]), np.array([far[1]]))
        assert now.leaf_code[0] == "320583009"
        past = point_locator(session, on=dt.date(2029, 12, 31))
        assert past.locate(np.array([far[0]]), np.array([far[1]])).leaf_unit_id[0] == -1


def test_gaps_between_children_fall_back_to_the_parent():
    rows = [
        SimpleNamespace(id=1, code="V", level="village", parent_code=None, geom=mbox(0, 0, 2, 1)),
        SimpleNamespace(id=2, code="V001", level="grid", parent_code="V", geom=mbox(0, 0, 0.9, 1)),
        SimpleNamespace(id=3, code="V002", level="grid", parent_code="V", geom=mbox(1.1, 0, 2, 1)),
    ]
    result = PointLocator.from_units(rows, {"village": 0, "grid": 1}).locate(
        np.array([0.5, 1.0, 1.5]), np.array([0.5, 0.5, 0.5])
    )
    assert list(result.leaf_code) == ["V001", "V", "V002"]
    assert list(result.village_code) == ["V", "V", "V"]
    assert list(result.grid_code) == ["V001", None, "V002"]


def mbox(*bounds: float) -> MultiPolygon:
    return MultiPolygon([box(*bounds)])


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM)
def test_gcj02_conversion_matches_the_reference_vectors(wgs, gcj):
    lon, lat = gcj02_to_wgs84(np.array([gcj[0]]), np.array([gcj[1]]))
    assert lon[0] == pytest.approx(wgs[0], abs=1e-8)
    assert lat[0] == pytest.approx(wgs[1], abs=1e-8)
    lon, lat = wgs84_to_gcj02(np.array([wgs[0]]), np.array([wgs[1]]))
    assert (lon[0], lat[0]) == pytest.approx(gcj, abs=1e-9)


def test_gcj02_points_land_in_the_right_village_only_when_converted():
    (wgs_lon, wgs_lat), (gcj_lon, gcj_lat) = EVILTRANSFORM[0]
    border = (wgs_lat + gcj_lat) / 2  # villages split between the true and the shifted point
    rows = [
        SimpleNamespace(
            id=1, code="S", level="village", parent_code=None, geom=mbox(121.5, 31.1, 121.6, border)
        ),
        SimpleNamespace(
            id=2, code="N", level="village", parent_code=None, geom=mbox(121.5, border, 121.6, 31.3)
        ),
    ]
    locator = PointLocator.from_units(rows, {"village": 0})
    truth = locator.locate(np.array([wgs_lon]), np.array([wgs_lat])).village_code[0]
    raw = locator.locate(np.array([gcj_lon]), np.array([gcj_lat])).village_code[0]
    converted = locator.locate(*gcj02_to_wgs84(np.array([gcj_lon]), np.array([gcj_lat])))
    assert truth == "N"
    assert raw == "S"
    assert converted.village_code[0] == "N"


def test_points_outside_china_are_not_shifted():
    lon, lat = gcj02_to_wgs84(np.array([-104.9903, 2.35]), np.array([39.7392, 48.85]))
    assert list(lon) == [-104.9903, 2.35]
    assert list(lat) == [39.7392, 48.85]


def test_big_batches_agree_with_a_brute_force_oracle(small_city):
    """Batches large enough for the owned-cells raster give the exact answer: the deepest
    unit that contains the point, the smallest id on a shared border."""
    from geo.locate import BIG_BATCH

    rows = [
        SimpleNamespace(
            id=i + 1, code=u.code, level=u.level, parent_code=u.parent_code, geom=u.geom
        )
        for i, u in enumerate(small_city)
    ]
    grids = [r for r in rows if r.level == "grid"]
    rng = np.random.default_rng(11)
    n = BIG_BATCH + 5000
    lon = rng.uniform(120.89, 121.11, n)
    lat = rng.uniform(31.29, 31.46, n)
    # a thousand points exactly on vertices of grid borders (shared by two or three grids)
    vertices = np.concatenate([shapely.get_coordinates(r.geom) for r in grids])
    pick = rng.choice(len(vertices), 1000, replace=False)
    lon[:1000], lat[:1000] = vertices[pick, 0], vertices[pick, 1]
    result = PointLocator.from_units(rows, {"city": 0, "town": 1, "village": 2, "grid": 3}).locate(
        lon, lat
    )
    expected = np.full(n, -1, dtype=np.int64)
    for r in sorted(grids, key=lambda r: -r.id):  # smallest id written last wins
        shapely.prepare(r.geom)
        expected[shapely.intersects_xy(r.geom, lon, lat)] = r.id
    in_grid = expected >= 0
    assert in_grid.sum() > n // 2
    assert np.array_equal(result.leaf_unit_id[in_grid], expected[in_grid])
    # outside every grid: outside the city too (the synthetic grids cover it all)
    city = next(r.geom for r in rows if r.level == "city")
    assert not shapely.intersects_xy(city, lon[~in_grid], lat[~in_grid]).any()
    assert (result.leaf_unit_id[~in_grid] == -1).all()
