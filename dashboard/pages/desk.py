"""The case desk ``/dashboard/desk`` (分级分流): the work queue of the logged-in user with
filters, the case picked (a small map, the timeline, notes, and a button for each action
the user's role may take at the case's step), supervisors' bulk reassignment, and the
figures by level with the flow of the unit's cases (a Sankey) for the last 30 days.

Every read and every action goes through ``dashboard.client`` to the same services as
``/api/v1/cases`` (scope, roles, versions, audit); ``?lang=en`` shows it in English.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from api.domain import CATEGORIES, CATEGORY_BY_CODE, STEP_NAMES_ZH
from dashboard import client
from dashboard.i18n import format_value, pick, t

dash.register_page(__name__, path="/desk", title="案件工作台 Zhili")

STORE = "desk-store"  # {"lang", "case", "n"}: the case picked, a counter of changes
SHOW = "desk-show"
CATEGORY = "desk-category"
SCOPE = "desk-scope"
QUEUE = "desk-queue"
DETAIL = "desk-detail"
TARGET = "desk-target"
REASON = "desk-reason"
OUTCOME = "desk-outcome"
SATISFACTION = "desk-satisfaction"
MESSAGE = "desk-message"
BULK = "desk-bulk"
BULK_TARGET = "desk-bulk-target"
BULK_GO = "desk-bulk-go"
FLOW = "desk-flow"
FIGURES = "desk-figures"
ROW, ACT = "desk-row", "desk-act"
SUPERVISORS = ("official", "admin")
FIGURE_METRICS = ("resolved_locally_rate", "escalation_rate", "dispatch_wait_hours")
WORDS: dict[str, tuple[str, str]] = {
    "desk": ("案件工作台", "Case desk"),
    "queue": ("我的待办", "My queue"),
    "below": ("辖区在办", "Open below me"),
    "all": ("全部", "All"),
    "due_soon": ("即将到期", "Due soon"),
    "awaiting": ("待回访/评价", "Awaiting 访/评"),
    "pick": ("请选择案件", "Pick a case"),
    "empty": ("暂无待办案件", "Nothing in the queue"),
    "timeline": ("办理过程", "Timeline"),
    "target": ("下派/转办至", "Send to"),
    "reason": ("理由/备注", "Reason / note"),
    "bulk": ("批量改派", "Reassign selected"),
    "flow": ("案件流向（近30天）", "Where the cases went (last 30 days)"),
    "no_flow": ("近30天无流转", "No moves in the last 30 days"),
    "done": ("已完成：{action}", "Done: {action}"),
    "held_by": ("承办", "Held by"),
}
ACTION_NAMES = {
    "accept": ("受理", "Accept"),
    "dispatch": ("下派", "Dispatch"),
    "escalate": ("上报", "Escalate"),
    "transfer": ("转办", "Transfer"),
    "return": ("退回", "Return"),
    "schedule": ("约", "Schedule"),
    "handle": ("办结", "Handle"),
    "visit": ("回访", "Visit"),
    "evaluate": ("评价", "Evaluate"),
    "note": ("备注", "Note"),
}
OUTCOMES = ("resolved", "mediated_success", "mediation_failed", "referred", "withdrawn")


def w(key: str, lang: str, **fmt: object) -> str:
    """The desk's own word for ``key``."""
    zh, en = WORDS[key]
    return pick(zh, en, lang).format(**fmt) if fmt else pick(zh, en, lang)


def category_label(code: str, lang: str) -> str:
    found = CATEGORY_BY_CODE.get(code)
    return pick(found.name_zh, found.name_en, lang) if found else code


def step_label(status: str, lang: str) -> str:
    return pick(STEP_NAMES_ZH.get(status, status), status, lang)


def _case_of(query: dict) -> int | None:
    """The case a link opens (``?case=<id>``, from a point of the map's cases layer)."""
    found = str(query.get("case") or "")
    return int(found) if found.isdigit() else None


def layout(**query: str) -> html.Div:
    """The desk of the logged-in user (or a link to the login)."""
    lang = "en" if query.get("lang") == "en" else "zh"
    who = client.principal()
    if who is None:
        return html.Div(dcc.Location(id="desk-login", href=dash.get_relative_path("/login")))
    shows = [("all", w("all", lang)), ("open", t("open", lang)), ("overdue", t("overdue", lang))]
    shows += [("due_soon", w("due_soon", lang)), ("awaiting", w("awaiting", lang))]
    categories = [{"label": pick(c.name_zh, c.name_en, lang), "value": c.code} for c in CATEGORIES]
    scopes = [{"label": w("queue", lang), "value": "mine"}]
    if who.role in SUPERVISORS:
        scopes.append({"label": w("below", lang), "value": "below"})
    return html.Div(
        [
            dcc.Store(id=STORE, data={"lang": lang, "case": _case_of(query), "n": 0}),
            html.H1(f"{w('desk', lang)} · {who.name}", className="desk-title"),
            html.Div(
                [
                    dcc.RadioItems(scopes, "mine", id=SCOPE, inline=True),
                    dcc.Dropdown(
                        [{"label": label, "value": v} for v, label in shows],
                        "all",
                        id=SHOW,
                        clearable=False,
                    ),
                    dcc.Dropdown(categories, None, id=CATEGORY, placeholder=t("category", lang)),
                ],
                className="desk-filters",
            ),
            html.Div(
                [
                    html.Div(id=QUEUE, className="desk-queue"),
                    html.Div(html.P(w("pick", lang)), id=DETAIL, className="desk-detail"),
                ],
                className="desk-main",
            ),
            html.Div(id=MESSAGE, className="desk-message", role="status"),
            html.Div(id=FIGURES, className="desk-figures"),
            dcc.Graph(id=FLOW, config={"displayModeBar": False}, className="desk-flow"),
        ],
        id="desk-page",
        className="desk",
    )


def _row(case: dict, lang: str, bulk: bool) -> html.Tr:
    flags = []
    if case.get("overdue") and case["handled_at"] is None:
        flags.append(t("overdue", lang))
    if case.get("due_soon"):
        flags.append(w("due_soon", lang))
    if case.get("awaiting"):
        flags.append(pick(*ACTION_NAMES[case["awaiting"]], lang))
    cells = [
        html.Td(html.Button(f"#{case['id']}", id={"type": ROW, "index": case["id"]})),
        html.Td(category_label(case["category"], lang)),
        html.Td(step_label(case["status"], lang)),
        html.Td(case["deadline"].strftime("%Y-%m-%d")),
        html.Td(" ".join(flags), className="desk-flags"),
    ]
    return html.Tr(cells, className="desk-overdue" if "超期" in flags or "Overdue" in flags else "")


@dash.callback(
    Output(QUEUE, "children"),
    Input(SHOW, "value"),
    Input(CATEGORY, "value"),
    Input(SCOPE, "value"),
    Input(STORE, "data"),
)
def show_queue(show: str, category: str | None, scope: str, store: dict):
    """The queue (or, for a supervisor, the open cases below), filtered."""
    who = client.principal()
    if who is None or not store:
        raise PreventUpdate
    lang = store.get("lang", "zh")
    if scope == "below" and who.role in SUPERVISORS:
        cases = client.desk_open_below(who)
        if category:
            cases = [c for c in cases if c["category"] == category]
        units, departments = client.desk_targets(who, who.unit_code)
        options = [
            {"label": f"{u['name']} ({u['code']})", "value": f"u:{u['code']}"} for u in units
        ]
        options += [{"label": d["name"], "value": f"d:{d['id']}"} for d in departments]
        rows = [_row(c, lang, True) for c in cases]
        return [
            dcc.Checklist(
                [{"label": f"#{c['id']}", "value": f"{c['id']}:{c['version']}"} for c in cases],
                [],
                id=BULK,
                inline=True,
            ),
            html.Label(w("target", lang)),
            dcc.RadioItems(options, None, id=BULK_TARGET, className="desk-targets"),
            html.Button(w("bulk", lang), id=BULK_GO),
            html.Table(html.Tbody(rows)),
        ]
    cases = client.desk_queue(who, None if show == "all" else show, category)
    if not cases:
        return html.P(w("empty", lang), className="message")
    return html.Table(html.Tbody([_row(c, lang, False) for c in cases]))


@dash.callback(
    Output(STORE, "data", allow_duplicate=True),
    Input({"type": ROW, "index": ALL}, "n_clicks"),
    State(STORE, "data"),
    prevent_initial_call=True,
)
def pick_case(clicks: list, store: dict):
    """A click on a case in the queue opens it."""
    if not ctx.triggered_id or not any(clicks or []):
        raise PreventUpdate
    return {**store, "case": int(ctx.triggered_id["index"])}


def _small_map(case: dict, outline: list[tuple[float, float]]) -> dict:
    data = []
    if outline:
        data.append(
            {
                "type": "scattergeo",
                "lon": [p[0] for p in outline],
                "lat": [p[1] for p in outline],
                "mode": "lines",
                "line": {"color": "#5b7bb2", "width": 1},
                "hoverinfo": "skip",
            }
        )
    if case.get("lon") is not None:
        data.append(
            {
                "type": "scattergeo",
                "lon": [case["lon"]],
                "lat": [case["lat"]],
                "mode": "markers",
                "marker": {"size": 12, "color": "#d9534f"},
                "hoverinfo": "skip",
            }
        )
    return {
        "data": data,
        "layout": {
            "geo": {"visible": False, "fitbounds": "locations", "projection": {"type": "mercator"}},
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "height": 180,
            "showlegend": False,
        },
    }


@dash.callback(Output(DETAIL, "children"), Input(STORE, "data"))
def show_case(store: dict):
    """The case picked: its state, small map, timeline and the actions open to the user."""
    who = client.principal()
    if who is None or not store or not store.get("case"):
        raise PreventUpdate
    lang = store.get("lang", "zh")
    found = client.desk_case(who, store["case"])
    if found is None:
        return html.P(t("not_found", lang), className="message")
    case = found["case"]
    zone = ZoneInfo(client.settings().timezone)
    held = case["handling_unit_code"] or pick("上级", "above", lang)
    held += f" · {case['department_name']}" if case.get("department_name") else ""
    timeline = [
        html.Li(
            f"{e['at'].astimezone(zone).strftime('%m-%d %H:%M')} {e['user_name'] or ''} "
            f"{pick(*ACTION_NAMES.get(e['action'], (e['action'], e['action'])), lang)}"
            + (
                f" → {e['to_department'] or e['to_unit'] or e['to_level']}"
                if e["action"] in ("dispatch", "escalate", "transfer", "return")
                else ""
            )
            + (f"：{e['reason']}" if e["reason"] else "")
        )
        for e in found["timeline"]
    ]
    actions = found["actions"]
    units, departments = client.desk_targets(who, case["handling_unit_code"])
    targets = [{"label": f"{u['name']} ({u['code']})", "value": f"u:{u['code']}"} for u in units]
    targets += [{"label": d["name"], "value": f"d:{d['id']}"} for d in departments]
    buttons = [
        html.Button(
            pick(*ACTION_NAMES[a], lang),
            id={"type": ACT, "action": a, "case": case["id"], "version": case["version"]},
            className=f"desk-action desk-action-{a}",
        )
        for a in actions
    ]
    return [
        html.H2(f"#{case['id']} {category_label(case['category'], lang)}"),
        html.P(
            f"{step_label(case['status'], lang)} · {w('held_by', lang)} {held} · "
            f"{t('deadline', lang)} {case['deadline'].strftime('%Y-%m-%d')}",
            id="desk-case-state",
        ),
        html.P(case.get("description") or ""),
        dcc.Graph(figure=_small_map(case, found.get("outline") or []), config={"staticPlot": True}),
        html.H3(w("timeline", lang)),
        html.Ol(timeline, id="desk-timeline"),
        html.Label(w("target", lang)),
        dcc.RadioItems(targets, None, id=TARGET, className="desk-targets"),
        dcc.Textarea(id=REASON, placeholder=w("reason", lang), maxLength=1000),
        dcc.RadioItems(list(OUTCOMES), "resolved", id=OUTCOME, inline=True),
        dcc.RadioItems(list(range(5, 0, -1)), 5, id=SATISFACTION, inline=True),
        html.Div(buttons, className="desk-actions"),
    ]


def _target(value: str | None) -> dict:
    if not value:
        return {}
    kind, _, rest = value.partition(":")
    return {"department": int(rest)} if kind == "d" else {"to_unit": rest}


@dash.callback(
    Output(MESSAGE, "children"),
    Output(STORE, "data", allow_duplicate=True),
    Input({"type": ACT, "action": ALL, "case": ALL, "version": ALL}, "n_clicks"),
    State(TARGET, "value"),
    State(REASON, "value"),
    State(OUTCOME, "value"),
    State(SATISFACTION, "value"),
    State(STORE, "data"),
    prevent_initial_call=True,
)
def take_action(clicks, target, reason, outcome, satisfaction, store):
    """One button: the action, on the version the user saw (a 409 says what changed)."""
    who = client.principal()
    button = ctx.triggered_id
    if who is None or not button or not any(clicks or []):
        raise PreventUpdate
    lang = store.get("lang", "zh")
    action = button["action"]
    request = {"action": action, "version": button["version"], "key": uuid.uuid4().hex}
    request["reason"] = reason
    if action in ("dispatch", "transfer"):
        request.update(_target(target))
    if action == "handle":
        request["outcome"] = outcome
    if action == "evaluate":
        request["satisfaction"] = satisfaction
    status, message, _ = client.desk_act(who, button["case"], **request)
    text = w("done", lang, action=pick(*ACTION_NAMES[action], lang)) if status == 200 else message
    return text, {**store, "n": store.get("n", 0) + 1}


@dash.callback(
    Output(MESSAGE, "children", allow_duplicate=True),
    Output(STORE, "data", allow_duplicate=True),
    Input(BULK_GO, "n_clicks"),
    State(BULK, "value"),
    State(BULK_TARGET, "value"),
    State(STORE, "data"),
    prevent_initial_call=True,
)
def reassign(n_clicks, picked, target, store):
    """Supervisors' bulk reassignment: 下派 each case picked to one unit or department."""
    who = client.principal()
    if who is None or not n_clicks or not picked or not target:
        raise PreventUpdate
    done, refused = 0, []
    for item in picked:
        case_id, _, version = item.partition(":")
        status, message, _ = client.desk_act(
            who,
            int(case_id),
            action="dispatch",
            version=int(version),
            key=uuid.uuid4().hex,
            **_target(target),
        )
        if status == 200:
            done += 1
        else:
            refused.append(f"#{case_id}: {message}")
    lang = store.get("lang", "zh")
    text = [html.P(w("done", lang, action=f"{pick('下派', 'dispatch', lang)} × {done}"))]
    text += [html.P(r) for r in refused]
    return text, {**store, "n": store.get("n", 0) + 1}


@dash.callback(Output(FLOW, "figure"), Output(FIGURES, "children"), Input(STORE, "data"))
def show_flow(store: dict):
    """The figures by level and the flow of the user's unit's cases, last 30 days."""
    who = client.principal()
    if who is None or not store:
        raise PreventUpdate
    lang = store.get("lang", "zh")
    end = dt.date.today() + dt.timedelta(days=1)
    start = end - dt.timedelta(days=30)
    cards = []
    infos = {m.id: m for m in client.metric_catalog()}
    for metric, figure in client.unit_figures(
        who, who.unit_code, list(FIGURE_METRICS), start, end, "none"
    ).items():
        info = infos[metric]
        label = info.label(lang)
        value = format_value(figure.value, info.format, lang)
        if figure.low_count and figure.value is not None:
            value += f" ({t('low_count', lang)})"
        cards.append(
            html.Div(
                [html.Span(label), html.B(value)], className="desk-card", id=f"desk-fig-{metric}"
            )
        )
    flow = client.desk_flow(who, who.unit_code, start, end)
    if not flow or not flow["links"]:
        empty = {
            "data": [],
            "layout": {
                "annotations": [{"text": w("no_flow", lang), "showarrow": False}],
                "xaxis": {"visible": False},
                "yaxis": {"visible": False},
                "height": 120,
            },
        }
        return empty, cards
    index = {n["id"]: i for i, n in enumerate(flow["nodes"])}
    figure = {
        "data": [
            {
                "type": "sankey",
                "node": {
                    "label": [n["label_en" if lang == "en" else "label_zh"] for n in flow["nodes"]],
                    "pad": 12,
                },
                "link": {
                    "source": [index[link["source"]] for link in flow["links"]],
                    "target": [index[link["target"]] for link in flow["links"]],
                    "value": [link["value"] for link in flow["links"]],
                    "label": [pick(*ACTION_NAMES[link["action"]], lang) for link in flow["links"]],
                },
            }
        ],
        "layout": {
            "title": {"text": w("flow", lang)},
            "height": 360,
            "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        },
    }
    return figure, cards
