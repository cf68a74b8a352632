"""API benchmark: children/metrics and choropleth latency per level and period length,
beside the plain PostgreSQL GROUP BY over ``case`` answering the same question.

    python -m bench.bench_api [DATABASE_URL]        # default: the metro database on PostGIS
    python -m bench --only api

Server-side figures: the app runs in this process behind Starlette's TestClient (no network,
no uvicorn), warm (the cube is built by a first request, display geometry cached), each
request timed from send to the last byte. The baseline runs, in the same process, the
SQL a system without rollups would run: one GROUP BY over the cases of the period, by the
units shown (joined through unit_ancestry), for count and closed count.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
import uuid

from sqlalchemy import select, text

from api.db.models import AdminUnit
from api.db.session import dispose_engines, session_scope
from bench.common import ratio, rss_mb, summarize

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/zhili_metro"
REPEAT = 30


def _token(url: str, root: str) -> str:
    from api.services.auth import create_user, issue_token

    with session_scope(url) as session:
        user = create_user(session, f"bench-{uuid.uuid4().hex[:8]}", "admin", root)
        return issue_token(session, user, ttl_days=1)


def _pick_units(url: str) -> dict[str, str]:
    """The root, its biggest child, and that child's biggest child (by current children)."""
    with session_scope(url) as session:
        root = session.scalar(
            select(AdminUnit.code).where(
                AdminUnit.parent_code.is_(None), AdminUnit.valid_to.is_(None)
            )
        )

        def biggest_child(code: str) -> str | None:
            return session.execute(
                text(
                    "SELECT p.code FROM admin_unit p JOIN admin_unit c ON c.parent_code = p.code "
                    "AND c.valid_to IS NULL WHERE p.parent_code = :code AND p.valid_to IS NULL "
                    "GROUP BY p.code ORDER BY COUNT(*) DESC, p.code LIMIT 1"
                ),
                {"code": code},
            ).scalar()

        town = biggest_child(root)
        village = biggest_child(town) if town else None
    return {"root": root, "town": town, "village": village}


def _time(client, path: str, params: dict, repeat: int = REPEAT) -> dict:
    r = client.get(path, params=params)
    assert r.status_code == 200, (path, params, r.status_code, r.text[:300])
    samples = []
    size = len(r.content)
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(path, params=params)
        _ = r.content
        samples.append((time.perf_counter() - t0) * 1000)
    return {**summarize(samples), "bytes": size}


def _baseline(url: str, ancestor_level: str, parent: str, start: dt.date, end: dt.date) -> dict:
    """The plain GROUP BY over ``case`` for the same children and period."""
    sql = text(
        """
        SELECT a.ancestor_code, COUNT(*), COUNT(c.handled_at)
        FROM "case" c
        JOIN unit_ancestry a ON a.unit_id = c.leaf_unit_id AND a.ancestor_level = :level
        JOIN unit_ancestry p ON p.unit_id = c.leaf_unit_id AND p.ancestor_code = :parent
        WHERE c.reported_at >= (CAST(:start AS date)::timestamp AT TIME ZONE 'Asia/Shanghai')
          AND c.reported_at < (CAST(:end AS date)::timestamp AT TIME ZONE 'Asia/Shanghai')
        GROUP BY a.ancestor_code
        """
    )
    params = {"level": ancestor_level, "parent": parent, "start": start,
              "end": end + dt.timedelta(days=1)}  # fmt: skip
    samples = []
    with session_scope(url) as session:
        session.execute(sql, params).all()  # warm
        for _ in range(5):
            t0 = time.perf_counter()
            session.execute(sql, params).all()
            samples.append((time.perf_counter() - t0) * 1000)
    return summarize(samples)


def _plain_village_year(url: str, end: dt.date) -> dict:
    """The issue's reference: one year of cases by village, plain GROUP BY."""
    sql = text(
        'SELECT village_code, COUNT(*), COUNT(handled_at) FROM "case" '
        "WHERE reported_at >= :a AND reported_at < :b GROUP BY village_code"
    )
    b = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    a = b - dt.timedelta(days=365)
    samples = []
    with session_scope(url) as session:
        session.execute(sql, {"a": a, "b": b}).all()
        for _ in range(5):
            t0 = time.perf_counter()
            session.execute(sql, {"a": a, "b": b}).all()
            samples.append((time.perf_counter() - t0) * 1000)
    return summarize(samples)


def run(database_url: str = DEFAULT_URL, preset: str = "metro") -> dict:
    """Measure and print; returns the figures."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.db.session import normalize_url
    from api.metrics.cube import engine_state
    from api.settings import Settings

    url = normalize_url(database_url)
    units = _pick_units(url)
    with session_scope(url) as session:
        cases = session.scalar(text('SELECT COUNT(*) FROM "case"'))
        levels = [
            r[0] for r in session.execute(text("SELECT code FROM admin_level ORDER BY depth"))
        ]
    print(f"api bench on {url.rsplit('@', 1)[-1]}: {cases:,} cases; units {units}")
    token = _token(url, units["root"])
    app = create_app(Settings(database_url=url), with_dashboard=False)
    out: dict = {"cases": cases, "units": units, "children_metrics": [], "choropleth": []}
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        t0 = time.perf_counter()
        with session_scope(url) as session:
            state = engine_state(session)
        out["cube_build_s"] = round(time.perf_counter() - t0, 2)
        last = state.cube.last_case_day or dt.date.today()
        out["cube_mb"] = round(
            (state.cube.period_cum.nbytes + state.cube.stock_cum.nbytes) / 2**20, 1
        )
        out["rss_mb"] = rss_mb()
        print(
            f"cube built in {out['cube_build_s']} s, {out['cube_mb']} MiB; RSS {out['rss_mb']} MiB"
        )
        periods = {"7d": 7, "30d": 30, "365d": 365, "1095d": 1095}
        parents = [(units["root"], levels[1]), (units["town"], levels[2]),
                   (units["village"], levels[3] if len(levels) > 3 else levels[-1])]  # fmt: skip
        print(f"{'endpoint':<22}{'parent level':<14}{'period':<8}{'median ms':>10}{'p95 ms':>9}"
              f"{'GROUP BY ms':>13}{'ratio':>8}")  # fmt: skip
        for parent, child_level in parents:
            if parent is None:
                continue
            for label, days in periods.items():
                start = last - dt.timedelta(days=days - 1)
                params = {"metric": "resolution_rate", "start": str(start), "end": str(last),
                          "compare": "yoy"}  # fmt: skip
                ours = _time(client, f"/api/v1/units/{parent}/children/metrics", params)
                base = _baseline(url, child_level, parent, start, last)
                row = {"parent": parent, "child_level": child_level, "period": label, **ours,
                       "group_by_median_ms": base["median_ms"],
                       "ratio": ratio(base["median_ms"], ours["median_ms"])}  # fmt: skip
                out["children_metrics"].append(row)
                print(f"{'children/metrics':<22}{child_level:<14}{label:<8}"
                      f"{ours['median_ms']:>10}{ours['p95_ms']:>9}{base['median_ms']:>13}"
                      f"{row['ratio']:>8}")  # fmt: skip
        for level in levels[1:]:
            for label in ("30d", "365d"):
                start = last - dt.timedelta(days=periods[label] - 1)
                params = {"parent": units["root"], "level": level, "metric": "caseload_per_10k",
                          "start": str(start), "end": str(last), "compare": "yoy"}  # fmt: skip
                repeat = 10 if level == levels[-1] else REPEAT
                ours = _time(client, "/api/v1/choropleth", params, repeat)
                base = _baseline(url, level, units["root"], start, last)
                row = {"parent": units["root"], "level": level, "period": label, **ours,
                       "group_by_median_ms": base["median_ms"],
                       "ratio": ratio(base["median_ms"], ours["median_ms"])}  # fmt: skip
                out["choropleth"].append(row)
                print(f"{'choropleth':<22}{level:<14}{label:<8}{ours['median_ms']:>10}"
                      f"{ours['p95_ms']:>9}{base['median_ms']:>13}{row['ratio']:>8}"
                      f"   {ours['bytes'] / 1e6:.2f} MB")  # fmt: skip
        ref = _plain_village_year(url, last)
        out["plain_group_by_village_year_ms"] = ref["median_ms"]
        print(f"reference: plain GROUP BY village over one year of cases: {ref['median_ms']} ms")
        meds = [r["median_ms"] for r in out["children_metrics"]]
        out["children_metrics_median_of_medians_ms"] = round(statistics.median(meds), 2)
    dispose_engines()
    return out


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL)
