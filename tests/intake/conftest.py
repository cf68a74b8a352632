"""Fixtures of the intake tests: API clients by role and small case builders."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import token_for

_ids = itertools.count(1)


def case(**fields) -> dict:
    """A valid case in the tiny world (a point in 东镇南村's first grid) with overrides."""
    base = {
        "source": "12345",
        "external_id": f"E{next(_ids):06d}",
        "category": "neighbour",
        "channel": "hotline_12345",
        "reported_at": (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat(),
        "lon": 121.02,
        "lat": 31.45,
        "description": "  楼上漏水  ",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None or k in fields}


@pytest.fixture
def writer(app, db_url: str, world) -> Iterator[TestClient]:
    """A client acting as the city's intake system."""
    token = token_for(db_url, "intake", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.fixture
def admin(app, db_url: str, world) -> Iterator[TestClient]:
    """A client acting as the city admin (reads and writes)."""
    token = token_for(db_url, "admin", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def rollup_rows(session) -> dict[str, list[tuple]]:
    """Every row of the three rollup tables, sorted (for comparing with a rebuild)."""
    from sqlalchemy import select

    from api.db.models import CaseCloseHistogram, CaseFlowDaily, CaseRollupDaily

    out = {}
    for model in (CaseRollupDaily, CaseFlowDaily, CaseCloseHistogram):
        cols = [c for c in model.__table__.columns]
        rows = session.execute(select(*cols)).all()
        out[model.__tablename__] = sorted(
            tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows
        )
    return out


def assert_rollups_equal_recount(db_url: str) -> None:
    """The rollups kept by intake equal (1) a count of the raw cases done here and (2) what
    the metrics engine's set-based rebuild makes from table ``case``."""
    from collections import Counter
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from api.db.models import Case, CaseRollupDaily
    from api.db.session import session_factory
    from api.engine.rollup import rebuild_rollups

    session = session_factory(db_url)()
    try:
        zone = ZoneInfo("Asia/Shanghai")
        cases = session.execute(
            select(
                Case.leaf_unit_id, Case.reported_at, Case.category, Case.channel, Case.handled_at
            )
        ).all()
        want = Counter()
        want_closed = Counter()
        for leaf, at, cat, chan, handled in cases:
            key = (leaf, at.astimezone(zone).date(), cat, chan)
            want[key] += 1
            want_closed[key] += handled is not None
        got = {
            (r.leaf_unit_id, r.day, r.category, r.channel): (r.cases, r.closed)
            for r in session.execute(select(CaseRollupDaily)).scalars()
        }
        assert got == {k: (n, want_closed[k]) for k, n in want.items()}
        kept = rollup_rows(session)
        rebuild_rollups(session)
        session.flush()
        assert rollup_rows(session) == kept
    finally:
        session.rollback()
        session.close()
