"""Trend and breakdown charts as plain figure dicts."""

from __future__ import annotations

from dashboard.i18n import t

FONT = "Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, sans-serif"


def _layout(dark: bool, size: int) -> dict:
    colour = "#e8ecf2" if dark else "#222"
    grid = "#34404f" if dark else "#e6e6e6"
    return {
        "margin": {"l": 48, "r": 12, "t": 8, "b": 36},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": FONT, "size": size, "color": colour},
        "xaxis": {"gridcolor": grid, "zeroline": False},
        "yaxis": {"gridcolor": grid, "zeroline": False, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": 1.12, "x": 0},
        "hovermode": "x unified",
    }


def trend_figure(
    months: list[str],
    values: list[float | None],
    last_year: list[float | None],
    percent: bool,
    lang: str,
    dark: bool = False,
    size: int = 12,
) -> dict:
    """The monthly line with the same months a year before as a dashed line."""
    layout = _layout(dark, size)
    if percent:
        layout["yaxis"]["tickformat"] = ".0%"
        if all(v is None for v in [*values, *last_year]):
            layout["yaxis"]["range"] = [0, 1]
    layout["xaxis"]["type"] = "category"
    layout["xaxis"]["tickangle"] = 0
    layout["xaxis"]["nticks"] = 7
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": months,
            "y": values,
            "name": t("trend", lang),
            "line": {"color": "#3182bd", "width": 3},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": months,
            "y": last_year,
            "name": t("last_year", lang),
            "line": {"color": "#9aa5b1", "width": 2, "dash": "dash"},
        },
    ]
    return {"data": data, "layout": layout}


def bar_figure(
    labels: list[str],
    values: list[float],
    percent: bool,
    dark: bool = False,
    size: int = 12,
    empty_text: str = "",
) -> dict:
    """Horizontal bars, largest on top; with no bars, ``empty_text`` instead of axes."""
    layout = _layout(dark, size)
    if not labels:
        hidden = {"visible": False}
        layout |= {"xaxis": hidden, "yaxis": hidden, "hovermode": False}
        layout["annotations"] = [
            {"text": empty_text, "showarrow": False, "xref": "paper", "yref": "paper"}
        ]
        return {"data": [], "layout": layout}
    layout["margin"]["l"] = 110
    layout["hovermode"] = "closest"
    layout["yaxis"] = {"autorange": "reversed", "automargin": True}
    if percent:
        layout["xaxis"]["tickformat"] = ".0%"
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "x": values,
            "y": labels,
            "marker": {"color": "#6baed6"},
            "hovertemplate": "%{y}: %{x}<extra></extra>",
        }
    ]
    return {"data": data, "layout": layout}
