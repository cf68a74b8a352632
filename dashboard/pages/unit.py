"""The unit page ``/dashboard/unit/<code>``: the map of the unit's children with its legend,
KPI cards, the monthly trend, breakdowns, the ranking and (village or grid) open cases.

The URL is the state (``?metric=&period=|start=&end=&compare=&method=&lang=``): every
control writes the URL (client-side), and the page is drawn from the URL, so back/forward
and pasted links show the same view. The map's geometry is a URL that plotly.js fetches
once per page (and the browser revalidates by ETag), so a metric or period change only
sends numbers.
"""

from __future__ import annotations

import datetime as dt

import dash
from dash import ClientsideFunction, Input, Output, State, dcc, html

from dashboard import client, ids
from dashboard.auth import signed_in_as
from dashboard.components.alerts import alert_list, alert_marker_trace, pattern_graph
from dashboard.components.breadcrumb import breadcrumb
from dashboard.components.charts import bar_figure, trend_figure
from dashboard.components.choropleth import GRAPH_CONFIG, map_figure
from dashboard.components.controls import controls
from dashboard.components.kpi import kpi_cards
from dashboard.components.legend import legend
from dashboard.components.tables import cases_table, ranking_table
from dashboard.i18n import t
from dashboard.state import ViewState, format_break, parse_state, period_dates
from dashboard.views import catalog, default_metric, kpis, label_points, map_model

dash.register_page(__name__, path_template="/unit/<code>", title="治理 Zhili")

CASE_LEVELS = ("village", "grid")
ALERTS_LISTED = 12  # the list beside the map; the markers count them all
BREAKDOWNS = (("category", ids.BREAKDOWN_CATEGORY), ("channel", ids.BREAKDOWN_CHANNEL))
EXPORT_FORMATS = (
    ("geojson", ids.EXPORT_GEOJSON),
    ("csv", ids.EXPORT_CSV),
    ("gpkg", ids.EXPORT_GPKG),
)


def _message(text: str) -> html.Div:
    return html.Div(html.P(text, className="message"), id=ids.UNIT_PAGE)


def layout(code: str | None = None, **query: str) -> html.Div:
    """The page for unit ``code`` as the URL's query asks."""
    who = client.principal()
    if who is None:
        return html.Div(dcc.Location(id="unit-login", href=dash.get_relative_path("/login")))
    metrics = catalog()
    state = parse_state(code or who.unit_code, query, default_metric(metrics))
    lang = state.lang
    view = client.unit_view(who, state.code)
    if view is None:
        return _message(t("not_found", lang))
    start, end = period_dates(state, client.last_day())
    metric = metrics.get(state.metric)
    header = _header(view, state)
    bar = controls(
        {
            "metric": ids.METRIC,
            "period": ids.PERIOD,
            "dates": ids.DATES,
            "compare": ids.COMPARE,
            "method": ids.METHOD,
            "keep": ids.KEEP_BREAKS,
        },
        list(metrics.values()),
        state.metric,
        state.period,
        start,
        end,
        state.compare,
        state.method,
        bool(state.kept_breaks(view.child_level)),
        lang,
        _exports(view, state, start, end),
    )
    cards = html.Div(
        kpi_cards(
            kpis(who, view.code, metrics, start, end, state.compare, lang), state.compare, lang
        ),
        className="kpis",
        id=ids.KPIS,
    )
    alerts = client.open_alerts(who, view.code)
    alert_panel = alert_list(alerts[:ALERTS_LISTED], lang, lambda c: _href(state, c))
    bounds: list[float] = []
    if view.is_leaf:
        main = html.Div(
            [html.P(t("no_children", lang), className="note", id=ids.DETAIL), cards, alert_panel],
            className="main leaf",
        )
        ranking = None
    else:
        geometry = client.display_geometry(who, view.code, view.child_level)
        figures, bounds = client.choropleth(
            who,
            view.code,
            view.child_level,
            state.metric,
            start,
            end,
            state.compare,
            state.method,
            state.kept_breaks(view.child_level),
        )
        model = map_model(figures, bounds, metric, lang)
        higher = metric.higher_is_better if metric else None
        points = label_points(geometry.labels if geometry else [])
        figure = map_figure(
            client.boundaries_url(view.code, view.child_level),
            model.items,
            len(model.bounds),
            higher,
            points,
            lang,
            tile_url=client.settings().tile_url,
            extent=geometry.extent if geometry else None,
        )
        if alerts:  # after the map's own traces, which metric changes patch by index
            figure["data"].append(alert_marker_trace(alerts, points, lang))
        title = metric.label(lang) if metric else state.metric
        if metric and metric.unit:
            title += f" ({metric.unit})"
        main = html.Div(
            [
                html.Div(
                    [
                        dcc.Graph(
                            id=ids.MAP,
                            figure=figure,
                            config=GRAPH_CONFIG,
                            className="map",
                            clear_on_unhover=True,
                        ),
                        html.Div(
                            legend(
                                title,
                                model.lower,
                                model.bounds,
                                metric.format if metric else "decimal",
                                higher,
                                client.settings().min_denominator,
                                lang,
                                kept=bool(state.kept_breaks(view.child_level)),
                            ),
                            id=ids.LEGEND,
                        ),
                    ],
                    className="map-box",
                ),
                html.Div([cards, alert_panel], className="side"),
            ],
            className="main",
        )
        ranking = ranking_table(model.ranking, title, lang, ids.RANKING)
    return html.Div(
        [
            dcc.Store(id=ids.STATE, data=_state_data(state, start, end, view.child_level, bounds)),
            header,
            bar,
            main,
            _below(who, view, state, metric, start, end),
            _own_alert_pattern(who, view, alerts, lang),
            ranking,
            cases_table(client.open_cases(who, view.code, lang), lang, ids.CASES)
            if view.level in CASE_LEVELS and who.can_list_cases  # a wall display: no lists
            else None,
        ],
        id=ids.UNIT_PAGE,
        className=f"unit-page lang-{lang}",
        **{"data-unit": view.code, "data-level": view.level},
    )


def _state_data(state: ViewState, start, end, child_level: str | None, bounds: list[float]) -> dict:
    return {
        "child_level": child_level,
        "bounds": [format_break(b) for b in bounds],
        "breaks": [format_break(b) for b in state.breaks],
        "breaks_level": state.breaks_level,
        "shown_start": start.isoformat(),
        "shown_end": end.isoformat(),
        "code": state.code,
        "prefix": dash.get_relative_path("/unit/"),
        "metric": state.metric,
        "period": state.period,
        "start": state.start.isoformat() if state.start else None,
        "end": state.end.isoformat() if state.end else None,
        "compare": state.compare,
        "method": state.method,
        "lang": state.lang,
    }


def _href(state: ViewState, code: str) -> str:
    return dash.get_relative_path(f"/unit/{code}") + state.query()


def _header(view: client.UnitView, state: ViewState) -> html.Div:
    lang = state.lang
    trail = [(a.name, _href(state, a.code)) for a in view.ancestors]
    level = view.level_en if lang == "en" else view.level_zh
    other = state.with_(lang="zh" if lang == "en" else "en")
    return html.Div(
        [
            html.H1([t("title", lang), html.Span(f" · {view.name}", className="unit-name")]),
            breadcrumb(trail, view.name, ids.BREADCRUMB),
            html.Span(level, className="level-tag"),
            html.Div(
                [
                    dcc.Link(
                        t("wall", lang), href=dash.get_relative_path("/wall"), className="nav-link"
                    ),
                    dcc.Link(
                        t("lang_switch", lang),
                        href=_href(other, view.code),
                        id=ids.LANG,
                        className="nav-link",
                    ),
                    signed_in_as(lang),
                ],
                className="nav",
            ),
        ],
        className="header",
    )


def _exports(view: client.UnitView, state: ViewState, start, end) -> list[tuple[str, str, str]]:
    if view.is_leaf:
        return []
    return [
        (
            eid,
            fmt.upper() if fmt != "geojson" else "GeoJSON",
            client.export_url(
                view.code,
                view.child_level,
                state.metric,
                start,
                end,
                state.compare,
                state.method,
                fmt,
                state.kept_breaks(view.child_level),
            ),
        )
        for fmt, eid in EXPORT_FORMATS
    ]


def _own_alert_pattern(who, view: client.UnitView, alerts: list[dict], lang: str):
    """The evidence behind the unit's own caseload alert: observed against expected."""
    own = next((a for a in alerts if a["unit_code"] == view.code and a["kind"] == "caseload"), None)
    if own is None:
        return None
    pattern = client.unit_pattern(who, view.code, own["category"])
    title = own["category_en"] if lang == "en" else own["category_zh"]
    return html.Div(
        [html.H3(f"{t('alert_pattern', lang)} · {title}"), pattern_graph(pattern, lang)],
        className="panel wide alert-pattern",
    )


def _below(who, view: client.UnitView, state: ViewState, metric, start, end) -> html.Div:
    lang = state.lang
    percent = bool(metric and metric.format == "percent")
    months, values, last_year = client.monthly(who, view.code, state.metric, end)
    trend = trend_figure(months, values, last_year, percent, lang)
    panels = [
        html.Div(
            [
                html.H3(t("trend", lang)),
                dcc.Graph(
                    id=ids.TREND, figure=trend, config={"displaylogo": False}, className="chart"
                ),
            ],
            className="panel wide",
        )
    ]
    for by, element_id in BREAKDOWNS:
        # filled by ``fill_breakdowns`` once the page is drawn: they read the daily
        # rollups (one GROUP BY over the unit's leaves), too slow at a city's scale to
        # hold the map back
        figure = bar_figure([], [], percent, empty_text=t("loading", lang))
        panels.append(
            html.Div(
                [
                    html.H3(t(f"by_{by}", lang)),
                    dcc.Graph(
                        id=element_id,
                        figure=figure,
                        config={"displaylogo": False},
                        className="chart",
                    ),
                ],
                className="panel",
            )
        )
    return html.Div(panels, className="below")


# ---------------------------------------------------------------- callbacks


@dash.callback(
    Output(ids.BREAKDOWN_CATEGORY, "figure"),
    Output(ids.BREAKDOWN_CHANNEL, "figure"),
    Input(ids.STATE, "data"),
)
def fill_breakdowns(data: dict | None):
    """The breakdowns by category and by channel of the page's unit, metric and period."""
    who = client.principal()
    if who is None or not data:
        return dash.no_update, dash.no_update
    lang = data.get("lang", "zh")
    metric = catalog().get(data["metric"])
    percent = bool(metric and metric.format == "percent")
    start = dt.date.fromisoformat(data["shown_start"])
    end = dt.date.fromisoformat(data["shown_end"])
    figures = []
    for by, _ in BREAKDOWNS:
        try:
            rows = client.breakdown(who, data["code"], data["metric"], by, start, end, lang)
        except LookupError:
            return dash.no_update, dash.no_update
        figures.append(
            bar_figure(
                [r[0] for r in rows], [r[1] for r in rows], percent, empty_text=t("no_data", lang)
            )
        )
    return tuple(figures)


# ---------------------------------------------------------------- callbacks (client-side)

dash.clientside_callback(
    ClientsideFunction("zhili", "controlsToUrl"),
    Output(ids.NAV, "href", allow_duplicate=True),
    Input(ids.METRIC, "value"),
    Input(ids.PERIOD, "value"),
    Input(ids.DATES, "start_date"),
    Input(ids.DATES, "end_date"),
    Input(ids.COMPARE, "value"),
    Input(ids.METHOD, "value"),
    Input(ids.KEEP_BREAKS, "value"),
    State(ids.STATE, "data"),
    prevent_initial_call=True,
)

dash.clientside_callback(
    ClientsideFunction("zhili", "clickToUrl"),
    Output(ids.NAV, "href", allow_duplicate=True),
    Input(ids.MAP, "clickData"),
    State(ids.STATE, "data"),
    prevent_initial_call=True,
)
