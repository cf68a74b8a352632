"""The cube kept current by the change log: after creates, workflow steps, re-sends that
move a case to another unit or day, reopenings, deletions and a bulk import, the cube
caught up from the log answers exactly as one read anew from the rollup tables, and was
not read again; a gap in the log, or a log that is not the one the cube saw, sends it back
to a full read."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from api.db.models import AdminUnit, Case, RollupChange
from api.db.session import session_scope
from api.db.versions import bump_version, get_version
from api.domain import CATEGORIES, CHANNELS
from api.engine import cube as cube_module
from api.engine import engine_state, forget_states
from api.engine import state as state_module
from api.engine.cube import Cube
from api.engine.query import MetricQuery
from api.engine.registry import DOMAINS
from api.engine.rollup import CaseSnapshot, apply_case_changes
from api.engine.service import breakdown, children_metrics
from api.engine.state import database_key
from tests.conftest import token_for
from tests.engine.cases import insert_cases, leaf_ids, random_cases
from tests.engine.expected import CASE_METRICS

FIRST = dt.date(1994, 12, 1)  # a case from 1995 lands before the cube's first day
YEARS = [(dt.date(y, 1, 1), dt.date(y, 12, 31)) for y in (1995, 2023, 2024, 2025, 2026, 2027)]


@pytest.fixture
def started(db_url: str, world):
    """Cases on half the leaves (the others are first seen later), the state built."""
    forget_states()
    with session_scope(db_url) as session:
        leaves = leaf_ids(session)
        first_half = dict(sorted(leaves.items())[: len(leaves) // 2])
        cases = random_cases(first_half, 300, dt.date(2023, 1, 1), dt.date(2026, 6, 30), 5)
        rows = insert_cases(session, leaves, cases)
        apply_case_changes(session, [(None, CaseSnapshot.of(r)) for r in rows])
    with session_scope(db_url) as session:
        engine_state(session)
        key = database_key(session)
    yield leaves, first_half, key
    forget_states()


def state_of(db_url: str):
    with session_scope(db_url) as session:
        return engine_state(session)


def answers(db_url: str, cube: Cube) -> dict:
    """Everything the cube answers, by unit id: sums of every period measure, breakdown
    sums and histogram counts per day, stocks at every day (and ahead), breakdown sums and
    histogram counts per leaf and year, the last day with a case."""
    with session_scope(db_url) as session:
        ids = np.array(sorted(session.scalars(select(AdminUnit.id))), dtype=np.int64)
    column = np.searchsorted(ids, cube.leaf_ids)
    assert (ids[column] == cube.leaf_ids).all()

    def by_unit(values: np.ndarray) -> np.ndarray:
        out = np.zeros((values.shape[0], len(ids)), dtype=np.int64)
        out[:, column] = values
        return out

    measures = list(cube.measure_index)
    every = np.ones(len(cube.leaf_ids), dtype=bool)
    per_day, stocks, keys, hist = [], [], {}, Counter()
    day = dt.date(2022, 12, 1)
    while day <= dt.date.today() + dt.timedelta(days=400):
        per_day.append(by_unit(cube.period_sums(day, day, measures)))
        stocks.append(by_unit(cube.stock_at(day, ["backlog", "overdue"])))
        for by in ("category", "channel"):
            sums = cube.key_sums(day, day, every, by, measures)
            if sums.any():
                keys[(day, by)] = sums.tolist()
        for part in cube.histogram("days_to_close", day, day):
            for p, b, k in zip(*(a.tolist() for a in part), strict=True):
                hist[(day, int(cube.leaf_ids[p]), b)] += k
        day += dt.timedelta(days=1)
    early = by_unit(cube.period_sums(FIRST, dt.date(2022, 11, 30), measures))
    for start, end in YEARS:
        for uid in cube.leaf_ids.tolist():
            for by in ("category", "channel"):
                sums = cube.key_sums(start, end, cube.leaf_ids == uid, by, measures)
                if sums.any():
                    keys[(start.year, uid, by)] = sums.tolist()
        for part in cube.histogram("days_to_close", start, end):
            for p, b, k in zip(*(a.tolist() for a in part), strict=True):
                hist[(start.year, int(cube.leaf_ids[p]), b)] += k
    return {
        "period": np.stack(per_day),
        "early": early,
        "stock": np.stack(stocks),
        "keys": keys,
        "hist": {k: v for k, v in hist.items() if v},
        "last_case_day": cube.last_fact_day,
    }


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if isinstance(a[name], np.ndarray):
            assert np.array_equal(a[name], b[name]), name
        else:
            assert a[name] == b[name], name


def api_answers(db_url: str, code: str) -> dict:
    out = {}
    today = dt.date.today().isoformat()
    with session_scope(db_url) as session:
        for metric in CASE_METRICS:
            for start, end in (("2007-01-01", today), ("2025-01-01", "2025-12-31")):
                out[(metric, start)] = children_metrics(
                    session, code, MetricQuery(metric=metric, start=start, end=end)
                )
        for metric in ("caseload", "resolution_rate", "satisfaction"):
            for by in ("category", "channel"):
                out[(metric, by)] = breakdown(
                    session, code, MetricQuery(metric=metric, start="2024-01-01", end=today), by
                )
    return out


def post(api: TestClient, items: list[dict]) -> list[int]:
    r = api.post("/api/v1/cases", json=items)
    assert r.status_code == 200, r.text
    body = r.json()
    assert all(i["status"] in ("created", "updated") for i in body["items"]), body
    return [i["id"] for i in body["items"]]


def item(external_id: str, unit: str, at: dt.datetime, **more) -> dict:
    return {
        "source": "hotline",
        "external_id": external_id,
        "category": random.Random(external_id).choice(CATEGORIES).code,
        "channel": random.Random(external_id + "c").choice(CHANNELS).code,
        "reported_at": at.isoformat(),
        "unit_code": unit,
        **more,
    }


def test_caught_up_cube_answers_as_a_rebuild(app, db_url, world, started, tmp_path, monkeypatch):
    leaves, first_half, key = started
    new_leaves = sorted(set(leaves) - set(first_half))
    now = dt.datetime.now(dt.UTC)
    loads = state_module.loads[key]
    old = state_of(db_url)
    old_answers = answers(db_url, old.cubes["cases"])
    token = token_for(db_url, "admin", world.city)
    ahead = (now + dt.timedelta(days=200)).isoformat()  # n6 stays open: overdue in 200 days
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:
        # created: on leaves never seen, today (past the arrays' last day), in 1995 (before
        # their first), with a deadline a year ahead
        ids = post(
            api,
            [
                item("n1", new_leaves[0], now - dt.timedelta(minutes=5)),
                item("n2", new_leaves[1], now - dt.timedelta(days=1)),
                item("n3", next(iter(first_half)), dt.datetime(1995, 6, 1, 3, tzinfo=dt.UTC)),
                item(
                    "n4",
                    new_leaves[0],
                    now - dt.timedelta(days=3),
                    deadline=(now + dt.timedelta(days=365)).isoformat(),
                ),
                item("n5", new_leaves[-1], now - dt.timedelta(days=40)),
                item("n6", new_leaves[1], now - dt.timedelta(days=2), deadline=ahead),
            ],
        )
        assert state_of(db_url).cubes["cases"].leaf_ids.size > old.cubes["cases"].leaf_ids.size
        # workflow steps: scheduled, handled (closed), visited, evaluated
        for cid in ids[1:5]:
            r = api.patch(f"/api/v1/cases/{cid}", json={"step": "scheduled"})
            assert r.status_code == 200, r.text
        state_of(db_url)
        for cid in ids[2:4]:
            r = api.patch(f"/api/v1/cases/{cid}", json={"step": "handled", "outcome": "resolved"})
            assert r.status_code == 200, r.text
        r = api.patch(f"/api/v1/cases/{ids[2]}", json={"step": "visited"})
        assert r.status_code == 200, r.text
        r = api.patch(f"/api/v1/cases/{ids[2]}", json={"step": "evaluated", "satisfaction": 5})
        assert r.status_code == 200, r.text
        state_of(db_url)
        # re-sent with changes: n5 moves to another unit and day, n1 to yesterday
        post(api, [item("n5", new_leaves[1], now - dt.timedelta(days=41))])
        post(api, [item("n1", new_leaves[0], now - dt.timedelta(days=1))])
    state_of(db_url)
    # reopened, moved, deleted (no route does these; the rollups take them all the same)
    rng = random.Random(3)
    with session_scope(db_url) as session:
        rows = session.scalars(select(Case).where(Case.source == "test").order_by(Case.id)).all()
        changes = []
        moved = rng.sample(rows, 40)
        for case in moved:
            before = CaseSnapshot.of(case)
            if case.handled_at is not None:
                case.handled_at, case.outcome, case.satisfaction = None, None, None
                case.visited_at, case.evaluated_at, case.status = None, None, "received"
            else:
                case.leaf_unit_id = leaves[rng.choice(new_leaves)]
                case.reported_at -= dt.timedelta(days=rng.randrange(1, 30))
            changes.append((before, CaseSnapshot.of(case)))
        gone = [c for c in rows if c not in moved][-25:]
        for case in gone:
            changes.append((CaseSnapshot.of(case), None))
            session.delete(case)
        session.flush()
        apply_case_changes(session, changes)
    # two transactions before the next read: caught up over both at once
    with session_scope(db_url) as session:
        extra = random_cases(leaves, 30, dt.date(2026, 1, 1), dt.date(2026, 2, 1), seed=8)
        for c in extra:
            c["external_id"] += "-x"
        rows = insert_cases(session, leaves, extra)
        apply_case_changes(session, [(None, CaseSnapshot.of(r)) for r in rows])
    with session_scope(db_url) as session:
        last = session.scalars(select(Case).where(Case.source == "test").order_by(Case.id.desc()))
        victim = last.first()
        apply_case_changes(session, [(CaseSnapshot.of(victim), None)])
        session.delete(victim)
    # a bulk import, in chunks (two writers at once on PostgreSQL)
    monkeypatch.setattr("api.services.case_import.CHUNK_ROWS", 25)
    path = tmp_path / "cases.jsonl"
    bulk = random_cases(leaves, 120, dt.date(2025, 6, 1), dt.date(2026, 5, 31), seed=13)
    lines = [
        item(f"b{i}", c["leaf_code"], c["reported_at"], source="bulk", category=c["category"])
        for i, c in enumerate(bulk)
    ]
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines))
    from api.services.case_import import import_cases

    with session_scope(db_url) as session:
        summary = import_cases(session, path, writers=2)
    assert summary.created == 120, summary.errors

    caught_up = state_of(db_url)
    with session_scope(db_url) as session:
        assert caught_up.cubes["cases"].version == get_version(session, "cases")
    assert state_module.loads[key] == loads  # never read from the rollup tables again
    assert caught_up.units is old.units
    # the arrays shared, not copied
    assert caught_up.cubes["cases"].period_cum is old.cubes["cases"].period_cum
    assert caught_up.cubes["cases"].extra.rows > 0
    incremental = answers(db_url, caught_up.cubes["cases"])
    served = api_answers(db_url, world.city)
    assert_same(answers(db_url, old.cubes["cases"]), old_answers)  # the old state was not disturbed

    forget_states()
    rebuilt = state_of(db_url)
    table_backed = sum(1 for d in DOMAINS.values() if d.dated and d.tables is not None)
    assert state_module.loads[key] == loads + table_backed  # each domain's cube read again
    assert rebuilt.cubes["cases"].version == caught_up.cubes["cases"].version
    assert_same(incremental, answers(db_url, rebuilt.cubes["cases"]))
    assert served == api_answers(db_url, world.city)
    assert incremental["hist"] != old_answers["hist"]
    # a stock on a day ahead is the stock of the last day with data (n6 is not overdue yet)
    last = (max(dt.date.today(), incremental["last_case_day"]) - dt.date(2022, 12, 1)).days
    assert (incremental["stock"][last:] == incremental["stock"][last]).all()
    assert incremental["last_case_day"] > old_answers["last_case_day"]


def _one_more_case(db_url: str, leaves: dict[str, int], seed: int) -> None:
    with session_scope(db_url) as session:
        new = random_cases(leaves, 1, dt.date(2026, 3, 1), dt.date(2026, 3, 1), seed=seed)
        new[0]["external_id"] += f"-{seed}"
        rows = insert_cases(session, leaves, new)
        apply_case_changes(session, [(None, CaseSnapshot.of(r)) for r in rows])


def _caseload(db_url: str, code: str) -> float:
    with session_scope(db_url) as session:
        body = children_metrics(
            session, code, MetricQuery(metric="caseload", start="2023-01-01", end="2026-12-31")
        )
    return body["self"]["value"]


def test_a_gap_in_the_log_reads_the_cube_again(db_url, world, started) -> None:
    leaves, _, key = started
    loads = state_module.loads[key]
    _one_more_case(db_url, leaves, 1)
    assert _caseload(db_url, world.city) == 301
    assert state_module.loads[key] == loads
    with session_scope(db_url) as session:  # a version with no change logged
        bump_version(session, "cases")
    _one_more_case(db_url, leaves, 2)
    assert _caseload(db_url, world.city) == 302
    assert state_module.loads[key] == loads + 1
    _one_more_case(db_url, leaves, 3)  # and from there on, caught up again
    assert _caseload(db_url, world.city) == 303
    assert state_module.loads[key] == loads + 1


def test_a_log_not_the_one_the_cube_saw_reads_it_again(db_url, world, started) -> None:
    """The row of the cube's own version carries another token (a re-seeded database, a
    rolled-back version number reused): the changes after it are not applied."""
    leaves, _, key = started
    loads = state_module.loads[key]
    with session_scope(db_url) as session:
        version = engine_state(session).cubes["cases"].version
        session.execute(update(RollupChange).where(RollupChange.version == version).values(token=7))
    _one_more_case(db_url, leaves, 4)
    assert _caseload(db_url, world.city) == 301
    assert state_module.loads[key] == loads + 1


def test_a_pruned_log_reads_the_cube_again(db_url, world, started) -> None:
    leaves, _, key = started
    loads = state_module.loads[key]
    _one_more_case(db_url, leaves, 5)
    _one_more_case(db_url, leaves, 6)
    with session_scope(db_url) as session:
        newest = get_version(session, "cases")
        session.execute(delete(RollupChange).where(RollupChange.version == newest - 1))
    assert _caseload(db_url, world.city) == 302
    assert state_module.loads[key] == loads + 1


def test_many_extra_rows_read_the_cube_again_behind_it(db_url, world, started, tune):
    leaves, _, key = started
    tune(extra_rows=3)
    loads = state_module.loads[key]
    _one_more_case(db_url, leaves, 7)
    _one_more_case(db_url, leaves, 8)
    assert _caseload(db_url, world.city) == 302  # caught up at once, exact
    for thread in list(state_module._loading.values()):  # then read again behind it
        thread.join(timeout=60)
    table_backed = sum(1 for d in DOMAINS.values() if d.dated and d.tables is not None)
    assert state_module.loads[key] == loads + table_backed
    state = state_of(db_url)
    extra = state.cubes["cases"].extra
    assert extra.rows == len(extra.flow_day)  # deadlines ahead only
    assert _caseload(db_url, world.city) == 302


def test_days_pass_without_a_rebuild(db_url, world, started, monkeypatch) -> None:
    """A cube's arrays end on the day they were read. Days later, caught up but never read
    again, it answers as a cube read then: deadlines that were ahead have passed (those
    cases are overdue now), and the cases of the new days count."""
    leaves, _, key = started
    now = dt.datetime.now(dt.UTC)
    with session_scope(db_url) as session:  # open, due in ten days
        due = random_cases(leaves, 3, dt.date.today(), dt.date.today(), seed=21)
        for c in due:
            c["reported_at"] = now - dt.timedelta(hours=1)
            c["deadline"] = now + dt.timedelta(days=10)
            c.update(handled_at=None, visited_at=None, evaluated_at=None, status="received")
            c.update(outcome=None, satisfaction=None, external_id=c["external_id"] + "-due")
        rows = insert_cases(session, leaves, due)
        apply_case_changes(session, [(None, CaseSnapshot.of(r)) for r in rows])
    forget_states()
    read_today = state_of(db_url)  # the deadlines are ahead of its arrays' last day
    later = dt.date.today() + dt.timedelta(days=30)
    monkeypatch.setattr(cube_module, "today", lambda: later)
    with session_scope(db_url) as session:  # a case of that later day
        new = random_cases(leaves, 1, later, later, seed=22)
        new[0]["external_id"] += "-later"
        rows = insert_cases(session, leaves, new)
        apply_case_changes(session, [(None, CaseSnapshot.of(r)) for r in rows])
    loads = state_module.loads[key]
    caught_up = state_of(db_url)
    assert state_module.loads[key] == loads
    assert caught_up.cubes["cases"].period_cum is read_today.cubes["cases"].period_cum
    overdue_now = read_today.cubes["cases"].stock_at(dt.date.today(), ["overdue"]).sum()
    assert caught_up.cubes["cases"].stock_at(later, ["overdue"]).sum() == overdue_now + 3
    incremental = answers(db_url, caught_up.cubes["cases"])
    forget_states()
    assert_same(incremental, answers(db_url, state_of(db_url).cubes["cases"]))


def test_the_log_keeps_the_newest_changes(db_url, world, started, tune) -> None:
    """Pruned to the newest changes up to log_rows delta rows (the newest always), and to
    log_versions versions."""

    leaves, _, _ = started
    tune(prune_every=1)
    tune(log_rows=5)  # a new case is 2-3 delta rows
    for seed in range(10, 14):
        _one_more_case(db_url, leaves, seed)
    with session_scope(db_url) as session:
        newest = get_version(session, "cases")
        kept = session.execute(select(RollupChange.version, RollupChange.rows)).all()
    kept.sort()
    assert kept[-1][0] == newest
    assert sum(r for _, r in kept[1:]) < 5  # fewer than log_rows rows newer than the oldest
    assert sum(r for _, r in kept) >= 5  # and 5 or more newer than the one before it
    tune(log_rows=1)  # even a big change stays, alone
    _one_more_case(db_url, leaves, 20)
    with session_scope(db_url) as session:
        assert session.scalars(select(RollupChange.version)).all() == [newest + 1]
    tune(log_rows=10**6, log_versions=2)
    for seed in range(21, 24):
        _one_more_case(db_url, leaves, seed)
    with session_scope(db_url) as session:
        assert sorted(session.scalars(select(RollupChange.version))) == [newest + 3, newest + 4]


def test_migration_0005_logs_the_current_version(empty_db_url) -> None:
    """Upgrading a database with cases: a row without deltas at the current 'cases'
    version, so a cube read after the upgrade catches up from the first change on."""
    from api.db.migrate import upgrade
    from api.db.models import DatasetVersion

    upgrade(empty_db_url, "0004")
    with session_scope(empty_db_url) as session:
        session.add(DatasetVersion(name="cases", version=41, updated_at=dt.datetime.now(dt.UTC)))
    upgrade(empty_db_url)
    with session_scope(empty_db_url) as session:
        (row,) = session.scalars(select(RollupChange)).all()
    assert (row.version, row.rows, row.deltas) == (41, 0, None)
