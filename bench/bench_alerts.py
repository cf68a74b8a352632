"""Alerts benchmark: recall of planted bursts, false-alert rate and time to compute every
alert, on a metro-size synthetic world and on the seeded metro database.

    python -m bench.bench_alerts                      # synthetic + zhili_metro on PostGIS
    python -m bench.bench_alerts --database-url sqlite:///small.db --preset small
    python -m bench.bench_alerts --synthetic-only
    python -m bench.bench_alerts --database-only      # zhili_metro only, read-only

The database part never writes: its PostgreSQL transaction is READ ONLY (``--with-sync``
also times the alert-table update, rolled back: on a copy of the world only).

Synthetic world: 2,236 villages in 104 towns over 1,095 days, Poisson counts with weekly
rhythm, season, Spring Festival dip, trends and over-dispersion; 200 bursts of 2–5 extra
cases a day (smaller than the seed's 6–15) and the same world without bursts. Figures are
medians over repeats; recall = bursts alerted within 3 days of their start; a false alert
is an episode no burst explains. Wall-clock seconds and, beside them, this process's CPU
seconds (the database's own work not included): on a shared machine the CPU figure is the
steadier one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select

from api.alerts.detector import DetectorConfig, detect_caseload
from api.alerts.evaluate import evaluate_rows
from api.alerts.synthetic import synthetic_world
from api.domain import CATEGORIES
from bench.common import rss_mb

DEFAULT_METRO_URL = "postgresql://postgres@127.0.0.1:5432/zhili_metro"


def _episode_rows(episodes, prefix: str, start: dt.date) -> list[dict]:
    return [
        {
            "unit_code": f"{prefix}{int(episodes.unit[i])}",
            "category": CATEGORIES[int(episodes.series[i]) - 1].code
            if episodes.series[i] > 0
            else None,
            "opened_on": start + dt.timedelta(days=int(episodes.first[i])),
            "last_seen_on": start + dt.timedelta(days=int(episodes.last[i])),
        }
        for i in range(len(episodes))
    ]


def synthetic(repeat: int = 3, seed: int = 1) -> dict[str, Any]:
    """Recall, false alerts and detection time on metro-size synthetic matrices."""
    cfg = DetectorConfig()
    out: dict[str, Any] = {}
    for label, n_bursts in (("bursts", 200), ("quiet", 0)):
        world = synthetic_world(
            n_villages=2236, n_towns=104, days=1095, n_bursts=n_bursts, seed=seed
        )
        levels = [world.village_series(), world.town_series()]
        times, cpu, result = [], [], None
        for _ in range(repeat if label == "bursts" else 1):
            t0, c0 = time.perf_counter(), time.process_time()
            result = detect_caseload(levels, cfg)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        villages, towns = result
        rows = _episode_rows(villages, "v", world.start) + _episode_rows(towns, "t", world.start)
        bursts = [
            SimpleNamespace(
                village_code=f"v{b.village}",
                category=CATEGORIES[b.category].code,
                start=world.start + dt.timedelta(days=b.start),
                days=b.days,
            )
            for b in world.bursts
        ]
        parent = {f"v{i}": f"t{t}" for i, t in enumerate(world.town_of)}
        unit_days = (2236 + 104) * (world.n_days - cfg.history_days)
        figures = evaluate_rows(rows, bursts, parent, unit_days)
        flagged = int(
            (villages.last - villages.first + 1).sum() + (towns.last - towns.first + 1).sum()
        )
        figures["flagged_unit_days_per_1000"] = round(1000 * flagged / unit_days, 3)
        figures["detect_s_median"] = round(statistics.median(times), 2)
        figures["detect_cpu_s_median"] = round(statistics.median(cpu), 2)
        figures["rss_mb"] = rss_mb()
        out[label] = figures
        print(f"synthetic {label:>6}: {figures}", flush=True)
    return out


def locate_bursts(data, bursts) -> list:
    """Each burst at the village whose cases of its category over its days are highest in
    the data (the listed village when it holds at least half the planted extra)."""
    villages = next(lv for lv in data.levels if lv.level == "village")
    index = {c: i for i, c in enumerate(villages.codes)}
    codes = [c.code for c in CATEGORIES]
    out = []
    for b in bursts:
        first = (b.start - data.start).days
        counts = villages.series[1 + codes.index(b.category)][:, first : first + b.days]
        totals = counts.sum(axis=1)
        listed = index.get(b.village_code)
        enough = 0.5 * b.extra_per_day * b.days
        best = int(totals.argmax())
        code = b.village_code if listed is not None and totals[listed] >= enough else None
        out.append(
            SimpleNamespace(
                village_code=code or villages.codes[best],
                category=b.category,
                start=b.start,
                days=b.days,
            )
        )
    return out


def database(
    url: str, preset: str, seed: int = 1, repeat: int = 2, with_sync: bool = False
) -> dict[str, Any]:
    """Recall against ``seed.bursts.planted_bursts`` and time to compute every alert.

    Read-only: on PostgreSQL the transaction is ``READ ONLY`` (the database refuses any
    write), so the metro world is never changed. ``with_sync`` also times the alert-table
    update that ``zhili alerts run`` does (writes, then rolled back: use it on a copy).
    """
    from sqlalchemy import text

    from api.alerts.data import load_matrices
    from api.alerts.lifecycle import compute_alert_rows, run_alerts, unstaffed_grids
    from api.db.models import AdminUnit, CaseRollupDaily
    from api.db.session import session_factory
    from seed.bursts import planted_bursts

    session = session_factory(url)()
    try:
        if not with_sync and session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET TRANSACTION READ ONLY"))
        last = session.scalar(select(func.max(CaseRollupDaily.day)))
        if last is None:
            print(f"database {url.rsplit('@', 1)[-1]}: no rollups (seed it first)", flush=True)
            return {"skipped": "no rollups in the database"}
        last = last if isinstance(last, dt.date) else dt.date.fromisoformat(last)
        t0 = time.perf_counter()
        data = load_matrices(session, last)
        load_s = time.perf_counter() - t0
        times, cpu, rows, n_days = [], [], [], 0
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            rows, n_days = compute_alert_rows(session, last)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        grids = len(unstaffed_grids(session))
        run_s = None
        if with_sync:
            t0 = time.perf_counter()
            run_alerts(session, last)
            run_s = round(time.perf_counter() - t0, 2)
        session.rollback()
        parent = dict(
            session.execute(
                select(AdminUnit.code, AdminUnit.parent_code).where(AdminUnit.valid_to.is_(None))
            ).all()
        )
    finally:
        session.rollback()
        session.close()
    units = sum(len(lv.codes) for lv in data.levels)
    unit_days = units * max(n_days - DetectorConfig().history_days, 0)
    planted = planted_bursts(preset, seed)
    figures = evaluate_rows(rows, planted, parent, unit_days)
    located = locate_bursts(data, planted)
    moved = sum(a.village_code != b.village_code for a, b in zip(planted, located, strict=True))
    if moved:
        print(
            f"warning: {moved} of {len(planted)} planted bursts are not in the village "
            "planted_bursts() names; scoring those at the village where the data has them",
            flush=True,
        )
        as_found = evaluate_rows(rows, located, parent, unit_days)
        figures["bursts_not_where_listed"] = moved
        figures["recall_bursts_as_located"] = as_found["recall"]
        figures["false_per_1000_unit_days_as_located"] = as_found["false_per_1000_unit_days"]
    figures.update(
        units=units,
        days=n_days,
        load_matrices_s=round(load_s, 2),
        compute_all_alerts_s_median=round(statistics.median(times), 2),
        compute_all_alerts_python_cpu_s_median=round(statistics.median(cpu), 2),
        run_with_sync_s=run_s,
        overdue_alerts=sum(r["kind"] == "overdue" for r in rows),
        open_alerts={
            "caseload": sum(r["kind"] == "caseload" and r["status"] == "open" for r in rows),
            "overdue": sum(r["kind"] == "overdue" and r["status"] == "open" for r in rows),
            "unstaffed_grid": grids,
        },
        rss_mb=rss_mb(),
    )
    print(f"database {preset}: {figures}", flush=True)
    return figures


def run(database_url: str | None, preset: str) -> dict[str, Any]:
    """The bench suite's entry point."""
    out: dict[str, Any] = {"synthetic_metro": synthetic()}
    url = database_url or (DEFAULT_METRO_URL if preset == "metro" else None)
    if url:
        try:
            out[f"database_{preset}"] = database(url, preset)
        except Exception as exc:  # the database may not exist yet
            print(f"database {preset}: not measured ({type(exc).__name__}: {exc})")
            out[f"database_{preset}"] = {"skipped": f"{type(exc).__name__}"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--preset", default="metro", choices=["small", "metro"])
    parser.add_argument("--synthetic-only", action="store_true")
    parser.add_argument("--database-only", action="store_true")
    parser.add_argument(
        "--with-sync",
        action="store_true",
        help="also time the alert-table update (writes, rolled back): only on a copy",
    )
    args = parser.parse_args()
    if args.synthetic_only:
        synthetic()
    elif args.database_only or args.with_sync:
        url = args.database_url or DEFAULT_METRO_URL
        database(url, args.preset, with_sync=args.with_sync)
    else:
        run(args.database_url, args.preset)


if __name__ == "__main__":
    main()
