"""Save the map's view (name, shared in my jurisdiction) and open a saved one: a short
form under the controls and a list of the views the user may open (their short links)."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import client, ids
from dashboard.components.words import w
from dashboard.state import MapView

VIEW_NAME = "saved-view-name"
VIEW_SHARED = "saved-view-shared"
VIEW_SAVE = "saved-view-save"
VIEW_SAVED = "saved-view-result"
VIEW_LIST = "saved-view-list"
LISTED = 20


def spec_of(view: MapView) -> dict:
    """A map view as a saved view's spec (``api.services.saved_views.check_spec``)."""
    spec = {"unit": view.code, "metric": view.metric, "compare": view.compare,
            "classes": view.method, "layers": list(view.layers)}  # fmt: skip
    if view.show:
        spec["level"] = view.show
    if view.period == "custom" and view.start and view.end:
        spec |= {"start": view.start.isoformat(), "end": view.end.isoformat()}
    else:
        spec["period"] = view.period
    return spec


def saved_views_box(who: client.Principal, lang: str) -> html.Details:
    """The form and the list (the user's own and those shared with them)."""
    views = client.saved_views(who)[:LISTED]
    links = [html.Li(html.A(v["name"], href=v["link"], className="saved-view-link")) for v in views]
    shared = [{"label": w("shared", lang), "value": "shared"}]
    form = []
    if who.role != "display":  # a wall display shows views; it does not save them
        form = [
            dcc.Input(id=VIEW_NAME, placeholder=w("view_name", lang), maxLength=120),
            dcc.Checklist(id=VIEW_SHARED, options=shared, value=[], inline=True),
            html.Button(w("save_view", lang), id=VIEW_SAVE, n_clicks=0),
            html.Span(id=VIEW_SAVED, className="saved-view-result"),
        ]
    return html.Details(
        [html.Summary(w("saved_views", lang)), *form, html.Ul(links, id=VIEW_LIST)],
        className="saved-views",
    )


def save(clicks: int, name: str | None, shared: list | None, state: dict | None):
    """Save the page's view (the store's) under ``name``; show its short link."""
    who = client.principal()
    if not clicks or who is None or not state:
        raise PreventUpdate
    view = MapView.from_store(state)
    lang = view.lang
    try:
        saved = client.save_view(who, (name or "").strip(), bool(shared), spec_of(view))
    except ValueError as exc:
        return html.Span(str(exc), className="error")
    return [w("saved", lang) + " ", html.A(saved["link"], href=saved["link"])]


def register_callbacks() -> None:
    """This module's callbacks, for the Dash app being built: called by its page
    module, which Dash runs once per app (a module-level ``dash.callback`` would go to
    the first app of the process only)."""
    dash.callback(
        Output(VIEW_SAVED, "children"),
        Input(VIEW_SAVE, "n_clicks"),
        State(VIEW_NAME, "value"),
        State(VIEW_SHARED, "value"),
        State(ids.STATE, "data"),
        prevent_initial_call=True,
    )(save)
