"""The small world's register: 14 agencies, every kind at several levels, drafts that came
back, decisions without an assessment, high risks followed by incidents (the metro preset
is built by the same code with 600 items)."""

from __future__ import annotations

from sqlalchemy import func, select

from api.db.models import AdminUnit
from api.db.risk import RiskAgency, RiskItem, RiskLink, RiskReport
from api.db.session import session_scope
from seed.risk import ITEMS


def test_the_small_world_has_a_register(small_world_url) -> None:
    assert ITEMS == {"metro": 600, "small": 150}
    with session_scope(small_world_url) as s:
        assert s.scalar(select(func.count()).select_from(RiskAgency)) == 14
        assert s.scalar(select(func.count()).select_from(RiskItem)) == 150
        kinds = dict(s.execute(select(RiskItem.kind, func.count()).group_by(RiskItem.kind)).all())
        assert len(kinds) == 5 and min(kinds.values()) >= 5
        levels = s.scalars(
            select(AdminUnit.level)
            .join(RiskItem, RiskItem.deciding_unit_id == AdminUnit.id)
            .distinct()
        ).all()
        assert {"city", "town", "village"} <= set(levels)
        drafts = s.scalar(select(func.count()).where(RiskReport.status == "draft"))
        assert drafts > 10
        unassessed = s.scalar(
            select(func.count()).where(
                RiskItem.decided_at.is_not(None), RiskItem.assessed_at.is_(None)
            )
        )
        assert unassessed > 3
        high_followed = s.scalar(
            select(func.count()).where(RiskItem.risk_level == "high", RiskItem.incidents > 0)
        )
        assert high_followed >= 3
        events = s.scalar(select(func.count()).where(RiskLink.kind == "event"))
        assert events > 0  # dispatch events in the areas after the decisions are linked too
        links = s.scalar(select(func.count()).select_from(RiskLink))
        assert links == s.scalar(select(func.sum(RiskItem.incidents)))
        assert s.scalar(select(func.count()).where(RiskItem.status != "decided")) > 0
