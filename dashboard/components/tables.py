"""The ranking of the children (sortable, exportable as CSV) and a village's or grid's
open and overdue cases (no personal data: the case table holds none)."""

from __future__ import annotations

from dash import dash_table, dcc, html

from dashboard.i18n import t

# DataTable sets its own (monospace) font on the table: name the page's fonts again.
FONT = (
    '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",'
    ' "PingFang SC", "Microsoft YaHei", sans-serif'
)

TABLE_STYLE = {
    "style_table": {"overflowX": "auto", "maxHeight": "420px", "overflowY": "auto"},
    "style_cell": {
        "fontFamily": FONT,
        "fontSize": "14px",
        "padding": "4px 8px",
        "textAlign": "left",
    },
    "style_header": {"fontWeight": "600", "backgroundColor": "#f1f4f8"},
}


# What a unit's count counts, by the registry's field name (``MetricInfo.basis``).
BASIS_NAMES: dict[str, tuple[str, str]] = {
    "cases": ("案件数", "Cases"),
    "closed": ("办结数", "Cases closed"),
    "disputes_closed": ("办结纠纷数", "Disputes closed"),
    "mediated": ("调解数", "Mediated"),
    "evaluated": ("评价数", "Evaluations"),
    "area_km2": ("面积 (km²)", "Area (km²)"),
    "full_time": ("专职网格员数", "Full-time grid workers"),
    "stations": ("联动站数", "Stations"),
    "centers": ("综治中心数", "Centers"),
    "facilities_built": ("已建设施数", "Facilities built"),
    "population": ("常住人口", "Residents"),
    "special_under_management": ("在管人数", "Under management"),
    "floating_population": ("流动人口", "Floating population"),
    "grids": ("网格数", "Grids"),
    "help_stations_reported": ("报送村数", "Villages reporting"),
}
# Formats of the ranking's numbers (d3-format, as the DataTable writes them).
D3_FORMATS = {"percent": ".1%", "integer": ",.0f", "decimal1": ",.1f", "decimal2": ",.2f"}


def basis_name(basis: str, lang: str) -> str:
    """The heading of the column that holds what a value rests on."""
    zh, en = BASIS_NAMES.get(basis, (basis, basis))
    return en if lang == "en" else zh


def ranking_columns(
    metric_title: str, fmt: str, basis: str, count_is_value: bool, compare: str, lang: str
) -> list[dict]:
    """The ranking's columns, each headed with what it holds: rank, name, code, the
    metric (its title and unit, numbers in its format), what it rests on (left out when
    that is the value itself: a caseload), the previous period's value and the change."""
    number = {"type": "numeric", "format": {"specifier": D3_FORMATS.get(fmt, ",.2f")}}
    columns = [
        {"name": t("rank", lang), "id": "rank", "type": "numeric"},
        {"name": t("name", lang), "id": "name"},
        {"name": t("code", lang), "id": "code"},
        {"name": metric_title, "id": "value", **number},
    ]
    if not count_is_value:
        count_fmt = ",.1f" if basis == "area_km2" else ",.0f"
        columns.append(
            {
                "name": basis_name(basis, lang),
                "id": "count",
                "type": "numeric",
                "format": {"specifier": count_fmt},
            }
        )
    if compare in ("yoy", "prev"):
        columns.append({"name": f"{t('previous_' + compare, lang)}", "id": "previous", **number})
        columns.append({"name": f"{t(compare, lang)}{t('change_suffix', lang)}", "id": "change"})
    return columns


def ranking_table(
    rows: list[dict],
    columns: list[dict],
    lang: str,
    element_id: str,
    button_id: str,
    download_id: str,
) -> html.Div:
    """``rows``: rank, name, code, value, count, previous (numbers, for sorting and the
    CSV) and change (text); ``columns``: ``ranking_columns``. The CSV button asks the
    server for the numbers (``button_id``, sent through ``download_id``)."""
    return html.Div(
        [
            html.H3(t("ranking", lang)),
            html.Button(t("export_table", lang), id=button_id, className="table-export"),
            dcc.Download(id=download_id),
            dash_table.DataTable(
                id=element_id,
                columns=columns,
                data=rows,
                sort_action="native",
                page_action="none",
                **TABLE_STYLE,
            ),
        ],
        className="panel",
    )


def cases_table(rows: list[dict], lang: str, element_id: str) -> html.Div:
    """``rows``: id, category, channel, status, reported, deadline, overdue (text)."""
    columns = [
        {"name": "#", "id": "id"},
        {"name": t("category", lang), "id": "category"},
        {"name": t("channel", lang), "id": "channel"},
        {"name": t("status", lang), "id": "status"},
        {"name": t("reported", lang), "id": "reported"},
        {"name": t("deadline", lang), "id": "deadline"},
        {"name": t("overdue", lang), "id": "overdue"},
    ]
    body = (
        dash_table.DataTable(
            id=element_id,
            columns=columns,
            data=rows,
            sort_action="native",
            page_action="none",
            style_data_conditional=[
                {"if": {"filter_query": "{overdue} != ''"}, "color": "#b30000"}
            ],
            **TABLE_STYLE,
        )
        if rows
        else html.P(t("cases_open_none", lang), id=element_id)
    )
    return html.Div([html.H3(t("open_cases", lang)), body], className="panel")
