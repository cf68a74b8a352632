"""Several writers at once with overlapping batches: each case once, rollups == recount."""

from __future__ import annotations

import datetime as dt
import random
import threading

from sqlalchemy import func, select

from api.db.models import Case
from api.db.session import session_factory, session_scope
from api.schemas.cases import parse_batch
from api.services.cases import frame_from_items, ingest_frame
from tests.intake.conftest import assert_rollups_equal_recount

KEYS = 240
THREADS = 4


def item(k: int, category: str) -> dict:
    rnd = random.Random(k)
    return {
        "source": "110",
        "external_id": f"K{k:04d}",
        "category": category,
        "channel": "police_110",
        "reported_at": (
            dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=rnd.randrange(2000))
        ).isoformat(),
        "lon": 121.0 + rnd.random() * 0.3,
        "lat": 31.4 + rnd.random() * 0.2,
    }


def test_overlapping_batches_from_several_threads_store_each_case_once(db_url, world):
    import orjson

    errors: list[BaseException] = []
    statuses: list[str] = []
    start = threading.Barrier(THREADS)

    def writer(t: int) -> None:
        rnd = random.Random(100 + t)
        try:
            start.wait()
            for _ in range(3):
                keys = rnd.sample(range(KEYS), 120)
                # thread 3 re-sends some cases with another category: updates race too
                batch = [item(k, "labour" if t == 3 and k % 4 == 0 else "neighbour") for k in keys]
                items, bad, _ = parse_batch(orjson.dumps(batch))
                assert not bad
                session = session_factory(db_url)()
                try:
                    report = ingest_frame(
                        session, frame_from_items(items), user_name=f"t{t}", scope_code=world.city
                    )
                finally:
                    session.close()
                statuses.extend(o.status for o in report.items)
        except BaseException as exc:  # reported below, on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert "rejected" not in statuses
    sent = {
        k for t in range(THREADS) for k in _sent_keys(t)
    }  # the keys the threads drew, recomputed
    with session_scope(db_url) as session:
        total = session.scalar(select(func.count()).select_from(Case))
        distinct = session.scalar(
            select(func.count()).select_from(
                select(Case.source, Case.external_id).distinct().subquery()
            )
        )
        stored = set(session.scalars(select(Case.external_id)))
    assert total == distinct == len(sent)
    assert stored == {f"K{k:04d}" for k in sent}
    assert statuses.count("created") == len(sent)
    assert_rollups_equal_recount(db_url)


def _sent_keys(t: int) -> set[int]:
    rnd = random.Random(100 + t)
    return {k for _ in range(3) for k in rnd.sample(range(KEYS), 120)}
