"""Guards in front of every route: oversized bodies and query strings are refused before
anything parses them, and a database that is down answers 503 (retry) instead of 500."""

from __future__ import annotations

import logging

import orjson
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("zhili")

MAX_QUERY_BYTES = 4096


class _TooLarge(Exception):
    pass


async def _reply(send: Send, status: int, message: str, headers: list | None = None) -> None:
    body = orjson.dumps({"error": status, "message": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Pure ASGI middleware: 413 above ``max_body_bytes`` (declared or streamed), 414 above
    ``MAX_QUERY_BYTES`` of query string, 503 when the database connection fails."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        too_large = f"request body too large: the limit is {limit:,} bytes (split the batch)"
        if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            await _reply(send, 414, f"query string too long: at most {MAX_QUERY_BYTES} bytes")
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(send, 400, "bad Content-Length header")
                    return
                if declared > limit:
                    await _reply(send, 413, too_large, [(b"connection", b"close")])
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await _reply(send, 413, too_large, [(b"connection", b"close")])
        except DBAPIError as exc:
            if started or (not exc.connection_invalidated and not _is_connection_error(exc)):
                raise
            log.warning("database unavailable on %s: %s", scope.get("path"), type(exc).__name__)
            await _reply(
                send,
                503,
                "the database is unavailable; retry in a few seconds",
                [(b"retry-after", b"2")],
            )


def _is_connection_error(exc: DBAPIError) -> bool:
    """Connection refused, reset or terminated (a server restart), as opposed to bad SQL."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig).lower()
    return any(
        words in text
        for words in (
            "connection",
            "terminating",
            "server closed",
            "could not connect",
            "shutting down",
            "starting up",
            "database is locked",
        )
    )
