"""The grid network (网格化管理) as it is now: residents, area, grids and grid workers by
role, town centers and village linkage stations by status and video link. Each measure is
read per current unit and counts for that unit and every ancestor (a grid's worker counts
for its village, town and city). Residents, households and area are read from the leaves
(units without a current child), so nothing is counted twice."""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.db.models import AdminUnit
from api.engine.domain import Current, FactDomain, Metric

CURRENT = "u.valid_to IS NULL"
LEAF = (
    f"{CURRENT} AND NOT EXISTS (SELECT 1 FROM admin_unit c "
    "WHERE c.parent_code = u.code AND c.valid_to IS NULL)"
)
GRID = f"{CURRENT} AND u.level = :deepest"


def _sql(query: str):
    """A reader of (unit code, value) rows from ``query`` (may use ``:deepest``)."""

    def read(session: Session, deepest: str) -> list[tuple[str, float]]:
        binds = {"deepest": deepest} if ":deepest" in query else {}
        return [(code, float(v or 0)) for code, v in session.execute(text(query), binds)]

    return read


def _workers(role: str):
    return _sql(
        "SELECT u.code, COUNT(*) FROM admin_unit u JOIN grid_worker w ON w.grid_code = u.code "
        f"WHERE {GRID} AND w.active AND w.role = '{role}' GROUP BY u.code"
    )


def _facilities(condition: str):
    return _sql(f"SELECT unit_code, COUNT(*) FROM facility f WHERE {condition} GROUP BY unit_code")


def _areas_km2(geoms: list) -> np.ndarray:
    """Areas in km² on a Lambert azimuthal equal-area projection centred on the data."""
    arr = np.array(geoms, dtype=object)
    out = np.zeros(len(arr))
    has = np.array([g is not None and not g.is_empty for g in arr], dtype=bool)
    if not has.any():
        return out
    lon0, lat0 = shapely.centroid(shapely.union_all(shapely.envelope(arr[has]))).coords[0]
    tr = Transformer.from_crs(
        "EPSG:4326", f"+proj=laea +lat_0={lat0} +lon_0={lon0} +units=m", always_xy=True
    )
    projected = shapely.transform(arr[has], lambda xy: np.column_stack(tr.transform(*xy.T)))
    out[has] = shapely.area(projected) / 1e6
    return out


def _leaf_areas(where: str):
    """Leaves' area in km²: as recorded, else measured on their geometry."""

    def read(session: Session, deepest: str) -> list[tuple[str, float]]:
        rows = session.execute(
            text(f"SELECT u.code, u.area_km2, u.id FROM admin_unit u WHERE {where}"),
            {"deepest": deepest} if ":deepest" in where else {},
        ).all()
        missing = [r.id for r in rows if r.area_km2 is None]
        geoms = {}
        if missing:
            found = select(AdminUnit.id, AdminUnit.geom).where(AdminUnit.id.in_(missing))
            geoms = dict(session.execute(found).all())
        computed = dict(zip(missing, _areas_km2([geoms.get(i) for i in missing]), strict=True))
        return [(r.code, r.area_km2 if r.area_km2 is not None else computed[r.id]) for r in rows]

    return read


BUILT = "status = 'built'"
STATION = "kind = 'linkage_station'"

# fmt: off
NETWORK = FactDomain(
    name="grid_network",
    measures=(
        Current("population", _sql(f"SELECT u.code, u.population FROM admin_unit u WHERE {LEAF}")),
        Current("households", _sql(f"SELECT u.code, u.households FROM admin_unit u WHERE {LEAF}")),
        Current("area_km2", _leaf_areas(LEAF)),
        Current("grid_area_km2", _leaf_areas(f"{LEAF} AND u.level = :deepest")),
        Current("grids", _sql(f"SELECT u.code, 1 FROM admin_unit u WHERE {GRID}")),
        Current("full_time", _workers("full_time")),
        Current("leaders", _workers("leader")),
        Current("part_time", _workers("part_time")),
        Current("grids_without_full_time", _sql(
            f"SELECT u.code, 1 FROM admin_unit u WHERE {GRID} AND NOT EXISTS (SELECT 1 FROM "
            "grid_worker w WHERE w.grid_code = u.code AND w.active AND w.role = 'full_time')")),
        Current("stations", _facilities(STATION)),
        Current("stations_built", _facilities(f"{STATION} AND {BUILT}")),
        Current("stations_under_construction",
                _facilities(f"{STATION} AND status = 'under_construction'")),
        Current("centers", _facilities(f"NOT ({STATION})")),
        Current("centers_built", _facilities(f"NOT ({STATION}) AND {BUILT}")),
        Current("facilities_built", _facilities(BUILT)),
        Current("facilities_video", _facilities(f"{BUILT} AND video_linked")),
    ),
    metrics=(
        Metric("grids", "网格数", "Grids", "个", "grids", None, "integer", None, "grid",
               "count"),
        Metric("grid_coverage", "网格覆盖率", "Grid coverage of area", "%", "grid_area_km2",
               "area_km2", "percent", True, "grid", "ratio"),
        Metric("residents_per_grid_worker", "专职网格员人均服务人口",
               "Residents per full-time grid worker", "人", "population", "full_time",
               "integer", False, "grid", "ratio"),
        Metric("households_per_grid_worker", "专职网格员人均服务户数",
               "Households per full-time grid worker", "户", "households", "full_time",
               "integer", False, "grid", "ratio"),
        Metric("full_time_grid_workers", "专职网格员", "Full-time grid workers", "人",
               "full_time", None, "integer", True, "grid", "count"),
        Metric("grids_without_full_time", "无专职网格员网格", "Grids without a full-time worker",
               "个", "grids_without_full_time", None, "integer", False, "grid", "count"),
        Metric("station_build_rate", "联动站建成率", "Linkage stations built / required", "%",
               "stations_built", "stations", "percent", True, "grid", "proportion"),
        Metric("stations_under_construction", "在建联动站",
               "Linkage stations under construction", "个", "stations_under_construction",
               None, "integer", None, "grid", "count"),
        Metric("center_coverage", "综治中心建成率", "Centers built / required", "%",
               "centers_built", "centers", "percent", True, "grid", "proportion"),
        Metric("video_link_coverage", "视频联网率",
               "Video-linked share of built centers and stations", "%", "facilities_video",
               "facilities_built", "percent", True, "grid", "proportion"),
    ),
)
# fmt: on
