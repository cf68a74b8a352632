"""The dashboard's own logic without a browser: number formats (万 in Chinese), the URL
state, the map's colour bands and how figures become map items."""

from __future__ import annotations

import datetime as dt
import itertools
from urllib.parse import parse_qsl

import pytest

from dashboard.client import Figure, MetricInfo
from dashboard.components.choropleth import LOW_COUNT, NO_DATA, colorscale, palette
from dashboard.i18n import format_change, format_count, format_value
from dashboard.state import MapView, period_dates
from dashboard.views import label_points, map_model


def test_counts_use_wan_in_chinese_only():
    assert format_count(9_999, "zh") == "9,999"
    assert format_count(12_345, "zh") == "1.23万"
    assert format_count(12_345, "en") == "12,345"
    assert format_count(250_000_000, "zh") == "2.50亿"
    assert format_value(0.9512, "percent", "zh") == "95.1%"
    assert format_value(45_678, "integer", "zh") == "4.57万"
    assert format_value(None, "integer", "en") == "—"


def test_change_is_points_for_rates_and_percent_for_counts():
    assert format_change(0.90, 0.85, "percent", "en") == "+5.0 pt"
    assert format_change(0.90, 0.85, "percent", "zh") == "+5.0个百分点"
    assert format_change(120, 100, "integer", "en") == "+20.0%"
    assert format_change(5, 0, "integer", "en") == "—"


def test_url_state_round_trips_and_rejects_nonsense():
    state = MapView.from_query("320583", {"metric": "on_time_rate", "period": "30d"}, "caseload")
    assert (state.metric, state.period, state.compare, state.lang) == (
        "on_time_rate",
        "30d",
        "yoy",
        "zh",
    )
    again = MapView.from_query(
        "320583", dict(p.split("=") for p in state.query()[1:].split("&")), "x"
    )
    assert again == state
    custom = MapView.from_query(
        "1", {"start": "2026-02-01", "end": "2026-03-31", "lang": "en"}, "m"
    )
    assert custom.period == "custom" and custom.lang == "en"
    assert period_dates(custom, dt.date(2026, 11, 1)) == (dt.date(2026, 2, 1), dt.date(2026, 3, 31))
    bad = MapView.from_query(
        "1", {"period": "x", "compare": "y", "method": "z", "start": "no"}, "m"
    )
    assert (bad.period, bad.compare, bad.method) == ("year", "yoy", "quantiles")


@pytest.mark.parametrize(
    ("period", "first"),
    [
        ("month", dt.date(2026, 8, 1)),
        ("quarter", dt.date(2026, 7, 1)),
        ("year", dt.date(2026, 1, 1)),
        ("30d", dt.date(2026, 7, 22)),
    ],
)
def test_period_presets_end_on_the_data_day(period, first):
    state = MapView.from_query("1", {"period": period}, "m")
    assert period_dates(state, dt.date(2026, 8, 20)) == (first, dt.date(2026, 8, 20))


def test_each_class_gets_its_own_colour_band():
    k = 4
    scale, zmin, zmax = colorscale(k, higher_is_better=False)
    colours = palette(k, False)

    def colour_at(z: int) -> str:
        pos = (z - zmin) / (zmax - zmin)
        bands = [
            c0 for (p0, c0), (p1, c1) in itertools.pairwise(scale) if c0 == c1 and p0 <= pos <= p1
        ]
        assert len(bands) == 1, f"z={z} falls in {len(bands)} bands"
        return bands[0]

    assert [colour_at(z) for z in range(k)] == colours
    assert colour_at(NO_DATA) != colour_at(LOW_COUNT)
    assert len(set(colours)) == k


def test_map_items_put_low_count_and_no_data_apart_and_rank_the_rest():
    metric = MetricInfo(
        "resolution_rate", "办结率", "Resolution rate", "%", "percent", True, "resolution"
    )
    figures = [
        Figure("a", "甲", 0.9, 40, 0.8, False, 1),
        Figure("b", "乙", 0.5, 30, None, False, 0),
        Figure("c", "丙", 1.0, 3, None, True, 1),
        Figure("d", "丁", None, 0, None, False, None),
    ]
    model = map_model(figures, [0.6, 0.9], metric, "zh")
    z = {i.code: i.klass for i in model.items}
    assert z == {"a": 1, "b": 0, "c": LOW_COUNT, "d": NO_DATA}
    assert [r["code"] for r in model.ranking] == ["a", "b", "c", "d"]
    assert [r["rank"] for r in model.ranking] == [1, 2, None, None]
    hover = {i.code: i for i in model.items}
    assert hover["a"].value_text == "90.0%" and hover["a"].change_text == "+10.0个百分点"
    assert hover["a"].rank_text == "第1/2名"


def test_small_units_are_not_labelled_among_many():
    labels = [(f"u{i}", f"单位{i}", 0.0, 0.0, 0.9 / 9) for i in range(9)]
    labels.append(("tiny", "小", 0.0, 0.0, 0.001))
    points = label_points(labels)
    assert points["tiny"][2] is False
    assert all(points[f"u{i}"][2] for i in range(9))


def test_kept_breaks_ride_in_the_url_for_their_level_only():
    query = {"metric": "caseload", "breaks": "3,12.5,40", "breaks_level": "village"}
    state = MapView.from_query("320583001", query, "caseload")
    assert state.kept_breaks("village") == (3.0, 12.5, 40.0)
    assert state.kept_breaks("town") == ()  # the towns' map keeps its own breaks
    again = MapView.from_query("1", dict(parse_qsl(state.query()[1:])), "x")
    assert again.breaks == state.breaks and again.breaks_level == "village"
    for bad in ("3,2", "nan,1", "x,1", "5"):
        mangled = MapView.from_query("1", {"breaks": bad, "breaks_level": "village"}, "m")
        assert mangled.breaks == () and mangled.breaks_level is None
        assert "breaks" not in mangled.query()


def test_kept_legend_does_not_depend_on_the_values_shown():
    from dashboard.components.legend import legend

    def rows(lower: float) -> list[str]:
        div = legend("案件量", lower, [3.0, 12.0, 40.0], "integer", None, 10, "zh", kept=True)
        return [r.children[1].children for r in div.children if "legend-row" in r.className][:3]

    assert rows(0.0) == rows(7.0) == ["≤ 3", "4 – 12", "≥ 13"]  # integer classes


@pytest.mark.parametrize("higher", [None, True, False])
def test_names_are_white_on_dark_classes_only(higher):
    from dashboard.components.choropleth import MapItem, label_colours

    k = 5
    items = [MapItem(str(z), "", z, "", "", "", "") for z in (*range(k), LOW_COUNT, NO_DATA)]
    colours = label_colours(items, k, higher)
    assert colours[0] != "#ffffff" and colours[k - 1] == "#ffffff"  # lightest, darkest
    assert colours[k:] == ["#1b1b1b", "#1b1b1b"]  # the greys
