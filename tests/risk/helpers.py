"""Small builders for the risk-register tests: agencies, assessors, items, reports."""

from __future__ import annotations

import datetime as dt

from api.db.session import session_scope
from tests.conftest import token_for

EAST_SOUTH = (121.02, 31.42, 121.08, 31.48)  # inside 东镇's south village (320583001001)


def square(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
    }


def add_agency(db_url: str, code: str, unit: str = "320583") -> None:
    from api.db.risk import RiskAgency

    with session_scope(db_url) as session:
        session.add(
            RiskAgency(
                code=code,
                name=f"{code} 评估所",
                kind="third_party",
                unit_code=unit,
                active=True,
                created_at=dt.datetime.now(dt.UTC),
            )
        )


def assessor_token(db_url: str, agency: str, unit: str = "320583") -> str:
    """A token of a new assessor working for ``agency``."""
    from api.db.models import User
    from api.services.auth import principal_for_token
    from api.services.risk import add_member

    token = token_for(db_url, "assessor", unit)
    with session_scope(db_url) as session:
        user = principal_for_token(session, token)
        add_member(session, agency, session.get(User, user.user_id).id)
    return token


def item_body(**over) -> dict:
    planned = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    body = {
        "kind": "project",
        "title": "垃圾焚烧厂选址",
        "deciding_unit": "320583001",
        "place": square(*EAST_SOUTH),
        "planned_at": planned.isoformat(),
        "people_affected": 5000,
        "department": "住建局",
    }
    return {**body, **over}


def good_report(**over) -> dict:
    body = {
        "risk_points": [{"description": "邻避情绪", "level": "high"}],
        "consultation": {"consulted": 120, "objections": ["气味", "交通"]},
        "legality": "符合规划",
        "reasonableness": "选址合理",
        "feasibility": "资金落实",
        "controllability": "可控",
        "risk_level": "high",
        "measures": [
            {"risk": "邻避情绪", "action": "公开听证", "owner": "王科长", "due": "2027-01-10"}
        ],
    }
    return {**body, **over}
