"""A stability-risk register for a seeded world: 14 agencies (two in-house, twelve
third-party, as Zhangye's platform supports) and items over the last three years, spread
over the levels and the five kinds as a city's would be.

Most items are assigned, reported on (about a third of first reports fail review and come
back), reviewed and decided on their planned date; some are decided without an assessment
or before it passed; some assessments are late; items planned after the world's last day
are still in progress. About half of the high-risk items decided are placed where a
petition or dispute was later reported: those risks turned into incidents. Every decided
item is then linked to the cases in its area by the service that links them live.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import shapely
from shapely.geometry import Point, box
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, Case, UnitAncestry
from api.db.risk import RiskAgency, RiskAssessment, RiskFollowUp, RiskItem, RiskItemArea, RiskReport
from api.db.versions import bump_version
from api.services.risk import FOLLOW_UPS, LINKED_CATEGORIES, touched_units
from api.services.risk_follow import link_items

ITEMS = {"metro": 600, "small": 150}
YEARS = 3
AGENCIES = [
    ("AG01", "市委政法委社会稳定风险评估中心", "in_house"),
    ("AG02", "市司法局法律风险评估室", "in_house"),
    ("AG03", "恒信社会风险评估有限公司", "third_party"),
    ("AG04", "正衡咨询评估事务所", "third_party"),
    ("AG05", "安和社会稳定研究院", "third_party"),
    ("AG06", "明鉴工程咨询有限公司", "third_party"),
    ("AG07", "公信律师事务所评估部", "third_party"),
    ("AG08", "睿达规划咨询有限公司", "third_party"),
    ("AG09", "民意调查与评估中心", "third_party"),
    ("AG10", "同济社会风险研究所", "third_party"),
    ("AG11", "中正评估咨询有限公司", "third_party"),
    ("AG12", "和谐社区发展研究中心", "third_party"),
    ("AG13", "诚达项目管理咨询有限公司", "third_party"),
    ("AG14", "西部公共政策评估中心", "third_party"),
]
KINDS = ("decision", "project", "large_event", "gathering", "religious")
KIND_SHARE = (0.22, 0.28, 0.22, 0.16, 0.12)
TITLES = {
    "decision": ("调整公交线路", "老旧小区改造补偿标准", "学区划分调整", "水价调整"),
    "project": ("征地拆迁", "垃圾焚烧厂选址", "变电站建设", "道路拓宽", "污水处理厂扩建"),
    "large_event": ("马拉松赛", "音乐节", "商品交易会", "体育赛事"),
    "gathering": ("元宵灯会", "端午龙舟", "庙会", "中秋集市"),
    "religious": ("浴佛节法会", "开斋节聚礼", "圣诞礼拜", "祭祖活动"),
}
LEVEL_SHARE = {"city": 0.12, "district": 0.13, "town": 0.45, "village": 0.30}
DEPARTMENTS = (
    "发改委",
    "住建局",
    "自然资源局",
    "生态环境局",
    "文旅局",
    "民宗局",
    "公安局",
    "交通局",
)
DECISIONS = ("implement", "adjust", "postpone", "reject")
DECISION_SHARE = (0.65, 0.2, 0.1, 0.05)
LOCAL_9AM = dt.timedelta(hours=1)  # 09:00 in Asia/Shanghai is 01:00 UTC


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC) + LOCAL_9AM


def _place(rng: np.random.Generator, geom, kind: str):
    """A point inside ``geom`` (events and gatherings) or a small square around one."""
    x0, y0, x1, y1 = geom.bounds
    for _ in range(50):
        p = Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
        if geom.contains(p):
            break
    else:
        p = geom.representative_point()
    if kind in ("large_event", "gathering", "religious"):
        return Point(round(p.x, 6), round(p.y, 6))
    half = float(rng.uniform(0.001, 0.003))
    square = box(p.x - half, p.y - half, p.x + half, p.y + half).intersection(geom)
    square = shapely.set_precision(square, 1e-6)
    return square if square.geom_type == "Polygon" and not square.is_empty else p


def _report(rng: np.random.Generator, level: str, people: int, failing: bool) -> tuple[dict, list]:
    consulted = max(30, int(people * 0.02))
    body = {
        "risk_points": [{"description": "群众对补偿和环境影响有顾虑", "level": level}],
        "consultation": {"consulted": consulted, "objections": ["补偿标准", "噪声"]},
        "legality": "符合法律法规和政策",
        "reasonableness": "兼顾各方利益",
        "feasibility": "资金和条件具备",
        "controllability": "风险可防可控",
        "risk_level": level,
        "measures": [
            {"risk": "群众顾虑", "action": "公开听证、入户解释", "owner": "分管负责人", "due": None}
        ],
    }
    failures = []
    if failing:
        if rng.random() < 0.5:
            body["consultation"]["consulted"] = 5
            failures.append({"rule": "consultation", "name": "征求意见人数与影响人数相当",
                             "reason": f"consulted 5 of {people} affected"})  # fmt: skip
        else:
            body["feasibility"] = None
            failures.append({"rule": "sections", "name": "报告要素齐全",
                             "reason": "missing sections: feasibility"})  # fmt: skip
    return body, failures


def seed_register(session: Session, preset: str, seed: int, end: dt.date) -> dict[str, int]:
    """Write the register of world ``preset`` (nothing for a preset without one)."""
    n = ITEMS.get(preset, 0)
    if not n:
        return {"risk_items": 0, "agencies": 0}
    rng = np.random.default_rng(seed * 1000 + 22)
    created = dt.datetime.combine(end - dt.timedelta(days=YEARS * 365), dt.time(), dt.UTC)
    agencies = [RiskAgency(code=c, name=nm, kind=k, unit_code="", active=True, created_at=created)
                for c, nm, k in AGENCIES]  # fmt: skip
    units = session.execute(
        select(AdminUnit.id, AdminUnit.code, AdminUnit.level, AdminUnit.geom).where(
            AdminUnit.valid_to.is_(None), AdminUnit.level.in_(tuple(LEVEL_SHARE))
        )
    ).all()
    city = next(u for u in units if u.level == "city")
    for a in agencies:
        a.unit_code = city.code
    session.add_all(agencies)
    session.flush()
    by_level = {lv: [u for u in units if u.level == lv] for lv in LEVEL_SHARE}
    levels = [lv for lv in LEVEL_SHARE if by_level[lv]]
    share = np.array([LEVEL_SHARE[lv] for lv in levels])
    weights = rng.random(len(agencies)) + 0.3  # some agencies carry more of the load
    weights /= weights.sum()
    start = end - dt.timedelta(days=YEARS * 365)
    items, plans = [], []
    for k in range(n):
        level = levels[rng.choice(len(levels), p=share / share.sum())]
        unit = by_level[level][rng.integers(len(by_level[level]))]
        kind = KINDS[rng.choice(len(KINDS), p=KIND_SHARE)]
        registered = start + dt.timedelta(days=int(rng.integers(0, YEARS * 365)))
        planned = registered + dt.timedelta(days=int(rng.integers(25, 150)))
        people = int(rng.lognormal(7.0, 1.2)) + 50
        place = _place(rng, unit.geom, kind)
        point = place if place.geom_type == "Point" else place.representative_point()
        title = TITLES[kind][rng.integers(len(TITLES[kind]))]
        item = RiskItem(kind=kind, title=f"{title}（{k + 1:03d}）", deciding_unit_id=unit.id,
                        deciding_unit_code=unit.code, place=place, lon=round(point.x, 6),
                        lat=round(point.y, 6), planned_at=_at(planned), people_affected=people,
                        department=DEPARTMENTS[rng.integers(len(DEPARTMENTS))],
                        status="registered", incidents=0, registered_by="seed",
                        registered_at=_at(registered), version=1)  # fmt: skip
        items.append(item)
        plans.append((registered, planned))
    session.add_all(items)
    session.flush()
    reports = 0
    for item, (registered, planned) in zip(items, plans, strict=True):
        skip_assessment = rng.random() < 0.08  # decided without any assessment
        level = ("high", "medium", "low")[rng.choice(3, p=(0.15, 0.35, 0.5))]
        decided_on = planned + dt.timedelta(days=int(rng.integers(-3, 4)))
        if not skip_assessment:
            agency = agencies[rng.choice(len(agencies), p=weights)]
            assigned = registered + dt.timedelta(days=int(rng.integers(1, 8)))
            due = planned - dt.timedelta(days=10)
            asm = RiskAssessment(item_id=item.id, agency_id=agency.id, assigned_at=_at(assigned),
                                 due_at=_at(due), status="open", assigned_by="seed")  # fmt: skip
            session.add(asm)
            session.flush()
            item.agency_id, item.assessment_due_at, item.status = agency.id, _at(due), "assessing"
            submitted = assigned + dt.timedelta(days=int(rng.integers(5, 35)))
            if rng.random() < 0.1:  # late: after its due date, sometimes after the decision
                submitted = due + dt.timedelta(days=int(rng.integers(2, 20)))
            failing = rng.random() < 0.33
            attempts = (True, False) if failing else (False,)
            for number, attempt in enumerate(attempts, start=1):
                if submitted > end:
                    break
                body, failures = _report(rng, level, item.people_affected, attempt)
                report = RiskReport(item_id=item.id, assessment_id=asm.id, agency_id=agency.id,
                                    number=number, status="draft" if attempt else "passed",
                                    body=body, failures=failures, risk_level=level,
                                    submitted_at=_at(submitted), submitted_by="seed")  # fmt: skip
                session.add(report)
                reports += 1
                if not attempt:
                    asm.status, asm.passed_at = "passed", _at(submitted)
                    item.status, item.risk_level = "assessed", level
                    item.assessed_at = _at(submitted)
                submitted += dt.timedelta(days=int(rng.integers(3, 10)))
        if decided_on <= end:
            item.decision = DECISIONS[rng.choice(len(DECISIONS), p=DECISION_SHARE)]
            item.decided_at = _at(decided_on)
            item.status = "decided"
            item.follow_until = item.decided_at + dt.timedelta(days=90)
            session.add_all(
                RiskFollowUp(item_id=item.id, days=d, due_on=decided_on + dt.timedelta(days=d),
                             done_at=_at(decided_on + dt.timedelta(days=d + 2))
                             if decided_on + dt.timedelta(days=d + 2) <= end else None)
                for d in FOLLOW_UPS
            )  # fmt: skip
    session.flush()
    _plant_incidents(session, rng, [i for i in items if i.risk_level == "high" and i.decided_at])
    for item in items:
        session.add_all(RiskItemArea(item_id=item.id, unit_code=c)
                        for c in touched_units(session, item.place))  # fmt: skip
    session.flush()
    links = link_items(session, [i for i in items if i.decided_at is not None])
    bump_version(session, "risk_register")
    return {"risk_items": n, "agencies": len(agencies), "risk_reports": reports,
            "risk_links": links}  # fmt: skip


def _plant_incidents(session: Session, rng: np.random.Generator, high: list[RiskItem]) -> None:
    """Move about half of the decided high-risk items onto a petition or dispute reported
    in their deciding unit within 60 days after the decision (the risk turned into one)."""
    for item in high:
        if rng.random() >= 0.5:
            continue
        case = session.execute(
            select(Case.lon, Case.lat)
            .join(UnitAncestry, UnitAncestry.unit_id == Case.leaf_unit_id)
            .where(
                UnitAncestry.ancestor_code == item.deciding_unit_code,
                Case.category.in_(LINKED_CATEGORIES),
                Case.reported_at > item.decided_at,
                Case.reported_at < item.decided_at + dt.timedelta(days=60),
                Case.lon.is_not(None),
            )
            .order_by(Case.reported_at)
            .limit(1)
        ).first()
        if case is not None:
            item.place = Point(round(case.lon + 0.0005, 6), round(case.lat, 6))
            item.lon, item.lat = item.place.x, item.place.y
