"""The special-population figures the engine reads equal a recount of the stored rows
(current rows only, every unit at every level, every month), on both databases; and a
replaced month counts only once."""

from __future__ import annotations

import datetime as dt

from api.db.session import session_scope
from api.engine import MetricQuery, children_metrics, engine_state
from api.engine.disclosure import disclosure_table, unit_counts
from api.engine.registry import DOMAINS
from seed.populations import seed_populations
from tests.populations.adversary import MEASURES, recount

NAMES = (
    "special_under_management",
    "special_visited",
    "special_lost_contact",
    "floating_population",
)
ENGINE = dict(zip(MEASURES, NAMES, strict=True))


def test_engine_counts_equal_a_recount(db_url, world):
    with session_scope(db_url) as s:
        seed_populations(s, dt.date(2026, 10, 31), 3, 7)
        seed_populations(s, dt.date(2026, 10, 31), 1, 8)  # October again: replaces it
    truth, _, reported = recount(db_url)
    domain = DOMAINS["special_populations"]
    with session_scope(db_url) as s:
        state = engine_state(s)
        months, counts = unit_counts(state, domain, list(ENGINE.values()))
        table = disclosure_table(state, domain)
        codes = state.units.codes
        assert sorted(f"{m:%Y-%m}" for m in table.months) == ["2026-08", "2026-09", "2026-10"]
        for row, month in enumerate(months):
            key = f"{month:%Y-%m}"
            for measure, name in ENGINE.items():
                for i, code in enumerate(codes):
                    assert counts[name][row, i] == truth.get((measure, code, key), 0)
        # what the API shows is the recount where shown, and nothing where suppressed
        q = MetricQuery(metric="visit_coverage_rate", period="2026-10")
        answer = children_metrics(s, world.city, q)
        for row in [answer["self"], *answer["children"]]:
            if (row["code"], "2026-10") not in reported:
                assert row["value"] is None and not row["suppressed"]  # no data, not 0
            elif row["suppressed"]:
                assert row["numerator"] is None and row["denominator"] is None
            else:
                assert row["numerator"] == truth[("visited", row["code"], "2026-10")]
                assert row["denominator"] == truth[("under_management", row["code"], "2026-10")]


def test_a_monthly_series_shows_each_months_published_figure(small_populations):
    """The trend of a population metric: one point per calendar month, each the figure
    the map publishes for that month (suppression included); no weekly or daily bins (a
    bin holding a month's first day would show the month's figure as its own)."""
    _, town, client = small_populations
    for metric in ("visit_coverage_rate", "special_under_management"):
        series = client.get(
            f"/api/v1/units/{town}/timeseries",
            params={"metric": metric, "start": "2026-01-01", "end": "2026-10-31"},
        )
        assert series.status_code == 200, series.text
        points = series.json()["points"]
        assert [p["start"][:7] for p in points] == [f"2026-{m:02d}" for m in range(1, 11)]
        published = 0
        for point in points:
            month = client.get(
                f"/api/v1/units/{town}/children/metrics",
                params={"metric": metric, "period": point["start"][:7]},
            ).json()["self"]
            assert point["value"] == month["value"], point
            assert bool(point.get("suppressed")) == bool(month.get("suppressed"))
            published += month["value"] is not None
        assert published >= 6  # the seed's six months
        for interval in ("week", "day"):
            refused = client.get(
                f"/api/v1/units/{town}/timeseries",
                params={"metric": metric, "interval": interval, "period": "2026-10"},
            )
            assert refused.status_code == 400 and "interval=month" in refused.text
    smoothed = client.get(
        f"/api/v1/units/{town}/children/metrics",
        params={"metric": "floating_per_100", "period": "2026-10", "smooth": "eb"},
    )
    assert smoothed.status_code == 400 and "protected" in smoothed.text
