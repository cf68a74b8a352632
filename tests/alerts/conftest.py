"""Fixtures of the alerts tests: daily counts written straight into the rollup tables of
the tiny world (the detector reads rollups only)."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, CaseFlowDaily, CaseRollupDaily
from api.domain import CATEGORIES

START = dt.date(2025, 1, 6)  # a Monday


def leaf_id(session: Session, village: str) -> int:
    """The id of a leaf unit inside ``village``: its first grid, or the village itself."""
    grid = session.scalar(
        select(AdminUnit.id).where(AdminUnit.parent_code == village).order_by(AdminUnit.code)
    )
    return grid or session.scalar(select(AdminUnit.id).where(AdminUnit.code == village))


def write_counts(session: Session, villages: list[str], counts: np.ndarray) -> None:
    """``counts[c, v, d]``: cases of CATEGORIES[c] in villages[v] on START + d."""
    rows = []
    for v, village in enumerate(villages):
        leaf = leaf_id(session, village)
        for c, d in zip(*np.nonzero(counts[:, v, :]), strict=True):
            n = int(counts[c, v, d])
            rows.append(
                {
                    "leaf_unit_id": leaf,
                    "day": START + dt.timedelta(days=int(d)),
                    "category": CATEGORIES[c].code,
                    "channel": "hotline_12345",
                    "cases": n,
                    "closed": n,
                    "closed_on_time": n,
                    "satisfaction_sum": 0,
                }
            )
    session.execute(insert(CaseRollupDaily), rows)


def write_overdue(session: Session, village: str, became: np.ndarray, cleared: np.ndarray):
    """Daily overdue flows of one village (``became_overdue``, ``overdue_closed``)."""
    leaf = leaf_id(session, village)
    rows = [
        {
            "leaf_unit_id": leaf,
            "day": START + dt.timedelta(days=d),
            "category": "neighbour",
            "opened": 0,
            "closed": 0,
            "became_overdue": int(became[d]),
            "overdue_closed": int(cleared[d]),
        }
        for d in range(len(became))
        if became[d] or cleared[d]
    ]
    session.execute(insert(CaseFlowDaily), rows)


def quiet_counts(n_villages: int, days: int, seed: int, rate: float = 3.0) -> np.ndarray:
    """Poisson counts with a weekly rhythm, categories by fixed shares."""
    rng = np.random.default_rng(seed)
    weekly = np.array([1.1, 1.05, 1.0, 1.0, 1.05, 0.85, 0.75])[np.arange(days) % 7]
    shares = np.linspace(2, 1, len(CATEGORIES))
    shares /= shares.sum()
    lam = rate * shares[:, None, None] * weekly[None, None, :] * np.ones((1, n_villages, 1))
    return rng.poisson(lam).astype(np.int64)


@pytest.fixture(scope="module")
def quiet_small_world_url(sqlite_template, tmp_path_factory) -> str:
    """The small seed world without its planted bursts (SQLite, built once per module)."""
    from api.db.session import dispose_engines
    from seed.build import seed_database

    path = tmp_path_factory.mktemp("quiet_small") / "quiet.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    seed_database(url, preset="small", seed=1, bursts=False, progress=False)
    dispose_engines()
    return url
