"""The unit page ``/dashboard/unit/<code>``: the map of the unit's children with its legend,
KPI cards, the monthly trend, breakdowns, the ranking and (village or grid) open cases.

The URL is the view (``?metric=&period=|start=&end=&compare=&method=&lang=``, a
``MapView``): every control writes the URL (client-side), and the page is drawn from the
URL, so back/forward and pasted links show the same view. The page's store holds the same
``MapView``, resolved (its period's days, its map's level), for the callbacks after it.

Map first: the page the router draws holds the header, the controls, the map, its legend,
the KPI cards and the alerts; the trend, breakdowns, ranking and case list are filled once
the map is drawn (``DRAWN``), so nothing holds the map back. The map's geometry is a URL
fetched once per page (and revalidated by ETag); when the URL changes but the unit and the
language do not (a metric, period, comparison or class change, or back/forward between
such views), the router leaves the page alone and ``patch_view`` sends only the numbers:
the map's classes and hover cards as a ``dash.Patch``, the legend, the cards, the controls.
"""

from __future__ import annotations

import logging
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote

import dash
from dash import ClientsideFunction, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import client, ids
from dashboard.auth import signed_in_as
from dashboard.components.alerts import alert_list, alert_marker_trace, pattern_graph
from dashboard.components.breadcrumb import breadcrumb
from dashboard.components.charts import bar_figure, trend_figure
from dashboard.components.choropleth import GRAPH_CONFIG, map_figure, map_patch
from dashboard.components.controls import CONTROLS, control_values, controls
from dashboard.components.frame import home_href, plain_header, problem
from dashboard.components.kpi import kpi_cards
from dashboard.components.layers import LAYER_TOGGLES, layer_legend, layer_toggles, layer_traces
from dashboard.components.legend import legend
from dashboard.components.level_picker import LEVEL_PICKER, level_picker
from dashboard.components.saved_views import register_callbacks as _saved_views_callbacks
from dashboard.components.saved_views import saved_views_box
from dashboard.components.tables import cases_table, ranking_columns, ranking_table
from dashboard.i18n import format_value, metric_title, t
from dashboard.plain_basemap import plain_basemap, with_basemap
from dashboard.state import MapView, format_break, round_break
from dashboard.views import (
    MAP_WIDTH,
    MapModel,
    above_label,
    catalog,
    default_metric,
    file_name,
    kpis,
    label_points,
    map_height,
    map_model,
    publishable,
    ranking_csv_text,
)

dash.register_page(__name__, path_template="/unit/<code>", title="治理 Zhili")
_saved_views_callbacks()  # its callbacks, for this app (Dash runs a page once per app)

log = logging.getLogger("zhili")
PAGES_LOCATION = "_pages_location"  # dash.page_container's Location: the router's input
CASE_LEVELS = ("village", "grid")
ALERTS_LISTED = 12  # the list beside the map; the markers count them all
# the breakdown panels: slots the metric's own breakdowns fill in the registry's order
# (cases: category, channel; events: type, force kind, shift); a slot left over is hidden
BREAKDOWN_SLOTS = (ids.BREAKDOWN_CATEGORY_BOX, ids.BREAKDOWN_CHANNEL_BOX, ids.BREAKDOWN_THIRD_BOX)
DEFAULT_BREAKDOWNS = ("category", "channel")


def breakdowns_of(metric: client.MetricInfo | None) -> tuple[str, ...]:
    """The dimensions the panels show for ``metric``: its own breakdowns but ``status``
    (a state, not a split of the period's figure), at most one per slot."""
    if metric is None:
        return DEFAULT_BREAKDOWNS
    return tuple(b for b in metric.breakdowns if b != "status")[: len(BREAKDOWN_SLOTS)]


def _breakdown_title(by: str, lang: str) -> html.H3:
    return html.H3(t(f"by_{by}", lang))


EXPORT_FORMATS = (
    ("geojson", ids.EXPORT_GEOJSON),
    ("csv", ids.EXPORT_CSV),
    ("gpkg", ids.EXPORT_GPKG),
)


class _Page(NamedTuple):
    """What one unit page shows: who looks, at which unit, and the map's view (resolved: its
    period's days, its map's level). A NamedTuple: Dash loads the pages outside
    ``sys.modules``, where dataclasses cannot."""

    who: client.Principal
    metrics: dict[str, client.MetricInfo]
    unit: client.UnitView
    view: MapView

    @property
    def lang(self) -> str:
        return self.view.lang

    @property
    def metric(self) -> client.MetricInfo | None:
        return self.metrics.get(self.view.metric)

    def title(self) -> str:
        metric = self.metric
        if metric is None:
            return self.view.metric
        return metric_title(metric.label(self.lang), metric.unit, self.lang)


def _placeholders() -> html.Div:
    """Hidden stand-ins for what ``patch_view`` and the map's callbacks write, on a page
    that shows a message instead of a map: the renderer refuses a callback whose outputs
    are missing when the URL changes, even one that would not update."""
    names = [ids.MAP, ids.LEGEND, ids.KPIS, ids.STATE, ids.ALERTS_BOX, ids.DRAWN]
    names += [eid for _, eid in EXPORT_FORMATS] + list(dict.fromkeys(c for c, _ in CONTROLS))
    return html.Div([html.Div(id=name) for name in names], hidden=True)


def _not_found(lang: str) -> html.Div:
    """No such unit in the user's reach: the frame, the message and the way home."""
    return html.Div(
        [
            dcc.Store(id=ids.PROBLEM, data=True),
            plain_header(lang, ids.HEADER),
            problem(t("not_found", lang), home_href(lang), t("back_home", lang)),
            _placeholders(),
        ],
        id=ids.UNIT_PAGE,
        className=f"unit-page lang-{lang}",
    )


def _problem_page(page: _Page, text: str) -> html.Div:
    """A view the API would refuse (unknown metric, dates out of range): the unit's frame
    with the API's message and a link to the unit's default view."""
    lang = page.lang
    default = MapView(page.unit.code, default_metric(page.metrics), lang=lang)
    return html.Div(
        [
            dcc.Store(id=ids.PROBLEM, data=True),  # the browser shows no map
            html.Div(_header(page.unit, page.view), id=ids.HEADER),
            problem(
                t("refused", lang),
                _href(default, page.unit.code),
                t("back_default", lang),
                quoted=text,
            ),
            _placeholders(),
        ],
        id=ids.UNIT_PAGE,
        className=f"unit-page lang-{lang}",
        **{"data-unit": page.unit.code, "data-level": page.unit.level, "data-error": "1"},
    )


def _refused(page: _Page) -> str | None:
    """The API's message when it would refuse the page's view, else ``None``."""
    if page.view.metric not in page.metrics:  # unknown, or not for this reader
        return t("metric_unavailable", page.lang, metric=page.view.metric)
    try:
        client.check_view(page.view)
    except client.FiguresError as exc:
        return str(exc)
    return None


def _open(view: MapView, metrics: dict[str, client.MetricInfo]) -> _Page | html.Div:
    """The page of ``view`` (its days resolved on the data's last day unless it has them),
    or what to show instead (login, not found)."""
    who = client.principal()
    if who is None:
        return html.Div(dcc.Location(id="unit-login", href=dash.get_relative_path("/login")))
    unit = client.unit_view(who, view.code or who.unit_code)
    if unit is None:
        return _not_found(view.lang)
    level = _shown_level(unit, view)
    metric = metrics.get(view.metric)
    # a per-month metric: one whole calendar month (its days resolved below)
    view = publishable(view, metric)
    if view.start is None or view.end is None or view.level != level:
        view = view.resolved(level, client.last_day())
    if view.smooth == "eb" and not (metric and metric.smoothable):
        view = view.with_(smooth="none")  # smoothing applies to per-capita rates only
    return _Page(who, metrics, unit, view.with_(code=unit.code))


def _months(metric: client.MetricInfo | None) -> list:
    """The months a per-month metric has figures for (oldest first), else []."""
    return client.published_months(metric.id) if metric and metric.per_month else []


def _shown_level(unit: client.UnitView, view: MapView) -> str | None:
    """The level the map shows: the picked one (``show``) when it lies below the unit,
    else the unit's children's (a click drills down to a unit with no such level)."""
    if unit.is_leaf or not view.show or view.show == unit.child_level:
        return unit.child_level
    below = [code for code, _, _ in client.levels_below(unit.level)]
    return view.show if view.show in below else unit.child_level


def _from_url(code: str | None, query: dict[str, str]) -> _Page | html.Div:
    """The page a URL names."""
    metrics = catalog()
    return _open(MapView.from_query(code or "", query, default_metric(metrics)), metrics)


def _lang(query: dict[str, str]) -> str:
    return "en" if query.get("lang") == "en" else "zh"


def _patchable(code: str | None, query: dict[str, str], shown: dict | None) -> bool:
    """The browser already shows the map of unit ``code`` in this language, so only its
    numbers change (the router and ``patch_view`` decide alike from the same inputs)."""
    return bool(
        code
        and shown
        and shown.get("map")
        and shown.get("code") == code
        and shown.get("lang") == _lang(query)
        and (shown.get("show") or None) == (query.get("show") or None)
        and bool(shown.get("monthly")) == _per_month(query.get("metric"))
        and (shown.get("layers") or "")
        == ",".join(sorted(filter(None, (query.get("layers") or "").split(","))))
    )


def _per_month(metric: str | None) -> bool:
    """True when ``metric`` (the default when None) is published per calendar month: a
    switch to or from one redraws the page (its period control changes)."""
    metrics = catalog()
    found = metrics.get(metric or default_metric(metrics))
    return bool(found and found.per_month)


def layout(code: str | None = None, shown_: dict | None = None, **query: str):
    """The page for unit ``code`` as the URL's query asks (``shown_``: the unit page the
    browser shows, when it does: then only the numbers change, see ``patch_view``)."""
    page = _from_url(code, query)
    if not isinstance(page, _Page):
        return page
    refused = _refused(page)
    if refused is not None:
        return _problem_page(page, refused)
    if _patchable(code, query, shown_):
        return dash.no_update
    try:
        return _page_layout(page)
    except client.FiguresError as exc:
        return _problem_page(page, str(exc))
    except Exception:  # a bug: logged, and the frame with a message instead of a blank page
        log.exception("unit page %s", page.view.path())
        return _problem_page(page, t("page_failed", page.lang))


def _page_layout(page: _Page) -> html.Div:
    """The unit page of ``page``'s view (the view checked: ``_refused``)."""
    unit, lang = page.unit, page.lang
    metric = page.metric
    months = _months(metric) if metric and metric.per_month else None
    bar = controls(list(page.metrics.values()), page.view, _exports(page), months)
    cards = html.Div(_cards(page), className="kpis", id=ids.KPIS)
    alerts = client.open_alerts(page.who, unit.code)
    alert_panel = html.Div(_alert_list(page, alerts), id=ids.ALERTS_BOX)
    bounds: list[float] = []
    if unit.is_leaf:
        main = html.Div(
            [html.P(t("no_children", lang), className="note", id=ids.DETAIL), cards, alert_panel],
            className="main leaf",
        )
    else:
        model = _model(page)
        bounds = model.bounds
        main = html.Div(
            [
                html.Div(
                    [
                        dcc.Graph(
                            id=ids.MAP,
                            figure=_map(page, model, alerts),
                            config=GRAPH_CONFIG,
                            className="map",
                            style={"height": f"{_map_height(page)}px"},
                            clear_on_unhover=True,
                        ),
                        html.Div(_legend(page, model), id=ids.LEGEND),
                    ],
                    className="map-box",
                ),
                html.Div([cards, alert_panel], className="side"),
            ],
            className="main",
        )
    return html.Div(
        [
            dcc.Store(id=ids.STATE, data=_store(page, bounds)),
            dcc.Store(id=ids.DRAWN),
            html.Div(_header(unit, page.view), id=ids.HEADER),
            bar,
            _picker(page),
            main,
            _below(lang, page.metric),
            html.Div(id=ids.PATTERN_BOX),
            html.Div(id=ids.RANKING_BOX),
            html.Div(id=ids.CASES_BOX),
        ],
        id=ids.UNIT_PAGE,
        className=f"unit-page lang-{lang}",
        **{"data-unit": unit.code, "data-level": unit.level},
    )


def _picker(page: _Page) -> html.Div:
    """The level picker (``show=``) and the layer toggles (``layers=``) with the shown
    layers' legends, for a unit with units below it."""
    if page.unit.is_leaf:
        return html.Div(className="view-tools")
    levels = client.levels_below(page.unit.level)
    return html.Div(
        [
            level_picker(levels, page.view.level, page.lang),
            layer_toggles(client.map_layers(), page.view.layers, page.lang),
            layer_legend(_layers_on(page), page.lang),
            saved_views_box(page.who, page.lang),
        ],
        className="view-tools",
    )


def _model(page: _Page) -> MapModel:
    """The children's figures and classes for the page's view."""
    figures, bounds = client.choropleth(page.who, page.view)
    return map_model(figures, bounds, page.metric, page.lang)


def _format(page: _Page) -> str:
    return page.metric.format if page.metric else "decimal2"


def _higher(page: _Page) -> bool | None:
    return page.metric.higher_is_better if page.metric else None


def _map(page: _Page, model: MapModel, alerts: list[dict]) -> dict:
    view = page.view
    geometry = client.display_geometry(page.who, view.code, view.level)
    extent = geometry.extent if geometry else None
    points = label_points(
        geometry.labels if geometry else [], extent=extent, size=(MAP_WIDTH, map_height(extent))
    )
    picked = view.level if view.level != page.unit.child_level else None
    figure = map_figure(
        client.boundaries_url(view.code, picked),
        model.items,
        len(model.bounds),
        _higher(page),
        points,
        page.lang,
        tile_url=client.settings().tile_url,
        extent=geometry.extent if geometry else None,
    )
    with_basemap(figure, plain_basemap(page.who, view.code, view.level))
    if alerts:  # after the map's own traces, which metric changes patch by index
        above = above_label(extent, (MAP_WIDTH, map_height(extent)))
        figure["data"].append(alert_marker_trace(alerts, points, page.lang, above))
    tiled = bool(client.settings().tile_url)
    figure["data"].extend(layer_traces(_layers_on(page), tiled, page.lang))
    return figure


def _layers_on(page: _Page) -> list[dict]:
    """The GeoJSON of each layer the view switched on (``layers=``), under the unit."""
    found = [client.layer_points(page.who, name, page.view.code) for name in page.view.layers]
    return [fc for fc in found if fc is not None]


def _map_height(page: _Page) -> int:
    geometry = client.display_geometry(page.who, page.view.code, page.view.level)
    return map_height(geometry.extent if geometry else None)


def _legend(page: _Page, model: MapModel) -> html.Div:
    return legend(
        page.title(),
        model.lower,
        model.bounds,
        page.metric.format if page.metric else "decimal",
        _higher(page),
        client.settings().min_denominator,
        page.lang,
        kept=bool(page.view.keep),
        note=_smoothing_note(page, model),
        suppressed=client.suppressed_label() if page.metric and page.metric.per_month else None,
    )


def _smoothing_note(page: _Page, model: MapModel) -> str | None:
    """A smoothed map says so, and says why when every unit got the same rate."""
    if page.view.smooth != "eb":
        return None
    values = {r["value"] for r in model.ranking if isinstance(r["value"], (int, float))}
    flat = len(values) == 1 and len(model.ranking) > 1
    return (
        t("smoothed", page.lang)
        + ("；" if page.lang == "zh" else "; ")
        + t("smoothed_flat", page.lang)
        if flat
        else t("smoothed", page.lang)
    )


def _cards(page: _Page) -> list:
    figures = kpis(page.who, page.view, page.metrics)
    return kpi_cards(figures, page.view.compare, page.lang)


def _store(page: _Page, bounds: list[float]) -> dict:
    """The page's store: its view, the map's class bounds (what "keep breaks" keeps) and
    the unit pages' path (for the script that writes the URL)."""
    return page.view.store() | {
        "monthly": bool(page.metric and page.metric.per_month),
        "bounds": [format_break(round_break(b, _format(page))) for b in bounds],
        "prefix": dash.get_relative_path("/unit/"),
    }


def _alert_list(page: _Page, alerts: list[dict]):
    return alert_list(alerts[:ALERTS_LISTED], page.lang, lambda c: _href(page.view, c))


def _href(view: MapView, code: str) -> str:
    return dash.get_relative_path(f"/unit/{code}") + view.query()


def _header(unit: client.UnitView, view: MapView) -> html.Div:
    lang = view.lang
    trail = [(a.name, _href(view, a.code)) for a in unit.ancestors]
    level = unit.level_en if lang == "en" else unit.level_zh
    other = view.with_(lang="zh" if lang == "en" else "en")
    return html.Div(
        [
            html.H1([t("title", lang), html.Span(f" · {unit.name}", className="unit-name")]),
            breadcrumb(trail, unit.name, ids.BREADCRUMB),
            html.Span(level, className="level-tag"),
            html.Div(
                [
                    dcc.Link(
                        t("wall", lang), href=dash.get_relative_path("/wall"), className="nav-link"
                    ),
                    dcc.Link(
                        "稳评" if lang == "zh" else "Risk register",
                        href=dash.get_relative_path("/risk"),
                        className="nav-link",
                    ),
                    dcc.Link(
                        "透视表" if lang == "zh" else "Pivot",
                        href=dash.get_relative_path(f"/pivot?unit={unit.code}")
                        + ("&lang=en" if lang == "en" else ""),
                        className="nav-link",
                        id="unit-pivot-link",
                    ),
                    dcc.Link(
                        t("lang_switch", lang),
                        href=_href(other, unit.code),
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


def _exports(page: _Page) -> list[tuple[str, str, str, str]]:
    """(id, label, href, file name) of each export link of the page's map."""
    if page.unit.is_leaf:
        return []
    return [
        (
            eid,
            fmt.upper() if fmt != "geojson" else "GeoJSON",
            client.export_url(page.view, fmt),
            file_name(page.unit.name, page.view, fmt),
        )
        for fmt, eid in EXPORT_FORMATS
    ]


def _ranking_columns(page: _Page) -> list[dict]:
    metric = page.metric
    return ranking_columns(
        page.title(),
        metric.format if metric else "decimal2",
        metric.basis if metric else "cases",
        metric.count_is_value if metric else False,
        page.view.compare,
        page.lang,
    )


def _own_alert_pattern(page: _Page, alerts: list[dict]):
    """The evidence behind the unit's own caseload alert: observed against expected."""
    unit, lang = page.unit, page.lang
    own = next((a for a in alerts if a["unit_code"] == unit.code and a["kind"] == "caseload"), None)
    if own is None:
        return None
    pattern = client.unit_pattern(page.who, unit.code, own["category"])
    title = own["category_en"] if lang == "en" else own["category_zh"]
    return html.Div(
        [html.H3(f"{t('alert_pattern', lang)} · {title}"), pattern_graph(pattern, lang)],
        className="panel wide alert-pattern",
    )


def _loading(lang: str) -> html.P:
    return html.P(t("loading", lang), className="loading")


def _below(lang: str, metric: client.MetricInfo | None = None) -> html.Div:
    """The trend and breakdown panels, empty until the map is drawn (``fill_below``,
    ``fill_breakdowns``): the breakdowns read the daily rollups (one GROUP BY over the
    unit's leaves), too slow at a city's scale to hold the map back."""
    panels = [
        html.Div(
            [html.H3(t("trend", lang)), html.Div(_loading(lang), id=ids.TREND_BOX)],
            className="panel wide",
        )
    ]
    shown = breakdowns_of(metric)
    for k, box in enumerate(BREAKDOWN_SLOTS):
        by = shown[k] if k < len(shown) else None
        panels.append(
            html.Div(
                [_breakdown_title(by, lang), _loading(lang)] if by else [],
                id=box,
                className="panel",
                style=None if by else {"display": "none"},
            )
        )
    return html.Div(panels, className="below")


def _code_of(pathname: str | None) -> str | None:
    """The unit code of a unit page's path, else ``None``."""
    parts = dash.strip_relative_path(pathname or "").split("/")
    return unquote(parts[1]) if len(parts) == 2 and parts[0] == "unit" and parts[1] else None


# ---------------------------------------------------------------- callbacks


@dash.callback(
    Output(ids.MAP, "figure"),
    Output(ids.LEGEND, "children"),
    Output(ids.KPIS, "children"),
    Output(ids.STATE, "data"),
    Output(ids.HEADER, "children"),
    Output(ids.ALERTS_BOX, "children"),
    *(Output(eid, "href") for _, eid in EXPORT_FORMATS),
    *(Output(eid, "download") for _, eid in EXPORT_FORMATS),
    *(Output(cid, prop) for cid, prop in CONTROLS),
    Input(PAGES_LOCATION, "search"),
    State(PAGES_LOCATION, "pathname"),
    State(ids.SHOWN, "data"),
    *(State(cid, prop) for cid, prop in CONTROLS),
    prevent_initial_call=True,
)
def patch_view(search: str | None, pathname: str | None, shown: dict | None, *shown_controls):
    """A new metric, period, comparison or class on the map the browser shows: its
    numbers (a Patch: classes, colours, hover cards), legend, cards, controls and the
    links that carry the view (breadcrumb, language, alerts); the geometry stays where it
    is (the router leaves such a page alone)."""
    code = _code_of(pathname)
    query = dict(parse_qsl((search or "").lstrip("?")))
    if not _patchable(code, query, shown):
        raise PreventUpdate
    page = _from_url(code, query)
    if not isinstance(page, _Page) or page.unit.is_leaf:
        raise PreventUpdate
    try:
        model = _model(page)
        alerts = client.open_alerts(page.who, page.unit.code)
    except (LookupError, client.FiguresError):  # the router draws the API's message
        raise PreventUpdate from None
    exports = _exports(page)
    hrefs = [href for _, _, href, _ in exports] + [name for *_, name in exports]
    # the controls as the URL has them (back/forward), left alone when they already are
    # (a person just set them): a control set again would run controlsToUrl once more
    now = list(shown_controls)
    now[2:4] = [str(d)[:10] if d else d for d in now[2:4]]  # the picker may add a time
    wanted = control_values(page.view)
    control_updates = [
        dash.no_update if have == want else want for have, want in zip(now, wanted, strict=True)
    ]
    return (
        map_patch(model.items, len(model.bounds), _higher(page), page.lang),
        _legend(page, model),
        _cards(page),
        _store(page, model.bounds),
        _header(page.unit, page.view),
        _alert_list(page, alerts),
        *hrefs,
        *control_updates,
    )


@dash.callback(
    Output(ids.TREND_BOX, "children"),
    Output(ids.RANKING_BOX, "children"),
    Output(ids.PATTERN_BOX, "children"),
    Output(ids.CASES_BOX, "children"),
    Input(ids.DRAWN, "data"),
    prevent_initial_call=True,
)
def fill_below(data: dict | None):
    """The trend, the ranking, the alert's evidence and the open cases of the page's view
    (the store's), once the map is drawn."""
    if not data or not data.get("code"):
        raise PreventUpdate
    page = _open(MapView.from_store(data), catalog())
    if not isinstance(page, _Page):
        raise PreventUpdate
    unit, lang = page.unit, page.lang
    try:
        trend = _trend(page)
        ranking = (
            None
            if unit.is_leaf
            else ranking_table(
                _model(page).ranking,
                _ranking_columns(page),
                lang,
                ids.RANKING,
                ids.RANKING_CSV,
                ids.RANKING_DOWNLOAD,
            )
        )
        pattern = _own_alert_pattern(page, client.open_alerts(page.who, unit.code))
    except (LookupError, client.FiguresError):
        raise PreventUpdate from None
    cases = (
        cases_table(client.open_cases(page.who, unit.code, lang), lang, ids.CASES)
        if unit.level in CASE_LEVELS and page.who.can_list_cases  # a wall display: no lists
        else None
    )
    return trend, ranking, pattern, cases


def _trend(page: _Page):
    """The monthly trend (months without data are gaps); for the grid network, which has
    no history, its state now instead of an empty time axis."""
    metric, view, lang = page.metric, page.view, page.lang
    if metric is not None and not metric.timed:
        now = client.unit_figures(page.who, view.code, [metric.id], view.start, view.end, "none")
        figure = now.get(metric.id)
        return html.Div(
            [
                html.Div(page.title(), className="kpi-label"),
                html.Div(
                    format_value(figure.value if figure else None, metric.format, lang),
                    className="kpi-value",
                ),
                html.P(t("network_now", lang), className="note"),
            ],
            className="network-now",
            id=ids.TREND,
        )
    months, values, last_year = client.monthly(page.who, view.code, view.metric, view.end)
    percent = bool(metric and metric.format == "percent")
    return dcc.Graph(
        id=ids.TREND,
        figure=trend_figure(months, values, last_year, percent, lang),
        config={"displaylogo": False},
        className="chart",
    )


@dash.callback(
    *(Output(box, "children") for box in BREAKDOWN_SLOTS),
    *(Output(box, "style") for box in BREAKDOWN_SLOTS),
    Input(ids.DRAWN, "data"),
    prevent_initial_call=True,
)
def fill_breakdowns(data: dict | None):
    """The metric's own breakdowns (cases: by category and by channel; events: by type,
    force kind and shift) of the page's unit and period (the store's view), one panel
    each; the slots left over are hidden."""
    who = client.principal()
    if who is None or not data or not data.get("code"):
        raise PreventUpdate
    view = MapView.from_store(data)
    if view.start is None or view.end is None:
        raise PreventUpdate
    metric = catalog().get(view.metric)
    percent = bool(metric and metric.format == "percent")
    shown = breakdowns_of(metric)
    if not shown:  # a metric with no breakdown (a percentile, the grid network): say so
        note = [_breakdown_title("none", view.lang), html.P(t("no_breakdown", view.lang))]
        hidden = [[]] * (len(BREAKDOWN_SLOTS) - 1)
        return (note, *hidden, None, *[{"display": "none"}] * len(hidden))
    graphs = []
    for by in shown:
        element_id = f"unit-breakdown-{by}"
        try:
            rows = client.breakdown(
                who, view.code, view.metric, by, view.start, view.end, view.lang
            )
        except (LookupError, client.FiguresError):
            raise PreventUpdate from None
        figure = bar_figure(
            [r[0] for r in rows], [r[1] for r in rows], percent, empty_text=t("no_data", view.lang)
        )
        graphs.append(
            [
                _breakdown_title(by, view.lang),
                dcc.Graph(
                    id=element_id, figure=figure, config={"displaylogo": False}, className="chart"
                ),
            ]
        )
    left = len(BREAKDOWN_SLOTS) - len(graphs)
    return (
        *graphs,
        *[[]] * left,
        *[None] * len(graphs),
        *[{"display": "none"}] * left,
    )


@dash.callback(
    Output(ids.RANKING_DOWNLOAD, "data"),
    Input(ids.RANKING_CSV, "n_clicks"),
    State(ids.STATE, "data"),
    prevent_initial_call=True,
)
def ranking_csv(clicks: int | None, data: dict | None):
    """The ranking as CSV: numbers, not the page's formatted text, under a file name
    that says what it holds (unit, metric, period)."""
    if not clicks or not data or not data.get("code"):
        raise PreventUpdate
    page = _open(MapView.from_store(data), catalog())
    if not isinstance(page, _Page) or page.unit.is_leaf:
        raise PreventUpdate
    try:
        rows = _model(page).ranking
    except (LookupError, client.FiguresError):
        raise PreventUpdate from None
    return {
        "content": ranking_csv_text(rows, page.view),
        "filename": file_name(page.unit.name, page.view, "csv", "ranking"),
        "type": "text/csv",
    }


# ---------------------------------------------------------------- callbacks (client-side)

dash.clientside_callback(
    ClientsideFunction("zhili", "controlsToUrl"),
    Output(ids.NAV, "href", allow_duplicate=True),
    *(Input(cid, prop) for cid, prop in CONTROLS),
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

# the page's store once the map shows it: what the panels below the map wait for
dash.clientside_callback(
    ClientsideFunction("zhili", "whenMapDrawn"),
    Output(ids.DRAWN, "data"),
    Input(ids.STATE, "data"),
)

# which unit page the browser shows (the router's and patch_view's SHOWN) ...
dash.clientside_callback(
    ClientsideFunction("zhili", "shownOf"),
    Output(ids.SHOWN, "data", allow_duplicate=True),
    Input(ids.STATE, "data"),
    prevent_initial_call=True,
)

# ... none once it shows a message instead of a map (as soon as the message is there) ...
dash.clientside_callback(
    "function (problem) { return null; }",
    Output(ids.SHOWN, "data", allow_duplicate=True),
    Input(ids.PROBLEM, "data"),
    prevent_initial_call="initial_duplicate",
)

# ... and none once the browser leaves the unit pages (the wall, the login)
dash.clientside_callback(
    ClientsideFunction("zhili", "shownLeft"),
    Output(ids.SHOWN, "data", allow_duplicate=True),
    Input(PAGES_LOCATION, "href"),
    State(ids.SHOWN, "data"),
    prevent_initial_call=True,
)

# the level picker writes show=<level> into the URL (the page is drawn from it)
dash.clientside_callback(
    ClientsideFunction("zhiliViews", "levelToUrl"),
    Output(ids.NAV, "href", allow_duplicate=True),
    Input(LEVEL_PICKER, "value"),
    State(ids.STATE, "data"),
    prevent_initial_call=True,
)

# the layer toggles write layers=a,b into the URL
dash.clientside_callback(
    ClientsideFunction("zhiliViews", "layersToUrl"),
    Output(ids.NAV, "href", allow_duplicate=True),
    Input(LAYER_TOGGLES, "value"),
    State(ids.STATE, "data"),
    prevent_initial_call=True,
)
