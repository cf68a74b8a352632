"""Point 13: OGC API - Features Part 1 Core, the requirements the OGC's test suite
(ets-ogcapi-features10, a Java TeamEngine suite) checks, written here in pytest: the suite
needs Maven Central to build and cannot be installed offline on this machine.

Requirement ids (/req/...) are those of OGC 17-069r3."""

from __future__ import annotations

import pytest

GEOJSON = "application/geo+json"


def _rels(doc: dict) -> dict[str, dict]:
    return {link["rel"]: link for link in doc["links"]}


@pytest.mark.parametrize("path", ["/ogc", "/ogc/"])
def test_root_op_and_success(trust_client, path) -> None:
    r = trust_client.get(path, follow_redirects=False)  # /req/core/root-op
    assert r.status_code == 200, (path, r.status_code)
    rels = _rels(r.json())  # /req/core/root-success
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)


def test_conformance_and_api_definition(trust_client) -> None:
    conf = trust_client.get("/ogc/conformance").json()["conformsTo"]
    for cls in ("core", "oas30", "geojson"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{cls}" in conf
    api = trust_client.get("/ogc/api")  # /req/oas30/oas-definition-1
    assert api.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = api.json()
    assert doc["openapi"].startswith("3.0.")
    items = doc["paths"]["/collections/{collectionId}/items"]["get"]
    names = {p["name"] for p in items["parameters"]}
    assert {"limit", "bbox", "datetime"} <= names  # /req/core/fc-limit-definition ...


def test_collections(trust_client) -> None:
    body = trust_client.get("/ogc/collections").json()
    assert "self" in _rels(body)  # /req/core/fc-md-links
    for col in body["collections"]:  # /req/core/fc-md-items
        assert col["id"] and "items" in _rels(col)
        assert col["extent"]["spatial"]["bbox"]
        one = trust_client.get(f"/ogc/collections/{col['id']}").json()
        assert one["id"] == col["id"]


def test_items_response_limit_paging_and_bbox(trust_client) -> None:
    r = trust_client.get("/ogc/collections/village/items", params={"limit": 7})
    assert r.status_code == 200 and r.headers["content-type"].startswith(GEOJSON)
    page = r.json()
    assert page["type"] == "FeatureCollection"  # /req/geojson/content
    assert page["numberReturned"] == len(page["features"]) == 7  # /req/core/fc-limit-response
    assert page["numberMatched"] >= page["numberReturned"]  # /req/core/fc-numberMatched
    rels = _rels(page)
    assert "self" in rels and "next" in rels  # /req/core/fc-links, /req/core/fc-next-1
    for f in page["features"]:
        assert f["type"] == "Feature" and f["id"] and f["geometry"]["type"].endswith("Polygon")
    box = page["features"][0]["geometry"]["coordinates"][0][0][0]
    near = ",".join(str(v) for v in (box[0] - 1e-3, box[1] - 1e-3, box[0] + 1e-3, box[1] + 1e-3))
    found = trust_client.get("/ogc/collections/village/items", params={"bbox": near}).json()
    assert page["features"][0]["id"] in {f["id"] for f in found["features"]}  # fc-bbox


@pytest.mark.parametrize(
    "params", [{"limit": "x"}, {"limit": 0}, {"bbox": "1,2"}, {"nonsense": 1}]
)  # /req/core/query-param-invalid, query-param-unknown
def test_invalid_query_parameters_are_400(trust_client, params) -> None:
    assert trust_client.get("/ogc/collections/town/items", params=params).status_code == 400


def test_a_feature_has_its_links(trust_client) -> None:
    first = trust_client.get("/ogc/collections/town/items", params={"limit": 1}).json()
    code = first["features"][0]["id"]
    r = trust_client.get(f"/ogc/collections/town/items/{code}")  # /req/core/f-op
    assert r.status_code == 200 and r.headers["content-type"].startswith(GEOJSON)
    feature = r.json()
    assert feature["type"] == "Feature" and feature["id"] == code  # /req/core/f-success
    rels = _rels(feature)  # /req/core/f-links
    assert rels["self"]["href"].endswith(f"/ogc/collections/town/items/{code}")
    assert rels["collection"]["href"].endswith("/ogc/collections/town")
    assert trust_client.get("/ogc/collections/town/items/999").status_code == 404
