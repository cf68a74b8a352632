"""Random cases for the tiny world, written as plain dicts so tests can compute the right
answers from them independently of the rollups."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, Case
from api.domain import CATEGORIES, CHANNELS, OUTCOMES

UTC = dt.UTC
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def leaf_ids(session: Session) -> dict[str, int]:
    """Leaf unit code → id of its current version (units with no children)."""
    units = session.execute(select(AdminUnit.id, AdminUnit.code, AdminUnit.parent_code)).all()
    parents = {u.parent_code for u in units}
    return {u.code: u.id for u in units if u.code not in parents}


def random_cases(
    leaves: dict[str, int],
    n: int,
    start: dt.date,
    end: dt.date,
    seed: int = 1,
    now: dt.datetime | None = None,
) -> list[dict]:
    """``n`` cases reported between ``start`` and ``end`` (local days), in random states."""
    rng = random.Random(seed)
    now = now or dt.datetime.combine(end, dt.time(23), SHANGHAI).astimezone(UTC)
    span = (end - start).days + 1
    out = []
    codes = sorted(leaves)
    for i in range(n):
        day = start + dt.timedelta(days=rng.randrange(span))
        local = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)), SHANGHAI)
        reported = local.astimezone(UTC)
        cat = rng.choice(CATEGORIES)
        deadline = reported + dt.timedelta(days=cat.sla_days)
        case = {
            "source": "test",
            "external_id": f"t{seed}-{i}",
            "channel": rng.choice(CHANNELS).code,
            "category": cat.code,
            "reported_at": reported,
            "leaf_code": rng.choice(codes),
            "deadline": deadline,
            "handled_at": None,
            "visited_at": None,
            "evaluated_at": None,
            "outcome": None,
            "satisfaction": None,
            "status": "received",
        }
        if rng.random() < 0.7:
            handled = reported + dt.timedelta(hours=rng.uniform(0, 24 * cat.sla_days * 1.6))
            if handled <= now:
                case["handled_at"] = handled
                case["status"] = "handled"
                case["outcome"] = rng.choice(OUTCOMES)
                if rng.random() < 0.6:
                    case["visited_at"] = handled + dt.timedelta(hours=5)
                    case["status"] = "visited"
                    if rng.random() < 0.7:
                        case["evaluated_at"] = handled + dt.timedelta(hours=6)
                        case["satisfaction"] = rng.randint(1, 5)
                        case["status"] = "evaluated"
        out.append(case)
    return out


def insert_cases(session: Session, leaves: dict[str, int], cases: list[dict]) -> list[Case]:
    """Write ``cases`` into table ``case`` (no rollup maintenance)."""
    rows = []
    for c in cases:
        fields = {k: v for k, v in c.items() if k != "leaf_code"}
        rows.append(
            Case(
                **fields,
                leaf_unit_id=leaves[c["leaf_code"]],
                created_at=c["reported_at"],
                updated_at=c["reported_at"],
            )
        )
    session.add_all(rows)
    session.flush()
    return rows
