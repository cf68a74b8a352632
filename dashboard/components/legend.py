"""The map's legend: class breaks with their colours, and the units drawn apart."""

from __future__ import annotations

from dash import html

from dashboard.components.choropleth import LOW_COUNT_COLOR, NO_DATA_COLOR, palette
from dashboard.i18n import format_value, t


def _swatch(colour: str, label: str, note: str | None = None) -> html.Div:
    style = {"background": colour}
    return html.Div(
        [
            html.Span(className="swatch", style=style),
            html.Span(label, className="swatch-label"),
            html.Span(note, className="swatch-note") if note else None,
        ],
        className="legend-row",
    )


def legend(
    title: str,
    lower: float | None,
    bounds: list[float],
    fmt: str,
    higher_is_better: bool | None,
    min_denominator: int,
    lang: str,
    kept: bool = False,
) -> html.Div:
    """Rows from the lowest class to the highest, then no-data and low-count. ``kept``:
    the breaks are kept from another map, so the rows do not depend on this map's values
    (``≤ b1``, ``b1 – b2``, …, ``> b(k-1)``)."""
    rows = []
    colours = palette(len(bounds), higher_is_better)
    previous = lower
    for i, (colour, upper) in enumerate(zip(colours, bounds, strict=True)):
        high_text = format_value(upper, fmt, lang)
        if kept and i == 0:
            label = f"≤ {high_text}"
        elif kept and i == len(bounds) - 1:
            label = f"> {format_value(previous, fmt, lang)}"
        else:
            low_text = format_value(previous, fmt, lang)
            label = high_text if low_text == high_text else f"{low_text} – {high_text}"
        rows.append(_swatch(colour, label))
        previous = upper
    rows.append(
        _swatch(
            LOW_COUNT_COLOR,
            t("low_count", lang),
            t("low_count_note", lang, n=min_denominator),
        )
    )
    rows.append(_swatch(NO_DATA_COLOR, t("no_data", lang), t("no_data_note", lang)))
    head = [html.Div(title, className="legend-title")]
    if kept:
        head.append(html.Div(t("breaks_kept", lang), className="legend-kept"))
    return html.Div([*head, *rows], className="legend")
