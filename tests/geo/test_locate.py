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


def _metres_to_degrees(lat: float) -> tuple[float, float]:
    """Degrees of longitude and latitude per metre at ``lat`` (pyproj's geodesic)."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    x, _, _ = geod.fwd(121.0, lat, 90, 1000)
    _, y, _ = geod.fwd(121.0, lat, 0, 1000)
    return (x - 121.0) / 1000, (y - lat) / 1000


def test_the_tolerance_is_metres_on_the_ground_to_the_nearest_leaf():
    dx, dy = _metres_to_degrees(31.5)
    p = (121.0, 31.5)
    rows = [  # a grid 40 m north of the point, another 36 m east: nearer in degrees, farther
        SimpleNamespace(  # on the ground, the northern one
            id=1,
            code="N",
            level="grid",
            parent_code=None,
            geom=mbox(120.99, 31.5 + 40 * dy, 121.0, 31.6),
        ),
        SimpleNamespace(
            id=2,
            code="E",
            level="grid",
            parent_code=None,
            geom=mbox(121.0 + 36 * dx, 31.5 - 10 * dy, 121.1, 31.5),
        ),
    ]
    locator = PointLocator.from_units(rows, {"grid": 0})
    assert 40 * dy < 36 * dx  # the trap: in degrees the northern grid is the nearer
    lon = np.array([p[0], p[0], 121.05, np.nan, 200.0])
    lat = np.array([p[1], p[1] - 60 * dy, 31.5 + 20 * dy, 31.5, 31.5])
    found = locator.locate(lon, lat, tolerance_m=50)
    assert list(found.leaf_code) == ["E", None, "E", None, None]  # 60 m south: 61.6 m to E
    assert list(found.by_tolerance) == [True, False, True, False, False]
    assert found.outside.tolist() == [False, True, False, True, True]
    within = locator.locate(lon, lat, tolerance_m=62)
    assert within.leaf_code[1] == "E"
    assert locator.locate(lon, lat).outside[:3].tolist() == [True, True, True]
    away = locator.distance_to_units_m(lon, lat)
    assert away[0] == pytest.approx(36, abs=0.01)
    assert away[1] == pytest.approx(np.hypot(50, 36), abs=0.01)
    assert away[3] == np.inf


def test_big_batches_place_near_points_as_small_batches_do(small_city):
    from geo.locate import BIG_BATCH

    rows = [
        SimpleNamespace(
            id=i + 1, code=u.code, level=u.level, parent_code=u.parent_code, geom=u.geom
        )
        for i, u in enumerate(small_city)
        if u.level == "grid"  # the grids alone: their outer edge is the city's
    ]
    locator = PointLocator.from_units(rows, {"grid": 0})
    x0, y0, x1, y1 = shapely.total_bounds(np.array([r.geom for r in rows]))
    rng = np.random.default_rng(5)
    n = BIG_BATCH + 1000
    pad = 0.002  # about 200 m beyond the city's box
    lon = rng.uniform(x0 - pad, x1 + pad, n)
    lat = rng.uniform(y0 - pad, y1 + pad, n)
    big = locator.locate(lon, lat, tolerance_m=50)
    small = [locator.locate(lon[i : i + 5000], lat[i : i + 5000], 50) for i in range(0, n, 5000)]
    assert np.array_equal(big.leaf_unit_id, np.concatenate([s.leaf_unit_id for s in small]))
    assert np.array_equal(big.by_tolerance, np.concatenate([s.by_tolerance for s in small]))
    assert big.by_tolerance.sum() > 0 and big.outside.sum() > 0
    # placed: within 50 m of its leaf; refused: farther than 50 m from every leaf
    away = locator.distance_to_units_m(lon, lat)
    assert (away[big.by_tolerance] <= 50).all() and (away[big.by_tolerance] > 0).all()
    assert (away[big.outside] > 50).all()
