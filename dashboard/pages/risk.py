"""``/dashboard/risk``: the stability-risk register (社会稳定风险评估) of the user's
jurisdiction. The items on a map (points and areas coloured by risk level, open items as
diamonds) over a choropleth of assessment coverage (``assessed_before_decision_rate`` of
the home unit's children over the register's three years), the calendar of coming large
events, the agencies, the latest items; ``?item=<id>`` adds one item's story (reports and
the rules they failed, the decision, linked cases and events, follow-up reviews) and the
forms of the steps open on it; officials and admins register items from the map
(``dashboard.components.risk_forms``; ``?lang=en`` puts the forms in English)."""

from __future__ import annotations

import datetime as dt

import dash
from dash import dcc, html

from dashboard import client
from dashboard.auth import signed_in_as
from dashboard.components.choropleth import GRAPH_CONFIG, map_figure
from dashboard.components.legend import legend
from dashboard.components.risk import agencies_table, calendar, item_panel, item_traces, items_table
from dashboard.components.risk_forms import forms
from dashboard.components.risk_forms import register_callbacks as _risk_forms_callbacks
from dashboard.state import MapView
from dashboard.views import catalog, label_points, map_model

dash.register_page(__name__, path="/risk", title="治理 Zhili · 稳评")
_risk_forms_callbacks()  # its callbacks, for this app (Dash runs a page once per app)

COVERAGE = "assessed_before_decision_rate"
YEARS = 3
RISK_MAP = "risk-map"


def _coverage_map(who, items: list[dict]) -> tuple[dict, html.Div | None]:
    """The choropleth of assessment coverage under the home unit, with the items on it."""
    metrics = catalog()
    unit = client.unit_view(who, who.unit_code)
    if unit is None or unit.is_leaf or COVERAGE not in metrics:
        return {
            "data": item_traces(items),
            "layout": {"geo": {"fitbounds": "locations", "visible": False}},
        }, None
    end = client.last_day()
    view = MapView(
        who.unit_code,
        COVERAGE,
        period="custom",
        start=end - dt.timedelta(days=YEARS * 365),
        end=end,
        compare="none",
        level=unit.child_level,
    )
    figures, bounds = client.choropleth(who, view)
    metric = metrics[COVERAGE]
    model = map_model(figures, bounds, metric, "zh")
    geometry = client.display_geometry(who, view.code, view.level)
    figure = map_figure(
        client.boundaries_url(view.code),
        model.items,
        len(model.bounds),
        metric.higher_is_better,
        label_points(geometry.labels if geometry else []),
        "zh",
    )
    figure["data"].extend(item_traces(items))
    key = legend(
        f"{metric.label('zh')} · 近{YEARS}年",
        model.lower,
        model.bounds,
        metric.format,
        metric.higher_is_better,
        client.settings().min_denominator,
        "zh",
    )
    return figure, key


def _key() -> html.Div:
    swatch = [
        ("#d7191c", "高风险"),
        ("#f08c00", "中风险"),
        ("#1a9641", "低风险"),
        ("#6b7785", "未评估"),
    ]
    return html.Div(
        [
            html.Span([html.Span(style={"background": c}, className="risk-dot"), name])
            for c, name in swatch
        ]
        + [html.Span("◆ 未决策  ● 已决策")],
        className="risk-key",
    )


def layout(item: str | None = None, lang: str | None = None, **_query: str) -> html.Div:
    """The register page for the logged-in user (a message for a role that reads none)."""
    who = client.principal()
    if who is None:
        return html.Div(dcc.Location(id="risk-login", href=dash.get_relative_path("/login")))
    header = html.Div(
        [html.H2("社会稳定风险评估 · 稳评登记"), signed_in_as("zh")], className="header"
    )
    items = client.risk_items(who)
    if items is None:
        note = html.P(f"角色 {who.role} 不能查看稳评登记", className="message")
        return html.Div([header, note], id="risk-page")
    figure, key = _coverage_map(who, items)
    parts: list = [header]
    found = client.risk_item(who, int(item)) if item and item.isdigit() else None
    if item:
        parts.append(item_panel(found) if found else html.P("无此事项", className="message"))
    parts += [
        html.Div(
            [
                dcc.Graph(id=RISK_MAP, figure=figure, config=GRAPH_CONFIG, className="map"),
                html.Div([key, _key()] if key else [_key()], className="risk-legend"),
            ],
            className="map-box",
        ),
        forms(who, found, "en" if lang == "en" else "zh"),
        calendar(client.risk_calendar(who) or []),
        items_table(items),
        agencies_table(client.risk_agencies(who) or []),
    ]
    return html.Div(parts, id="risk-page", className="page")
