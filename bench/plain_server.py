"""Bench only: the app with the choropleth's GeoJSON written by the plain writer
(``feature_collection``: orjson over the table's rows, geometry as pre-serialised
fragments) instead of the spliced deflate writer, for ``bench.bench_writers``.

    uvicorn --factory bench.plain_server:app_factory
    uvicorn --factory bench.plain_server:no_splice_gzip_factory   # spliced, no splice_gzip

Compression is what a plain writer would leave to others: a client that takes gzip gets the
app's own GZip middleware (as configured in ``api.app``); a client that takes deflate but
not gzip gets the body through ``zlib.compress`` at level 1 (the middleware has no deflate);
anyone else gets it uncompressed. No app code is changed: two names are replaced when the
app is built.
"""

from __future__ import annotations

import zlib

from fastapi import FastAPI, Request

import api.routers.choropleth as choropleth_router
import api.services.map_export as map_export
from api.app import create_app
from api.engine.choropleth import ChoroplethTable, feature_collection

_SPLICED_ENCODING = choropleth_router._content_encoding


def plain_collection(
    table: ChoroplethTable,
    layer_key: tuple,
    fragments: dict[str, bytes],
    meta: dict,
    encoding: str | None = None,
) -> bytes:
    """``spliced_collection``'s answer, written by the plain writer (deflated if asked)."""
    body = feature_collection(table.rows(), fragments, meta)
    return zlib.compress(body, 1) if encoding == "deflate" else body


def content_encoding(request: Request) -> str | None:
    """None when the GZip middleware will compress (it checks for ``gzip`` the same way),
    ``deflate`` for a client that takes deflate only, else None (plain)."""
    if "gzip" in request.headers.get("accept-encoding", ""):
        return None
    return "deflate" if _SPLICED_ENCODING(request) == "deflate" else None


def deflate_or_middleware(request: Request) -> str | None:
    """``deflate`` (spliced) for a client that takes it, else None: a gzip-only client gets
    the plain splice through the GZip middleware (the app without ``splice_gzip``)."""
    return "deflate" if _SPLICED_ENCODING(request) == "deflate" else None


def app_factory() -> FastAPI:
    """The app, with the plain writer in place of the spliced one."""
    map_export.spliced_collection = plain_collection
    choropleth_router._content_encoding = content_encoding
    return create_app()


def no_splice_gzip_factory() -> FastAPI:
    """The app as it is, except that a gzip-only client's body is spliced plain and then
    compressed by the GZip middleware instead of by ``splice_gzip``."""
    choropleth_router._content_encoding = deflate_or_middleware
    return create_app()
