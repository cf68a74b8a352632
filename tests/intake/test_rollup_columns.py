"""Intake's bulk rollup path: new cases given as columns (``apply_case_changes(added=...)``,
no snapshot per case) move the rollups exactly as snapshots do and as the rebuild counts."""

from __future__ import annotations

import datetime as dt

from api.db.session import session_scope
from api.engine.rollup import CaseSnapshot, apply_case_changes, case_columns, rebuild_rollups
from tests.engine.cases import insert_cases, leaf_ids, random_cases
from tests.engine.test_rollup import table_rows


def test_added_columns_equal_snapshots_and_rebuild(db_url: str, world) -> None:
    with session_scope(db_url) as session:
        leaves = leaf_ids(session)
        cases = random_cases(leaves, 240, dt.date(2025, 12, 20), dt.date(2026, 2, 10), seed=5)
        rows = insert_cases(session, leaves, cases)
        snaps = [CaseSnapshot.of(c) for c in rows]
        closed = [s for s in snaps if s.handled_at is not None]
        still_open = [s for s in snaps if s.handled_at is None]
        assert closed and still_open
        # closed cases with every column; open ones with only the intake columns (what
        # intake passes); a few as snapshots, in the same call
        full = case_columns(closed[10:])
        intake_only = {
            k: v
            for k, v in case_columns(still_open[10:]).items()
            if k in ("leaf_unit_id", "reported_at", "deadline", "category", "channel")
        }
        apply_case_changes(session, [(None, s) for s in closed[:10] + still_open[:10]])
        apply_case_changes(session, [], added=full)
        apply_case_changes(session, [], added=intake_only)
        incremental = table_rows(session)
        rebuild_rollups(session)
        assert incremental == table_rows(session)
        assert sum(v[0] for v in incremental["case_rollup_daily"].values()) == 240
