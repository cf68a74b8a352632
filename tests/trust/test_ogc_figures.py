"""Point 14: an analyst asks the OGC collections for a metric over a period
(``?metric=&start=&end=``, declared in the API definition) and each feature carries the
same figures as the API's."""

from __future__ import annotations

import pytest


def test_the_definition_declares_the_figure_parameters(trust_client) -> None:
    api = trust_client.get("/ogc/api").json()
    params = {
        p["name"]: p for p in api["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    }
    assert {"metric", "start", "end", "period", "compare"} <= set(params)
    assert "resolution_rate" in params["metric"]["schema"]["enum"]


@pytest.mark.parametrize("metric", ["caseload", "resolution_rate", "station_build_rate"])
def test_items_carry_the_metric_of_the_period(trust_client, trust_world, metric) -> None:
    when = {"start": "2026-07-01", "end": "2026-09-30"}
    page = trust_client.get(
        "/ogc/collections/town/items", params={"metric": metric, **when, "compare": "prev"}
    )
    assert page.status_code == 200, page.text
    props = {f["id"]: f["properties"] for f in page.json()["features"]}
    api = trust_client.get(
        f"/api/v1/units/{trust_world.city}/children/metrics",
        params={"metric": metric, **when, "compare": "prev"},
    ).json()["children"]
    assert set(props) == {c["code"] for c in api}
    for child in api:
        mine = props[child["code"]]
        assert mine["metric"] == metric and mine["period_start"] == "2026-07-01"
        for key in ("value", "numerator", "denominator", "low_count", "previous", "change"):
            assert mine[key] == pytest.approx(child[key], abs=1e-6), (key, mine, child)


def test_the_city_collection_and_bad_figure_parameters(trust_client, trust_world) -> None:
    city = trust_client.get(
        "/ogc/collections/city/items", params={"metric": "caseload", "period": "2026"}
    ).json()["features"]
    assert [f["id"] for f in city] == [trust_world.city] and city[0]["properties"]["value"] > 0
    plain = trust_client.get("/ogc/collections/town/items").json()["features"][0]["properties"]
    assert "value" not in plain  # boundaries alone without metric=
    for params in ({"metric": "nonsense"}, {"period": "2026"}, {"metric": "caseload",
                                                                "start": "soon"}):  # fmt: skip
        r = trust_client.get("/ogc/collections/town/items", params=params)
        assert r.status_code == 400 and r.json()["message"], params
