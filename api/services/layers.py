"""Map layers: points drawn over a map, each with its legend, from a registry that other
kinds of fact plug into (case points, patrol bases and their reach, risk items).

A ``Layer`` names itself, its legend (a key, zh/en label and colour per class of point)
and a function that returns its points under a unit the caller holds in scope, as GeoJSON
features with a ``class`` property (one of the legend's keys). Two layers ship:

- ``facilities``: governance centers (综治中心) and linkage stations (联动站) by status
  (built, under construction, required), with their video link, at their unit's
  representative point;
- ``alerts``: the open alerts in the subtree, by kind.

Register another with ``register_layer(Layer(...))`` at import time of its module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import shapely
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import AdminUnit, Alert, Facility
from api.principal import Principal
from api.services.display import display_layer
from api.services.scope import subtree_codes


@dataclass(frozen=True)
class LegendEntry:
    """One class of point on a layer: its key, labels and colour."""

    key: str
    label_zh: str
    label_en: str
    color: str
    symbol: str = "circle"


@dataclass(frozen=True)
class Layer:
    """A layer of points: name, labels, legend, and ``features(session, who, unit,
    cache_dir)`` → GeoJSON point features under ``unit`` (in ``who``'s scope)."""

    name: str
    label_zh: str
    label_en: str
    legend: tuple[LegendEntry, ...]
    features: Callable[[Session, Principal, str, Path | None], list[dict]]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "label_zh": self.label_zh,
            "label_en": self.label_en,
            "legend": [e.__dict__ for e in self.legend],
        }


LAYERS: dict[str, Layer] = {}


def register_layer(layer: Layer) -> Layer:
    """Add ``layer`` to the registry (a name is registered once: the last one wins)."""
    LAYERS[layer.name] = layer
    return layer


def layer_names() -> tuple[str, ...]:
    """The registered layers' names."""
    return tuple(LAYERS)


def layer_points(session: Session, who: Principal, name: str, unit: str, cache_dir=None) -> dict:
    """The layer ``name`` under ``unit`` as a GeoJSON FeatureCollection with its legend
    (KeyError for an unknown layer)."""
    layer = LAYERS[name]
    return {
        "type": "FeatureCollection",
        "layer": layer.describe(),
        "features": layer.features(session, who, unit, cache_dir),
    }


def unit_points(
    session: Session, codes: set[str], under: str, cache_dir: Path | None
) -> dict[str, tuple[float, float, str]]:
    """(lon, lat, name) of a point inside each unit of ``codes`` under ``under`` (the
    representative point of its display shape)."""
    levels = dict(
        session.execute(
            select(AdminUnit.code, AdminUnit.level).where(
                AdminUnit.code.in_(codes), AdminUnit.valid_to.is_(None)
            )
        ).all()
    )
    out: dict[str, tuple[float, float, str]] = {}
    for level in set(levels.values()):
        found = display_layer(session, level, under, cache_dir=cache_dir)
        wanted = [c for c in found.codes if levels.get(c) == level]
        if not wanted:
            continue
        shapes = [shape(orjson.loads(found.fragments[c])) for c in wanted]
        points = shapely.point_on_surface(shapes)
        names = dict(zip(found.codes, found.names, strict=True))
        for c, p in zip(wanted, points, strict=True):
            out[c] = (round(p.x, 6), round(p.y, 6), names[c])
    # a unit at the root itself (a center of the city) stands at its own point
    if under in codes and under not in out:
        level = levels.get(under)
        if level:
            found = display_layer(session, level, None, cache_dir=cache_dir)
            if under in found.fragments:
                p = shapely.point_on_surface(shape(orjson.loads(found.fragments[under])))
                out[under] = (
                    round(p.x, 6),
                    round(p.y, 6),
                    dict(zip(found.codes, found.names, strict=True))[under],
                )
    return out


def _point(lon: float, lat: float, props: dict) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": props,
    }


# ---------------------------------------------------------------- facilities

FACILITY_KINDS = {
    "center": ("综治中心", "center"),
    "linkage_station": ("联动站", "linkage station"),
}


def _facilities(session: Session, who: Principal, unit: str, cache_dir: Path | None) -> list[dict]:
    rows = session.execute(
        select(
            Facility.unit_code,
            Facility.kind,
            Facility.status,
            Facility.video_linked,
            Facility.rating,
        )
        .where(Facility.unit_code.in_(subtree_codes(unit)))
        .order_by(Facility.unit_code, Facility.kind)
    ).all()
    points = unit_points(session, {r[0] for r in rows}, unit, cache_dir)
    out = []
    for code, kind, status, video, rating in rows:
        if code not in points:
            continue
        lon, lat, name = points[code]
        zh, en = FACILITY_KINDS.get(kind, (kind, kind))
        out.append(
            _point(
                lon,
                lat,
                {
                    "class": status,
                    "unit_code": code,
                    "unit_name": name,
                    "kind": kind,
                    "kind_zh": zh,
                    "kind_en": en,
                    "status": status,
                    "video_linked": bool(video),
                    "rating": rating,
                },
            )
        )
    return out


register_layer(
    Layer(
        "facilities",
        "中心与联动站",
        "Centers & linkage stations",
        (
            LegendEntry("built", "已建成", "built", "#1a9850"),
            LegendEntry("under_construction", "在建", "under construction", "#fdae61"),
            LegendEntry("required", "应建未建", "required, not built", "#d73027"),
        ),
        _facilities,
    )
)


# ---------------------------------------------------------------- alerts


def _alerts(session: Session, who: Principal, unit: str, cache_dir: Path | None) -> list[dict]:
    rows = session.execute(
        select(
            Alert.id,
            Alert.unit_code,
            Alert.kind,
            Alert.category,
            Alert.observed,
            Alert.expected,
            Alert.opened_on,
        )
        .where(Alert.status == "open", Alert.unit_code.in_(subtree_codes(unit)))
        .order_by(Alert.opened_on.desc())
        .limit(2000)
    ).all()
    points = unit_points(session, {r[1] for r in rows}, unit, cache_dir)
    out = []
    for aid, code, kind, category, observed, expected, opened in rows:
        if code not in points:
            continue
        lon, lat, name = points[code]
        out.append(
            _point(
                lon,
                lat,
                {
                    "class": kind if kind in ALERT_KINDS else "other",
                    "id": aid,
                    "unit_code": code,
                    "unit_name": name,
                    "kind": kind,
                    "category": category,
                    "observed": observed,
                    "expected": expected,
                    "opened_on": opened.isoformat(),
                },
            )
        )
    return out


ALERT_KINDS = ("caseload", "overdue", "unstaffed_grid")

register_layer(
    Layer(
        "alerts",
        "预警",
        "Alerts",
        (
            LegendEntry("caseload", "案件量异常", "caseload anomaly", "#b2182b", "diamond"),
            LegendEntry("overdue", "超期积压", "overdue pile-up", "#7b3294", "diamond"),
            LegendEntry("unstaffed_grid", "网格缺员", "unstaffed grid", "#2166ac", "diamond"),
            LegendEntry("other", "其他预警", "other alert", "#444444", "diamond"),
        ),
        _alerts,
    )
)
