"""A tiny world with random cases over 2023-2026 (leap day 2024-02-29 included), rollups
rebuilt, and an admin client. ``expected`` computes answers straight from the case dicts."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass

import pytest

from api.db.session import session_scope
from api.engine import forget_states
from api.engine.rollup import CaseSnapshot, apply_case_changes
from api.engine.tuning import tuned
from tests.engine.cases import insert_cases, leaf_ids, random_cases


@dataclass
class CasedWorld:
    world: object
    cases: list[dict]
    leaves: dict[str, int]


@pytest.fixture
def cased(db_url: str, world) -> CasedWorld:
    forget_states()
    with session_scope(db_url) as session:
        leaves = leaf_ids(session)
        cases = random_cases(leaves, 500, dt.date(2023, 1, 1), dt.date(2026, 6, 30), seed=11)
        leap = random_cases(leaves, 12, dt.date(2024, 2, 29), dt.date(2024, 2, 29), seed=12)
        for c in leap:
            c["external_id"] += "-leap"
        cases += leap
        rows = insert_cases(session, leaves, cases)
        apply_case_changes(session, [(None, CaseSnapshot.of(r)) for r in rows])
    return CasedWorld(world, cases, leaves)


@pytest.fixture
def tune():
    """Tune the engine for one test: ``tune(extra_rows=3)``; back to its defaults after."""
    with contextlib.ExitStack() as stack:
        yield lambda **changes: stack.enter_context(tuned(**changes))
