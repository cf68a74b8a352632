"""OGC API - Features at /ogc: the documents, paging, filters, scope, and GDAL reading every
collection from the running server."""

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient

from tests.conftest import token_for


@pytest.fixture
def ogc(app, db_url, world):
    token = token_for(db_url, "analyst", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_landing_conformance_api_collections(ogc, world) -> None:
    landing = ogc.get("/ogc").json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = ogc.get("/ogc/conformance").json()["conformsTo"]
    assert any(c.endswith("/conf/core") for c in conf)
    assert any(c.endswith("/conf/geojson") for c in conf)
    api = ogc.get("/ogc/api").json()
    assert api["openapi"].startswith("3.0")
    assert "/collections/{collectionId}/items" in api["paths"]
    cols = ogc.get("/ogc/collections").json()["collections"]
    assert [c["id"] for c in cols] == ["city", "town", "village", "grid"]
    town = ogc.get("/ogc/collections/town").json()
    assert town["extent"]["spatial"]["bbox"][0] == pytest.approx([121.0, 31.4, 121.3, 31.6])


def test_items_paging_is_exact(ogc, world) -> None:
    r = ogc.get("/ogc/collections/grid/items", params={"limit": 4})
    assert r.headers["content-type"].startswith("application/geo+json")
    page = r.json()
    assert page["numberMatched"] == len(world.grids) == 6
    assert page["numberReturned"] == 4
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    second = ogc.get(nxt).json()
    assert second["numberReturned"] == 2
    assert not any(link["rel"] == "next" for link in second["links"])
    codes = [f["properties"]["code"] for f in page["features"] + second["features"]]
    assert sorted(codes) == sorted(world.grids)
    clamped = ogc.get("/ogc/collections/grid/items", params={"limit": 100000}).json()
    assert clamped["numberReturned"] == 6
    assert any("limit=1000" in link["href"] for link in clamped["links"])


def test_items_bbox_datetime_and_item(ogc, world) -> None:
    west = ogc.get("/ogc/collections/town/items", params={"bbox": "121.01,31.41,121.05,31.5"})
    assert [f["id"] for f in west.json()["features"]] == [world.towns[0]]
    old = ogc.get("/ogc/collections/town/items", params={"datetime": "1800-01-01T00:00:00Z"})
    assert old.json()["numberMatched"] == 0
    now = ogc.get("/ogc/collections/town/items", params={"datetime": "2026-01-01/.."})
    assert now.json()["numberMatched"] == 3
    one = ogc.get(f"/ogc/collections/village/items/{world.villages[0]}")
    assert one.status_code == 200
    feature = one.json()
    assert feature["geometry"]["type"] == "MultiPolygon"
    ring = feature["geometry"]["coordinates"][0][0]
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))
    assert area2 > 0  # RFC 7946: exterior ring counter-clockwise
    assert ogc.get("/ogc/collections/village/items/nope").status_code == 404
    assert ogc.get("/ogc/collections/nope/items").status_code == 404


@pytest.mark.parametrize(
    "params", [{"foo": "1"}, {"limit": "x"}, {"bbox": "1,2,3"}, {"datetime": "yesterday"}]
)
def test_bad_parameters_are_400(ogc, params) -> None:
    r = ogc.get("/ogc/collections/grid/items", params=params)
    assert r.status_code == 400
    assert r.json()["message"]


def test_scope_limits_items(app, db_url, world) -> None:
    token = token_for(db_url, "official", world.towns[1])
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        towns = c.get("/ogc/collections/town/items").json()
        assert [f["id"] for f in towns["features"]] == [world.towns[1]]
        grids = c.get("/ogc/collections/grid/items").json()
        assert grids["numberMatched"] == 2
        assert c.get(f"/ogc/collections/town/items/{world.towns[0]}").status_code == 404
        assert c.get("/ogc/collections/city/items").json()["numberMatched"] == 0
        assert c.get("/ogc").status_code == 200
    assert TestClient(app).get("/ogc/collections").status_code == 401


def test_gdal_reads_every_collection(server_process, db_url, world) -> None:
    """GDAL's OAPIF driver (what QGIS uses) lists the levels and reads every feature of
    each, following ``next`` links page by page (PAGE_SIZE=2 forces several pages)."""
    pyogrio = pytest.importorskip("pyogrio")
    token = token_for(db_url, "analyst", world.city)
    # GDAL sends "Authorization: Bearer <token>" (GDAL_HTTP_HEADERS is not applied by
    # the OAPIF driver of this GDAL build; GDAL_HTTP_AUTH=BEARER is)
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token})
    try:
        expected = {
            "city": [world.city],
            "town": world.towns,
            "village": world.villages,
            "grid": world.grids,
        }
        url = f"OAPIF:{server_process.url}/ogc"
        layers = [name for name, _ in pyogrio.list_layers(url)]
        assert sorted(layers) == sorted(expected)
        for level, codes in expected.items():
            for page_size in (100, 2):
                frame = pyogrio.read_dataframe(url, layer=level, PAGE_SIZE=page_size)
                assert sorted(frame["code"]) == sorted(codes), (level, page_size)
                assert frame.geometry.notna().all()
                assert frame.crs.to_epsg() == 4326
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})
