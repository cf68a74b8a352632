"""Event maps at metro: the numbers of every level's map for the dispatch-event metrics,
timed in this process as the dashboard's map reads them (``dashboard/client.py``: a
session, ``choropleth_table``, ``map_figures``), and the children/metrics answer
(``api.engine.children_metrics``, what ``GET /units/{code}/children/metrics`` serves)
for the same parents. Target: ≤ 20 ms median, ≤ 50 ms p95 at every level.

    python -m bench.bench_events DATABASE_URL   # a COPY of metro with events seeded:
    # CREATE DATABASE zhili_metro_<you> TEMPLATE zhili_metro; python -m api db upgrade
    # --database-url ...; then seed.events.seed_events(session, "metro") on it

Not measured here: the HTTP round trip (``bench_api`` measures it for cases; the route is
the same), the coverage endpoint, the import speed.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import sys

from sqlalchemy import func, select

from api.db.events import DispatchEvent
from api.db.session import session_factory, session_scope
from api.engine import MapQuery, MetricQuery, children_metrics, choropleth_table
from api.memory import quiet_garbage_collector
from bench.bench_api import _pick_units
from bench.common import rss_mb, timed
from dashboard.client import map_figures

CONTROL = ("resolution_rate",)  # a case metric, timed beside them under the same load
METRICS = (
    *CONTROL,
    "on_scene_5min_rate",
    "median_minutes_to_scene",
    "set_off_3min_rate",
    "dispatch_events",
)
REPEAT = 30


def run(url: str) -> dict:
    """Time each metric's map at each level and period; print and return the rows."""
    units = _pick_units(url)
    with session_scope(url) as session:
        last = session.scalar(select(func.max(DispatchEvent.received_at))).date()
        n_events = session.scalar(select(func.count()).select_from(DispatchEvent))
    periods = {"month": 30, "year": 365}
    levels = [(units[k], k) for k in sorted(units)]  # (parent, its key): children shown
    rows = []
    before = quiet_garbage_collector()
    try:
        with session_factory(url)() as session:  # load the state once (cube, snapshot)
            children_metrics(session, units["root"], MetricQuery("dispatch_events"))
        for metric in METRICS:
            for label, days in periods.items():
                start = last - dt.timedelta(days=days - 1)
                query = MetricQuery(metric, str(start), str(last), compare="yoy")
                for parent, _key in levels:
                    with session_factory(url)() as session:
                        level = _child_level(session, parent)
                    if level is None:
                        continue

                    def numbers(p=parent, lv=level, q=query) -> list:
                        with session_factory(url)() as s:
                            return map_figures(choropleth_table(s, MapQuery(p, lv), q))

                    def children(p=parent, q=query) -> dict:
                        with session_factory(url)() as s:
                            return children_metrics(s, p, q)

                    shown = len(numbers())
                    for what, fn in (("map numbers", numbers), ("children/metrics", children)):
                        t = timed(fn, REPEAT, warmup=2)
                        row = {
                            "what": what,
                            "metric": metric,
                            "period": label,
                            "level": level,
                            "parent": parent,
                            "units": shown,
                            **t,
                        }
                        rows.append(row)
                        print(
                            f"{what:17} {metric:24} {label:5} {level:8} {shown:5} units  "
                            f"median {t['median_ms']:6.2f} ms  p95 {t['p95_ms']:6.2f} ms"
                        )
    finally:
        gc.set_threshold(*before)
        gc.collect()
    ours = [r for r in rows if r["metric"] not in CONTROL]
    control = [r for r in rows if r["metric"] in CONTROL]
    worst_median = max(r["median_ms"] for r in ours)
    worst_p95 = max(r["p95_ms"] for r in ours)
    print(
        f"control (cases, {CONTROL[0]}): worst median "
        f"{max(r['median_ms'] for r in control)} ms, worst p95 "
        f"{max(r['p95_ms'] for r in control)} ms"
    )
    verdict = worst_median <= 20 and worst_p95 <= 50
    print(
        f"events: {n_events:,}; worst median {worst_median} ms, worst p95 {worst_p95} ms; "
        f"all within 20/50 ms: {verdict}; rss {rss_mb()} MiB"
    )
    return {"events": n_events, "rows": rows, "within_target": verdict}


def _child_level(session, code: str) -> str | None:
    from api.db.models import AdminUnit

    return session.scalar(
        select(AdminUnit.level)
        .where(AdminUnit.parent_code == code, AdminUnit.valid_to.is_(None))
        .limit(1)
    )


if __name__ == "__main__":
    out = run(
        sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/zhili_metro"
    )
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}))
