"""The map's legend: class breaks with their colours, and the units drawn apart."""

from __future__ import annotations

import math

from dash import html

from dashboard.components.choropleth import LOW_COUNT_COLOR, NO_DATA_COLOR, palette
from dashboard.i18n import format_value, t


def _swatch(colour: str, label: str, note: str | None = None, hatched: bool = False) -> html.Div:
    style = {"background": colour}
    return html.Div(
        [
            html.Span(className="swatch hatched" if hatched else "swatch", style=style),
            html.Span(label, className="swatch-label"),
            html.Span(note, className="swatch-note") if note else None,
        ],
        className="legend-row",
    )


def _text(value: float, fmt: str, lang: str, extra: int) -> str:
    """``value`` in the metric's format, with ``extra`` more decimals when asked."""
    if extra == 0 or fmt == "integer":
        return format_value(value, fmt, lang)
    if fmt == "percent":
        return f"{value * 100:.{1 + extra}f}%"
    digits = (2 if fmt == "decimal2" else 1) + extra
    return f"{value:,.{digits}f}"


def class_labels(
    lower: float | None, bounds: list[float], fmt: str, lang: str, kept: bool = False
) -> list[str | None]:
    """One label per class (``None``: a class no value can fall in, left out of the
    legend). Classes are (b[i-1], b[i]], the first from the lowest classed value.

    Count metrics (``integer``) get integer ranges that do not overlap (``0 – 2``,
    ``3 – 4``); others are written in the metric's format, with just enough more decimals
    that no two labels read alike. ``kept``: breaks from another map (``≤ b1`` … ``> b``).
    No classed value at all (``lower`` None, not kept): no class rows."""
    k = len(bounds)
    if k == 0 or (lower is None and not kept):
        return []
    if fmt == "integer":
        return _integer_labels(lower, bounds, lang, kept)
    edges = ([] if lower is None or kept else [lower]) + list(bounds)
    extra = 0
    while extra < 3 and len({_text(b, fmt, lang, extra) for b in edges}) < len(set(edges)):
        extra += 1

    def text(value: float) -> str:
        return _text(value, fmt, lang, extra)

    labels: list[str | None] = []
    single_before = False
    for i, upper in enumerate(bounds):
        if kept and i == 0:
            label = f"≤ {text(upper)}"
        elif kept and i == k - 1:
            label = f"> {text(bounds[i - 1])}"
        else:
            low = lower if i == 0 else bounds[i - 1]
            if i > 0 and low >= upper:
                labels.append(None)
                continue
            if text(low) == text(upper):
                label = text(upper)
            else:
                label = f"{'> ' if single_before else ''}{text(low)} – {text(upper)}"
            single_before = i == 0 and text(low) == text(upper)
        labels.append(label)
    return labels


def _integer_labels(
    lower: float | None, bounds: list[float], lang: str, kept: bool
) -> list[str | None]:
    def text(value: int) -> str:  # exact (no 万: 1.20万 could end one class and start the next)
        return f"{value:,}"

    edges = [math.floor(b) for b in bounds]
    k = len(edges)
    labels: list[str | None] = []
    for i, high in enumerate(edges):
        if kept and i == 0:
            labels.append(f"≤ {text(high)}")
            continue
        start = (edges[i - 1] + 1) if i > 0 else math.ceil(lower)
        if kept and i == k - 1:
            labels.append(f"≥ {text(start)}")
        elif start > high:
            labels.append(None)
        elif start == high:
            labels.append(text(high))
        else:
            labels.append(f"{text(start)} – {text(high)}")
    return labels


def legend(
    title: str,
    lower: float | None,
    bounds: list[float],
    fmt: str,
    higher_is_better: bool | None,
    min_denominator: int,
    lang: str,
    kept: bool = False,
    note: str | None = None,
    suppressed: str | None = None,
) -> html.Div:
    """Rows from the lowest class to the highest (``class_labels``), then no-data and
    low-count. ``kept``: the breaks are kept from another map, so the rows do not depend
    on this map's values; ``note``: a line under the title (a smoothed map says so);
    ``suppressed``: the label of a small count kept from view (``<5``), for a map of counts
    of persons (drawn grey, never as a value)."""
    colours = palette(len(bounds), higher_is_better)
    labels = class_labels(lower, bounds, fmt, lang, kept)
    rows = [
        _swatch(colour, label)
        for colour, label in zip(colours, labels, strict=False)
        if label is not None
    ]
    if not labels and bounds:
        rows.append(html.Div(t("none_classed", lang), className="legend-kept"))
    rows.append(
        _swatch(
            LOW_COUNT_COLOR,
            t("low_count", lang),
            t("low_count_note", lang, n=min_denominator),
            hatched=True,
        )
    )
    if suppressed:
        rows.append(_swatch(NO_DATA_COLOR, suppressed, t("suppressed_note", lang)))
    rows.append(_swatch(NO_DATA_COLOR, t("no_data", lang), t("no_data_note", lang)))
    head = [html.Div(title, className="legend-title")]
    if note:
        head.append(html.Div(note, className="legend-kept legend-note"))
    if kept:
        head.append(html.Div(t("breaks_kept", lang), className="legend-kept"))
    return html.Div([*head, *rows], className="legend")
