"""KPI cards: a metric's value for the current unit and its change against the comparison."""

from __future__ import annotations

from dataclasses import dataclass

from dash import html

from dashboard.i18n import format_change, format_value, t


@dataclass(frozen=True)
class Kpi:
    """One card's figures."""

    metric: str
    label: str
    value: float | None
    previous: float | None
    fmt: str
    higher_is_better: bool | None
    base_partial: bool = False  # the comparison base is not fully covered: no change


def _tone(kpi: Kpi) -> str:
    if (
        kpi.base_partial
        or format_change(kpi.value, kpi.previous, kpi.fmt, "en") == "—"
        or (
            kpi.value is None
            or kpi.previous is None
            or kpi.value == kpi.previous
            or kpi.higher_is_better is None
        )
    ):
        return "flat"
    better = (kpi.value > kpi.previous) == kpi.higher_is_better
    return "better" if better else "worse"


def kpi_card(kpi: Kpi, compare_label: str, lang: str) -> html.Div:
    """A card: label, value, change (green when better, red when worse)."""
    change = format_change(kpi.value, kpi.previous, kpi.fmt, lang)
    if kpi.base_partial:  # 基期不完整: the base holds only part of its days' data
        change = f"— ({t('base_partial', lang)})"
    return html.Div(
        [
            html.Div(kpi.label, className="kpi-label"),
            html.Div(format_value(kpi.value, kpi.fmt, lang), className="kpi-value"),
            html.Div(
                f"{compare_label} {change}" if change != "—" else f"{compare_label} —",
                className=f"kpi-change {_tone(kpi)}",
            ),
        ],
        className="kpi",
        id=f"kpi-{kpi.metric}",
    )


def kpi_cards(kpis: list[Kpi], compare: str, lang: str) -> list[html.Div]:
    """The row of cards."""
    label = t(compare, lang) if compare in ("yoy", "prev") else ""
    return [kpi_card(k, label, lang) for k in kpis]
