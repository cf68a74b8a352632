"""Issue 26 without a browser: the legend's labels, the ranking's columns and CSV, the
trend's gaps, the API's refusal of breaks that are not finite."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from api.engine import MapQuery, MetricsError
from dashboard.components.legend import class_labels
from dashboard.state import round_break

# ---------------------------------------------------------------- 6: the legend


def test_no_class_rows_when_no_unit_is_classed():
    assert class_labels(None, [0.0, 1.0], "percent", "zh") == []  # not "— – 0.0%"


def test_count_classes_are_integer_ranges_that_do_not_overlap():
    assert class_labels(0, [2, 4, 6.5], "integer", "zh") == ["0 – 2", "3 – 4", "5 – 6"]
    assert class_labels(0, [1.5, 1.7, 4], "integer", "en") == ["0 – 1", None, "2 – 4"]
    assert class_labels(None, [10, 20, 30], "integer", "en", kept=True) == [
        "≤ 10",
        "11 – 20",
        "≥ 21",
    ]


def test_no_two_classes_read_alike():
    labels = class_labels(0.983, [0.983, 0.9832, 0.985], "percent", "zh")
    assert labels == ["98.30%", "> 98.30% – 98.32%", "98.32% – 98.50%"]
    assert len(set(labels)) == len(labels)


def test_breaks_rounded_to_the_metric_format():
    assert class_labels(100.0, [147.20000000000002, 200.55], "decimal1", "en") == [
        "100.0 – 147.2",
        "147.2 – 200.6",
    ]
    assert round_break(147.20000000000002, "integer") == 147
    assert round_break(0.98324999, "percent") == 0.9832


def test_breaks_that_are_not_finite_are_refused():
    for breaks in ((math.nan, math.inf), (1.0, math.inf), (-math.inf, 2.0)):
        with pytest.raises(MetricsError, match="finite"):
            MapQuery(classes="fixed", breaks=breaks)
    with pytest.raises(MetricsError, match="ascending"):
        MapQuery(classes="fixed", breaks=(5.0, 2.0))


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_api_answers_bad_breaks_with_400(client, world):
    for breaks in ("nan,inf", "5,2"):
        response = client.get(
            "/api/v1/choropleth",
            params={
                "parent": world.city,
                "metric": "caseload",
                "classes": "fixed",
                "breaks": breaks,
            },
        )
        assert response.status_code == 400, response.text
        assert "breaks" in response.json()["message"]


# ---------------------------------------------------------------- 4: gaps, not zeros


def test_months_without_data_are_gaps(small_world_url):
    from api.db.session import session_scope
    from api.engine import MetricQuery, engine_state, timeseries
    from dashboard.components.charts import trend_figure

    with session_scope(small_world_url) as session:
        first, last = engine_state(session).coverage(["cases"])
        start = dt.date(first.year - 1, first.month, 1)  # a year before the data begin
        for metric in ("caseload", "safety_index"):
            query = MetricQuery(metric, start.isoformat(), last.isoformat(), compare="yoy")
            points = timeseries(session, "320599", query, "month")["points"]
            empty = [p for p in points if p["end"] < first.isoformat()]
            full = [p for p in points if p["start"] > first.isoformat()]
            assert empty and all(p["value"] is None and not p["has_data"] for p in empty)
            assert all(p["value"] is not None and p["has_data"] for p in full)
            assert all(p["previous"] is None for p in full)  # a year before: no data either
    figure = trend_figure(["2025-01", "2025-02"], [None, 5.0], [None, None], False, "zh")
    assert figure["data"][0]["y"] == [None, 5.0] and not figure["data"][0].get("connectgaps")
