"""Point 17: "today" for the alerts and the safety index is the last day with reported
cases, not the flow table's last deadline; a month outside the data is a 400 naming the
range."""

from __future__ import annotations

import datetime as dt

import numpy as np
from click.testing import CliRunner

from api.cli import main
from api.db.session import session_scope
from tests.alerts.conftest import START, quiet_counts, write_counts, write_overdue

DAYS = 120
LAST_CASE = START + dt.timedelta(days=DAYS - 1)


def _world_with_deadlines_ahead(db_url: str, world) -> None:
    """Cases up to LAST_CASE; overdue flows run 60 days past it (deadlines of open cases)."""
    with session_scope(db_url) as session:
        write_counts(session, world.villages, quiet_counts(len(world.villages), DAYS, seed=3))
        became = np.zeros(DAYS + 60, int)
        became[-1] = 2
        write_overdue(session, world.villages[0], became, np.zeros(DAYS + 60, int))


def test_alerts_run_looks_at_the_last_day_with_cases(db_url, world) -> None:
    _world_with_deadlines_ahead(db_url, world)
    result = CliRunner().invoke(main, ["alerts", "run", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert f"alerts as of {LAST_CASE}" in result.output, result.output


def test_safety_index_defaults_to_the_month_of_the_last_case_and_checks_the_range(
    client, db_url, world
) -> None:
    _world_with_deadlines_ahead(db_url, world)
    town = world.towns[0]
    body = client.get(f"/api/v1/units/{town}/safety-index").json()
    assert body["month"] == f"{LAST_CASE:%Y-%m}", body
    for month in ("1800-01", "2100-12", f"{START - dt.timedelta(days=40):%Y-%m}"):
        r = client.get(f"/api/v1/units/{town}/safety-index", params={"month": month})
        assert r.status_code == 400, (month, r.text)
        message = r.json()["message"]
        assert f"from {START:%Y-%m} to {LAST_CASE:%Y-%m}" in message, message
    ok = client.get(f"/api/v1/units/{town}/safety-index", params={"month": f"{START:%Y-%m}"})
    assert ok.status_code == 200, ok.text
