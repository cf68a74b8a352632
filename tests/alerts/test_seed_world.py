"""The detector on the small seed world: the planted bursts are found, a quiet world stays
quiet (read-only: alerts are computed, not written)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from api.alerts.detector import DetectorConfig
from api.alerts.lifecycle import compute_alert_rows
from api.db.models import AdminUnit, CaseRollupDaily
from api.db.session import session_factory
from seed.bursts import planted_bursts


def _alerts(url: str) -> tuple[list[dict], dict[str, str | None], int]:
    session = session_factory(url)()
    try:
        last = session.scalar(select(func.max(CaseRollupDaily.day)))
        rows, days = compute_alert_rows(session, last)
        parent = dict(
            session.execute(
                select(AdminUnit.code, AdminUnit.parent_code).where(AdminUnit.valid_to.is_(None))
            ).all()
        )
        units = session.scalar(
            select(func.count())
            .select_from(AdminUnit)
            .where(AdminUnit.level.in_(("village", "town")), AdminUnit.valid_to.is_(None))
        )
    finally:
        session.rollback()
        session.close()
    unit_days = units * (days - DetectorConfig().history_days)
    return [r for r in rows if r["kind"] == "caseload"], parent, unit_days


def test_planted_bursts_are_found_within_three_days(small_world_url):
    rows, parent, unit_days = _alerts(small_world_url)
    bursts = planted_bursts("small", 1)
    found = 0
    for b in bursts:
        if any(
            r["unit_code"] == b.village_code
            and r["category"] in (None, b.category)
            and r["opened_on"] <= b.start + dt.timedelta(days=3)
            and r["last_seen_on"] >= b.start
            for r in rows
        ):
            found += 1
    assert found >= 0.8 * len(bursts), f"found {found} of {len(bursts)} bursts"
    unexplained = [
        r
        for r in rows
        if not any(
            r["unit_code"] in (b.village_code, parent[b.village_code])
            and b.start - dt.timedelta(days=1) <= r["opened_on"] <= b.end + dt.timedelta(days=7)
            for b in bursts
        )
    ]
    assert len(unexplained) * 1000 / unit_days <= 1.0


def test_quiet_seed_world_has_few_false_alerts(quiet_small_world_url):
    rows, _parent, unit_days = _alerts(quiet_small_world_url)
    assert len(rows) * 1000 / unit_days <= 1.0


def test_a_town_alert_points_at_the_village_of_the_burst(small_world_url):
    rows, parent, _ = _alerts(small_world_url)
    pointed = 0
    for b in planted_bursts("small", 1):
        for r in rows:
            if (
                r["unit_code"] == parent[b.village_code]
                and r["category"] == b.category
                and r["opened_on"] <= b.end
                and r["last_seen_on"] >= b.start
            ):
                assert b.village_code in r["detail"]["children_alerted"]
                pointed += 1
    assert pointed >= 1
