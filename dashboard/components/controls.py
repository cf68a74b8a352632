"""The controls bar: metric (grouped 案件 / 化解 / 网格, from the registry), period preset
and date range, comparison 同比/环比, class method, language, exports."""

from __future__ import annotations

import datetime as dt

from dash import dcc, html

from dashboard.i18n import t
from dashboard.state import COMPARES, METHODS, PERIODS

GROUPS = ("caseload", "resolution", "grid")


def metric_options(metrics: list, lang: str) -> list[dict]:
    """Dropdown options: a disabled heading per group, then its metrics."""
    options: list[dict] = []
    for group in GROUPS:
        members = [m for m in metrics if m.group == group]
        if not members:
            continue
        options.append(
            {
                "label": f"— {t('group_' + group, lang)} —",
                "value": f"group:{group}",
                "disabled": True,
            }
        )
        options.extend({"label": m.label(lang), "value": m.id} for m in members)
    return options


def controls(
    ids: dict[str, str],
    metrics: list,
    metric: str,
    period: str,
    start: dt.date,
    end: dt.date,
    compare: str,
    method: str,
    kept: bool,
    lang: str,
    exports: list[tuple[str, str, str]],
) -> html.Div:
    """The bar; ``ids`` maps metric, period, dates, compare, method, keep to component ids;
    ``kept``: the class breaks are kept (the same legend on every map of this level);
    ``exports``: (id, label, href) of each export link."""
    return html.Div(
        [
            html.Label([t("metric", lang)], className="ctl-label"),
            dcc.Dropdown(
                id=ids["metric"],
                options=metric_options(metrics, lang),
                value=metric,
                clearable=False,
                searchable=False,
                className="ctl-metric",
            ),
            html.Label([t("period", lang)], className="ctl-label"),
            dcc.RadioItems(
                id=ids["period"],
                options=[{"label": t(p, lang), "value": p} for p in (*PERIODS, "custom")],
                value=period,
                inline=True,
                className="ctl-radio",
            ),
            dcc.DatePickerRange(
                id=ids["dates"],
                start_date=start.isoformat(),
                end_date=end.isoformat(),
                display_format="YYYY-MM-DD",
                className="ctl-dates",
            ),
            html.Label([t("compare", lang)], className="ctl-label"),
            dcc.RadioItems(
                id=ids["compare"],
                options=[
                    {"label": t(c, lang) if c != "none" else t("none", lang), "value": c}
                    for c in COMPARES
                ],
                value=compare,
                inline=True,
                className="ctl-radio",
            ),
            html.Label([t("method", lang)], className="ctl-label"),
            dcc.Dropdown(
                id=ids["method"],
                options=[{"label": t(m, lang), "value": m} for m in METHODS],
                value=method,
                clearable=False,
                searchable=False,
                className="ctl-method",
            ),
            dcc.Checklist(
                id=ids["keep"],
                options=[{"label": t("keep_breaks", lang), "value": "keep"}],
                value=["keep"] if kept else [],
                inline=True,
                className="ctl-radio ctl-keep",
            ),
            html.Div(
                [html.Span(t("export", lang), className="ctl-label")]
                + [
                    html.A(label, id=eid, href=href, download="", className="export-link")
                    for eid, label, href in exports
                ],
                className="exports",
            ),
        ],
        className="controls",
    )
