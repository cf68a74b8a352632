"""A composed wall (``/dashboard/wall/<name>`` or ``/dashboard/wall?name=``): the views an
admin put on it (``PUT /api/v1/walls/{name}``), each for its own seconds, its KPI cards
with thresholds that turn a figure red, and a ticker of the open alerts.

Each tick (the current view's seconds) reads the wall's version: a changed wall is read
again and starts over, so an admin's change reaches a running wall at its next refresh.
The map is sent whole only when the unit or level changes; otherwise a ``Patch`` of its
numbers (the wall's heap stays flat: ``tests/dashboard/test_wall_browser.py``).
"""

from __future__ import annotations

import datetime as dt

import dash
from dash import ClientsideFunction, Input, Output, State, dcc, html, no_update

from dashboard import client
from dashboard.components.alerts import alert_sentence
from dashboard.components.choropleth import GRAPH_CONFIG, map_figure, map_patch
from dashboard.components.legend import legend
from dashboard.components.words import w
from dashboard.i18n import format_change, format_value, t
from dashboard.state import MapView
from dashboard.views import catalog, label_points, map_model, publishable

WALL_ID = "cwall"
TICK = "cwall-tick"
STORE = "cwall-state"
MAP = "cwall-map"
LEGEND = "cwall-legend"
KPIS = "cwall-kpis"
TITLE = "cwall-title"
ASOF = "cwall-asof"
TICKER = "cwall-ticker"
CLOCK = "cwall-clock"
FONT = 20
CONFIG = GRAPH_CONFIG | {"staticPlot": True}
TICKER_ALERTS = 20


def _view_of(spec: dict, lang: str) -> MapView:
    """A wall view's spec (``api.services.saved_views``) as a map view."""
    query = {
        k: v
        for k, v in {
            "metric": spec.get("metric"),
            "period": spec.get("period"),
            "start": spec.get("start"),
            "end": spec.get("end"),
            "compare": spec.get("compare"),
            "method": spec.get("classes"),
            "show": spec.get("level"),
            "layers": ",".join(spec.get("layers") or []),
            "lang": lang,
        }.items()
        if v
    }
    return MapView.from_query(spec["unit"], query, "caseload")


def _resolved(who: client.Principal, view: MapView) -> MapView | None:
    unit = client.unit_view(who, view.code)
    if unit is None or unit.is_leaf:
        return None
    level = unit.child_level
    if view.show and view.show in [c for c, _, _ in client.levels_below(unit.level)]:
        level = view.show
    view = publishable(view, catalog().get(view.metric))  # a per-month metric: a month
    return view.resolved(level, client.last_day()).with_(code=unit.code)


def _cards(who, view: MapView, wall: dict, metrics: dict) -> list[html.Div]:
    """The wall's KPI cards for the view's unit; a figure past its threshold is red."""
    wanted = [m for m in wall.get("kpis") or [] if m in metrics] or [view.metric]
    figures = client.unit_figures(who, view.code, wanted, view.start, view.end, view.compare)
    cards = []
    for m in wanted:
        info, f = metrics[m], figures.get(m)
        value = f.value if f else None
        rule = (wall.get("thresholds") or {}).get(m)
        breach = bool(
            rule
            and value is not None
            and (
                ("above" in rule and value > rule["above"])
                or ("below" in rule and value < rule["below"])
            )
        )
        change = format_change(value, f.previous if f else None, info.format, view.lang)
        cards.append(
            html.Div(
                [
                    html.Div(info.label(view.lang), className="kpi-label"),
                    html.Div(format_value(value, info.format, view.lang), className="kpi-value"),
                    html.Div(f"{t(view.compare, view.lang)} {change}", className="kpi-change"),
                ],
                className="kpi breach" if breach else "kpi",
                id=f"cwall-kpi-{m}",
                **{"data-breach": "1" if breach else "0"},
            )
        )
    return cards


def _ticker(who, wall: dict, lang: str) -> list:
    if not wall.get("ticker"):
        return []
    alerts = client.open_alerts(who, wall["unit"])[:TICKER_ALERTS]
    if not alerts:
        return [html.Span(w("no_alerts", lang))]
    return [html.Span(alert_sentence(a, lang), className="ticker-item") for a in alerts]


def render(who, wall: dict, index: int, lang: str, full: bool) -> dict | None:
    """What view ``index`` of ``wall`` shows now: map (whole, or a Patch), legend, cards,
    title, ticker and the view's seconds; None when no view can be shown."""
    views = wall.get("views") or []
    if not views:
        return None
    item = views[index % len(views)]
    view = _resolved(who, _view_of(item["spec"], lang))
    if view is None:
        return None
    metrics = catalog()
    metric = metrics[view.metric]
    figures, bounds = client.choropleth(who, view)
    model = map_model(figures, bounds, metric, lang)
    k = len(model.bounds)
    if full:
        geometry = client.display_geometry(who, view.code, view.level)
        unit = client.unit_view(who, view.code)
        picked = view.level if unit and view.level != unit.child_level else None
        figure = map_figure(
            client.boundaries_url(view.code, picked),
            model.items,
            k,
            metric.higher_is_better,
            label_points(geometry.labels if geometry else [], limit=40),
            lang,
            dark=True,
            label_size=FONT - 4,
            tile_url=client.settings().tile_url,
            extent=geometry.extent if geometry else None,
        )
    else:
        figure = map_patch(model.items, k, metric.higher_is_better, lang)
    name = item.get("name") or metric.label(lang)
    title = f"{wall['title']} · {name}"
    return {
        "map": figure,
        "legend": legend(
            metric.label(lang),
            model.lower,
            model.bounds,
            metric.format,
            metric.higher_is_better,
            client.settings().min_denominator,
            lang,
            suppressed=client.suppressed_label() if metric.per_month else None,
        ),
        "kpis": _cards(who, view, wall, metrics),
        "title": title,
        "ticker": _ticker(who, wall, lang),
        "seconds": int(item.get("seconds") or 30),
        "key": f"{view.code}/{view.level}",
        "asof": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def _key(who, wall: dict, index: int, lang: str) -> str | None:
    """Which map view ``index`` shows (unit and level): the same map is only patched."""
    views = wall.get("views") or []
    if not views:
        return None
    view = _resolved(who, _view_of(views[index % len(views)]["spec"], lang))
    return f"{view.code}/{view.level}" if view else None


def composed_layout(name: str, lang: str) -> html.Div:
    """The composed wall ``name`` for the logged-in user (a wall at a unit outside the
    user's jurisdiction is 'no such wall')."""
    who = client.principal()
    if who is None:
        return html.Div(dcc.Location(id="cwall-login", href=dash.get_relative_path("/login")))
    wall = client.composed_wall(who, name)
    panel = render(who, wall, 0, lang, full=True) if wall else None
    if wall is None or panel is None:
        return html.Div(html.P(w("no_wall", lang), className="message"), id=WALL_ID)
    state = {"name": name, "version": wall["version"], "index": 0, "key": panel["key"],
             "lang": lang}  # fmt: skip
    return html.Div(
        html.Div(
            [
                dcc.Store(id=STORE, data=state),
                dcc.Interval(id=TICK, interval=panel["seconds"] * 1000),
                dcc.Interval(id=CLOCK, interval=1000),
                html.Div(
                    [
                        html.Div(panel["title"], id=TITLE, className="wall-title"),
                        html.Div(panel["asof"], id=ASOF, className="asof"),
                    ],
                    className="wall-head",
                ),
                html.Div(
                    [
                        html.Div(
                            [
                                dcc.Graph(
                                    id=MAP, figure=panel["map"], config=CONFIG, className="wall-map"
                                ),
                                html.Div(panel["legend"], id=LEGEND),
                            ],
                            className="wall-map-box",
                        ),
                        html.Div(
                            html.Div(panel["kpis"], id=KPIS, className="wall-kpis"),
                            className="wall-side",
                        ),
                    ],
                    className="wall-body",
                ),
                html.Div(
                    html.Div(panel["ticker"], className="ticker-run"),
                    id=TICKER,
                    className="wall-ticker",
                ),
            ],
            className="wall-stage",
            id="wall-stage",
        ),
        id=WALL_ID,
        className="wall composed",
        **{"data-wall": name, "data-version": str(wall["version"])},
    )


def next_view(_: int | None, state: dict):
    """The next view of the wall, as the wall now is (read again when its version moved)."""
    who = client.principal()
    if who is None or not state or not isinstance(state.get("name"), str):
        return (no_update,) * 8
    lang = "en" if state.get("lang") == "en" else "zh"
    version = client.wall_version(who, state["name"])
    if version is None:
        return (no_update,) * 8
    wall = client.composed_wall(who, state["name"])
    changed = version != state.get("version")
    index = 0 if changed else int(state.get("index", 0)) + 1
    try:
        full = changed or _key(who, wall, index, lang) != state.get("key")
        panel = render(who, wall, index, lang, full=full)
        if panel is None:
            return (no_update,) * 8
    except LookupError:
        return (no_update,) * 8
    state = state | {"version": version, "index": index, "key": panel["key"]}
    ticker = html.Div(panel["ticker"], className="ticker-run")
    return (panel["map"], panel["legend"], panel["kpis"], panel["title"], ticker,
            panel["asof"], panel["seconds"] * 1000, state)  # fmt: skip


__all__ = ["composed_layout", "render"]


def register_callbacks() -> None:
    """This module's callbacks, for the Dash app being built: called by its page
    module, which Dash runs once per app (a module-level ``dash.callback`` would go to
    the first app of the process only)."""
    dash.callback(
        Output(MAP, "figure"),
        Output(LEGEND, "children"),
        Output(KPIS, "children"),
        Output(TITLE, "children"),
        Output(TICKER, "children"),
        Output(ASOF, "children"),
        Output(TICK, "interval"),
        Output(STORE, "data"),
        Input(TICK, "n_intervals"),
        State(STORE, "data"),
        prevent_initial_call=True,
    )(next_view)
    dash.clientside_callback(
        ClientsideFunction("zhiliViews", "fitStage"),
        Output(CLOCK, "disabled"),
        Input(CLOCK, "n_intervals"),
    )
