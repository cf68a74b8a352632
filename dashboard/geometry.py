"""The map's geometry routes: ``/dashboard/geometry/children/<parent>.json`` (the shapes of
a unit's children, the URL the map names: the page's script can fetch it from the unit's
code alone, before plotly.js asks) and ``/dashboard/geometry/<level>/<parent>.json``.

Served with an ETag and a short private cache lifetime, so the browser fetches each level's
shapes once and plotly.js keeps them for the page's life; scoped to the logged-in user.
"""

from __future__ import annotations

import flask

from dashboard import client

EMPTY = b'{"type":"FeatureCollection","features":[]}'


def _answer(parent: str, level: str | None) -> flask.Response:
    who = client.principal()
    if who is None and flask.request.args.get("ahead"):
        return flask.Response(status=204)
    if who is None:
        return flask.Response('{"detail":"log in first"}', 401, mimetype="application/json")
    found = client.display_geometry(who, parent, level) if level else None
    if found is None and flask.request.args.get("ahead"):  # the page's prefetch: no error
        return flask.Response(status=204)
    if found is None:
        body = f'{{"detail":"no unit {parent!r} with units below it in your jurisdiction"}}'
        return flask.Response(body, 404, mimetype="application/json")
    headers = {"ETag": found.etag, "Cache-Control": "private, max-age=300"}
    if flask.request.headers.get("If-None-Match") == found.etag:
        return flask.Response(status=304, headers=headers)
    return flask.Response(found.body, 200, headers=headers, mimetype="application/geo+json")


def register(server: flask.Flask) -> None:
    """Add the geometry routes to the Dash app's Flask server."""

    @server.get("/geometry/children/<parent>.json")
    def child_geometry(parent: str) -> flask.Response:
        who = client.principal()
        level = client.child_level(who, parent) if who else None
        if level == "":  # a unit with no units below: nothing to draw (asked ahead)
            return flask.Response(EMPTY, 200, mimetype="application/geo+json")
        return _answer(parent, level)

    @server.get("/geometry/<level>/<parent>.json")
    def geometry(level: str, parent: str) -> flask.Response:
        return _answer(parent, level)
