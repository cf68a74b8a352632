"""Cube snapshots: a restarted process answers from the last snapshot on disk (the same
figures); a snapshot older than the data catches up from the change log at once, or, past
the log, is served while the cube is read again behind it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from api.db.session import session_scope
from api.engine import engine_state, forget_states, snapshot
from api.engine import state as cube
from api.engine.query import MetricQuery
from api.engine.rollup import CaseSnapshot, apply_case_changes, rebuild_rollups
from api.engine.service import children_metrics
from tests.engine.cases import insert_cases, random_cases

QUESTION = {"metric": "caseload", "start": "2023-01-01", "end": "2026-06-30"}


@pytest.fixture
def snapshots(tmp_path, tune):
    tune(sync_rows=-1)  # snapshot even this tiny cube (and the empty cube of events)
    snapshot.enable(tmp_path)
    yield tmp_path / "cube"
    snapshot.enable(None)
    forget_states()


def _caseload(db_url: str, code: str) -> dict[str, float]:
    with session_scope(db_url) as session:
        answer = children_metrics(session, code, MetricQuery(**QUESTION))
    return {row["code"]: row["value"] for row in [*answer["children"], answer["self"]]}


def test_a_restart_serves_the_snapshot(db_url, cased, snapshots) -> None:
    city = cased.world.city
    forget_states()
    before = _caseload(db_url, city)
    assert before[city] == len(cased.cases)
    assert any(snapshots.rglob("period_cum.npy"))
    forget_states()  # what a restart forgets
    with session_scope(db_url) as session:
        state = engine_state(session)
    assert isinstance(state.cubes["cases"].period_cum, np.memmap)  # read from disk, not the tables
    assert _caseload(db_url, city) == before


def _late_cases(db_url: str, cased, rebuild: bool = False) -> None:
    """Seven new cases arrive while no server runs (then the rollups are rebuilt)."""
    with session_scope(db_url) as session:
        new = random_cases(cased.leaves, 7, dt.date(2025, 3, 1), dt.date(2025, 3, 5), seed=99)
        for c in new:
            c["external_id"] += "-late"
        rows = insert_cases(session, cased.leaves, new)
        apply_case_changes(session, [(None, CaseSnapshot.of(r)) for r in rows])
        if rebuild:
            rebuild_rollups(session)


def test_an_old_snapshot_catches_up_from_the_change_log(db_url, cased, snapshots) -> None:
    city = cased.world.city
    forget_states()
    _caseload(db_url, city)  # builds and writes the snapshot
    _late_cases(db_url, cased)
    forget_states()
    loads = cube.loads.copy()
    assert _caseload(db_url, city)[city] == len(cased.cases) + 7  # at once, exact
    assert cube.loads == loads  # not read from the rollup tables
    with session_scope(db_url) as session:
        assert isinstance(engine_state(session).cubes["cases"].period_cum, np.memmap)


def test_an_old_snapshot_past_the_log_is_served_then_reloaded(db_url, cased, snapshots) -> None:
    city = cased.world.city
    forget_states()
    _caseload(db_url, city)
    _late_cases(db_url, cased, rebuild=True)  # the log cannot carry the snapshot over
    forget_states()
    assert _caseload(db_url, city)[city] == len(cased.cases)  # the snapshot, at once
    for thread in list(cube._loading.values()):  # the refresh it started
        thread.join(timeout=60)
    assert _caseload(db_url, city)[city] == len(cased.cases) + 7
