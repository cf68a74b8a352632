"""The alert lifecycle on a real database: run, open, close, stable ids, unstaffed grids."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from api.alerts.lifecycle import run_alerts
from api.db.models import Alert, GridWorker
from api.db.session import session_scope
from api.domain import CATEGORIES
from tests.alerts.conftest import START, quiet_counts, write_counts, write_overdue

DAYS = 160
BURST_DAY, BURST_DAYS = 120, 5
LABOUR = [c.code for c in CATEGORIES].index("labour")


def test_burst_opens_an_alert_that_closes_when_the_pattern_returns(db_url, world):
    counts = quiet_counts(len(world.villages), DAYS, seed=1)
    burst_village = 1
    counts[LABOUR, burst_village, BURST_DAY : BURST_DAY + BURST_DAYS] += 6
    with session_scope(db_url) as session:
        write_counts(session, world.villages, counts)

    on = START + dt.timedelta(days=BURST_DAY + 2)
    with session_scope(db_url) as session:
        run_alerts(session, on)
    with session_scope(db_url) as session:
        caseload = session.scalars(select(Alert).where(Alert.kind == "caseload")).all()
        mine = [a for a in caseload if a.unit_code == world.villages[burst_village]]
        assert any(a.category == "labour" and a.status == "open" for a in mine)
        alert = next(a for a in mine if a.category == "labour")
        assert START + dt.timedelta(days=BURST_DAY) <= alert.opened_on <= on
        assert alert.last_seen_on == on and alert.closed_on is None
        observed = counts[LABOUR, burst_village, BURST_DAY - 4 : BURST_DAY + 3].sum()
        assert alert.observed == observed > alert.expected
        assert 0 < alert.probability < 0.01
        assert alert.detail["trace"][-1]["day"] == on.isoformat()
        alert_id, opened_on = alert.id, alert.opened_on
        session.expunge(alert)
        elsewhere = [a for a in caseload if a.unit_code in world.villages and a not in mine]
        assert not elsewhere
        # if the town is alerted for labour too, it points at the village
        town = world.parent[world.villages[burst_village]]
        for a in caseload:
            if a.unit_code == town and a.category == "labour":
                assert a.detail["children_alerted"] == [world.villages[burst_village]]

    # the unit's pattern, as the detail screen shows it, agrees with the alert
    from api.alerts.pattern import unit_pattern
    from api.services.units import get_unit

    with session_scope(db_url) as session:
        village = get_unit(session, world.villages[burst_village])
        pattern = unit_pattern(session, village, "labour", days=30, end=on)
    assert pattern["days"][-1] == on.isoformat() and len(pattern["days"]) == 30
    assert pattern["observed"][-1] == observed
    assert pattern["expected"][-1] == pytest.approx(alert.expected, abs=0.01)
    assert pattern["probability"][-1] < 0.01
    # and the unit detail's chart draws exactly these two lines
    from dashboard.components.alerts import pattern_figure

    expected_line, observed_line = pattern_figure(pattern, "en")["data"]
    assert observed_line["y"] == pattern["observed"] and expected_line["y"] == pattern["expected"]
    assert observed_line["x"] == expected_line["x"] == pattern["days"]

    end = START + dt.timedelta(days=DAYS - 1)
    with session_scope(db_url) as session:
        run_alerts(session, end)
    with session_scope(db_url) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None, "the same alert is kept (stable id) across runs"
        assert alert.opened_on == opened_on and alert.status == "closed"
        last_burst_day = START + dt.timedelta(days=BURST_DAY + BURST_DAYS - 1)
        assert on <= alert.last_seen_on <= last_burst_day + dt.timedelta(days=7)
        assert alert.closed_on == alert.last_seen_on + dt.timedelta(days=1)


def test_overdue_pile_up_and_unstaffed_grid(db_url, world):
    counts = quiet_counts(len(world.villages), DAYS, seed=2)
    became = np.zeros(DAYS, int)
    cleared = np.zeros(DAYS, int)
    became[::3] = 1
    cleared[1::3] = 1  # a steady overdue stock of about one case
    became[DAYS - 10 : DAYS] += 3  # then 30 cases go overdue in 10 days
    with session_scope(db_url) as session:
        write_counts(session, world.villages, counts)
        write_overdue(session, world.villages[0], became, cleared)

    result = CliRunner().invoke(
        __import__("api.cli", fromlist=["main"]).main,
        ["alerts", "run", "--database-url", db_url],
    )
    assert result.exit_code == 0, result.output
    assert "overdue" in result.output
    with session_scope(db_url) as session:
        overdue = session.scalars(
            select(Alert).where(Alert.kind == "overdue", Alert.status == "open")
        ).all()
        units = {a.unit_code for a in overdue}
        assert world.villages[0] in units  # the village, and its town
        assert units <= {world.villages[0], world.parent[world.villages[0]]}
        stock = float(np.cumsum(became - cleared)[-1])
        assert next(a for a in overdue if a.unit_code == world.villages[0]).observed == stock

        grids = session.scalars(select(Alert).where(Alert.kind == "unstaffed_grid")).all()
        assert [(a.unit_code, a.status) for a in grids] == [(world.grids[0], "open")]
        session.add(GridWorker(grid_code=world.grids[0], role="full_time"))

    with session_scope(db_url) as session:
        run_alerts(session)
    with session_scope(db_url) as session:
        grids = session.scalars(select(Alert).where(Alert.kind == "unstaffed_grid")).all()
        assert [(a.unit_code, a.status) for a in grids] == [(world.grids[0], "closed")]


def test_run_rejects_a_bad_day(db_url, world):
    from api.cli import main

    result = CliRunner().invoke(
        main, ["alerts", "run", "--on", "2025-13-40", "--database-url", db_url]
    )
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output


def test_run_on_an_empty_database_opens_only_grid_alerts(db_url, world):
    with session_scope(db_url) as session:
        summary = run_alerts(session, dt.date(2025, 1, 1))
    assert summary.episodes["caseload"] == summary.episodes["overdue"] == 0
    assert summary.opened["unstaffed_grid"] == 1
