"""The risk register's pieces: items on a map (points and areas coloured by risk level,
open items marked apart from decided ones) over the choropleth of assessment coverage, the
calendar of coming large events, the agencies' table. Figures as plain dicts."""

from __future__ import annotations

import datetime as dt

from dash import html

LEVEL_COLOURS = {"high": "#d7191c", "medium": "#f08c00", "low": "#1a9641", None: "#6b7785"}
LEVEL_ZH = {"high": "高", "medium": "中", "low": "低", None: "未评估"}
LEVEL_EN = {"high": "High", "medium": "Medium", "low": "Low", None: "Not assessed"}
STATUS_ZH = {
    "registered": "已登记",
    "assessing": "评估中",
    "assessed": "已评估",
    "decided": "已决策",
}
LOCAL = dt.timedelta(hours=8)
LINK_KINDS = {"case": "案件", "event": "警情"}


def local_day(iso: str | None) -> str:
    """An ISO timestamp as the local (Asia/Shanghai) day."""
    if not iso:
        return "—"
    return (dt.datetime.fromisoformat(iso) + LOCAL).date().isoformat()


def _rings(geom: dict) -> list[list]:
    if geom["type"] == "Polygon":
        return [geom["coordinates"][0]]
    if geom["type"] == "MultiPolygon":
        return [poly[0] for poly in geom["coordinates"]]
    return []


def _hover(item: dict) -> str:
    flag = " ⚠未经评估决策" if item.get("without_assessment") else ""
    return (
        f"<b>{item['title']}</b><br>{item['kind_name']} · {item['deciding_unit']['name']}<br>"
        f"{STATUS_ZH.get(item['status'], item['status'])} · 风险 {LEVEL_ZH[item['risk_level']]}"
        f"{flag}<br>计划 {local_day(item['planned_at'])} · 关联案事件 {item['incidents']}"
    )


def item_traces(items: list[dict]) -> list[dict]:
    """Areas (filled outlines) and points, one trace per risk level; an open item's point
    is a diamond, a decided one's a circle."""
    traces = []
    for level, colour in LEVEL_COLOURS.items():
        mine = [i for i in items if i["risk_level"] == level]
        areas = [i for i in mine if i.get("place") and i["place"]["type"] != "Point"]
        lon, lat = [], []
        for item in areas:
            for ring in _rings(item["place"]):
                lon += [c[0] for c in ring] + [None]
                lat += [c[1] for c in ring] + [None]
        if lon:
            traces.append(
                {
                    "type": "scattergeo",
                    "mode": "lines",
                    "lon": lon,
                    "lat": lat,
                    "fill": "toself",
                    "fillcolor": colour + "55",
                    "line": {"color": colour, "width": 2},
                    "hoverinfo": "skip",
                    "showlegend": False,
                    "name": f"risk-areas-{level}",
                }
            )
        if mine:
            traces.append(
                {
                    "type": "scattergeo",
                    "mode": "markers",
                    "lon": [i["lon"] for i in mine],
                    "lat": [i["lat"] for i in mine],
                    "marker": {
                        "size": 11,
                        "color": colour,
                        "line": {"color": "#ffffff", "width": 1},
                        "symbol": [
                            "circle" if i["status"] == "decided" else "diamond" for i in mine
                        ],
                    },
                    "text": [_hover(i) for i in mine],
                    "hovertemplate": "%{text}<extra></extra>",
                    "customdata": [i["id"] for i in mine],
                    "showlegend": False,
                    "name": f"risk-items-{level}",
                }
            )
    return traces


def level_badge(level: str | None, lang: str = "zh") -> html.Span:
    words = LEVEL_EN if lang == "en" else LEVEL_ZH
    return html.Span(
        words[level], className="risk-badge", style={"background": LEVEL_COLOURS[level]}
    )


def calendar(events: list[dict], limit: int = 12, title: str = "近期大型活动") -> html.Div:
    """The coming large events, gatherings and religious activities with their risk level."""
    rows = [
        html.Tr(
            [
                html.Td(local_day(e["planned_at"])),
                html.Td(e["title"]),
                html.Td(e["kind_name"]),
                html.Td(e["deciding_unit"]["name"]),
                html.Td(f"{e['people_affected']:,}"),
                html.Td(level_badge(e["risk_level"])),
            ]
        )
        for e in events[:limit]
    ]
    if not rows:
        body = html.P("未来60天内无登记的大型活动", className="note")
    else:
        head = html.Tr([html.Th(h) for h in ("日期", "活动", "类别", "决策单位", "人数", "风险")])
        body = html.Table([html.Thead(head), html.Tbody(rows)], className="table risk-calendar")
    return html.Div([html.H3(title), body], className="panel", id="risk-calendar")


def _percent(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def agencies_table(agencies: list[dict]) -> html.Div:
    """The agencies: workload, reports failing review, share of their assessed items that
    were followed by incidents."""
    head = ("机构", "类型", "在评", "已评", "报告", "审查未通过率", "决策后出现案事件")
    rows = [
        html.Tr(
            [
                html.Td(a["name"]),
                html.Td("内设" if a["kind"] == "in_house" else "第三方"),
                html.Td(a["workload"]),
                html.Td(a["assessed"]),
                html.Td(a["reports"]),
                html.Td(_percent(a["review_failure_rate"])),
                html.Td(
                    f"{_percent(a['incident_share'])} ({a['followed_by_incidents']}/"
                    f"{a['decided_after_assessment']})"
                ),
            ]
        )
        for a in agencies
    ]
    return html.Div(
        [
            html.H3("评估机构"),
            html.Table(
                [html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
                className="table",
            ),
        ],
        className="panel",
        id="risk-agencies",
    )


def items_table(items: list[dict], limit: int = 40) -> html.Div:
    """The latest items by planned date, each a link to its detail."""
    head = ("计划日期", "事项", "类别", "决策单位", "状态", "风险", "决策", "关联案事件")
    rows = [
        html.Tr(
            [
                html.Td(local_day(i["planned_at"])),
                html.Td(html.A(i["title"], href=f"/dashboard/risk?item={i['id']}")),
                html.Td(i["kind_name"]),
                html.Td(i["deciding_unit"]["name"]),
                html.Td(STATUS_ZH.get(i["status"], i["status"])),
                html.Td(level_badge(i["risk_level"])),
                html.Td(
                    (i["decision_name"] or "—") + (" ⚠未经评估" if i["without_assessment"] else "")
                ),
                html.Td(i["incidents"]),
            ],
            className="risk-row",
            id=f"risk-row-{i['id']}",
        )
        for i in items[:limit]
    ]
    return html.Div(
        [
            html.H3("登记事项"),
            html.Table(
                [html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
                className="table",
            ),
        ],
        className="panel",
        id="risk-items",
    )


def item_panel(item: dict) -> html.Div:
    """One item's story: registered, assessed (each report and the rules it failed),
    decided, followed (linked cases, follow-up reviews)."""
    reports = [
        html.Li(
            [
                f"报告 {r['number']} · {local_day(r['submitted_at'])} · {r['agency']} · ",
                html.B("通过" if r["status"] == "passed" else "退回（草稿）"),
                html.Ul([html.Li(f"{f['name']}: {f['reason']}") for f in r["failures"]]),
            ],
            className=f"risk-report risk-report-{r['status']}",
        )
        for r in item["reports"]
    ]
    links = [
        html.Li(
            f"{LINK_KINDS.get(link['kind'], link['kind'])} #{link['id']} · {local_day(link['at'])}",
            className="risk-link",
        )
        for link in item["links"]
    ]
    ups = [
        html.Li(f"{f['days']}天回访 · 应于 {f['due_on']}" + (" ✓" if f["done_at"] else ""))
        for f in item["follow_ups"]
    ]
    decision = item["decision_name"] or "未决策"
    if item["without_assessment"]:
        decision += " ⚠未经评估决策"
    return html.Div(
        [
            html.H3(item["title"]),
            html.P(
                f"{item['kind_name']} · {item['deciding_unit']['name']} · {item['department']}"
                f" · 影响 {item['people_affected']:,} 人 · 计划 {local_day(item['planned_at'])}"
            ),
            html.P(
                [
                    "状态 ",
                    html.B(STATUS_ZH.get(item["status"], item["status"]), id="risk-status"),
                    " · 风险 ",
                    level_badge(item["risk_level"]),
                    " · 评估机构 ",
                    (item["agency"] or {}).get("name", "—"),
                    " · 决策 ",
                    html.B(decision, id="risk-decision"),
                ]
            ),
            html.H4("评估报告与自动审查"),
            html.Ul(reports or [html.Li("尚无报告")]),
            html.H4(f"决策后关联案事件（{item['incidents']}）"),
            html.Ul(links or [html.Li("暂无")], id="risk-links"),
            html.H4("跟踪回访"),
            html.Ul(ups or [html.Li("决策后生成")]),
        ],
        className="panel",
        id="risk-item",
    )


def wall_calendar(events: list[dict] | None, limit: int = 5, lang: str = "zh") -> html.Div | None:
    """The wall's calendar: the next few large events with their risk level (an event's
    title is data, shown as entered)."""
    if events is None:
        return None
    en = lang == "en"
    rows = [
        html.Tr(
            [
                html.Td(local_day(e["planned_at"])[5:]),
                html.Td(e["title"], className="data-text"),
                html.Td(level_badge(e["risk_level"], lang)),
            ]
        )
        for e in events[:limit]
    ]
    empty = "No large events coming" if en else "近期无大型活动"
    title = "Coming large events · risk register" if en else "近期大型活动 · 稳评"
    body = html.Table(html.Tbody(rows)) if rows else html.P(empty)
    return html.Div([html.H3(title), body], className="wall-calendar")
