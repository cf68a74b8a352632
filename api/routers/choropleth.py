"""Choropleth: a level's units under a parent with a metric and class breaks, as GeoJSON
(for the map) or CSV / GeoPackage (for download, audited)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import Reader, SessionDep
from api.routers.queries import MapQueryDep, MetricQueryDep
from api.services.map_export import export_map
from api.services.scope import check_scope

router = APIRouter(tags=["maps"])


@router.get("/choropleth")
def choropleth(
    request: Request,
    session: SessionDep,
    user: Reader,
    query: MetricQueryDep,
    map_query: MapQueryDep,
    format: Annotated[Literal["geojson", "csv", "gpkg"], Query()] = "geojson",
) -> Response:
    """The units of ``level`` under ``parent`` (default: the caller's root; level: the
    next one down) with the metric, its count, previous value, change, low-count flag and
    class (quantiles | natural_breaks | equal_interval | fixed with breaks=)."""
    parent = check_scope(session, user, map_query.parent or user.unit_code)
    exported = export_map(
        session,
        user,
        map_query.under(parent.code),
        query,
        format,
        cache_dir=request.app.state.settings.cache_dir,
    )
    session.commit()  # the audit entry
    # every format names its file (unit, level, metric, period, extension): a browser
    # saving a map no longer writes "choropleth"; a script's fetch ignores the header
    headers = {"Content-Disposition": f'attachment; filename="{exported.filename}"'}
    return Response(exported.body, media_type=exported.media_type, headers=headers)
