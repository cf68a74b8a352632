"""The case desk at scale: a town's work queue with 5,000 open cases, and one action.

Writes (it acts on cases), so it runs on a COPY of the metro database, never on
``zhili_metro`` itself::

    psql -c "CREATE DATABASE zhili_metro_copy TEMPLATE zhili_metro"
    python -m api db upgrade --database-url postgresql://postgres@127.0.0.1:5432/zhili_metro_copy
    python -m bench.bench_desk postgresql://postgres@127.0.0.1:5432/zhili_metro_copy

It picks the town with the most open cases and hands the town's desk 5,000 of its cases
not yet evaluated — all its open ones (1,606 at metro: no town has 5,000 open), the rest
awaiting 访 or 评, which the queue lists too (``handling_unit_code``; a database seeded
before routing has none) —, then times in process
(the service functions the routes call, no HTTP): the queue (``queue=mine``, 200 most
urgent, and ``show=overdue``), 受理 accept on 200 cases and 上报 escalate on 200 others.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

from sqlalchemy import text

from api.db.session import session_factory, session_scope
from api.principal import Principal
from api.services.desk import ActionRequest, act
from api.services.desk_queue import work_queue
from api.services.routing import set_up_routing
from bench.common import summarize, timed

QUEUE_SIZE = 5000
ACTIONS = 200


def _prepare(url: str) -> tuple[str, list[int]]:
    with session_scope(url) as session:
        set_up_routing(session)
        town = session.execute(
            text(
                'SELECT a.ancestor_code FROM "case" c JOIN unit_ancestry a '
                "ON a.unit_id = c.leaf_unit_id AND a.ancestor_level = 'town' "
                "WHERE c.handled_at IS NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
        ids = session.scalars(
            text(
                'SELECT c.id FROM "case" c JOIN unit_ancestry a ON a.unit_id = c.leaf_unit_id '
                "AND a.ancestor_code = :town WHERE c.status <> 'evaluated' "
                "ORDER BY c.handled_at IS NOT NULL, c.id LIMIT :n"
            ),
            {"town": town, "n": QUEUE_SIZE},
        ).all()
        session.execute(
            text(
                'UPDATE "case" SET handling_unit_code = :town, department_id = NULL, '
                "accepted_at = NULL WHERE id = ANY(:ids)"
            ),
            {"town": town, "ids": list(ids)},
        )
        session.execute(text('ANALYZE "case"'))
    return town, list(ids)


def run(url: str) -> dict:
    """Queue and action timings (ms) at the town with the most open cases."""
    town, ids = _prepare(url)
    official = Principal(0, "bench-official", "official", town)
    factory = session_factory(url)
    out: dict = {"town": town, "queue_cases": len(ids)}
    with factory() as session:
        out["open_in_queue"] = session.execute(
            text('SELECT count(*) FROM "case" WHERE id = ANY(:ids) AND handled_at IS NULL'),
            {"ids": ids},
        ).scalar_one()

    def queue(show: str | None = None) -> None:
        with factory() as session:
            answer = work_queue(session, official, show=show)
            assert answer["items"], "the queue is empty"

    out["queue_200_most_urgent"] = timed(queue, repeat=30)
    out["queue_overdue"] = timed(lambda: queue("overdue"), repeat=30)

    def actions(case_ids: list[int], action: str, **extra) -> dict:
        samples = []
        for case_id in case_ids:
            with factory() as session:
                version = session.execute(
                    text('SELECT version FROM "case" WHERE id = :i'), {"i": case_id}
                ).scalar_one()
                session.rollback()
                request = ActionRequest(action, version, key=uuid.uuid4().hex, **extra)
                t0 = time.perf_counter()
                act(session, official, case_id, request)
                samples.append((time.perf_counter() - t0) * 1000)
        return summarize(samples)

    open_ids = ids[: out["open_in_queue"]]  # the open ones come first
    out["accept"] = actions(open_ids[:ACTIONS], "accept")
    out["escalate"] = actions(open_ids[ACTIONS : 2 * ACTIONS], "escalate", reason="bench")
    return out


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1]), indent=2, ensure_ascii=False))
