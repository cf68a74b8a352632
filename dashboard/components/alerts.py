"""Early-warning alerts on the unit page: the list beside the map, a marker on each child
unit that holds an open alert, and the observed-against-expected chart of a unit's detail.

Pure rendering: the data comes from the API's own services through ``dashboard.client``
(``api.alerts.lifecycle.open_alerts(session, who, unit_code=code)`` for the list and the
markers, ``api.alerts.pattern.unit_pattern(session, unit, category)`` for the chart), so
every alert shown is scoped exactly as ``GET /api/v1/alerts`` scopes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from dash import dcc, html

ALERT_LIST = "unit-alerts"
ALERT_PATTERN = "unit-alert-pattern"
MARKER_COLOR = "#d7301f"

TEXT: dict[str, tuple[str, str]] = {
    "heading": ("预警", "Alerts"),
    "none": ("暂无预警", "No open alerts"),
    "caseload": ("{what}：近7天{observed:g}件，按本单位规律预期{expected:.1f}件（概率{p}）",
                 "{what}: {observed:g} cases in 7 days, {expected:.1f} expected from its own "
                 "pattern (probability {p})"),
    "overdue": ("超期在办{observed:g}件，近期水平{expected:.1f}件",
                "{observed:g} overdue open cases, recent level {expected:.1f}"),
    "unstaffed_grid": ("网格无专职网格员", "Grid without a full-time worker"),
    "slow_response": ("近7天{observed:g}起警情未在5分钟内到场，按本单位规律预期{expected:.1f}起",
                      "{observed:g} events not on scene within 5 minutes in 7 days, "
                      "{expected:.1f} expected from its own history"),
    "since": ("自{day}起", "since {day}"),
    "marker": ("{n}条预警", "open alerts: {n}"),
    "observed": ("近7天实际", "Observed (7 days)"),
    "expected": ("按规律预期", "Expected from its pattern"),
}  # fmt: skip


def _t(key: str, lang: str, **fmt: object) -> str:
    zh, en = TEXT[key]
    return (en if lang == "en" else zh).format(**fmt)


def alert_sentence(alert: Mapping, lang: str) -> str:
    """What the alert says, in the page's language: observed against expected, since when."""
    kind = alert["kind"]
    if kind == "caseload":
        what = alert["category_en"] if lang == "en" else alert["category_zh"]
        p = alert.get("probability")
        body = _t(
            "caseload",
            lang,
            what=what,
            observed=alert["observed"] or 0,
            expected=alert["expected"] or 0,
            p="—" if p is None else f"{p:.1e}",
        )
    elif kind == "overdue":
        body = _t("overdue", lang, observed=alert["observed"] or 0, expected=alert["expected"] or 0)
    elif kind == "slow_response":
        body = _t(
            "slow_response", lang, observed=alert["observed"] or 0, expected=alert["expected"] or 0
        )
    else:
        body = _t("unstaffed_grid", lang)
    comma = ", " if lang == "en" else "，"
    return f"{body}{comma}{_t('since', lang, day=str(alert['opened_on']))}"


def alert_place(alert: Mapping) -> str:
    """Where the alert is: its path below the page's unit (镇 › 村 › 网格), so two grids
    of the same name in two villages are told apart."""
    names = alert.get("path_names") or [alert.get("unit_name") or alert["unit_code"]]
    return " › ".join(names)


def alert_list(alerts: Sequence[Mapping], lang: str, href: Callable[[str], str]) -> html.Div:
    """The list beside the map: one line per open alert (most significant first, as the
    service orders them), each a link to its unit's page (``href(code)``)."""
    if not alerts:
        items: list = [html.P(_t("none", lang), className="note")]
    else:
        items = [
            html.Ol(
                [
                    html.Li(
                        [
                            dcc.Link(alert_place(a), href=href(a["unit_code"])),
                            html.Span(" " + alert_sentence(a, lang), className="alert-text"),
                        ],
                        className=f"alert alert-{a['kind']}",
                        **{"data-unit": a["unit_code"]},
                    )
                    for a in alerts
                ],
                className="alert-list",
            )
        ]
    return html.Div([html.H3(_t("heading", lang)), *items], className="panel", id=ALERT_LIST)


def alerts_per_child(alerts: Sequence[Mapping], child_codes: Sequence[str]) -> dict[str, int]:
    """Open alerts under each child shown on the map (an alert's ``path`` runs from the page's
    unit down to the alerted unit, so its second code is the child; the page's own unit
    has no marker)."""
    shown = set(child_codes)
    out: dict[str, int] = {}
    for a in alerts:
        path = a.get("path") or [a["unit_code"]]
        child = next((c for c in path if c in shown), None)
        if child is not None:
            out[child] = out.get(child, 0) + 1
    return out


def alert_marker_trace(
    alerts: Sequence[Mapping],
    points: Mapping[str, tuple[float, float, bool]],
    lang: str,
    above: float = 0.0,
) -> dict:
    """A ``scattergeo`` trace to append to the map figure's data: a red ring on each child
    unit that holds open alerts, sized by their number (``points``: code → lon, lat, as
    ``dashboard.views.label_points`` gives them)."""
    counts = alerts_per_child(alerts, list(points))
    codes = [c for c in counts if points[c][0] is not None]
    return {
        "type": "scattergeo",
        "mode": "markers",
        "lon": [points[c][0] for c in codes],
        # above the unit's name (``above``: degrees of latitude), not over it
        "lat": [points[c][1] + (above if points[c][2] else 0.0) for c in codes],
        "customdata": [[c, _t("marker", lang, n=counts[c])] for c in codes],
        "hovertemplate": "%{customdata[1]}<extra></extra>",
        "marker": {
            "size": [10 + 3 * min(counts[c], 5) for c in codes],
            "color": "rgba(0,0,0,0)",
            "line": {"color": MARKER_COLOR, "width": 3},
        },
        "showlegend": False,
        "name": "alerts",
    }


def pattern_figure(pattern: Mapping, lang: str) -> dict:
    """The unit detail's chart: its 7-day cases against what its own pattern expects, day
    by day (``unit_pattern``'s answer); the probability is in the hover."""
    days = pattern["days"]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": days,
                "y": pattern["expected"],
                "name": _t("expected", lang),
                "line": {"color": "#6b7a90", "dash": "dash"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "x": days,
                "y": pattern["observed"],
                "name": _t("observed", lang),
                "line": {"color": MARKER_COLOR},
                "customdata": [["—" if p is None else f"{p:.1e}"] for p in pattern["probability"]],
                "hovertemplate": "%{x}: %{y:g} (p %{customdata[0]})<extra></extra>",
            },
        ],
        "layout": {
            "margin": {"l": 40, "r": 10, "t": 10, "b": 30},
            "legend": {"orientation": "h"},
            "paper_bgcolor": "rgba(0,0,0,0)",
        },
    }


def pattern_graph(pattern: Mapping, lang: str) -> dcc.Graph:
    """The chart as a component (static: no mode bar)."""
    return dcc.Graph(
        id=ALERT_PATTERN, figure=pattern_figure(pattern, lang), config={"displayModeBar": False}
    )
