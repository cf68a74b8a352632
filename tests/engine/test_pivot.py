"""The pivot's two paths agree: the cube's rows split by a breakdown, summed over its keys,
equal the plain per-bin Frame; a unit's keys equal its breakdown; scope and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from api.db.session import session_scope
from api.engine import MetricQuery, MetricsError, PivotQuery, breakdown, pivot_cells

SUMMED = ["caseload", "resolution_rate", "caseload_per_10k", "satisfaction", "on_time_rate"]


def _city(session) -> str:
    from sqlalchemy import text

    return session.execute(text("SELECT code FROM admin_unit WHERE parent_code IS NULL")).scalar()


@pytest.mark.parametrize("metric", SUMMED)
def test_split_cells_add_up_to_the_plain_frame(small_world_url: str, metric: str) -> None:
    with session_scope(small_world_url) as session:
        city = _city(session)
        q = MetricQuery(metric=metric, start="2025-11-15", end="2026-04-20")
        split = pivot_cells(
            session, city, PivotQuery(q, "village", ("unit", "period"), ("category",), "month")
        )
        plain = pivot_cells(
            session, city, PivotQuery(q, "village", ("unit",), ("period",), "month")
        )
        assert split.units == plain.units and len(split.bins) == len(plain.bins) == 6
        assert np.allclose(split.numerator.sum(axis=2), plain.numerator[:, :, 0])
        if plain.denominator is not None and metric != "caseload_per_10k":
            assert np.allclose(split.denominator.sum(axis=2), plain.denominator[:, :, 0])


def test_a_units_keys_equal_its_breakdown(small_world_url: str) -> None:
    with session_scope(small_world_url) as session:
        city = _city(session)
        q = MetricQuery(metric="resolution_rate", period="2026-Q1")
        cells = pivot_cells(session, city, PivotQuery(q, None, ("unit",), ("category",)))
        town = cells.state.units.codes[cells.units[2]]
        items = {i["key"]: i for i in breakdown(session, town, q, "category")["items"]}
        for k, (key, _, _) in enumerate(cells.keys):
            assert cells.numerator[2, 0, k] == items[key]["numerator"]
            assert cells.denominator[2, 0, k] == items[key]["denominator"]


def test_any_metric_without_a_breakdown(small_world_url: str) -> None:
    with session_scope(small_world_url) as session:
        city = _city(session)
        for metric in ("median_days_to_close", "open_backlog"):
            q = MetricQuery(metric=metric, period="2026-Q1")
            cells = pivot_cells(
                session, city, PivotQuery(q, "town", ("unit",), ("period",), "month")
            )
            assert cells.value.shape[:2] == (len(cells.units), len(cells.bins))


@pytest.mark.parametrize(
    ("metric", "rows", "columns", "words"),
    [
        ("open_backlog", ("unit",), ("category",), "cannot be split"),
        ("median_days_to_close", ("unit",), ("category",), "cannot be split"),
        ("grids", ("unit",), ("period",), "no period"),
        ("caseload", ("unit",), ("unit",), "once"),
        ("caseload", ("category",), ("channel",), "one breakdown"),
    ],
)
def test_bad_pivots_are_explained(small_world_url, metric, rows, columns, words) -> None:
    with session_scope(small_world_url) as session, pytest.raises(MetricsError, match=words):
        pivot_cells(
            session, _city(session), PivotQuery(MetricQuery(metric=metric), None, rows, columns)
        )
