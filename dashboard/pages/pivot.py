"""``/dashboard/pivot``: the analysts' pivot (透视表), category × unit × period for any
metric under a unit of the user's jurisdiction.

The view lives in the URL (``unit``, ``metric``, ``level``, ``columns``, ``interval``,
``period``, ``sort``, ``order``, ``lang``): the controls write it (one callback, next to
the layout), a column's header sorts by it (the API's own sort, so a download comes in
the order the table shows), and the CSV and XLSX buttons are the API's downloads of the
same pivot. A missing value is "—", never 0; a low count is marked like on the map.
"""

from __future__ import annotations

from urllib.parse import urlencode

import dash
from dash import Input, Output, State, dcc, html

from dashboard import client
from dashboard.components.frame import plain_header, problem
from dashboard.components.words import w
from dashboard.i18n import format_value
from dashboard.views import catalog, default_metric

dash.register_page(__name__, path="/pivot", title="治理 Zhili · 透视表")

PIVOT = "pivot-page"
GO = "pivot-go"
WHERE = "pivot-location"
FIELDS = ("metric", "level", "columns", "interval", "period")
COLUMNS = ("category", "channel", "period")
INTERVALS = ("day", "week", "month")


def _href(params: dict[str, str], **changed: str) -> str:
    query = {k: v for k, v in (params | changed).items() if v}
    return dash.get_relative_path("/pivot") + "?" + urlencode(query)


def _api(params: dict[str, str], fmt: str) -> str:
    """The API's download of the pivot the page shows."""
    asked = {
        "unit": params["unit"],
        "metric": params["metric"],
        "level": params.get("level", ""),
        "rows": _rows(params),
        "columns": params["columns"],
        "interval": params["interval"],
        "period": params.get("period", ""),
        "sort": params.get("sort", ""),
        "order": params.get("order", "desc"),
        "format": fmt,
    }
    return "/api/v1/pivot?" + urlencode({k: v for k, v in asked.items() if v})


def _rows(params: dict[str, str]) -> str:
    return "unit" if params["columns"] == "period" else "unit,period"


def _controls(params: dict[str, str], levels: list, lang: str) -> html.Div:
    metrics = catalog()
    en = lang == "en"

    def labelled(key: str, control) -> html.Label:
        return html.Label([html.Span(w(key, lang), className="control-label"), control])

    return html.Div(
        [
            labelled(
                "metric",
                dcc.Dropdown(
                    [{"label": m.label(lang), "value": m.id} for m in metrics.values()],
                    params["metric"],
                    id="pivot-metric",
                    clearable=False,
                    style={"minWidth": "14em"},
                ),
            ),
            labelled(
                "rows",
                dcc.Dropdown(
                    [{"label": en_ if en else zh, "value": c} for c, zh, en_ in levels],
                    params.get("level") or (levels[0][0] if levels else None),
                    id="pivot-level",
                    clearable=False,
                    style={"minWidth": "8em"},
                ),
            ),
            labelled(
                "columns",
                dcc.RadioItems(
                    [{"label": w(c, lang), "value": c} for c in COLUMNS],
                    params["columns"],
                    id="pivot-columns",
                    inline=True,
                ),
            ),
            labelled(
                "interval",
                dcc.RadioItems(
                    [{"label": w(c, lang), "value": c} for c in INTERVALS],
                    params["interval"],
                    id="pivot-interval",
                    inline=True,
                ),
            ),
            labelled(
                "period",
                dcc.Input(
                    id="pivot-period",
                    value=params.get("period", ""),
                    placeholder="2026 · 2026-Q3 · 2026-10 · last-30d",
                    debounce=True,
                    style={"width": "12em"},
                ),
            ),
            html.Button(w("show", lang), id=GO, className="button"),
            html.A("CSV", href=_api(params, "csv"), id="pivot-csv", className="button"),
            html.A("XLSX", href=_api(params, "xlsx"), id="pivot-xlsx", className="button"),
        ],
        className="controls pivot-controls",
    )


def _cell(value, low: bool, fmt: str, lang: str) -> html.Td:
    if value is None:
        return html.Td("—", className="no-data", title=w("no_data", lang))
    text = format_value(value, fmt, lang)
    return html.Td(
        text + (" *" if low else ""),
        className="num low-count" if low else "num",
        **({"data-low-count": "1"} if low else {}),
    )


def _table(table: dict, params: dict[str, str], lang: str) -> html.Table:
    """The pivot as a table; each column's header sorts by it (again: the other way)."""
    metric = table.get("metric")
    fmt = (metric.get("format") if isinstance(metric, dict) else None) or "decimal2"
    nkeys = len(table["rows_by"])
    sorted_by, order = params.get("sort"), params.get("order", "desc")
    heads = []
    for i, name in enumerate(table["head"]):
        key = name if i >= nkeys else table["rows_by"][i]
        label = w(name, lang) if i < nkeys or name == "total" else name
        flip = "asc" if sorted_by == key and order == "desc" else "desc"
        arrow = (" ▼" if order == "desc" else " ▲") if sorted_by == key else ""
        link = dcc.Link(label + arrow, href=_href(params, sort=key, order=flip))
        heads.append(html.Th(link, **{"data-sort": key}))
    body = []
    for r, row in enumerate(table["body"]):
        low = table["low"][r] if r < len(table["low"]) else []
        cells = [html.Th(str(k)) for k in row[:nkeys]]
        if r == len(table["body"]) - 1:
            cells[0] = html.Th(w("total", lang))
        values = row[nkeys:]
        cells += [
            _cell(v, bool(low[c]) if c < len(low) else False, fmt, lang)
            for c, v in enumerate(values)
        ]
        body.append(html.Tr(cells, className="total-row" if r == len(table["body"]) - 1 else None))
    return html.Table(
        [html.Thead(html.Tr(heads)), html.Tbody(body)], id="pivot-table", className="pivot-table"
    )


def layout(**query: str) -> html.Div:
    """The pivot page for the logged-in user, from the URL's query."""
    lang = "en" if query.get("lang") == "en" else "zh"
    who = client.principal()
    if who is None:
        return html.Div(dcc.Location(id="pivot-login", href=dash.get_relative_path("/login")))
    params = {
        "unit": query.get("unit") or who.unit_code,
        "metric": query.get("metric") or default_metric(catalog()),
        "level": query.get("level", ""),
        "columns": query.get("columns") if query.get("columns") in COLUMNS else "category",
        "interval": query.get("interval") if query.get("interval") in INTERVALS else "month",
        "period": query.get("period", ""),
        "sort": query.get("sort", ""),
        "order": "asc" if query.get("order") == "asc" else "desc",
        "lang": lang,
    }
    unit = client.unit_view(who, params["unit"])
    parts: list = [
        plain_header(lang, "pivot-header"),
        dcc.Location(id=WHERE, refresh="callback-nav"),
    ]
    back = dash.get_relative_path(f"/unit/{who.unit_code}")
    if unit is None or unit.is_leaf:
        parts.append(problem(w("no_unit", lang), back, w("back", lang)))
        return html.Div(parts, id=PIVOT, className="page")
    levels = client.levels_below(unit.level)
    params["level"] = params["level"] or (unit.child_level or "")
    parts.append(html.H2(f"{w('pivot', lang)} · {unit.name}"))
    parts.append(_controls(params, levels, lang))
    try:
        table = client.pivot(
            who, unit.code, {**params, "rows": _rows(params)}, params["sort"] or None,
            params["order"],
        )  # fmt: skip
    except (LookupError, ValueError) as exc:
        parts.append(problem(w("no_pivot", lang), back, w("back", lang), quoted=str(exc)))
        return html.Div(parts, id=PIVOT, className="page")
    parts.append(html.Div(_table(table, params, lang), className="pivot-box"))
    return html.Div(parts, id=PIVOT, className="page", **{"data-unit": unit.code})


@dash.callback(
    Output(WHERE, "href"),
    Input(GO, "n_clicks"),
    Input("pivot-period", "value"),
    State("pivot-metric", "value"),
    State("pivot-level", "value"),
    State("pivot-columns", "value"),
    State("pivot-interval", "value"),
    State(WHERE, "search"),
    prevent_initial_call=True,
)
def _go(_n, period, metric, level, columns, interval, search):
    """The controls into the URL (the page is drawn again from it)."""
    from urllib.parse import parse_qs

    now = {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}
    keep = {k: now[k] for k in ("unit", "lang") if k in now}
    who = client.principal()
    if "unit" in keep and (who is None or client.unit_view(who, keep["unit"]) is None):
        del keep["unit"]  # never echo a unit outside the reader's jurisdiction
    asked = {"metric": metric, "level": level, "columns": columns, "interval": interval}
    return _href(keep | asked | {"period": period or ""})
