"""RFC 7946 geometry writing shared by display and export: 6 decimals, exterior rings
counter-clockwise (re-oriented after rounding, which can flip them), no ``crs``."""

from __future__ import annotations

import numpy as np
import orjson
import shapely
from shapely.geometry.base import BaseGeometry

DECIMALS = 6
GRID_SIZE = 10.0**-DECIMALS


def rfc7946_geometries(geoms: np.ndarray) -> np.ndarray:
    """Snap ``geoms`` to the 6-decimal grid (keeping them valid), then orient exterior
    rings counter-clockwise and holes clockwise. Geometries that collapse to empty under
    snapping are kept unsnapped rather than lost."""
    geoms = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(geoms)
    snapped = geoms.copy()
    snapped[present] = shapely.set_precision(geoms[present], GRID_SIZE)
    collapsed = present & shapely.is_empty(snapped) & ~shapely.is_empty(geoms)
    snapped[collapsed] = geoms[collapsed]
    snapped[present] = shapely.orient_polygons(snapped[present], exterior_cw=False)
    return snapped


def _ring(ring) -> list:
    return np.round(shapely.get_coordinates(ring), DECIMALS).tolist()


def _polygon(poly) -> list:
    return [_ring(poly.exterior), *(_ring(r) for r in poly.interiors)]


def geometry_object(geom: BaseGeometry | None) -> dict | None:
    """The GeoJSON geometry object of an (already oriented) polygonal geometry, with
    coordinates rounded to 6 decimals; None for a missing or empty geometry."""
    if geom is None or geom.is_empty:
        return None
    kind = geom.geom_type
    if kind == "Polygon":
        return {"type": "Polygon", "coordinates": _polygon(geom)}
    if kind == "MultiPolygon":
        return {"type": "MultiPolygon", "coordinates": [_polygon(p) for p in geom.geoms]}
    if kind == "GeometryCollection":  # make_valid leftovers: keep the polygonal part
        polys = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
        parts = [q for p in polys for q in shapely.get_parts(p)]
        return geometry_object(shapely.MultiPolygon(parts)) if parts else None
    rounded = shapely.transform(geom, lambda xy: np.round(xy, DECIMALS))
    return shapely.geometry.mapping(rounded)  # points or lines: rare in boundary data


def geometry_fragment(geom: BaseGeometry | None) -> bytes:
    """``geometry_object`` as JSON bytes (``null`` for none)."""
    return orjson.dumps(geometry_object(geom))


def bounds_of(geoms: np.ndarray) -> list[float] | None:
    """[west, south, east, north] of all ``geoms``, rounded outward to 6 decimals."""
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    if not len(geoms):
        return None
    b = shapely.bounds(geoms)
    scale = 10**DECIMALS
    return [
        float(np.floor(b[:, 0].min() * scale) / scale),
        float(np.floor(b[:, 1].min() * scale) / scale),
        float(np.ceil(b[:, 2].max() * scale) / scale),
        float(np.ceil(b[:, 3].max() * scale) / scale),
    ]
