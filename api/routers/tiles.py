"""The offline basemap's tiles, from the tile file in the data folder (no file: 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from api.errors import ApiError
from api.services.basemap import find_basemap, read_tile

router = APIRouter(tags=["tiles"], include_in_schema=False)


@router.get("/tiles/{z}/{x}/{y}")
def tile(
    request: Request,
    z: Annotated[int, Path(ge=0, le=24)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
) -> Response:
    """One basemap tile (XYZ). Basemap tiles carry no figures: no login is asked."""
    basemap = find_basemap(request.app.state.settings.data_dir)
    if basemap is None:
        raise ApiError(404, "no basemap: place a .mbtiles or .pmtiles file in the data folder")
    data = read_tile(basemap, z, x, y) if x < (1 << z) and y < (1 << z) else None
    if data is None:
        return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(data, media_type=basemap.media_type, headers=headers)
