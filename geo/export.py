"""Export a layer (units with metric columns) as RFC 7946 GeoJSON, CSV or GeoPackage.

GeoJSON: WGS84, 6 decimals, exterior rings counter-clockwise after rounding, a ``bbox``,
no ``crs``. CSV: UTF-8 with a BOM (so Excel shows Chinese), a ``wkt`` column and the
lon/lat of a point inside each unit. GeoPackage: written by GDAL through pyogrio.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyogrio
import shapely

from geo.geojson import DECIMALS, bounds_of, geometry_object, rfc7946_geometries

Format = Literal["geojson", "csv", "gpkg"]
FORMATS: tuple[str, ...] = ("geojson", "csv", "gpkg")
MEDIA_TYPES = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "gpkg": "application/geopackage+sqlite3",
}


def export_bytes(frame: gpd.GeoDataFrame, fmt: Format, layer: str, rfc7946: bool = False) -> bytes:
    """The bytes of ``frame`` in ``fmt`` (``layer`` names the GeoJSON collection and the
    GeoPackage table). A frame without a CRS is taken as WGS84. ``rfc7946``: the
    geometries already are WGS84 on the 6-decimal grid with RFC 7946 winding (display
    geometry): they are written as they are, not snapped again."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    frame = to_wgs84(frame)
    geoms = frame.geometry.to_numpy() if rfc7946 else rfc7946_geometries(frame.geometry.to_numpy())
    if fmt == "geojson":
        return _geojson(frame, geoms, layer)
    if fmt == "csv":
        return _csv(frame, geoms)
    return _gpkg(frame, layer)


def to_wgs84(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` in EPSG:4326 (a frame without a CRS is taken as WGS84)."""
    if frame.crs is None:
        return frame.set_crs(4326)
    if frame.crs.to_epsg() != 4326:
        return frame.to_crs(4326)
    return frame


def _properties(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame(frame.drop(columns=frame.geometry.name))


def _plain(value):
    """A property value orjson writes as GeoJSON expects (NaN/NaT → null)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _geojson(frame: gpd.GeoDataFrame, geoms: np.ndarray, layer: str) -> bytes:
    props = _properties(frame)
    columns = list(props.columns)
    features = [
        {
            "type": "Feature",
            "properties": {c: _plain(v) for c, v in zip(columns, row, strict=True)},
            "geometry": geometry_object(geom),
        }
        for row, geom in zip(props.itertuples(index=False, name=None), geoms, strict=True)
    ]
    collection: dict = {"type": "FeatureCollection", "name": layer}
    bbox = bounds_of(geoms)
    if bbox:
        collection["bbox"] = bbox
    collection["features"] = features
    return orjson.dumps(collection, option=orjson.OPT_SERIALIZE_NUMPY)


def _csv(frame: gpd.GeoDataFrame, geoms: np.ndarray) -> bytes:
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    wkt = np.full(len(geoms), "", dtype=object)
    wkt[present] = shapely.to_wkt(geoms[present], rounding_precision=DECIMALS, trim=True)
    lon = np.full(len(geoms), np.nan)
    lat = np.full(len(geoms), np.nan)
    if present.any():
        inside = shapely.get_coordinates(shapely.point_on_surface(geoms[present]))
        lon[present] = np.round(inside[:, 0], DECIMALS)
        lat[present] = np.round(inside[:, 1], DECIMALS)
    table = _properties(frame)
    table["lon"] = lon
    table["lat"] = lat
    table["wkt"] = wkt
    text = io.StringIO()
    table.to_csv(text, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    return text.getvalue().encode("utf-8-sig")


# GeoPackage 1.3 (user_version 10300): what GDAL 3.6 (Debian 12, QGIS LTR) reads without
# "may only be partially supported"; the bundled newer GDAL would write 1.4 by default
GPKG_VERSION = "1.3"


def _gpkg(frame: gpd.GeoDataFrame, layer: str) -> bytes:
    geoms = frame.geometry.to_numpy()
    kinds = set(shapely.get_type_id(geoms[~shapely.is_missing(geoms)]).tolist())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.gpkg"
        pyogrio.write_dataframe(
            frame,
            path,
            layer=layer,
            driver="GPKG",
            promote_to_multi=kinds <= {3, 6},
            dataset_options={"VERSION": GPKG_VERSION},
        )
        return path.read_bytes()
