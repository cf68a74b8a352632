"""Where a unit's cases went (分级分流 flow): the moves of their timelines in a period,
level to level and to departments, and the closes at each — for a Sankey chart.

A node is a level (村, 镇, 市, ...) or a kind of department at a level (镇·劳动保障所); a link
counts the actions from one node to another in the period (上报, 下派, 转办, 退回), and
办 (handle) links a node to 办结 (closed). Summed from the desk's daily rollups
(``desk_rollup_daily``, kept by every action: leaf × day × action × from node → to node)
of the leaves in the unit's subtree, one GROUP BY over days, never the timeline itself.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db.desk import DeskRollupDaily
from api.db.models import AdminLevel
from api.domain import DEPARTMENT_KINDS
from api.services.scope import subtree_unit_ids

CLOSED = ("closed", "办结", "Closed")
FLOW_ACTIONS = ("escalate", "dispatch", "transfer", "return", "handle")


def case_flow(session: Session, unit_code: str, start: dt.date, end: dt.date) -> dict:
    """``{"nodes": [{id, label_zh, label_en}], "links": [{source, target, value,
    action}], "moves": n, "closes": n}`` for the cases of ``unit_code``'s subtree, actions
    taken from ``start`` to ``end`` (local days, both included)."""
    r = DeskRollupDaily
    rows = session.execute(
        select(r.action, r.from_node, r.to_node, func.sum(r.desk_actions))
        .where(r.leaf_unit_id.in_(subtree_unit_ids(unit_code)))
        .where(r.day >= start, r.day <= end)
        .where(r.action.in_(FLOW_ACTIONS))
        .group_by(r.action, r.from_node, r.to_node)
    ).all()
    levels = {
        code: (zh, en)
        for code, zh, en in session.execute(
            select(AdminLevel.code, AdminLevel.name_zh, AdminLevel.name_en)
        )
    }
    nodes: dict[str, tuple[str, str]] = {}

    def node(key: str) -> str:
        """A rollup's node (``level:town``, ``dept:town:labour``), labelled."""
        parts = key.split(":")
        level = parts[1] if len(parts) > 1 else ""
        kind = parts[2] if len(parts) > 2 else None
        zh, en = levels.get(level, (level or "?", level or "?"))
        if kind is None:
            key, label = f"level:{level}", (zh, en)
        else:
            dzh, den = DEPARTMENT_KINDS.get(kind, (kind, kind))
            key, label = f"dept:{level}:{kind}", (f"{zh}·{dzh}", f"{en} · {den}")
        nodes.setdefault(key, label)
        return key

    links, moves, closes = [], 0, 0
    for action, from_node, to_node, n in rows:
        n = int(n or 0)
        if not n:
            continue
        source = node(from_node)
        if action == "handle":
            nodes.setdefault(CLOSED[0], CLOSED[1:])
            target = CLOSED[0]
            closes += n
        else:
            target = node(to_node)
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
