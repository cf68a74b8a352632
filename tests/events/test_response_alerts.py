"""Slow-response alerts: on a synthetic level whose right answer is known — one unit's
on-scene-within-5 share collapses in its last two weeks — only that unit alerts, after
the multiple-test correction across the level; a unit that merely gets busier (the same
share of misses) does not."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import select

from api.alerts.lifecycle import run_alerts
from api.alerts.response import detect_slow_response
from api.db.models import Alert
from api.db.session import session_scope
from api.services.events import ingest_events
from tests.events.test_events import BEIJING, grid_box


def test_a_collapsing_share_alerts_and_a_busier_unit_does_not() -> None:
    rng = np.random.default_rng(3)
    units, days = 60, 140
    events = rng.poisson(4.0, (units, days))
    events[7, -14:] = rng.poisson(12.0, 14)  # busier, same share
    share_missed = np.full((units, days), 0.3)
    share_missed[11, -14:] = 0.85  # the collapse
    misses = rng.binomial(events, share_missed)
    (episodes,) = detect_slow_response([(misses, events)])
    alerted = set(episodes.unit.tolist())
    assert alerted == {11}
    i = list(episodes.unit).index(11)
    assert episodes.first[i] >= days - 14 and episodes.ongoing[i]
    assert episodes.observed[i] > episodes.expected[i] + 3


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_run_alerts_raises_a_slow_response_alert_from_the_rollups(db_url, world) -> None:
    """Twenty weeks of events in every grid, mostly on scene within 5 minutes; in the last
    ten days one grid's arrivals take 9 minutes: ``run_alerts`` opens a ``slow_response``
    alert on that grid (and its village), on nothing else."""
    rng = np.random.default_rng(5)
    end = dt.date(2026, 3, 31)
    slow = world.grids[2]
    items = []
    for g, grid in enumerate(world.grids):
        x0, y0, x1, y1 = grid_box(world, grid)
        for day in range(140):
            date = end - dt.timedelta(days=day)
            for k in range(int(rng.poisson(3))):
                received = dt.datetime(date.year, date.month, date.day, 10 + k, tzinfo=BEIJING)
                late = grid == slow and day < 10
                minutes = 9 if late else (4 if rng.random() < 0.8 else 7)
                items.append(
                    {
                        "source": "a",
                        "external_id": f"{g}-{day}-{k}",
                        "type": "help",
                        "force_kind": "police",
                        "received_at": received.isoformat(),
                        "on_scene_at": (received + dt.timedelta(minutes=minutes)).isoformat(),
                        "lon": (x0 + x1) / 2,
                        "lat": (y0 + y1) / 2,
                    }
                )
    with session_scope(db_url) as session:
        report = ingest_events(session, items, user_name="test", scope_code=None)
        assert report.count("created") == len(items)
        run_alerts(session, on=end)
        session.commit()
        alerts = session.execute(
            select(Alert.unit_code, Alert.status).where(Alert.kind == "slow_response")
        ).all()
    assert {a.unit_code for a in alerts} <= {slow, world.parent[slow]}
    assert (slow, "open") in {(a.unit_code, a.status) for a in alerts}
