"""The wall ``/dashboard/wall``: the command centre's screen, unattended all day.

Dark, large type, drawn on a 1920×1080 stage scaled to the screen (3840×2160 is the same
picture at twice the pixels), no pointer and no scrollbars needed. It rotates through a
list of views — ``?metrics=caseload,resolution_rate&units=320583,320583001`` (default: the
headline metrics over the user's root unit) — and refreshes its data on its own every
``settings.wall_refresh_seconds`` (``?refresh=`` overrides) without reloading the page: the
map's geometry is a URL fetched once per unit, each refresh sends numbers (a ``Patch``
when the unit is unchanged). "Data as of" turns red when no refresh has succeeded for
three intervals.
"""

from __future__ import annotations

import datetime as dt
import time

import dash
from dash import ClientsideFunction, Input, Output, State, dcc, html, no_update

from dashboard import client, ids
from dashboard.components.alerts import alert_place, alert_sentence
from dashboard.components.charts import trend_figure
from dashboard.components.choropleth import GRAPH_CONFIG, map_figure, map_patch
from dashboard.components.kpi import kpi_cards
from dashboard.components.legend import legend
from dashboard.components.risk import wall_calendar
from dashboard.composed_wall import composed_layout
from dashboard.composed_wall import register_callbacks as _composed_wall_callbacks
from dashboard.i18n import metric_title, t
from dashboard.state import MapView
from dashboard.views import KPI_METRICS, catalog, kpis, label_points, map_model, publishable

dash.register_page(__name__, path="/wall", title="治理 Zhili · 大屏")
_composed_wall_callbacks()  # its callbacks, for this app (Dash runs a page once per app)

DEFAULT_METRICS = ("caseload", "resolution_rate", "on_time_rate", "open_backlog")
STALE_AFTER = 3  # refresh intervals without a good refresh before "data as of" turns red
WALL_FONT = 20
WALL_CONFIG = GRAPH_CONFIG | {"staticPlot": True}
WALL_CALENDAR = "wall-risk-calendar"  # the coming large events of the risk register
WALL_PERIOD = "wall-period"  # the period shown and the data's last day
WALL_ALERTS = "wall-alerts"  # the open alerts
WALL_ALERTS_SHOWN = 3


def _views(who, query: dict[str, str], metrics: dict, lang: str) -> list[dict]:
    """The rotation: each unit's map of each metric (this year, against last year), as
    the wall's store holds them (``MapView.store`` and the unit's name)."""
    wanted = [m for m in query.get("metrics", "").split(",") if m in metrics]
    wanted = wanted or [m for m in DEFAULT_METRICS if m in metrics]
    # a metric asked for that is not a headline card gets its card too (events' KPIs)
    extra = [m for m in wanted if m not in KPI_METRICS]
    units = [u for u in query.get("units", "").split(",") if u] or [who.unit_code]
    views = []
    for code in units:
        unit = client.unit_view(who, code)
        if unit is None or unit.is_leaf:
            continue
        views.extend(
            MapView(code, m, lang=lang, level=unit.child_level).store()
            | {"name": unit.name, "cards": extra}
            for m in wanted
        )
    return views


def _refresh_seconds(query: dict[str, str]) -> int:
    try:
        return max(1, int(query.get("refresh", "")))
    except ValueError:
        return client.settings().wall_refresh_seconds


def layout(**query: str) -> html.Div:
    """The wall for the logged-in user (a display account sees its own subtree)."""
    who = client.principal()
    if who is None:
        return html.Div(dcc.Location(id="wall-login", href=dash.get_relative_path("/login")))
    lang = "en" if query.get("lang") == "en" else "zh"
    if query.get("name"):  # a composed wall (PUT /api/v1/walls/{name})
        return composed_layout(query["name"][:64], lang)
    metrics = catalog()
    views = _views(who, query, metrics, lang)
    if not views:
        return html.Div(html.P(t("not_found", lang), className="message"), id=ids.WALL)
    refresh = _refresh_seconds(query)
    panel = render(who, views[0], metrics, full=True)
    return html.Div(
        html.Div(
            [
                dcc.Store(id=ids.WALL_STATE, data={"views": views, "shown": 0}),
                dcc.Store(id="wall-asof-ms", data=panel["asof_ms"]),
                dcc.Interval(id=ids.WALL_TICK, interval=refresh * 1000),
                dcc.Interval(id=ids.WALL_CLOCK, interval=1000),
                html.Div(
                    [
                        html.Div(panel["title"], id=ids.WALL_TITLE, className="wall-title"),
                        html.Div(panel["period"], id=WALL_PERIOD, className="wall-period"),
                        html.Div(
                            [
                                html.Span(t("refreshed_at", lang) + " "),
                                html.Span(panel["asof"], id="wall-asof-text"),
                            ],
                            id=ids.WALL_ASOF,
                            className="asof",
                            **{"data-limit-ms": str(refresh * 1000 * STALE_AFTER)},
                        ),
                    ],
                    className="wall-head",
                ),
                html.Div(
                    [
                        html.Div(
                            [
                                dcc.Graph(
                                    id=ids.WALL_MAP,
                                    figure=panel["map"],
                                    config=WALL_CONFIG,
                                    className="wall-map",
                                ),
                                html.Div(panel["legend"], id=ids.WALL_LEGEND),
                            ],
                            className="wall-map-box",
                        ),
                        html.Div(
                            [
                                html.Div(panel["kpis"], id=ids.WALL_KPIS, className="wall-kpis"),
                                html.Div(panel["alerts"], id=WALL_ALERTS, className="wall-alerts"),
                                dcc.Graph(
                                    id=ids.WALL_TREND,
                                    figure=panel["trend"],
                                    config={"staticPlot": True},
                                    className="wall-trend",
                                ),
                                html.Div(
                                    wall_calendar(client.risk_calendar(who), lang=lang),
                                    id=WALL_CALENDAR,
                                ),
                            ],
                            className="wall-side",
                        ),
                    ],
                    className="wall-body",
                ),
            ],
            className="wall-stage",
            id="wall-stage",
        ),
        id=ids.WALL,
        className="wall",
        **{"data-refresh-ms": str(refresh * 1000)},
    )


def render(who, stored: dict, metrics: dict, full: bool) -> dict:
    """Everything one view of the rotation shows (``stored``: as the store holds it), over
    its period as of the data's last day; the map as a whole figure (``full``) or a Patch."""
    asked = MapView.from_store(stored)
    asked = publishable(asked, metrics.get(asked.metric))  # a per-month metric: a month
    view = asked.resolved(asked.level, client.last_day())
    metric, lang = metrics[view.metric], view.lang
    figures, bounds = client.choropleth(who, view)
    model = map_model(figures, bounds, metric, lang)
    k = len(model.bounds)
    if full:
        geometry = client.display_geometry(who, view.code, view.level)
        figure = map_figure(
            client.boundaries_url(view.code),
            model.items,
            k,
            metric.higher_is_better,
            label_points(
                geometry.labels if geometry else [],
                limit=40,
                extent=geometry.extent if geometry else None,
                size=(1000, 900),
                font=WALL_FONT - 4,
            ),
            lang,
            dark=True,
            label_size=WALL_FONT - 4,
            tile_url=client.settings().tile_url,
            extent=geometry.extent if geometry else None,
        )
    else:
        figure = map_patch(model.items, k, metric.higher_is_better, lang)
    months, values, last_year = client.monthly(who, view.code, view.metric, view.end)
    named = metric_title(metric.label(lang), metric.unit, lang)
    title = f"{stored.get('name', view.code)} · {named}"
    now = dt.datetime.now(dt.UTC).astimezone(_zone())
    alerts = client.open_alerts(who, view.code)
    return {
        "period": [
            html.Span(f"{view.start} – {view.end}", className="wall-days"),
            html.Span(f"{t('data_as_of', lang)} {client.last_day()}", className="wall-data-end"),
        ],
        "alerts": _alerts(alerts, lang),
        "map": figure,
        "legend": legend(
            title,
            model.lower,
            model.bounds,
            metric.format,
            metric.higher_is_better,
            client.settings().min_denominator,
            lang,
            suppressed=client.suppressed_label() if metric.per_month else None,
        ),
        "kpis": kpi_cards(
            kpis(who, view, metrics, stored.get("cards") or ()),
            view.compare,
            lang,
        ),
        "trend": trend_figure(
            months,
            values,
            last_year,
            metric.format == "percent",
            lang,
            dark=True,
            size=WALL_FONT - 4,
        ),
        "title": [html.Span(t("title", lang) + " · "), html.B(title)],
        "asof": now.strftime("%Y-%m-%d %H:%M:%S"),
        "asof_ms": int(time.time() * 1000),
    }


def _alerts(alerts: list[dict], lang: str) -> list:
    """The open alerts under the view's unit: how many, and the first few with their place."""
    head = html.Div(f"{t('alerts', lang)} · {len(alerts)}", className="wall-alerts-head")
    if not alerts:
        return [head, html.Div(t("no_alerts", lang), className="wall-alert none")]
    items = [
        html.Div(
            [html.B(alert_place(a)), html.Span(" " + alert_sentence(a, lang))],
            className="wall-alert",
        )
        for a in alerts[:WALL_ALERTS_SHOWN]
    ]
    return [head, *items]


def _zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo(client.settings().timezone)


@dash.callback(
    Output(ids.WALL_MAP, "figure"),
    Output(ids.WALL_LEGEND, "children"),
    Output(ids.WALL_KPIS, "children"),
    Output(ids.WALL_TREND, "figure"),
    Output(ids.WALL_TITLE, "children"),
    Output(WALL_PERIOD, "children"),
    Output(WALL_ALERTS, "children"),
    Output("wall-asof-text", "children"),
    Output("wall-asof-ms", "data"),
    Output(ids.WALL_STATE, "data"),
    Input(ids.WALL_TICK, "n_intervals"),
    State(ids.WALL_STATE, "data"),
    prevent_initial_call=True,
)
def refresh(n_intervals: int | None, wall: dict):
    """Next view of the rotation with fresh numbers (geometry only when the unit changes)."""
    who = client.principal()
    if who is None or not wall or not wall.get("views"):
        return (no_update,) * 10
    views = wall["views"]
    index = (n_intervals or 0) % len(views)
    view, shown = views[index], views[wall.get("shown", 0) % len(views)]
    same_map = (view.get("code"), view.get("level")) == (shown.get("code"), shown.get("level"))
    try:
        panel = render(who, view, catalog(), full=not same_map)
    except LookupError:  # a state naming a unit outside the user's subtree (or no metric)
        return (no_update,) * 10
    return (
        panel["map"],
        panel["legend"],
        panel["kpis"],
        panel["trend"],
        panel["title"],
        panel["period"],
        panel["alerts"],
        panel["asof"],
        panel["asof_ms"],
        wall | {"shown": index},
    )


@dash.callback(
    Output(WALL_CALENDAR, "children"),
    Input(ids.WALL_TICK, "n_intervals"),
    State(ids.WALL_STATE, "data"),
    prevent_initial_call=True,
)
def refresh_calendar(_: int | None, wall: dict | None):
    """The calendar of coming large events, as of this refresh."""
    who = client.principal()
    views = (wall or {}).get("views") or [{}]
    lang = "en" if views[0].get("lang") == "en" else "zh"
    return no_update if who is None else wall_calendar(client.risk_calendar(who), lang=lang)


dash.clientside_callback(
    ClientsideFunction("zhili", "wallClock"),
    Output(ids.WALL_ASOF, "className"),
    Input(ids.WALL_CLOCK, "n_intervals"),
    State("wall-asof-ms", "data"),
)
