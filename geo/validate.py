"""The validation report of a boundary import: what is wrong with the file, how bad.

Each finding is a :class:`Problem` with a severity: ``error`` refuses the whole file,
``warning`` imports and says so, ``info`` is reported for the record. Thresholds
(:class:`Thresholds`) decide which is which; the defaults suit real data, where children
are commonly 1-5% outside a parent drawn at another scale and slivers abound.

Areas are computed in a Lambert azimuthal equal-area projection centred on the data, and
reported in m²; locations are WGS84 lon/lat of a point inside the problem spot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import orjson
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from geo.geojson import geometry_object, rfc7946_geometries

ERROR, WARNING, INFO = "error", "warning", "info"
DENSIFY_DEGREES = 0.001  # ≈ 100 m: the chord of such an edge is off by micrometres


@dataclass(frozen=True)
class Thresholds:
    """What is an error (refuse the file) and what is a warning (import, report)."""

    outside_warning: float = 0.05  # share of a child's area outside its parent
    outside_error: float = 0.50  # mostly outside: the parent code is likely wrong
    outside_info: float = 0.001
    overlap_warning: float = 0.01  # share of the smaller of two overlapping siblings
    overlap_error: float = 0.50  # the same land drawn twice
    gap_warning: float = 0.01  # share of the parent's area left uncovered by its children
    min_area_m2: float = 1.0  # smaller overlaps and gaps are rounding noise
    unknown_parent_is_error: bool = True


@dataclass
class Problem:
    """One finding of the report."""

    kind: str
    severity: str
    code: str | None
    message: str
    other_code: str | None = None
    area_m2: float | None = None
    share: float | None = None
    lon: float | None = None
    lat: float | None = None
    geom: BaseGeometry | None = field(default=None, repr=False)  # WGS84, for the GeoJSON

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("geom")
        return {k: v for k, v in out.items() if v is not None}


class AreaFrame:
    """Areas in m² of WGS84 geometries, through an equal-area projection of the data."""

    def __init__(self, geoms: np.ndarray) -> None:
        present = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
        if len(present):
            x0, y0, x1, y1 = shapely.total_bounds(present)
            lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
        else:
            lon, lat = 0.0, 0.0
        laea = pyproj.CRS.from_proj4(f"+proj=laea +lat_0={lat} +lon_0={lon} +datum=WGS84")
        self._to_metres = pyproj.Transformer.from_crs(4326, laea, always_xy=True)
        self._to_wgs84 = pyproj.Transformer.from_crs(laea, 4326, always_xy=True)

    def project(self, geoms: np.ndarray) -> np.ndarray:
        """WGS84 → metres (vectorised). Long edges are densified first, so that an edge
        and a vertex lying on it stay together (a projected edge is a chord)."""
        geoms = shapely.segmentize(geoms, DENSIFY_DEGREES)
        return shapely.transform(
            geoms, lambda xy: np.column_stack(self._to_metres.transform(xy[:, 0], xy[:, 1]))
        )

    def unproject(self, geom: BaseGeometry) -> BaseGeometry:
        """Metres → WGS84."""
        return shapely.transform(
            geom, lambda xy: np.column_stack(self._to_wgs84.transform(xy[:, 0], xy[:, 1]))
        )


def graded(share: float, warning: float, error: float) -> str:
    """The severity of a problem that covers ``share``: an error above ``error``, a
    warning above ``warning``, else info."""
    return ERROR if share > error else WARNING if share > warning else INFO


def located(problem: Problem, frame: AreaFrame, spot_m: BaseGeometry) -> Problem:
    """Give ``problem`` the WGS84 shape and a point inside ``spot_m`` (in metres)."""
    spot = frame.unproject(spot_m)
    point = shapely.point_on_surface(spot)
    problem.lon, problem.lat = round(point.x, 6), round(point.y, 6)
    problem.geom = spot
    return problem


def hierarchy_problems(
    codes: list[str],
    parents: list[str | None],
    geoms_m: np.ndarray,
    parent_geoms_m: dict[str, BaseGeometry | None],
    other_siblings: dict[str, list[tuple[str, BaseGeometry]]],
    frame: AreaFrame,
    thresholds: Thresholds,
) -> list[Problem]:
    """Children outside their parent, sibling overlaps and gaps (geometries in metres).

    ``other_siblings``: current units of the database at the same level, by parent code,
    that the file does not replace (so a partial file does not report false gaps)."""
    problems: list[Problem] = []
    areas = shapely.area(geoms_m)
    t = thresholds
    # children outside their parent (most lie inside: a prepared test skips them)
    for geom in parent_geoms_m.values():
        if geom is not None:
            shapely.prepare(geom)
    for i, (code, parent) in enumerate(zip(codes, parents, strict=True)):
        parent_geom = parent_geoms_m.get(parent) if parent else None
        if parent_geom is None or geoms_m[i] is None or areas[i] <= 0:
            continue
        if parent_geom.covers(geoms_m[i]):
            continue
        outside = shapely.difference(geoms_m[i], parent_geom)
        share = float(outside.area / areas[i])
        if share <= t.outside_info:
            continue
        severity = graded(share, t.outside_warning, t.outside_error)
        problems.append(
            located(
                Problem(
                    "outside_parent",
                    severity,
                    code,
                    f"{share:.1%} of {code} lies outside its parent {parent}",
                    other_code=parent,
                    area_m2=round(float(outside.area), 1),
                    share=round(share, 4),
                ),
                frame,
                outside,
            )
        )
    # sibling overlaps
    valid = np.array([g is not None for g in geoms_m])
    idx = np.flatnonzero(valid)
    tree = shapely.STRtree(geoms_m[idx])
    left, right = tree.query(geoms_m[idx], predicate="intersects")
    for a, b in zip(idx[left], idx[right], strict=True):
        if a >= b or parents[a] != parents[b]:
            continue
        inter = shapely.intersection(geoms_m[a], geoms_m[b])
        if inter.area < t.min_area_m2:
            continue
        share = float(inter.area / min(areas[a], areas[b]))
        severity = graded(share, t.overlap_warning, t.overlap_error)
        problems.append(
            located(
                Problem(
                    "overlap",
                    severity,
                    codes[a],
                    f"{codes[a]} and {codes[b]} overlap by {inter.area:,.0f} m² "
                    f"({share:.1%} of the smaller)",
                    other_code=codes[b],
                    area_m2=round(float(inter.area), 1),
                    share=round(share, 4),
                ),
                frame,
                inter,
            )
        )
    # gaps between siblings: parent area no child covers (holes in the union at the root)
    by_parent: dict[str | None, list[BaseGeometry]] = {}
    for i in idx:
        by_parent.setdefault(parents[i], []).append(geoms_m[i])
    for parent, children in sorted(by_parent.items(), key=lambda kv: kv[0] or ""):
        children = children + [g for _, g in other_siblings.get(parent, []) if g is not None]
        union = shapely.union_all(children)
        parent_geom = parent_geoms_m.get(parent) if parent else None
        if parent_geom is not None:
            uncovered = shapely.difference(parent_geom, union)
            whole = parent_geom.area
        else:
            holes = [shapely.Polygon(r) for p in shapely.get_parts(union) for r in p.interiors]
            own = [  # a unit's own hole (a lake) that no sibling enters is not a gap
                hole
                for g in children
                for p in shapely.get_parts(g)
                for hole in map(shapely.Polygon, p.interiors)
                if shapely.intersection(hole, union).area < t.min_area_m2
            ]
            uncovered = shapely.union_all(holes) if holes else shapely.Polygon()
            uncovered = shapely.difference(uncovered, union)  # units inside a hole
            if own and not uncovered.is_empty:
                uncovered = shapely.difference(uncovered, shapely.union_all(own))
            whole = union.area
        for piece in shapely.get_parts(uncovered):
            if piece.geom_type != "Polygon" or piece.area < t.min_area_m2:
                continue
            share = float(piece.area / whole) if whole else 0.0
            where = f"inside {parent}" if parent else "between units"
            problems.append(
                located(
                    Problem(
                        "gap",
                        WARNING if share > t.gap_warning else INFO,
                        parent,
                        f"a gap of {piece.area:,.0f} m² {where} that no unit of the file covers",
                        area_m2=round(float(piece.area), 1),
                        share=round(share, 4),
                    ),
                    frame,
                    piece,
                )
            )
    return problems


def problems_geojson(problems: list[Problem]) -> bytes:
    """The problem spots as an RFC 7946 FeatureCollection (for QGIS)."""
    spots = [p for p in problems if p.geom is not None or p.lon is not None]
    geoms = np.array(
        [p.geom if p.geom is not None else shapely.Point(p.lon, p.lat) for p in spots],
        dtype=object,
    )
    geoms = rfc7946_geometries(geoms) if len(geoms) else geoms
    features = [
        {"type": "Feature", "properties": p.to_dict(), "geometry": geometry_object(g)}
        for p, g in zip(spots, geoms, strict=True)
    ]
    return orjson.dumps({"type": "FeatureCollection", "features": features})
