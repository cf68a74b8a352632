"""The API's documentation at /docs, offline: Swagger UI's assets are served by the app
itself (the Swagger UI 5 files of pip package ``fastapi-offline``: 5 reads OpenAPI 3.1, as
FastAPI writes it), never fetched from a CDN, so /docs works on an intranet with no
internet."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import ApiError

router = APIRouter(include_in_schema=False)

ASSETS = Path(fastapi_offline.__file__).parent / "static"
SERVED = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over the app's OpenAPI document, every asset from /docs/assets."""
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} — API",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon.png",
    )


@router.get("/docs/assets/{name}")
def swagger_asset(name: str) -> FileResponse:
    """One of Swagger UI's own files (cached by the browser for a day)."""
    if name not in SERVED:
        raise ApiError(404, f"no asset {name!r}")
    return FileResponse(ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})
