"""The controls bar: metric (grouped 案件 / 化解 / 网格 / 特殊人群, from the registry),
period preset and date range (for a metric published per calendar month only, the months
it has figures for instead), comparison 同比/环比, class method, language, exports."""

from __future__ import annotations

import datetime as dt

from dash import dcc, html

from dashboard import ids
from dashboard.i18n import t
from dashboard.state import COMPARES, METHODS, PERIODS, MapView

GROUPS = ("caseload", "resolution", "grid", "risk", "populations")
# The controls' (id, property) in one order: the callbacks that read or set them list them
# so, and ``control_values`` gives a view's values so.
CONTROLS = (
    (ids.METRIC, "value"),
    (ids.PERIOD, "value"),
    (ids.DATES, "start_date"),
    (ids.DATES, "end_date"),
    (ids.COMPARE, "value"),
    (ids.METHOD, "value"),
    (ids.KEEP_BREAKS, "value"),
    (ids.SMOOTH, "value"),
)


def control_values(view: MapView) -> tuple:
    """The controls' values that show ``view`` (resolved), in the order of ``CONTROLS``."""
    return (
        view.metric,
        view.period,
        view.start.isoformat() if view.start else None,
        view.end.isoformat() if view.end else None,
        view.compare,
        view.method,
        ["keep"] if view.keep else [],
        ["eb"] if view.smooth == "eb" else [],
    )


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


def period_options(view: MapView, months: list[dt.date] | None) -> list[dict]:
    """The period control's choices: the presets and "custom", or for a metric published
    per calendar month (``months``: those with figures, oldest first) its last twelve
    months, newest first (``period=YYYY-MM``)."""
    lang = view.lang
    if months is None:
        return [{"label": t(p, lang), "value": p} for p in (*PERIODS, "custom")]
    shown = months[-12:][::-1]
    if view.period not in {m.strftime("%Y-%m") for m in shown} and view.start:
        shown = [view.start.replace(day=1), *shown]  # a month without figures, asked for
    return [{"label": month_label(m, lang), "value": m.strftime("%Y-%m")} for m in shown]


def month_label(first: dt.date, lang: str) -> str:
    """A calendar month as the period control names it: 2026年10月, Oct 2026."""
    return f"{first.year}年{first.month}月" if lang == "zh" else first.strftime("%b %Y")


def controls(
    metrics: list,
    view: MapView,
    exports: list[tuple[str, str, str, str]],
    months: list[dt.date] | None = None,
) -> html.Div:
    """The bar showing ``view`` (resolved: its period's days, its map's level) with every
    metric of ``metrics``; ``exports``: (id, label, href, file name) of each export link;
    ``months``: for a metric published per calendar month, the months it has figures for
    (the period control then offers those, and no free dates)."""
    metric, period, start, end, compare, method, keep, smooth = control_values(view)
    lang = view.lang
    smoothable = any(m.id == view.metric and m.smoothable for m in metrics)
    monthly = months is not None
    return html.Div(
        [
            html.Label([t("metric", lang)], className="ctl-label"),
            dcc.Dropdown(
                id=ids.METRIC,
                options=metric_options(metrics, lang),
                value=metric,
                clearable=False,
                searchable=False,
                className="ctl-metric",
            ),
            html.Label([t("month_only" if monthly else "period", lang)], className="ctl-label"),
            dcc.RadioItems(
                id=ids.PERIOD,
                options=period_options(view, months),
                value=period,
                inline=True,
                className="ctl-radio ctl-months" if monthly else "ctl-radio",
            ),
            dcc.DatePickerRange(
                id=ids.DATES,
                start_date=start,
                end_date=end,
                display_format="YYYY-MM-DD",
                month_format="YYYY年M月" if lang == "zh" else "MMMM YYYY",
                first_day_of_week=1 if lang == "zh" else 0,
                start_date_placeholder_text=t("start_date", lang),
                end_date_placeholder_text=t("end_date", lang),
                className="ctl-dates",
                **({"style": {"display": "none"}} if monthly else {}),
            ),
            html.Label([t("compare", lang)], className="ctl-label"),
            dcc.RadioItems(
                id=ids.COMPARE,
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
                id=ids.METHOD,
                options=[{"label": t(m, lang), "value": m} for m in METHODS],
                value=method,
                clearable=False,
                searchable=False,
                className="ctl-method",
            ),
            dcc.Checklist(
                id=ids.KEEP_BREAKS,
                options=[{"label": t("keep_breaks", lang), "value": "keep"}],
                value=keep,
                inline=True,
                className="ctl-radio ctl-keep",
            ),
            html.Span(
                dcc.Checklist(
                    id=ids.SMOOTH,
                    options=[
                        {"label": t("smooth_eb", lang), "value": "eb", "disabled": not smoothable}
                    ],
                    value=smooth,
                    inline=True,
                    className="ctl-radio ctl-smooth",
                ),
                title=t("smooth_eb_note", lang),
            ),
            html.Div(
                [html.Span(t("export", lang), className="ctl-label")]
                + [
                    html.A(label, id=eid, href=href, download=name, className="export-link")
                    for eid, label, href, name in exports
                ],
                className="exports",
            ),
        ],
        className="controls",
    )
