"""The ranking of the children (sortable, exportable as CSV) and a village's or grid's
open and overdue cases (no personal data: the case table holds none)."""

from __future__ import annotations

from dash import dash_table, html

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


def ranking_table(rows: list[dict], metric_label: str, lang: str, element_id: str) -> html.Div:
    """``rows``: rank, name, code, value (number, for sorting), value_text, count, change."""
    columns = [
        {"name": t("rank", lang), "id": "rank", "type": "numeric"},
        {"name": t("name", lang), "id": "name"},
        {"name": t("code", lang), "id": "code"},
        {"name": metric_label, "id": "value_text"},
        {"name": f"{metric_label} (#)", "id": "value", "type": "numeric"},
        {"name": t("count", lang), "id": "count", "type": "numeric"},
        {"name": t("change", lang), "id": "change"},
    ]
    return html.Div(
        [
            html.H3(t("ranking", lang)),
            dash_table.DataTable(
                id=element_id,
                columns=columns,
                data=rows,
                sort_action="native",
                export_format="csv",
                export_headers="display",
                page_action="none",
                hidden_columns=["value"],
                css=[{"selector": ".show-hide", "rule": "display: none"}],
                **TABLE_STYLE,
            ),
        ],
        className="panel",
        # the table's own export button says "Export": zhili.css writes this instead
        style={"--export-label": f'"{t("export_table", lang)}"'},
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
