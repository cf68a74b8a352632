"""Where a unit's cases went (分级分流 flow): the moves of their timelines in a period,
level to level and to departments, and the closes at each — for a Sankey chart.

A node is a level (村, 镇, 市, ...) or a kind of department at a level (镇·劳动保障所); a link
counts the actions from one node to another in the period (上报, 下派, 转办, 退回), and
办 (handle) links a node to 办结 (closed). Read from ``case_action`` of the cases whose leaf
lies in the unit's subtree, one GROUP BY.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from api.db.desk import CaseAction, Department
from api.db.models import AdminLevel
from api.services.local_time import local_zone
from api.services.routing import DEPARTMENT_KINDS
from api.services.scope import subtree_unit_ids

CLOSED = ("closed", "办结", "Closed")
FLOW_ACTIONS = ("escalate", "dispatch", "transfer", "return", "handle")


def case_flow(session: Session, unit_code: str, start: dt.date, end: dt.date) -> dict:
    """``{"nodes": [{id, label_zh, label_en}], "links": [{source, target, value,
    action}], "moves": n, "closes": n}`` for the cases of ``unit_code``'s subtree, actions
    taken from ``start`` to ``end`` (local days, both included)."""
    zone = local_zone()
    since = dt.datetime.combine(start, dt.time(), zone)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
    src, dst = aliased(Department), aliased(Department)
    rows = session.execute(
        select(
            CaseAction.action,
            CaseAction.from_level,
            src.kind,
            CaseAction.to_level,
            dst.kind,
            func.count(),
        )
        .outerjoin(src, src.id == CaseAction.from_department_id)
        .outerjoin(dst, dst.id == CaseAction.to_department_id)
        .where(CaseAction.leaf_unit_id.in_(subtree_unit_ids(unit_code)))
        .where(CaseAction.at >= since, CaseAction.at < until)
        .where(CaseAction.action.in_(FLOW_ACTIONS))
        .group_by(CaseAction.action, CaseAction.from_level, src.kind, CaseAction.to_level, dst.kind)
    ).all()
    levels = {
        code: (zh, en)
        for code, zh, en in session.execute(
            select(AdminLevel.code, AdminLevel.name_zh, AdminLevel.name_en)
        )
    }
    nodes: dict[str, tuple[str, str]] = {}

    def node(level: str | None, kind: str | None) -> str:
        zh, en = levels.get(level or "", (level or "?", level or "?"))
        if kind is None:
            key, label = f"level:{level}", (zh, en)
        else:
            dzh, den = DEPARTMENT_KINDS.get(kind, (kind, kind))
            key, label = f"dept:{level}:{kind}", (f"{zh}·{dzh}", f"{en} · {den}")
        nodes.setdefault(key, label)
        return key

    links, moves, closes = [], 0, 0
    for action, from_level, from_kind, to_level, to_kind, n in rows:
        source = node(from_level, from_kind)
        if action == "handle":
            nodes.setdefault(CLOSED[0], CLOSED[1:])
            target = CLOSED[0]
            closes += n
        else:
            target = node(to_level, to_kind)
            moves += n
        if source == target:
            continue  # a transfer between two departments of one kind: no line to draw
        links.append({"source": source, "target": target, "value": int(n), "action": action})
    links.sort(key=lambda link: (link["source"], link["target"], link["action"]))
    return {
        "nodes": [{"id": k, "label_zh": zh, "label_en": en} for k, (zh, en) in nodes.items()],
        "links": links,
        "moves": moves,
        "closes": closes,
    }
