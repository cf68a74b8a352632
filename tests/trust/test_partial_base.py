"""Point 3: a comparison base the data does not fully cover (基期不完整) is flagged
``base_partial`` and gives no change; a base with no data at all gives no previous value
either (no data is never zero). The small world's cases run 2025-11-01 … 2026-10-31."""

from __future__ import annotations

import csv
import io
import sqlite3

import pytest

PARTIAL = {"start": "2026-01-01", "end": "2026-03-31", "compare": "prev"}  # base 2025-Q4
EMPTY = {"period": "2026-10", "compare": "yoy"}  # base 2025-10: before the data
FULL = {"period": "2026-10", "compare": "prev"}  # base 2026-09


def _children(client, city: str, when: dict, metric: str = "caseload") -> dict:
    r = client.get(f"/api/v1/units/{city}/children/metrics", params={"metric": metric, **when})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("metric", ["caseload", "resolution_rate", "caseload_per_10k"])
def test_children_metrics_flag_a_partial_base_and_give_no_change(
    trust_client, trust_world, metric
) -> None:
    body = _children(trust_client, trust_world.city, PARTIAL, metric)
    assert body["base_partial"] is True and body["previous_period"]["covered"] == "partial"
    assert body["data_coverage"] == {"start": "2025-11-01", "end": "2026-10-31"}
    for row in [body["self"], *body["children"]]:
        assert row["base_partial"] is True
        assert row["previous"] is not None  # two months of data: shown, flagged
        assert row["change"] is None and row["change_pct"] is None, row

    empty = _children(trust_client, trust_world.city, EMPTY, metric)
    assert empty["base_partial"] is True and empty["previous_period"]["covered"] == "none"
    for row in [empty["self"], *empty["children"]]:
        assert row["previous"] is None and row["change"] is None and row["base_partial"]

    full = _children(trust_client, trust_world.city, FULL, metric)
    assert full["base_partial"] is False and full["previous_period"]["covered"] == "full"
    me = full["self"]
    assert me["base_partial"] is False and me["change"] == pytest.approx(
        me["value"] - me["previous"]
    )
    assert me["change_pct"] == pytest.approx(me["change"] / abs(me["previous"]))


def test_ranking_rows_carry_the_flag(trust_client, trust_world) -> None:
    r = trust_client.get(
        f"/api/v1/units/{trust_world.city}/ranking", params={"metric": "caseload", **PARTIAL}
    )
    body = r.json()
    assert body["base_partial"] is True
    assert all(i["base_partial"] and i["change"] is None for i in body["items"])


def test_timeseries_points_flag_their_own_base(trust_client, trust_world) -> None:
    r = trust_client.get(
        f"/api/v1/units/{trust_world.city}/timeseries",
        params={"metric": "caseload", "start": "2025-11-01", "end": "2026-02-28",
                "compare": "prev"},
    )  # fmt: skip
    points = r.json()["points"]
    assert [p["base_partial"] for p in points] == [True, False, False, False]
    assert points[0]["previous"] is None and points[0]["change"] is None
    assert points[1]["change"] == points[1]["value"] - points[1]["previous"]


def test_choropleth_exports_carry_the_flag(trust_client, trust_world) -> None:
    params = {"metric": "caseload", "parent": trust_world.city, **PARTIAL}
    geo = trust_client.get("/api/v1/choropleth", params=params).json()
    assert geo["base_partial"] is True and geo["previous_period"]["covered"] == "partial"
    props = [f["properties"] for f in geo["features"]]
    assert all(p["base_partial"] and p["change"] is None for p in props)

    text = trust_client.get("/api/v1/choropleth", params={**params, "format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows and all(r["base_partial"].lower() in ("true", "1") for r in rows), rows[0]
    assert all(r["change"] == "" and r["change_pct"] == "" for r in rows)

    gpkg = trust_client.get("/api/v1/choropleth", params={**params, "format": "gpkg"})
    with sqlite3.connect(":memory:") as db:
        db.deserialize(gpkg.content)
        table = db.execute("SELECT table_name FROM gpkg_contents").fetchone()[0]
        flags = db.execute(f'SELECT base_partial, change FROM "{table}"').fetchall()
    assert flags and all(bool(f) and c is None for f, c in flags)


def test_dashboard_cards_map_and_table_say_partial_base_and_show_no_change(trust_world) -> None:
    from api.db.session import session_scope
    from api.engine import MapQuery, MetricQuery, choropleth_table
    from dashboard.client import MetricInfo, map_figures
    from dashboard.components.kpi import Kpi, kpi_card
    from dashboard.views import map_model

    with session_scope(trust_world.url) as session:
        table = choropleth_table(
            session, MapQuery(trust_world.city), MetricQuery("caseload", **PARTIAL)
        )
        figures = map_figures(table)
    assert figures and all(f.base_partial and f.previous is not None for f in figures)
    info = MetricInfo("caseload", "案件量", "Caseload", "件", "integer", None, "caseload")
    for lang, words in (("zh", "基期不完整"), ("en", "partial base")):
        model = map_model(figures, table.bounds, info, lang)
        assert all(i.change_text == f"— ({words})" for i in model.items)
        assert all(r["change"] == f"— ({words})" for r in model.ranking)
        card = kpi_card(Kpi("caseload", "案件量", 133, 27, "integer", None, True), "环比", lang)
        change = card.children[2]
        assert change.children == f"环比 — ({words})" and "flat" in change.className
