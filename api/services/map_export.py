"""A map as a file: the units of a level under a parent with a metric and its classes, as
GeoJSON, CSV or GeoPackage — what ``GET /api/v1/choropleth`` and ``zhili export`` give.
Every export is audited."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy.orm import Session

from api.engine import MapQuery, MetricQuery, choropleth_table, feature_collection
from api.principal import Principal
from api.services.audit import audit_export
from api.settings import get_settings

Format = Literal["geojson", "csv", "gpkg"]
MEDIA = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "gpkg": "application/geopackage+sqlite3",
}
COLUMNS = ("code", "name", "level", "parent_code", "value", "numerator", "denominator",
           "count", "low_count", "ci_low", "ci_high", "previous", "change", "change_pct",
           "base_partial", "class")  # fmt: skip


@dataclass(frozen=True)
class MapFile:
    body: bytes
    media_type: str
    filename: str
    rows: int


def export_map(
    session: Session,
    principal: Principal | None,
    map_query: MapQuery,
    query: MetricQuery,
    fmt: Format,
    cache_dir: Path | None = None,
) -> MapFile:
    """The map ``map_query`` (its parent already checked to be in the caller's scope;
    ``principal`` None is the command line) with the metric of ``query``. Raises the
    engine's MetricsError on a bad request."""
    from api.services.display import display_layer

    table = choropleth_table(session, map_query, query)
    level, parent = table.level, table.parent
    meta = table.meta()
    boundaries = table.state.units.version  # read by the engine in this same request
    layer = display_layer(session, level, parent, cache_dir=cache_dir, version=boundaries)
    name = file_stem(parent, level, meta["metric"], meta["period"]["start"], meta["period"]["end"])
    # rows lie strictly below ``parent``, which is in the caller's scope: no row is the
    # caller's home unit, the one row whose parent_code could name a unit outside it
    if fmt == "geojson":
        body = feature_collection(table.rows(), layer.fragments, meta)
    else:
        body = _table_file(table.rows(), layer.fragments, meta, fmt, name)
    audit_export(
        session,
        principal,
        level=meta["level"],
        parent=meta["parent"],
        metric=meta["metric"],
        start=meta["period"]["start"],
        end=meta["period"]["end"],
        fmt=fmt,
        rows=len(table.shown),
        via=principal.via if principal else "cli",
    )
    return MapFile(body, MEDIA[fmt], f"{name}.{fmt}", len(table.shown))


def file_stem(parent: str, level: str, metric: str, start: str, end: str) -> str:
    """A map file's name without extension: the unit, the level shown, the metric and the
    period, e.g. ``320599_town_caseload_2026-10-01_2026-10-31`` (ASCII: codes and ids)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in parent)
    return f"{safe}_{level}_{metric}_{start}_{end}"


def _table_file(rows: list[dict], fragments: dict, meta: dict, fmt: Format, name: str) -> bytes:
    """CSV or GeoPackage bytes of the rows with their display geometry."""
    import geopandas as gpd
    import shapely

    from geo.export import export_bytes

    known = np.array([r["code"] in fragments for r in rows], dtype=bool)
    geoms = np.full(len(rows), None, dtype=object)
    geoms[known] = shapely.from_geojson(
        [fragments[r["code"]] for r in rows if r["code"] in fragments]
    )
    frame = gpd.GeoDataFrame([_flat(r, meta, fmt) for r in rows], geometry=geoms, crs="EPSG:4326")
    return export_bytes(frame, fmt, layer=name, rfc7946=True)  # display geometry already is


def _flat(row: dict, meta: dict, fmt: Format = "csv") -> dict:
    out = {k: row.get(k) for k in COLUMNS}
    if "suppressed" in row:  # a protected count: "<5" in CSV, NULL and a flag in GeoPackage
        out["suppressed"] = bool(row["suppressed"])
        if fmt == "csv" and row["suppressed"]:
            out["value"] = f"<{get_settings().suppression_threshold}"
    out["metric"] = meta["metric"]
    out["start"], out["end"] = meta["period"]["start"], meta["period"]["end"]
    return out
