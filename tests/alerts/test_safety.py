"""平安指数: components from the rollups, weights from the config file, scoped API."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from api.db.models import CaseRollupDaily
from api.db.session import session_scope
from tests.alerts.conftest import leaf_id
from tests.conftest import token_for

CONFIG = tomllib.loads(
    (Path(__file__).parents[2] / "api/engine/safety_index.toml").read_text(encoding="utf-8")
)["components"]

# (village index, category, cases, closed, on time, evaluated, satisfaction sum)
ROWS = [
    (0, "neighbour", 30, 28, 25, 20, 88),
    (0, "labour", 6, 4, 2, 3, 9),  # serious
    (1, "petition", 4, 2, 2, 2, 6),  # serious
    (1, "family", 12, 12, 12, 10, 45),
    (3, "neighbour", 50, 20, 10, 5, 10),  # town 2
]


@pytest.fixture
def march(db_url, world):
    with session_scope(db_url) as session:
        rows = []
        for v, category, n, closed, on_time, evaluated, sat in ROWS:
            rows.append(
                {
                    "leaf_unit_id": leaf_id(session, world.villages[v]),
                    "day": dt.date(2025, 3, 10),
                    "category": category,
                    "channel": "walk_in",
                    "cases": n,
                    "closed": closed,
                    "closed_on_time": on_time,
                    "evaluated": evaluated,
                    "satisfaction_sum": sat,
                }
            )
        # a February case must not count in March
        rows.append({**rows[0], "day": dt.date(2025, 2, 28), "cases": 99, "closed": 0})
        session.execute(insert(CaseRollupDaily), rows)
    return world


def score(component: str, value: float) -> float:
    spec = CONFIG[component]
    t = (value - spec["worst"]) / (spec["best"] - spec["worst"])
    return 100 * min(max(t, 0.0), 1.0)


def test_town_index_is_the_weighted_mean_of_its_components(client, march):
    town = march.towns[0]
    rows = [r for r in ROWS if r[0] in (0, 1)]
    cases = sum(r[2] for r in rows)
    serious = sum(r[2] for r in rows if r[1] in ("labour", "petition"))
    closed, on_time = sum(r[3] for r in rows), sum(r[4] for r in rows)
    evaluated, sat = sum(r[5] for r in rows), sum(r[6] for r in rows)
    pop = march.population[town]
    per = 10_000 * 30 / 31  # March has 31 days
    want = {
        "caseload": score("caseload", cases * per / pop),
        "serious": score("serious", serious * per / pop),
        "resolution": score("resolution", closed / cases),
        "on_time": score("on_time", on_time / closed),
        "satisfaction": score("satisfaction", sat / evaluated),
        "grid_coverage": score("grid_coverage", 3 / 4),  # the first grid has no full-timer
    }
    weights = {k: CONFIG[k]["weight"] for k in want}
    index = sum(weights[k] * want[k] for k in want) / sum(weights.values())

    body = client.get(f"/api/v1/units/{town}/safety-index", params={"month": "2025-03"}).json()
    assert body["month"] == "2025-03" and body["unit"] == town
    got = {c["id"]: c for c in body["components"]}
    assert set(got) == set(want)
    for k, s in want.items():
        assert got[k]["score"] == pytest.approx(s), k
        assert got[k]["weight"] == weights[k]
    assert got["grid_coverage"]["numerator"] == 3 and got["grid_coverage"]["denominator"] == 4
    assert body["index"] == pytest.approx(index)
    assert sum(c["contribution"] for c in body["components"]) == pytest.approx(body["index"])
    assert 0 <= body["index"] <= 100


def test_missing_components_give_their_weight_to_the_others(client, march):
    """Town 3 has no cases and no grids: only the caseload components count."""
    body = client.get(
        f"/api/v1/units/{march.towns[2]}/safety-index", params={"month": "2025-03"}
    ).json()
    got = {c["id"]: c for c in body["components"]}
    assert got["resolution"]["score"] is None and got["resolution"]["missing"]
    assert got["grid_coverage"]["score"] is None
    assert got["caseload"]["score"] == got["serious"]["score"] == 100
    assert body["index"] == pytest.approx(100)
    assert sum(c["effective_weight"] for c in body["components"]) == pytest.approx(1)


def test_safety_index_is_scoped_and_checks_the_month(app, db_url, march):
    token = token_for(db_url, "official", march.towns[1])
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get(f"/api/v1/units/{march.towns[0]}/safety-index").status_code == 404
        ok = c.get(f"/api/v1/units/{march.towns[1]}/safety-index", params={"month": "2025-03"})
        assert ok.status_code == 200 and 0 <= ok.json()["index"] <= 100
        bad = c.get(f"/api/v1/units/{march.towns[1]}/safety-index", params={"month": "2025-3"})
        assert bad.status_code == 400
        bad = c.get(f"/api/v1/units/{march.towns[1]}/safety-index", params={"month": "2025-13"})
        assert bad.status_code == 400 and "YYYY-MM" in bad.json()["message"]


def test_registry_metric_agrees_with_the_endpoint(client, march):
    listed = client.get(
        f"/api/v1/units/{march.city}/children/metrics",
        params={"metric": "safety_index", "start": "2025-03-01", "end": "2025-03-31"},
    )
    assert listed.status_code == 200, listed.text
    body = listed.json()
    rows = body.get("children") or body.get("units") or body.get("items")
    assert rows and any(row.get("value") is not None for row in rows), body
    for row in rows:
        code = row.get("code")
        mine = client.get(f"/api/v1/units/{code}/safety-index", params={"month": "2025-03"})
        want = mine.json()["index"]
        got = row.get("value")
        assert (got is None and want is None) or got == pytest.approx(want, abs=0.05), code


def test_default_month_is_the_latest_month_with_cases(client, march):
    body = client.get(f"/api/v1/units/{march.towns[0]}/safety-index").json()
    assert body["month"] == "2025-03"


def test_safety_index_maps_ranks_and_exports_like_any_metric(client, march):
    """The registry metric in the choropleth (CSV download) and the ranking: the same
    index as the unit's own endpoint."""
    import csv
    import io

    params = {"metric": "safety_index", "start": "2025-03-01", "end": "2025-03-31"}
    want = {
        town: client.get(f"/api/v1/units/{town}/safety-index", params={"month": "2025-03"}).json()[
            "index"
        ]
        for town in march.towns
    }
    r = client.get(
        "/api/v1/choropleth",
        params={**params, "parent": march.city, "level": "town", "format": "csv"},
    )
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert sorted(row["code"] for row in rows) == sorted(march.towns)
    for row in rows:
        assert float(row["value"]) == pytest.approx(want[row["code"]], abs=0.05), row

    ranked = client.get(f"/api/v1/units/{march.city}/ranking", params=params)
    assert ranked.status_code == 200, ranked.text
    body = ranked.json()
    items = body.get("items") or body.get("ranking") or body.get("children")
    order = [i["code"] for i in items if i.get("value") is not None]
    best_first = sorted(want, key=lambda c: -want[c])
    assert order == best_first[: len(order)] and len(order) == len(march.towns)
