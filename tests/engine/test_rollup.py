"""The incremental rollup path and the set-based rebuild give exactly the same rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from sqlalchemy import select

from api.db.models import Case, CaseCloseHistogram, CaseFlowDaily, CaseRollupDaily
from api.db.session import session_scope
from api.db.versions import get_version
from api.engine.rollup import CaseSnapshot, apply_case_changes, rebuild_rollups
from tests.engine.cases import insert_cases, leaf_ids, random_cases

TABLES = (CaseRollupDaily, CaseFlowDaily, CaseCloseHistogram)


def table_rows(session) -> dict[str, dict[tuple, tuple]]:
    out = {}
    for model in TABLES:
        cols = [c.name for c in model.__table__.columns]
        keys = [c.name for c in model.__table__.primary_key.columns]
        rows = {}
        for row in session.execute(select(model.__table__)).mappings():
            rows[tuple(row[k] for k in keys)] = tuple(
                round(row[c], 6) if isinstance(row[c], float) else row[c]
                for c in cols
                if c not in keys
            )
        out[model.__tablename__] = rows
    return out


def test_apply_equals_rebuild(db_url: str, world) -> None:
    rng = random.Random(7)
    with session_scope(db_url) as session:
        leaves = leaf_ids(session)
        cases = random_cases(leaves, 300, dt.date(2026, 1, 1), dt.date(2026, 3, 31), seed=3)
        rows = insert_cases(session, leaves, cases)
        apply_case_changes(session, [(None, CaseSnapshot.of(c)) for c in rows])
        # change some cases (close, reopen, move) and delete others
        changes = []
        for case in rng.sample(rows, 80):
            old = CaseSnapshot.of(case)
            if case.handled_at is None:
                case.handled_at = case.reported_at + dt.timedelta(days=rng.uniform(0, 40))
                case.outcome = "mediated_success"
                case.satisfaction = 5
            else:
                case.handled_at = None
                case.outcome = None
                case.satisfaction = None
                case.leaf_unit_id = rng.choice(list(leaves.values()))
            changes.append((old, CaseSnapshot.of(case)))
        gone = rng.sample([c for c in rows], 30)
        for case in gone:
            changes.append((CaseSnapshot.of(case), None))
        session.flush()
        gone_ids = {c.id for c in gone}
        for case in gone:
            session.delete(case)
        session.flush()
        before = get_version(session, "cases")
        apply_case_changes(session, changes)
        assert get_version(session, "cases") == before + 1
        incremental = table_rows(session)
        rebuild_rollups(session)
        rebuilt = table_rows(session)
        assert session.scalar(select(Case.id).where(Case.id.in_(gone_ids))) is None
    assert incremental == rebuilt
    assert sum(v[0] for v in rebuilt["case_rollup_daily"].values()) == 270


def test_day_is_shanghai_day(db_url: str, world) -> None:
    """A case reported at 17:30 UTC counts on the next Shanghai day, on both paths."""
    with session_scope(db_url) as session:
        leaves = leaf_ids(session)
        base = random_cases(leaves, 1, dt.date(2026, 5, 1), dt.date(2026, 5, 1), seed=1)[0]
        base["reported_at"] = dt.datetime(2026, 4, 30, 17, 30, tzinfo=dt.UTC)
        base["deadline"] = base["reported_at"] + dt.timedelta(days=3)
        base["handled_at"] = base["reported_at"] + dt.timedelta(days=2, hours=23)
        (case,) = insert_cases(session, leaves, [base])
        rebuild_rollups(session)
        days = session.scalars(select(CaseRollupDaily.day)).all()
        hist = session.execute(select(CaseCloseHistogram.day, CaseCloseHistogram.days)).all()
        assert days == [dt.date(2026, 5, 1)]
        assert [tuple(h) for h in hist] == [(dt.date(2026, 5, 1), 2)]
        session.execute(CaseRollupDaily.__table__.delete())
        session.execute(CaseCloseHistogram.__table__.delete())
        session.execute(CaseFlowDaily.__table__.delete())
        apply_case_changes(session, [(None, CaseSnapshot.of(case))])
        assert session.scalars(select(CaseRollupDaily.day)).all() == [dt.date(2026, 5, 1)]


def test_no_change_is_no_write(db_url: str, world) -> None:
    with session_scope(db_url) as session:
        leaves = leaf_ids(session)
        (case,) = insert_cases(
            session, leaves, random_cases(leaves, 1, dt.date(2026, 1, 1), dt.date(2026, 1, 1))
        )
        snap = CaseSnapshot.of(case)
        before = get_version(session, "cases")
        apply_case_changes(session, [(snap, dataclasses.replace(snap))])
        assert get_version(session, "cases") == before
        assert session.scalar(select(CaseRollupDaily.cases)) is None


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_rebuild_command_restores_the_rollups(db_url: str, world, monkeypatch) -> None:
    """``zhili db rebuild-rollups`` recomputes from the cases what ingest maintained."""
    from click.testing import CliRunner

    from api.cli import main
    from api.settings import get_settings

    with session_scope(db_url) as session:
        leaves = leaf_ids(session)
        cases = random_cases(leaves, 120, dt.date(2025, 11, 1), dt.date(2026, 2, 28), seed=9)
        rows = insert_cases(session, leaves, cases)
        apply_case_changes(session, [(None, CaseSnapshot.of(c)) for c in rows])
        maintained = table_rows(session)
        for model in TABLES:  # lose the rollups (a bad restore, a manual edit...)
            session.execute(model.__table__.delete())
    monkeypatch.setenv("ZHILI_DATABASE_URL", db_url)
    try:
        result = CliRunner().invoke(main, ["db", "rebuild-rollups", "--database-url", db_url])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "from 120 cases" in result.output
    with session_scope(db_url) as session:
        assert table_rows(session) == maintained
    assert sum(v[0] for v in maintained["case_rollup_daily"].values()) == 120
