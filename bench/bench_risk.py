"""The risk register (稳评) at metro: seeding its 600 items into a copy of the metro world,
linking every decided item to the cases in its area, and reading it — the register list,
one item, the agencies and the register's map figures — in process through the app.

    python -m bench.bench_risk --database-url postgresql://postgres@127.0.0.1:5432/zhili_metro_copy

It WRITES (the register, once, when the database has none): point it at a copy of the
metro database, never at zhili_metro itself. Figures are medians and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bench.common import timed


def run(database_url: str, preset: str = "metro") -> dict[str, Any]:
    """Seed the register if the database has none, then time its reads."""
    from api.app import create_app
    from api.db.models import AdminUnit
    from api.db.risk import RiskItem
    from api.db.session import session_scope
    from api.services.auth import create_user, issue_token
    from api.services.risk_follow import link_incidents
    from api.settings import Settings
    from seed.presets import get_preset
    from seed.risk import seed_register

    out: dict[str, Any] = {}
    with session_scope(database_url) as s:
        if not s.scalar(select(func.count()).select_from(RiskItem)):
            t0 = time.perf_counter()
            out["seed"] = seed_register(s, preset, 1, get_preset(preset).end)
            out["seed_s"] = round(time.perf_counter() - t0, 1)
            print(f"seeded the register in {out['seed_s']} s: {out['seed']}")
        t0 = time.perf_counter()
        link_incidents(s, everything=True)
        out["link_every_item_s"] = round(time.perf_counter() - t0, 2)
        city = s.scalar(select(AdminUnit.code).where(AdminUnit.parent_code.is_(None)))
        town = s.scalar(
            select(AdminUnit.code)
            .join(RiskItem, RiskItem.deciding_unit_id == AdminUnit.id)
            .where(AdminUnit.level == "town")
            .limit(1)
        )
        some_item = s.scalar(select(RiskItem.id).order_by(RiskItem.id.desc()).limit(1))
        tokens = {}
        for role, unit in (("admin", city), ("official", town)):
            user = create_user(s, f"bench-risk-{role}-{time.time_ns()}", role, unit)
            tokens[role] = issue_token(s, user, ttl_days=1)
    print(f"linked every decided item in {out['link_every_item_s']} s")
    app = create_app(Settings(database_url=database_url), with_dashboard=False)
    end = get_preset(preset).end
    period = {"start": (end - dt.timedelta(days=3 * 365)).isoformat(), "end": end.isoformat()}
    for role, token in tokens.items():
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
            unit = city if role == "admin" else town
            calls = {
                "list": lambda c=c: c.get("/api/v1/risk-items", params={"limit": 2000}),
                "list_with_places": lambda c=c: c.get(
                    "/api/v1/risk-items", params={"limit": 2000, "place": "true"}
                ),
                "agencies": lambda c=c: c.get("/api/v1/agencies"),
                "coverage_children": lambda c=c, u=unit: c.get(
                    f"/api/v1/units/{u}/children/metrics",
                    params={"metric": "assessed_before_decision_rate", **period},
                ),
            }
            if role == "admin":
                calls["item"] = lambda c=c: c.get(f"/api/v1/risk-items/{some_item}")
            for name, call in calls.items():
                assert call().status_code == 200, name
                figures = timed(call, repeat=20, warmup=2)
                out[f"{role}_{name}"] = figures
                print(
                    f"{role:8} {name:18} median {figures['median_ms']} ms,"
                    f" p95 {figures['p95_ms']} ms"
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--preset", default="metro")
    args = parser.parse_args()
    if args.database_url.rstrip("/").endswith("/zhili_metro"):
        parser.error("this benchmark writes: give a copy of zhili_metro, not the database itself")
    run(args.database_url, args.preset)


if __name__ == "__main__":
    main()
