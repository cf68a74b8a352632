"""The typed queries a caller builds (the API's dependencies, the dashboard, the CLI): a
request the engine cannot answer fails when the query is built, with the API's message."""

from __future__ import annotations

import pytest

from api.engine.query import MapQuery, MetricQuery, MetricsError


def test_a_metric_query_says_what_is_wrong_when_built() -> None:
    with pytest.raises(MetricsError, match="unknown metric 'nope'; known: "):
        MetricQuery("nope")
    with pytest.raises(MetricsError, match="bad compare 'mom'"):
        MetricQuery("caseload", compare="mom")
    with pytest.raises(MetricsError, match="bad smooth 'x'"):
        MetricQuery("caseload_per_10k", smooth="x")
    with pytest.raises(MetricsError, match="smooth=eb applies to per-capita rates"):
        MetricQuery("caseload", smooth="eb")


def test_none_asks_for_no_comparison_and_no_smoothing() -> None:
    query = MetricQuery("caseload_per_10k", compare="none", smooth="")
    assert query.compare is None and query.smooth is None
    assert query == MetricQuery("caseload_per_10k")


def test_a_query_without_a_period_takes_the_default_it_is_given() -> None:
    assert MetricQuery().or_period("last-365d").period == "last-365d"
    assert MetricQuery(start="2025-01-01").or_period("last-365d").period is None


def test_a_map_query_checks_its_classes() -> None:
    with pytest.raises(MetricsError, match="bad classes 'pretty'"):
        MapQuery(classes="pretty")
    with pytest.raises(MetricsError, match="classes=fixed needs breaks="):
        MapQuery(classes="fixed")
    with pytest.raises(MetricsError, match="breaks must be strictly ascending"):
        MapQuery(classes="fixed", breaks=(2.0, 1.0))
    assert MapQuery(level="grid").under("320100").parent == "320100"
