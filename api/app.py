"""The one ASGI app: the API at /api/v1, OGC API at /ogc, the Dash app at /dashboard/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.middleware.gzip import GZipMiddleware

from api.engine import keep_snapshots_in
from api.errors import install_error_handlers
from api.limits import RequestLimits
from api.memory import quiet_garbage_collector, release_big_allocations
from api.ogc import router as ogc_router
from api.responses import ORJSONResponse
from api.routers import (
    alerts,
    audit,
    auth,
    boundaries,
    cases,
    choropleth,
    desk,
    docs,
    events,
    health,
    levels,
    metrics,
    pivot,
    reports,
    risk,
    tiles,
    units,
    views,
)
from api.routers.queries import install_query_errors
from api.settings import Settings, get_settings
from api.timing import ServerTiming


def create_app(settings: Settings | None = None, with_dashboard: bool = True) -> FastAPI:
    """Build the app for ``settings`` (default: the environment's)."""
    settings = with_basemap(settings or get_settings())
    release_big_allocations()
    quiet_garbage_collector()
    app = FastAPI(
        title="Zhili 治理 API",
        version="1.0",
        description="Caseload and grid network of a multi-level governance center.",
        default_response_class=ORJSONResponse,
        docs_url=None,  # /docs is served offline by api.routers.docs
        redoc_url=None,  # ReDoc would load its script and fonts from CDNs
        lifespan=_lifespan,
    )
    app.state.settings = settings
    keep_snapshots_in(settings.cache_dir)
    install_error_handlers(app)
    install_query_errors(app)
    # level 1: a metro choropleth (MBs of GeoJSON) compresses ~10x faster than at the
    # default 9, for ~20% more bytes on an intranet
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=1)
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(ServerTiming)  # outermost: its figure includes compression

    for module in (
        health,
        levels,
        auth,
        audit,
        cases,
        boundaries,
        metrics,
        units,
        choropleth,
        alerts,
        desk,
        risk,
        pivot,
        reports,
        tiles,
        views,
        events,
    ):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(ogc_router.router)
    app.include_router(views.links)  # /v/<slug>
    app.include_router(docs.router)

    if with_dashboard:
        from dashboard.app import create_dash

        dash_app = create_dash(settings)
        app.mount("/dashboard", WSGIMiddleware(dash_app.server, workers=8))

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The server's background work: the monthly reports' schedule, when turned on
    (``ZHILI_REPORT_SCHEDULE``)."""
    settings: Settings = app.state.settings
    task = None
    if settings.report_schedule:
        from api.services.report_schedule import monthly_run

        run = monthly_run(settings.database_url, settings.data_dir, settings.timezone)
        task = asyncio.create_task(run)
    app.state.report_task = task
    yield
    if task is not None:
        task.cancel()


def with_basemap(settings: Settings) -> Settings:
    """``settings`` with the map's tiles served by the app from the tile file in the data
    folder, when there is one and no intranet tile server (``ZHILI_TILE_URL``) is set."""
    from api.services.basemap import TILE_PATH, find_basemap

    if settings.tile_url or find_basemap(settings.data_dir) is None:
        return settings
    return settings.model_copy(update={"tile_url": TILE_PATH})


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory api.app:app_factory``."""
    return create_app()
