"""The metric read API over the tiny world with random cases: every figure equals the
answer computed straight from the cases, on SQLite and PostGIS."""

from __future__ import annotations

import datetime as dt
import math
import random

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.engine.stats import poisson_rate_interval, wilson
from tests.conftest import token_for
from tests.engine.expected import CASE_METRICS, expected, leaves_under


@pytest.fixture
def api(app, db_url, cased):
    token = token_for(db_url, "admin", cased.world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) < 1e-9 * max(1.0, abs(b))


def test_rollup_figures_equal_raw_cases(api, cased) -> None:
    """Random units × periods × every case metric: children and self match the raw cases."""
    w = cased.world
    rng = random.Random(5)
    parents = [w.city, *w.towns, *w.villages]
    for _ in range(6):
        parent = rng.choice(parents)
        start = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(1200))
        end = start + dt.timedelta(days=rng.randrange(400))
        for metric in CASE_METRICS:
            assert_children_match_cases(api, cased, parent, metric, start, end)


def assert_children_match_cases(api, cased, parent: str, metric: str, start, end) -> None:
    """The children of ``parent`` and the parent itself have the value computed straight
    from the cases."""
    w = cased.world
    r = api.get(
        f"/api/v1/units/{parent}/children/metrics",
        params={"metric": metric, "start": str(start), "end": str(end)},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    for row in [*body["children"], body["self"]]:
        under = leaves_under(w, row["code"], cased.leaves)
        want = expected(metric, cased.cases, under, w.population[row["code"]], start, end)
        assert close(row["value"], want), (metric, row["code"], start, end, row, want)


def test_town_rate_is_ratio_of_summed_children(api, cased) -> None:
    town = cased.world.towns[0]
    body = api.get(
        f"/api/v1/units/{town}/children/metrics",
        params={"metric": "resolution_rate", "period": "2025"},
    ).json()
    num = sum(c["numerator"] for c in body["children"])
    den = sum(c["denominator"] for c in body["children"])
    assert den > 0
    assert body["self"]["value"] == pytest.approx(num / den)
    assert body["self"]["count"] == den
    lo, hi = body["self"]["ci_low"], body["self"]["ci_high"]
    assert lo < body["self"]["value"] < hi


def test_compare_yoy_across_leap_day(api, cased) -> None:
    """2025-02 is compared with 2024-02 including the 29th; the 29th alone with the 28th."""
    w = cased.world
    under = leaves_under(w, w.city, cased.leaves)
    body = api.get(
        f"/api/v1/units/{w.city}/children/metrics",
        params={"metric": "caseload", "period": "2025-02", "compare": "yoy"},
    ).json()
    assert body["previous_period"]["start"] == "2024-02-01"
    assert body["previous_period"]["end"] == "2024-02-29"
    feb24 = expected("caseload", cased.cases, under, 0, dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    feb25 = expected("caseload", cased.cases, under, 0, dt.date(2025, 2, 1), dt.date(2025, 2, 28))
    assert body["self"]["previous"] == feb24
    assert body["self"]["change"] == feb25 - feb24
    leap = api.get(
        f"/api/v1/units/{w.city}/children/metrics",
        params={"metric": "caseload", "start": "2024-02-29", "end": "2024-02-29", "compare": "yoy"},
    ).json()
    assert leap["previous_period"] == {
        "start": "2023-02-28",
        "end": "2023-02-28",
        "days": 1,
        "covered": "full",
    }
    leap_day = dt.date(2024, 2, 29)
    on_29th = expected("caseload", cased.cases, under, 0, leap_day, leap_day)
    assert leap["self"]["value"] == on_29th >= 12
    prev = api.get(
        f"/api/v1/units/{w.city}/children/metrics",
        params={"metric": "caseload", "period": "2024-Q2", "compare": "prev"},
    ).json()
    assert prev["previous_period"]["start"] == "2024-01-01"
    assert prev["previous_period"]["end"] == "2024-03-31"


def test_empty_period_gives_zeros_for_every_unit(api, cased) -> None:
    w = cased.world
    body = api.get(
        f"/api/v1/units/{w.city}/children/metrics", params={"metric": "caseload", "period": "2019"}
    ).json()
    assert [c["code"] for c in body["children"]] == w.towns
    assert all(c["value"] == 0 for c in body["children"])
    rate = api.get(
        f"/api/v1/units/{w.city}/children/metrics",
        params={"metric": "resolution_rate", "period": "2019"},
    ).json()
    assert len(rate["children"]) == 3
    assert all(c["value"] is None and c["count"] == 0 and c["low_count"] for c in rate["children"])


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("children/metrics", {"metric": "nope"}, 400, "unknown metric"),
        ("children/metrics", {"start": "2026-13-01", "end": "2026-12-31"}, 400, "bad start"),
        ("children/metrics", {"start": "2026-05-01", "end": "2026-04-01"}, 400, "after end"),
        ("children/metrics", {"period": "2026-Q5"}, 400, "bad period"),
        ("children/metrics", {"compare": "mom"}, 400, "bad compare"),
        ("children/metrics", {"smooth": "eb"}, 400, "per-capita"),
        ("timeseries", {"interval": "year"}, 400, "interval"),
        ("breakdown", {"metric": "grids"}, 400, "no breakdown"),
    ],
)
def test_bad_requests_say_what_is_wrong(api, cased, path, params, status, words) -> None:
    r = api.get(f"/api/v1/units/{cased.world.city}/{path}", params=params)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]


def test_unknown_or_out_of_scope_unit_is_404(app, db_url, cased) -> None:
    w = cased.world
    token = token_for(db_url, "official", w.towns[0])
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/api/v1/units/999999/children/metrics").status_code == 404
        r = c.get(f"/api/v1/units/{w.towns[1]}/children/metrics")
        assert r.status_code == 404
        assert "jurisdiction" in r.json()["message"]
        assert c.get("/api/v1/choropleth", params={"parent": w.city}).status_code == 404
        roots = c.get("/api/v1/units").json()
        assert [u["code"] for u in roots] == [w.towns[0]]
        village = w.villages[0]
        detail = c.get(f"/api/v1/units/{village}").json()
        assert [a["code"] for a in detail["ancestors"]] == [w.towns[0]]
        grids = [g for g in w.grids if g.startswith(village)]
        assert [k["code"] for k in detail["children"]] == grids


def test_unit_without_children_is_its_own_leaf(api, cased) -> None:
    w = cased.world
    for code in (w.leaf_town, w.leaf_village):
        body = api.get(
            f"/api/v1/units/{code}/children/metrics",
            params={"metric": "caseload", "period": "2025"},
        ).json()
        assert body["children"] == []
        under = {code}
        year = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
        want = expected("caseload", cased.cases, under, 0, *year)
        assert body["self"]["value"] == want
        assert body["self"]["is_leaf"] is True
    city = api.get(f"/api/v1/units/{w.city}").json()
    assert [c["code"] for c in city["children"]] == w.towns
    assert [c["is_leaf"] for c in city["children"]] == [False, False, True]


def test_grid_network_metrics(api, cased) -> None:
    w = cased.world

    def value(code: str, metric: str) -> float:
        return api.get(f"/api/v1/units/{code}/children/metrics", params={"metric": metric}).json()[
            "self"
        ]["value"]

    assert value(w.city, "grids") == len(w.grids)
    assert value(w.city, "grids_without_full_time") == 1
    assert value(w.city, "full_time_grid_workers") == len(w.grids) - 1
    assert value(w.city, "station_build_rate") == pytest.approx(2 / 4)
    assert value(w.city, "stations_under_construction") == 1
    assert value(w.city, "center_coverage") == 1.0
    # built: 3 centers (2 video-linked) + 2 stations (both linked)
    assert value(w.city, "video_link_coverage") == pytest.approx(4 / 5)
    town0 = w.towns[0]
    grids0 = [g for g in w.grids if g.startswith(town0)]
    assert value(town0, "residents_per_grid_worker") == pytest.approx(
        w.population[town0] / (len(grids0) - 1)
    )
    # grids cover the town's two villages entirely; the west town's south village has none
    assert value(town0, "grid_coverage") == pytest.approx(1.0)
    assert value(w.towns[1], "grid_coverage") == pytest.approx(0.5, rel=1e-3)


def test_timeseries_bins_add_up(api, cased) -> None:
    w = cased.world
    body = api.get(
        f"/api/v1/units/{w.towns[0]}/timeseries",
        params={"metric": "caseload", "period": "2024", "interval": "month", "compare": "yoy"},
    ).json()
    assert len(body["points"]) == 12
    under = leaves_under(w, w.towns[0], cased.leaves)
    total = expected("caseload", cased.cases, under, 0, dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert sum(p["value"] for p in body["points"]) == total
    feb = body["points"][1]
    assert feb["end"] == "2024-02-29"
    assert feb["previous"] == expected(
        "caseload", cased.cases, under, 0, dt.date(2023, 2, 1), dt.date(2023, 2, 28)
    )
    assert feb["change"] == feb["value"] - feb["previous"]
    days = api.get(
        f"/api/v1/units/{w.towns[0]}/timeseries",
        params={"metric": "caseload", "start": "2024-02-27", "end": "2024-03-02",
                "interval": "day"},
    ).json()["points"]  # fmt: skip
    assert [p["start"] for p in days] == [
        "2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"
    ]  # fmt: skip
    for p in days:
        d = dt.date.fromisoformat(p["start"])
        assert p["value"] == expected("caseload", cased.cases, under, 0, d, d)
    weeks = api.get(
        f"/api/v1/units/{w.towns[0]}/timeseries",
        params={
            "metric": "resolution_rate",
            "start": "2024-01-03",
            "end": "2024-02-10",
            "interval": "week",
        },
    ).json()["points"]
    assert weeks[0]["start"] == "2024-01-03" and weeks[0]["end"] == "2024-01-07"
    assert weeks[-1]["end"] == "2024-02-10"


def test_breakdown_by_category_channel_status(api, cased) -> None:
    w = cased.world
    start, end = dt.date(2024, 1, 1), dt.date(2025, 6, 30)
    params = {"metric": "caseload", "start": str(start), "end": str(end)}
    for unit in (w.city, w.towns[0], w.villages[1]):
        under = leaves_under(w, unit, cased.leaves)
        total = expected("caseload", cased.cases, under, 0, start, end)
        for by in ("category", "channel", "status"):
            body = api.get(f"/api/v1/units/{unit}/breakdown", params={**params, "by": by}).json()
            assert sum(i["value"] for i in body["items"]) == total, (unit, by)
        for by in ("category", "channel"):
            items = api.get(
                f"/api/v1/units/{unit}/breakdown",
                params={**params, "metric": "resolution_rate", "by": by},
            ).json()["items"]
            for item in items:
                cs = [c for c in cased.cases if c[by] == item["key"]]
                want = expected("resolution_rate", cs, under, 0, start, end)
                assert close(item["value"], want), (unit, by, item["key"])


def test_ranking_orders_children_best_first(api, cased) -> None:
    w = cased.world
    body = api.get(
        f"/api/v1/units/{w.city}/ranking", params={"metric": "resolution_rate", "period": "2025"}
    ).json()
    values = [i["value"] for i in body["items"] if i["value"] is not None]
    assert values == sorted(values, reverse=True)
    assert body["items"][0]["rank"] == 1
    assert body["previous_period"]["start"] == "2024-01-01"
    for item in body["items"]:
        if item["rank"] and item["previous_rank"]:
            assert item["rank_change"] == item["previous_rank"] - item["rank"]
    lower = api.get(
        f"/api/v1/units/{w.city}/ranking", params={"metric": "overdue_open", "period": "2025"}
    ).json()["items"]
    assert [i["value"] for i in lower] == sorted(i["value"] for i in lower)


def test_eb_smoothing_shrinks_towards_parent(api, cased) -> None:
    w = cased.world
    body = api.get(
        f"/api/v1/units/{w.city}/children/metrics",
        params={"metric": "caseload_per_10k", "period": "2025-Q1", "smooth": "eb"},
    ).json()
    parent = body["self"]["value"]
    for c in body["children"]:
        lo, hi = sorted((c["value"], parent))
        assert lo - 1e-9 <= c["smoothed"] <= hi + 1e-9


def test_metrics_and_units_list(api, cased) -> None:
    metrics = {m["id"]: m for m in api.get("/api/v1/metrics").json()}
    for needed in (
        *CASE_METRICS,
        "grids",
        "grid_coverage",
        "residents_per_grid_worker",
        "households_per_grid_worker",
        "grids_without_full_time",
        "station_build_rate",
        "stations_under_construction",
        "center_coverage",
        "video_link_coverage",
    ):
        assert needed in metrics
    assert metrics["resolution_rate"]["numerator"] == "closed"
    assert metrics["resolution_rate"]["denominator"] == "cases"
    assert [u["code"] for u in api.get("/api/v1/units").json()] == [cased.world.city]


def wilson_by_hand(k: float, n: float) -> tuple[float, float]:
    """Wilson score 95% interval, written out from its textbook formula."""
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def test_wilson_interval_known_values() -> None:
    """Newcombe (1998), table I: 81/263 → 0.2553-0.3662; 5/10 → 0.2366-0.7634; 0/10 →
    0-0.2775."""
    lo, hi = wilson(np.array([81.0, 5.0, 0.0]), np.array([263.0, 10.0, 10.0]))
    assert lo == pytest.approx([0.2553, 0.2366, 0.0], abs=5e-5)
    assert hi == pytest.approx([0.3662, 0.7634, 0.2775], abs=5e-5)
    # exact Poisson (Garwood) for per-capita rates: 5 events → 1.6235-11.6683, 0 → 0-3.6889
    lo, hi = poisson_rate_interval(np.array([5.0, 0.0, 5.0]), np.array([1.0, 1.0, 0.0]))
    assert lo[:2] == pytest.approx([1.6235, 0.0], abs=5e-5)
    assert hi[:2] == pytest.approx([11.6683, 3.6889], abs=5e-5)
    assert np.isnan(lo[2]) and np.isnan(hi[2])


def test_rates_carry_count_and_wilson_interval(api, cased) -> None:
    w = cased.world
    body = api.get(
        f"/api/v1/units/{w.city}/children/metrics",
        params={"metric": "on_time_rate", "period": "2024"},
    ).json()
    rows = [*body["children"], body["self"]]
    assert any(r["denominator"] for r in rows)
    for r in rows:
        assert r["count"] == r["denominator"]
        if r["denominator"]:
            lo, hi = wilson_by_hand(r["numerator"], r["denominator"])
            assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
        else:
            assert r["value"] is None and r["ci_low"] is None


@pytest.mark.parametrize("threshold", [1, 40, 10_000])
def test_low_count_threshold_comes_from_settings(db_url, cased, tmp_path, threshold) -> None:
    """ZHILI_MIN_DENOMINATOR: a rate resting on fewer cases is flagged low_count."""
    from api.app import create_app
    from api.settings import Settings

    w = cased.world
    settings = Settings(database_url=db_url, cache_dir=tmp_path / "c", min_denominator=threshold)
    app = create_app(settings, with_dashboard=False)
    token = token_for(db_url, "admin", w.city, name=f"t{threshold}")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        for path, params, rows_of in (
            (f"/api/v1/units/{w.city}/children/metrics", {},
             lambda b: [*b["children"], b["self"]]),
            (f"/api/v1/units/{w.city}/breakdown", {"by": "channel"}, lambda b: b["items"]),
            (f"/api/v1/units/{w.city}/timeseries", {"interval": "month"}, lambda b: b["points"]),
            ("/api/v1/choropleth", {"parent": w.city, "level": "village"},
             lambda b: [f["properties"] for f in b["features"]]),
        ):  # fmt: skip
            r = c.get(path, params={"metric": "resolution_rate", "period": "2025", **params})
            assert r.status_code == 200, r.text
            rows = rows_of(r.json())
            assert rows
            for row in rows:
                assert row["low_count"] == (row["denominator"] < threshold), (path, row)
