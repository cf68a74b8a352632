"""A bulk import (two writers, the bulk path) while the API takes batches that share cases
with the file: neither fails nor waits forever (a deadlock between the two is detected by
the database and retried), each case is stored once, the rollups equal a recount."""

from __future__ import annotations

import csv
import datetime as dt
import threading

from sqlalchemy import func, select

from api.db.models import Case
from api.db.session import session_factory, session_scope
from api.services.case_import import import_cases
from tests.intake.conftest import assert_rollups_equal_recount

ROWS = 1_500
POINTS = [(121.02, 31.45), (121.15, 31.55), (121.05, 31.52), (121.08, 31.47)]


def item(k: int, category: str) -> dict:
    lon, lat = POINTS[k % len(POINTS)]
    when = dt.datetime(2025, 3, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=97 * k)
    return {
        "source": "hotline",
        "external_id": f"H{k:05d}",
        "category": category,
        "channel": "hotline_12345",
        "reported_at": when.isoformat(),
        "lon": lon,
        "lat": lat,
    }


def test_an_import_and_api_batches_of_the_same_cases_both_finish(
    db_url, world, writer, tmp_path, monkeypatch
):
    import api.services.case_import as case_import

    monkeypatch.setattr(case_import, "CHUNK_ROWS", 150)
    path = tmp_path / "file.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=list(item(0, "x")))
        out.writeheader()
        out.writerows(item(k, "neighbour") for k in range(ROWS))
    errors: list[BaseException] = []
    answers: list[int] = []
    start = threading.Barrier(3)

    def api(offset: int) -> None:
        """Batches of 100 that re-send file cases (some re-categorised) and new ones."""
        try:
            start.wait()
            for b in range(4):
                keys = range(offset + 300 * b, offset + 300 * b + 100)
                batch = [item(k, "labour" if k % 5 == 0 else "neighbour") for k in keys]
                batch += [item(ROWS + offset + 300 * b + j, "family") for j in range(20)]
                answers.append(writer.post("/api/v1/cases", json=batch).status_code)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=api, args=(o,)) for o in (0, 150)]
    for t in threads:
        t.start()
    session = session_factory(db_url)()
    try:
        start.wait()
        summary = import_cases(session, path, writers=2)
    finally:
        session.close()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert answers == [200] * 8
    assert summary.rows == ROWS and summary.rejected == 0
    with session_scope(db_url) as session:
        total = session.scalar(select(func.count()).select_from(Case))
        keys = session.scalar(
            select(func.count()).select_from(
                select(Case.source, Case.external_id).distinct().subquery()
            )
        )
    assert total == keys == ROWS + 2 * 4 * 20
    assert_rollups_equal_recount(db_url)
