"""Where help can arrive within the target (5 minutes): the area within a straight line of
``speed × minutes`` of a patrol base (``ZHILI_REACH_SPEED_KMH``, 30 km/h: 2.5 km), the
share of residents (area-weighted per leaf unit) and of events inside it, the reach and
its gaps as GeoJSON, and where new bases would cover the most uncovered events (greedy
maximum coverage over the leaf units' centres, each pick with the events it adds).

Distances are on a local equirectangular plane (metres, scaled at the area's latitude):
within 0.1 % over a city. ``coverage_reference`` is the plain computation; the route serves
``api.services.reach.coverage``, the same answer from cached parts (fast at a city).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import shapely
from scipy.spatial import cKDTree
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.events import DispatchEvent, PatrolBase
from api.db.models import AdminUnit
from api.errors import ApiError
from api.services.local_time import local_zone
from api.services.scope import in_scope, subtree_unit_ids
from api.services.units import get_unit
from api.settings import get_settings

EARTH_M = 6_371_008.8


class Plane:
    """lon/lat ↔ metres around a reference latitude."""

    def __init__(self, lat0: float) -> None:
        self.kx = math.radians(1) * EARTH_M * math.cos(math.radians(lat0))
        self.ky = math.radians(1) * EARTH_M

    def xy(self, lon, lat) -> np.ndarray:
        return np.column_stack([np.asarray(lon) * self.kx, np.asarray(lat) * self.ky])

    def geom(self, g):
        return shapely.transform(g, lambda c: c * [self.kx, self.ky])

    def lonlat(self, g):
        return shapely.transform(g, lambda c: c / [self.kx, self.ky])


def greedy_sites(
    candidates: np.ndarray, points: np.ndarray, radius: float, picks: int
) -> list[tuple[int, int]]:
    """Greedy maximum coverage: ``picks`` times the candidate (index) whose disc of
    ``radius`` holds the most points not yet covered, with that gain; stops at gain 0."""
    if not len(candidates) or not len(points):
        return []
    tree = cKDTree(points)
    covers = tree.query_ball_point(candidates, radius)
    left = np.ones(len(points), dtype=bool)
    out = []
    for _ in range(picks):
        gains = np.array([int(left[c].sum()) if c else 0 for c in covers])
        best = int(gains.argmax())
        if gains[best] == 0:
            break
        out.append((best, int(gains[best])))
        left[covers[best]] = False
    return out


def leaf_rows(session: Session, root: str) -> list:
    """(code, name, population, geom) of the current leaf units under ``root`` that have
    a boundary."""
    rows = session.execute(
        select(AdminUnit.code, AdminUnit.name, AdminUnit.population, AdminUnit.geom)
        .where(AdminUnit.id.in_(subtree_unit_ids(root)))
        .where(AdminUnit.valid_to.is_(None))
        .where(
            ~AdminUnit.code.in_(
                select(AdminUnit.parent_code)
                .where(AdminUnit.valid_to.is_(None))
                .where(AdminUnit.parent_code.is_not(None))
            )
        )
        .order_by(AdminUnit.code)
    ).all()
    return [r for r in rows if r.geom is not None]


def feature(plane: Plane, kind: str, g) -> dict:
    """A reach or gap polygon (metres) as a GeoJSON feature in lon/lat."""
    g = shapely.set_precision(plane.lonlat(shapely.simplify(g, 10)), 1e-6)
    return {
        "type": "Feature",
        "properties": {"kind": kind},
        "geometry": shapely.geometry.mapping(g),
    }


def coverage_answer(
    *,
    root: str,
    minutes: float,
    speed: float,
    radius: float,
    bases: list,
    leaf_codes: set[str],
    residents: float,
    covered_people: float,
    ev_in: np.ndarray,
    area_share: float | None,
    picks: list[tuple[str, str, np.ndarray, int]],
    plane: Plane,
    features: list[dict],
) -> dict:
    """The coverage answer: shares, suggestions (code, name, site in metres, events
    gained) and the GeoJSON layer (reach, gaps, bases, suggested bases). Every base counts
    for the reach (a neighbour's base covers across the border), but only the bases inside
    ``leaf_codes`` (the unit's leaves: the caller's scope) are counted and shown."""
    bases = [b for b in bases if b.unit_code in leaf_codes]
    suggestions = []
    for code, name, xy, gain in picks:
        lon_lat = plane.lonlat(shapely.Point(xy))
        suggestions.append(
            {
                "unit_code": code,
                "unit_name": name,
                "lon": round(lon_lat.x, 6),
                "lat": round(lon_lat.y, 6),
                "events_gained": gain,
                "share_gained": gain / len(ev_in) if len(ev_in) else None,
            }
        )
    return {
        "unit": root,
        "minutes": minutes,
        "speed_kmh": speed,
        "radius_m": round(radius),
        "bases": len(bases),
        "residents": round(residents),
        "residents_covered": round(covered_people),
        "residents_share": covered_people / residents if residents else None,
        "events": len(ev_in),
        "events_covered": int(ev_in.sum()),
        "events_share": float(ev_in.mean()) if len(ev_in) else None,
        "area_share": area_share,
        "suggestions": suggestions,
        "layer": {
            "type": "FeatureCollection",
            "features": features
            + [
                {
                    "type": "Feature",
                    "properties": {"kind": "base", "code": b.code, "name": b.name},
                    "geometry": {"type": "Point", "coordinates": [b.lon, b.lat]},
                }
                for b in bases
            ]
            + [
                {
                    "type": "Feature",
                    "properties": {"kind": "suggested_base", **s},
                    "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                }
                for s in suggestions
            ],
        },
    }


def coverage_reference(
    session: Session,
    user,
    unit_code: str | None = None,
    minutes: float = 5.0,
    start: dt.date | None = None,
    end: dt.date | None = None,
    suggest: int = 1,
) -> dict:
    """The coverage of ``unit_code``'s leaves (default: the caller's home unit) by the
    bases within ``minutes``; events of the local days ``start``..``end`` (default: all).
    The plain computation (shapely unions, residents area-weighted per leaf): the
    reference ``api.services.reach.coverage`` is checked against; slow at a city."""
    root = unit_code or user.unit_code
    if get_unit(session, root) is None or not in_scope(session, user.unit_code, root):
        raise ApiError(404, f"no unit {root!r} in your jurisdiction")
    speed = get_settings().reach_speed_kmh
    radius = speed * 1000 * minutes / 60
    leaves = leaf_rows(session, root)
    if not leaves:
        raise ApiError(404, f"unit {root!r} has no leaf units with boundaries")
    geoms = np.array([r.geom for r in leaves], dtype=object)
    lat0 = float(np.mean([g.centroid.y for g in geoms]))
    plane = Plane(lat0)
    # to metres, simplified to 20 m: far finer than a 2.5 km reach, and unions of thousands
    # of densified borders cost minutes otherwise
    flat = shapely.simplify(np.array([plane.geom(g) for g in geoms], dtype=object), 20)
    area = shapely.union_all(flat)
    bases = session.execute(
        select(
            PatrolBase.code, PatrolBase.name, PatrolBase.lon, PatrolBase.lat, PatrolBase.unit_code
        ).order_by(PatrolBase.code)
    ).all()
    base_xy = (
        plane.xy([b.lon for b in bases], [b.lat for b in bases]) if bases else np.zeros((0, 2))
    )
    discs = shapely.buffer(shapely.points(base_xy), radius, quad_segs=16) if len(bases) else []
    reach = (
        shapely.intersection(shapely.union_all(discs), area) if len(bases) else shapely.Polygon()
    )
    gaps = shapely.difference(area, reach)
    pops = np.array([r.population or 0 for r in leaves], dtype=np.float64)
    inside = shapely.area(shapely.intersection(flat, reach)) / np.maximum(shapely.area(flat), 1e-9)
    covered_people = float((pops * inside).sum())

    stmt = (
        select(DispatchEvent.lon, DispatchEvent.lat)
        .where(DispatchEvent.leaf_unit_id.in_(subtree_unit_ids(root)))
        .where(DispatchEvent.lon.is_not(None))
    )
    zone = local_zone()
    if start is not None:
        stmt = stmt.where(DispatchEvent.received_at >= dt.datetime.combine(start, dt.time(), zone))
    if end is not None:
        stmt = stmt.where(
            DispatchEvent.received_at
            < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
        )
    rows = session.execute(stmt).all()
    pts = np.array([(r[0], r[1]) for r in rows], dtype=np.float64).reshape(-1, 2)
    ev_xy = plane.xy(pts[:, 0], pts[:, 1])
    if len(bases) and len(ev_xy):
        near, _ = cKDTree(base_xy).query(ev_xy, distance_upper_bound=radius * (1 + 1e-9))
        ev_in = near <= radius
    else:
        ev_in = np.zeros(len(ev_xy), dtype=bool)
    centres = shapely.get_coordinates(shapely.point_on_surface(flat))
    picks = greedy_sites(centres, ev_xy[~ev_in], radius, suggest)
    return coverage_answer(
        root=root,
        minutes=minutes,
        speed=speed,
        radius=radius,
        bases=bases,
        residents=float(pops.sum()),
        covered_people=covered_people,
        ev_in=ev_in,
        area_share=reach.area / area.area if area.area else None,
        picks=[(leaves[j].code, leaves[j].name, centres[j], g) for j, g in picks],
        leaf_codes={r.code for r in leaves},
        plane=plane,
        features=[feature(plane, "reach", reach), feature(plane, "gap", gaps)],
    )
