"""The ``patrol`` map layer: patrol bases, the area within 5 minutes of one (the reach, at
``ZHILI_REACH_SPEED_KMH``) and its gaps, and the three suggested new-base sites with the
events each would add, under a unit (``api.services.reach.coverage``, cached: a repeated
map costs the KD-tree queries). Registered in ``api.services.layers``' registry on import
(the events router and the dashboard's client import it).

Features carry ``class`` (a legend key): ``reach`` and ``gap`` are (multi)polygons, the
others points; a base lists only the bases of the unit's subtree (bases beyond its border
still count in the reach)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import orjson
import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.events import PatrolBase
from api.errors import ApiError
from api.principal import Principal
from api.services.layers import Layer, LegendEntry, register_layer
from api.services.reach import coverage
from api.services.scope import subtree_codes

MINUTES = 5.0
SUGGESTED = 3


def hole_free(geom):
    """``geom`` as pieces without holes (a map's ``fill: toself`` fills a hole): each
    polygon with holes cut into vertical strips along a line through each hole."""
    out = []
    for part in shapely.get_parts(geom):
        if not len(part.interiors):
            out.append(part)
            continue
        x0, y0, x1, y1 = part.bounds
        xs = sorted({shapely.Polygon(r).representative_point().x for r in part.interiors})
        edges = np.array([x0, *xs, x1])
        strips = shapely.box(edges[:-1], y0 - 1, edges[1:], y1 + 1)
        for piece in shapely.intersection(part, strips):
            out.extend(p for p in shapely.get_parts(piece) if p.geom_type == "Polygon")
    return shapely.MultiPolygon([p for p in out if not p.is_empty])


@lru_cache(maxsize=16)
def _hole_free_json(geometry: bytes) -> dict:
    return mapping(hole_free(shape(orjson.loads(geometry))))


def patrol_features(
    session: Session, who: Principal, unit: str, cache_dir: Path | None = None
) -> list[dict]:
    """The layer's features under ``unit`` (in ``who``'s scope): reach, gaps, the
    subtree's bases, suggested sites (with ``events_gained``)."""
    try:
        answer = coverage(session, who, unit, MINUTES, suggest=SUGGESTED)
    except ApiError:  # no leaves with boundaries: nothing to draw
        return []
    mine = set(
        session.scalars(
            select(PatrolBase.code).where(PatrolBase.unit_code.in_(subtree_codes(unit)))
        )
    )
    out = []
    for f in answer["layer"]["features"]:
        props = dict(f["properties"])
        kind = props.pop("kind")
        if kind == "base" and props.get("code") not in mine:
            continue
        cls = "suggested" if kind == "suggested_base" else kind
        geometry = f["geometry"]
        if kind in ("reach", "gap"):
            geometry = _hole_free_json(orjson.dumps(geometry))
            props |= {
                "share": answer["area_share"] if kind == "reach" else None,
                "events_share": answer["events_share"],
                "residents_share": answer["residents_share"],
                "minutes": answer["minutes"],
                "radius_m": answer["radius_m"],
            }
        out.append({"type": "Feature", "geometry": geometry, "properties": {"class": cls, **props}})
    return out


PATROL = register_layer(
    Layer(
        "patrol",
        "巡防力量与5分钟覆盖",
        "Patrol bases and 5-minute reach",
        (
            LegendEntry("reach", "5分钟可达", "within 5 minutes", "#1a9850", "square"),
            LegendEntry("gap", "覆盖盲区", "gap", "#d73027", "square"),
            LegendEntry("base", "巡防基地", "patrol base", "#08519c"),
            LegendEntry("suggested", "建议新设点位", "suggested new base", "#ff7f00", "star"),
        ),
        patrol_features,
    )
)
