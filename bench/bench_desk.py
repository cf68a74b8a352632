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

A database seeded before the desk has no timeline: the bench first writes a 办 entry per
closed case (about 5 M at metro, as the seed does) and fills the desk's rollups from them
(``rebuild``), so that each action is timed against a metro-sized timeline: an action
moves one daily rollup row (``apply_changes``), whatever the timeline's size. It then
times the flow (Sankey) of the town and of the city over 30 days and a year, summed from
the rollups, and reports the load average before and after.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import uuid

from sqlalchemy import text

from api.db.session import session_factory, session_scope
from api.engine import DESK, rebuild
from api.principal import Principal
from api.services.desk import ActionRequest, act
from api.services.desk_flow import case_flow
from api.services.desk_queue import work_queue
from api.services.routing import set_up_routing
from bench.common import summarize, timed

QUEUE_SIZE = 5000
ACTIONS = 200


def _fill_timeline(url: str) -> dict:
    """A 办 entry per closed case (the seed's ``INSERT .. SELECT``, the handler its village
    when the case predates routing) and the desk's rollups rebuilt, when the timeline is
    empty; the seconds each took."""
    out: dict = {}
    with session_scope(url) as session:
        if session.execute(text("SELECT 1 FROM case_action LIMIT 1")).first() is not None:
            out["timeline_rows"] = session.execute(
                text("SELECT count(*) FROM case_action")
            ).scalar_one()
            return out
        session.execute(text("SET LOCAL work_mem = '512MB'"))
        t0 = time.perf_counter()
        out["timeline_rows"] = session.execute(
            text(
                "INSERT INTO case_action (case_id, leaf_unit_id, at, action, user_name, "
                "from_unit, from_level, to_unit, to_level, held_seconds, version, "
                "from_node, to_node) "
                "SELECT c.id, c.leaf_unit_id, c.handled_at, 'handle', 'seed', u.code, u.level, "
                "u.code, u.level, GREATEST(0, EXTRACT(EPOCH FROM c.handled_at - "
                "COALESCE(c.handler_since, c.received_at, c.reported_at))), c.version, "
                "'level:' || u.level, 'level:' || u.level "
                'FROM "case" c JOIN admin_unit u ON u.code = '
                "COALESCE(c.handling_unit_code, c.village_code) AND u.valid_to IS NULL "
                "WHERE c.handled_at IS NOT NULL"
            )
        ).rowcount
        out["timeline_insert_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        rebuild(session, DESK)
        out["desk_rollup_rebuild_s"] = round(time.perf_counter() - t0, 1)
    with session_scope(url) as session:
        out["desk_rollup_rows"] = session.execute(
            text("SELECT count(*) FROM desk_rollup_daily")
        ).scalar_one()
    return out


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
    out: dict = {"load_average_before": os.getloadavg()}
    out |= _fill_timeline(url)
    town, ids = _prepare(url)
    official = Principal(0, "bench-official", "official", town)
    factory = session_factory(url)
    out |= {"town": town, "queue_cases": len(ids)}
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
    with factory() as session:
        city = session.execute(
            text("SELECT code FROM admin_unit WHERE level = 'city' AND valid_to IS NULL")
        ).scalar_one()
        last = session.execute(text("SELECT max(day) FROM desk_rollup_daily")).scalar_one()
    for name, unit, days in (
        ("flow_town_30_days", town, 30),
        ("flow_city_30_days", city, 30),
        ("flow_city_year", city, 365),
    ):

        def flow(unit=unit, days=days) -> None:
            with factory() as session:
                case_flow(session, unit, last - dt.timedelta(days=days - 1), last)

        out[name] = timed(flow, repeat=15)
    out["load_average_after"] = os.getloadavg()
    return out


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1]), indent=2, ensure_ascii=False))
