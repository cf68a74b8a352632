"""On the dashboard's map (and the wall, which draws the same model) a suppressed figure is
greyed and reads "<5", never a number."""

from __future__ import annotations

from dashboard import client
from dashboard.components.choropleth import NO_DATA
from dashboard.views import map_model


def test_a_suppressed_unit_is_greyed_and_reads_less_than_five():
    info = client.MetricInfo("visit_coverage_rate", "走访帮扶覆盖率", "Visit coverage", "%",
                             "percent", True, "populations")  # fmt: skip
    figures = [
        client.Figure("a", "甲", 0.9, 40.0, None, False, 2),
        client.Figure("b", "乙", None, None, None, False, None, suppressed=True),
        client.Figure("c", "丙", None, None, None, False, None),  # no data
    ]
    model = map_model(figures, [0.5, 0.8, 1.0], info, "zh")
    shown = {i.code: i for i in model.items}
    assert shown["b"].klass == NO_DATA and shown["b"].value_text == "<5"
    assert shown["c"].value_text != "<5" and shown["c"].value_text != "0"
    assert model.ranking[0]["code"] == "a"
    assert {r["code"]: r["value_text"] for r in model.ranking}["b"] == "<5"
