"""The ``cases`` map layer: the cases of the last 30 days (up to the newest case) inside
the unit shown, one point each at its reported place, coloured by its step (接 约 办 访 评)
or as overdue (open past its deadline). The dashboard clusters them when zoomed out and
opens a case on the desk when its point is clicked (``dashboard/components/layers.py``).

Registered with the layer registry (``api.services.layers``) when this module is imported
(``api.routers.views`` imports it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db.models import Case
from api.principal import Principal
from api.services.layers import Layer, LegendEntry, register_layer
from api.services.scope import subtree_unit_ids

DAYS = 30
MOST = 100_000  # points at most (the newest first)
STEPS = {
    "received": ("已接收", "received", "#1f78b4"),
    "scheduled": ("已约", "scheduled", "#33a02c"),
    "handled": ("已办", "handled", "#6a3d9a"),
    "visited": ("已访", "visited", "#b15928"),
    "evaluated": ("已评", "evaluated", "#999999"),
}


def case_points(
    session: Session, who: Principal, unit: str, cache_dir: Path | None = None
) -> list[dict]:
    """The cases of the last ``DAYS`` days of data under ``unit`` as point features
    (``class``: overdue, or the step; ``id``: the case, for the desk)."""
    newest = session.scalar(select(func.max(Case.reported_at)))
    if newest is None:
        return []
    now = dt.datetime.now(dt.UTC)
    rows = session.execute(
        select(
            Case.id, Case.lon, Case.lat, Case.status, Case.category, Case.deadline, Case.handled_at
        )
        .where(Case.leaf_unit_id.in_(subtree_unit_ids(unit)))
        .where(Case.reported_at > newest - dt.timedelta(days=DAYS))
        .where(Case.lon.is_not(None), Case.lat.is_not(None))
        .order_by(Case.reported_at.desc())
        .limit(MOST)
    ).all()
    out = []
    for cid, lon, lat, status, category, deadline, handled in rows:
        late = handled is None and deadline is not None and _aware(deadline) < now
        out.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
                "properties": {
                    "class": "overdue" if late else status,
                    "id": cid,
                    "step": status,
                    "category": category,
                },
            }
        )
    return out


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


CASES_LAYER = register_layer(
    Layer(
        "cases",
        "案件点位",
        "Cases",
        (
            LegendEntry("overdue", "超期", "overdue", "#e31a1c"),
            *(LegendEntry(k, zh, en, colour) for k, (zh, en, colour) in STEPS.items()),
        ),
        case_points,
    )
)
