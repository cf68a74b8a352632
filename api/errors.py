"""Errors as JSON a person can act on; never a stack trace or SQL."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.responses import ORJSONResponse

log = logging.getLogger("zhili")


class ApiError(Exception):
    """An error with an HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def _describe(error: dict) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))


BAD_PARAMETER = 400  # a query or path parameter the route cannot use (every route)
BAD_BODY = 422  # a well-formed JSON body whose content does not fit


def validation_status(errors: list[dict]) -> int:
    """The one rule of the API (docs/errors.md): a bad query or path parameter is a 400,
    on every route; a request body that is JSON but does not fit is a 422."""
    if any(e.get("loc", ("body",))[0] == "body" for e in errors):
        return BAD_BODY
    return BAD_PARAMETER


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to ``{"error": ..., "message": ...}``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> ORJSONResponse:
        return ORJSONResponse(
            {"error": exc.status, "message": exc.message, **exc.extra}, status_code=exc.status
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> ORJSONResponse:
        problems = [
            {"where": [str(p) for p in e.get("loc", ())], "message": e.get("msg")}
            for e in exc.errors()
        ]
        message = "; ".join(_describe(e) for e in exc.errors()[:5])
        status = validation_status(exc.errors())
        return ORJSONResponse(
            {"error": status, "message": message, "problems": problems[:50]}, status_code=status
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> ORJSONResponse:
        return ORJSONResponse(
            {"error": exc.status_code, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> ORJSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return ORJSONResponse(
            {"error": 500, "message": "internal error; it has been logged"}, status_code=500
        )
