"""Point 5: the small-number rule is decided per kind of metric in the registry and said
in /api/v1/metrics; the network's proportions (exact counts of facilities, not samples)
are never flagged low_count below town level."""

from __future__ import annotations

import pytest

FACILITY_SHARES = ("station_build_rate", "video_link_coverage", "center_coverage")


def test_metrics_say_their_small_number_rule(trust_client) -> None:
    listed = {m["id"]: m for m in trust_client.get("/api/v1/metrics").json()}
    assert {m["small_number_rule"] for m in listed.values()} <= {
        "count", "exact", "min_denominator"
    }  # fmt: skip
    for metric in FACILITY_SHARES:
        assert listed[metric]["small_number_rule"] == "exact", metric
        assert listed[metric]["min_denominator"] is None
    for metric in ("resolution_rate", "caseload_per_10k", "median_days_to_close"):
        assert listed[metric]["small_number_rule"] == "min_denominator", metric
        assert listed[metric]["min_denominator"] == 10
    assert listed["caseload"]["small_number_rule"] == "count"
    assert listed["grid_coverage"]["small_number_rule"] == "exact"


@pytest.mark.parametrize("metric", ["station_build_rate", "video_link_coverage"])
def test_village_facility_shares_are_shown_however_few(trust_client, trust_world, metric):
    body = trust_client.get(
        "/api/v1/choropleth",
        params={"metric": metric, "parent": trust_world.city, "level": "village"},
    ).json()
    props = [f["properties"] for f in body["features"]]
    have = [p for p in props if p["denominator"]]
    assert have and all(p["denominator"] < 10 for p in have)  # one station per village
    assert not any(p["low_count"] for p in props)
    assert all(p["value"] is not None for p in have)
    assert all(p["class"] is not None for p in have)


def test_case_rates_keep_their_minimum(trust_client, trust_world) -> None:
    town = trust_client.get(f"/api/v1/units/{trust_world.city}").json()["children"][0]["code"]
    body = trust_client.get(
        f"/api/v1/units/{town}/children/metrics",
        params={"metric": "resolution_rate", "start": "2026-10-31", "end": "2026-10-31"},
    ).json()
    rows = [*body["children"], body["self"]]
    assert all(r["low_count"] == (r["denominator"] < 10) for r in rows)
    assert any(r["low_count"] for r in rows)
