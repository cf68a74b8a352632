"""Display geometry: coverage simplification without gaps or overlaps, RFC 7946 fragments,
ragged stand-ins, caching per boundaries version, and the /boundaries route."""

from __future__ import annotations

import gzip

import geojson_validator
import numpy as np
import orjson
import pytest
import shapely
from shapely.geometry import shape

from api.db.session import session_scope
from api.services.display import display_layer
from api.services.units import add_units
from geo.display import simplify_coverage
from tests.conftest import token_for


def signed_area(ring: list[list[float]]) -> float:
    """Shoelace formula: positive for counter-clockwise rings."""
    xy = np.asarray(ring)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def polygons_of(geometry: dict) -> list:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    return geometry["coordinates"]


def assert_rfc7946(collection: dict) -> None:
    assert geojson_validator.validate_structure(collection, check_crs=True) == {}
    problems = geojson_validator.validate_geometries(collection)
    assert problems["invalid"] == {}
    assert problems["problematic"] == {}
    for feature in collection["features"]:
        for rings in polygons_of(feature["geometry"]):
            assert signed_area(rings[0]) > 0  # exterior counter-clockwise
            assert all(signed_area(hole) < 0 for hole in rings[1:])
            for x, y in (xy for ring in rings for xy in ring):
                assert round(x, 6) == x and round(y, 6) == y


@pytest.mark.parametrize("tolerance", [0.0005, 0.004])
def test_coverage_simplification_leaves_no_gap_or_overlap(small_city, tolerance):
    villages = [u for u in small_city if u.level == "village"]
    original = np.array([u.geom for u in villages], dtype=object)
    simplified = simplify_coverage(original, tolerance)
    assert (
        shapely.get_num_coordinates(simplified).sum() < shapely.get_num_coordinates(original).sum()
    )
    for town in (u for u in small_city if u.level == "town"):
        mine = simplified[[v.parent_code == town.code for v in villages]]
        union = shapely.union_all(mine)
        # no overlap: the children's areas add up to the area of their union
        assert shapely.area(mine).sum() == pytest.approx(union.area, rel=1e-6)
        # no gap: the union is as large as the parent and has no holes
        assert union.area == pytest.approx(town.geom.area, rel=0.02)
        assert sum(len(p.interiors) for p in shapely.get_parts(union)) == 0
    # neighbours still share their borders exactly: a valid coverage (no slivers)
    assert shapely.coverage_is_valid(simplified)
    whole = shapely.union_all(simplified)
    city = next(u for u in small_city if u.level == "city").geom
    assert shapely.area(simplified).sum() == pytest.approx(whole.area, rel=1e-6)
    assert whole.area == pytest.approx(city.area, rel=0.02)


def test_display_layer_fragments_follow_rfc7946(city_db, tmp_path):
    with session_scope(city_db) as session:
        layer = display_layer(session, "village", cache_dir=tmp_path)
        town_layer = display_layer(session, "village", "320500001", cache_dir=tmp_path)
    collection = orjson.loads(layer.feature_collection_bytes)
    assert_rfc7946(collection)
    assert len(layer.codes) == 40 and set(layer.fragments) == set(layer.codes)
    assert "crs" not in collection and len(collection["bbox"]) == 4
    props = collection["features"][0]["properties"]
    assert set(props) == {"code", "name", "level", "parent_code"}
    # the slice of one town is the same geometry as in the whole-level layer
    assert town_layer.codes and set(town_layer.codes) < set(layer.codes)
    for code in town_layer.codes:
        assert town_layer.fragments[code] == layer.fragments[code]
        assert orjson.loads(layer.fragments[code])["type"] in ("Polygon", "MultiPolygon")
    assert all(c.startswith("320500001") for c in town_layer.codes)


def test_ragged_leaves_stand_in_for_missing_children(db_url, world, tmp_path):
    with session_scope(db_url) as session:
        villages = display_layer(session, "village", cache_dir=tmp_path)
        grids = display_layer(session, "grid", world.city, cache_dir=tmp_path)
    assert set(villages.codes) == set(world.villages) | {world.leaf_town}
    assert set(grids.codes) == set(world.grids) | {world.leaf_village, world.leaf_town}
    features = orjson.loads(grids.feature_collection_bytes)["features"]
    levels = {f["properties"]["code"]: f["properties"]["level"] for f in features}
    assert levels[world.leaf_town] == "town" and levels[world.leaf_village] == "village"
    # the grid map covers the whole city: nothing is dropped
    union = shapely.union_all([shape(f["geometry"]) for f in features])
    assert union.area == pytest.approx((121.3 - 121.0) * (31.6 - 31.4), rel=1e-9)


def test_display_cache_follows_the_boundaries_version(db_url, world, tmp_path):
    with session_scope(db_url) as session:
        before = display_layer(session, "town", cache_dir=tmp_path)
    assert list(tmp_path.glob("display-*-town.json"))
    with session_scope(db_url) as session:
        add_units(session, [world.new_town((121.3, 31.4, 121.4, 31.6))])
    with session_scope(db_url) as session:
        after = display_layer(session, "town", cache_dir=tmp_path)
    assert before.etag != after.etag
    assert "320583009" in after.codes and "320583009" not in before.codes


def test_boundaries_route_serves_etag_gzip_and_scope(client, db_url, world, app):
    response = client.get("/api/v1/boundaries", params={"parent": world.towns[0]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    assert "max-age" in response.headers["cache-control"]
    assert response.headers["content-encoding"] == "gzip"  # httpx asks for gzip
    codes = {f["properties"]["code"] for f in response.json()["features"]}
    assert codes == {v for v in world.villages if v.startswith(world.towns[0])}
    etag = response.headers["etag"]
    again = client.get(
        "/api/v1/boundaries", params={"parent": world.towns[0]}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""
    raw = client.get(
        "/api/v1/boundaries",
        params={"level": "grid"},
        headers={"Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in raw.headers
    grid_codes = {f["properties"]["code"] for f in raw.json()["features"]}
    assert set(world.grids) <= grid_codes
    # a leaf asked for its children gets itself
    leaf = client.get("/api/v1/boundaries", params={"parent": world.leaf_town}).json()
    assert [f["properties"]["code"] for f in leaf["features"]] == [world.leaf_town]
    bad = client.get("/api/v1/boundaries", params={"level": "county"})
    assert bad.status_code == 400 and "village" in bad.json()["message"]


def test_boundaries_route_is_limited_to_the_callers_subtree(app, db_url, world):
    from fastapi.testclient import TestClient

    token = token_for(db_url, "official", world.towns[1])
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        own = c.get("/api/v1/boundaries", params={"level": "village"})
        assert {f["properties"]["code"] for f in own.json()["features"]} == {
            v for v in world.villages if v.startswith(world.towns[1])
        }
        other = c.get("/api/v1/boundaries", params={"parent": world.towns[0]})
        assert other.status_code == 404
        assert c.get("/api/v1/boundaries", params={"parent": world.city}).status_code == 404


def test_gzip_body_is_the_collection(db_url, world, tmp_path):
    with session_scope(db_url) as session:
        layer = display_layer(session, "grid", cache_dir=tmp_path)
    assert gzip.decompress(layer.gzipped()) == layer.feature_collection_bytes


def test_warming_the_cache_writes_every_level_to_disk(db_url, world, tmp_path):
    from api.services.display import warm_display_cache

    with session_scope(db_url) as session:
        sizes = warm_display_cache(session, cache_dir=tmp_path)
    assert set(sizes) == {"city", "town", "village", "grid"}
    # and the grids as the whole city shows them (coarser than a town's view of them)
    assert {p.name.split("-v", 1)[1].split("-", 1)[1] for p in tmp_path.glob("display-*.json")} == {
        f"{level}.json" for level in [*sizes, "grid-in-city"]
    }


def test_a_level_shown_whole_is_coarsened_into_the_byte_budgets(city_db, tmp_path, monkeypatch):
    from collections import OrderedDict

    import api.services.display as display

    with session_scope(city_db) as session:
        fine = display_layer(session, "village", cache_dir=tmp_path / "fine")
        fine_grids = display_layer(session, "grid", cache_dir=tmp_path / "fine")
    budget = len(fine.feature_collection_bytes) // 2
    gzip_budget = len(fine.gzipped()) // 2
    monkeypatch.setattr(display, "LEVEL_BYTES", budget)
    monkeypatch.setattr(display, "LEVEL_GZIP_BYTES", gzip_budget)
    monkeypatch.setattr(display, "_levels", OrderedDict())
    monkeypatch.setattr(display, "_layers", OrderedDict())
    with session_scope(city_db) as session:
        coarse = display_layer(session, "village", cache_dir=tmp_path / "coarse")
        grids = display_layer(session, "grid", cache_dir=tmp_path / "coarse")
    assert len(coarse.feature_collection_bytes) <= budget
    assert len(coarse.gzipped()) <= gzip_budget
    assert coarse.tolerance > fine.tolerance and coarse.codes == fine.codes
    # coarser, still one coverage of the whole city
    shapes = np.array([shape(orjson.loads(coarse.fragments[c])) for c in coarse.codes])
    assert shapely.coverage_is_valid(shapes)
    union = shapely.union_all(shapes)
    assert sum(len(p.interiors) for p in shapely.get_parts(union)) == 0
    assert shapely.area(shapes).sum() == pytest.approx(union.area, rel=1e-6)
    # the deepest level is shown a parent at a time: it is not coarsened into the budgets
    assert len(grids.feature_collection_bytes) > budget
    assert grids.tolerance == fine_grids.tolerance


def test_a_map_wider_than_its_levels_view_is_simplified_to_a_pixel_of_the_parent(
    city_db, small_city, tmp_path
):
    city = next(u for u in small_city if u.level == "city")
    town = next(u for u in small_city if u.level == "town")
    with session_scope(city_db) as session:
        whole = display_layer(session, "grid", city.code, cache_dir=tmp_path)
        of_town = display_layer(session, "grid", town.code, cache_dir=tmp_path)
        own = display_layer(session, "grid", cache_dir=tmp_path)
    # grids are seen over a town: a town's grids keep that tolerance
    town_widths = [max(x1 - x0, y1 - y0) for x0, y0, x1, y1 in
                   (u.geom.bounds for u in small_city if u.level == "town")]  # fmt: skip
    x0, y0, x1, y1 = city.geom.bounds
    assert of_town.tolerance == pytest.approx(float(np.median(town_widths)) / 4000)
    assert whole.tolerance == pytest.approx(max(x1 - x0, y1 - y0) / 4000)
    assert whole.tolerance > 2 * of_town.tolerance
    assert own.tolerance == whole.tolerance  # no parent: the whole city
    # the city's grids: the same units, fewer vertices, still one coverage of the city
    assert set(whole.codes) == {u.code for u in small_city if u.level == "grid"}
    assert set(of_town.codes) < set(whole.codes)
    shapes = np.array([shape(orjson.loads(whole.fragments[c])) for c in whole.codes])
    finer = np.array([shape(orjson.loads(of_town.fragments[c])) for c in of_town.codes])
    coarser = shapes[[whole.codes.index(c) for c in of_town.codes]]
    assert (
        shapely.get_num_coordinates(coarser).sum() < 0.8 * shapely.get_num_coordinates(finer).sum()
    )
    assert shapely.coverage_is_valid(shapes) and not shapely.is_empty(shapes).any()
    union = shapely.union_all(shapes)
    assert sum(len(p.interiors) for p in shapely.get_parts(union)) == 0
    assert shapely.area(shapes).sum() == pytest.approx(union.area, rel=1e-6)
    assert union.area == pytest.approx(city.geom.area, rel=0.02)
    assert_rfc7946(orjson.loads(whole.feature_collection_bytes))
