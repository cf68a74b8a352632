"""The register's forms on ``/dashboard/risk``, each for the roles that may take its step:
登记 register an item (admin, official; its place a point clicked on the map or a GeoJSON
polygon pasted or uploaded), 评估 assign an agency, 报告提交 the structured report (the
assigned agency's assessor; a draft that failed review comes back filled in, with the
rules it failed and their reasons, to fix and submit again), 决策 decide, 跟踪 record a
follow-up review. Every step goes through the register's services (``client.risk_act``);
a refusal's message is shown in the page, nothing written. ``?lang=en`` in English."""

from __future__ import annotations

import base64
import datetime as dt
import json

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import client

WRITERS = ("admin", "official")
REPORTERS = ("assessor", "admin")
MESSAGE, GO, UPLOAD, STORE = "risk-f-message", "risk-go", "risk-f-upload", "risk-f-store"
FIELD, BUTTON = "risk-f", "risk-btn"
LOCAL = dt.timezone(dt.timedelta(hours=8))  # the center's dates (Asia/Shanghai)
KINDS = {
    "decision": ("重大决策", "Major decision"),
    "project": ("重大项目", "Major project"),
    "large_event": ("大型活动", "Large event"),
    "gathering": ("群众自发性节庆聚集", "Spontaneous festive gathering"),
    "religious": ("宗教活动", "Religious activity"),
}
DECISIONS = {
    "implement": ("实施", "Go ahead"),
    "adjust": ("调整后实施", "Go ahead after changes"),
    "postpone": ("暂缓", "Postpone"),
    "reject": ("不实施", "Do not go ahead"),
}
LEVELS = {"high": ("高", "High"), "medium": ("中", "Medium"), "low": ("低", "Low")}
WORDS: dict[str, tuple[str, str]] = {
    "register": ("登记事项", "Register an item"),
    "kind": ("类别", "Kind"),
    "title": ("名称", "Title"),
    "unit": ("决策单位", "Deciding unit"),
    "planned": ("计划日期", "Planned date"),
    "people": ("影响人数", "People affected"),
    "department": ("责任部门", "Responsible department"),
    "place": ("位置：在地图上点击取点，或粘贴/上传 GeoJSON 面",
              "Place: click a point on the map, or paste/upload a GeoJSON polygon"),
    "lon": ("经度", "Longitude"),
    "lat": ("纬度", "Latitude"),
    "geojson": ("GeoJSON（面，可选）", "GeoJSON (polygon, optional)"),
    "upload": ("上传 GeoJSON 文件", "Upload a GeoJSON file"),
    "assign": ("委托评估机构", "Assign an agency"),
    "agency": ("评估机构", "Agency"),
    "report": ("提交评估报告", "Submit the assessment report"),
    "redo": ("上次报告未通过自动审查，请修改后重新提交：",
             "The last report failed the automatic review; fix it and submit again:"),
    "points": ("风险点（每行：描述 | 高/中/低）",
               "Risk points (one a line: description | high/medium/low)"),
    "consulted": ("征求意见人数", "People consulted"),
    "objections": ("主要异议（每行一条）", "Objections (one a line)"),
    "legality": ("合法性", "Legality"),
    "reasonableness": ("合理性", "Reasonableness"),
    "feasibility": ("可行性", "Feasibility"),
    "controllability": ("可控性", "Controllability"),
    "level": ("风险等级", "Risk level"),
    "measures": ("化解措施（每行：风险 | 措施 | 责任人 | 完成日期）",
                 "Measures (one a line: risk | action | owner | due YYYY-MM-DD)"),
    "decide": ("记录决策", "Record the decision"),
    "decision": ("决策", "Decision"),
    "follow": ("记录跟踪回访", "Record a follow-up review"),
    "days": ("回访", "Review"),
    "due": ("{days}天回访 · 应于 {on}", "{days}-day review · due {on}"),
    "note": ("回访情况", "Note"),
    "send": ("提交", "Submit"),
    "refused": ("未保存：", "Not saved: "),
    "no_place": ("请在地图上点击取点，或粘贴 GeoJSON 面",
                 "click the map or paste a GeoJSON polygon"),
    "bad_json": ("GeoJSON 无法解析：", "the GeoJSON cannot be read: "),
    "bad_line": ("第{n}行格式不对：{line}", "line {n} is not in the form asked: {line}"),
    "no_date": ("请填写计划日期", "give the planned date"),
}  # fmt: skip
LEVEL_WORDS = {"高": "high", "中": "medium", "低": "low", "high": "high", "medium": "medium",
               "low": "low"}  # fmt: skip


def w(key: str, lang: str, **fmt: object) -> str:
    """The forms' word for ``key`` in ``lang``."""
    zh, en = WORDS[key]
    text = en if lang == "en" else zh
    return text.format(**fmt) if fmt else text


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def _f(field: str) -> dict:
    return {"type": FIELD, "field": field}


def _row(label: str, control) -> html.Div:
    # a Div, not a Label: a label around a dropdown or a number box passes clicks on
    return html.Div([html.Span(label), control], className="risk-f-row")


def _text(field: str, value: str | None = None, **kw) -> dcc.Input:
    return dcc.Input(id=_f(field), value=value, type="text", debounce=False, **kw)


def _area(field: str, value: str | None = None) -> dcc.Textarea:
    return dcc.Textarea(id=_f(field), value=value, className="risk-f-area")


def _options(pairs: dict, lang: str) -> list[dict]:
    return [{"label": _pick(v, lang), "value": k} for k, v in pairs.items()]


def _form(title: str, step: str, lang: str, rows: list, fid: str) -> html.Div:
    button = html.Button(
        w("send", lang), id={"type": BUTTON, "step": step}, className="risk-f-send"
    )
    return html.Div([html.H4(title), *rows, button], className="panel risk-form", id=fid)


def register_form(who, lang: str) -> html.Div:
    """登记: kind, title, deciding unit, planned date, people affected, department, place."""
    units = [{"label": u["name"], "value": u["code"]} for u in client.risk_units(who)]
    rows = [
        _row(
            w("kind", lang),
            dcc.Dropdown(_options(KINDS, lang), "project", id=_f("kind"), clearable=False),
        ),
        _row(w("title", lang), _text("title")),
        _row(
            w("unit", lang),
            dcc.Dropdown(units, who.unit_code, id=_f("deciding_unit"), clearable=False),
        ),
        _row(w("planned", lang), dcc.Input(id=_f("planned"), type="date")),
        _row(w("people", lang), dcc.Input(id=_f("people"), type="number", min=0, value=0)),
        _row(w("department", lang), _text("department")),
        html.P(w("place", lang), className="risk-f-hint"),
        html.Div(
            [
                _row(w("lon", lang), dcc.Input(id=_f("lon"), type="number", step="any")),
                _row(w("lat", lang), dcc.Input(id=_f("lat"), type="number", step="any")),
            ],
            className="risk-f-pair",
        ),
        _row(w("geojson", lang), _area("geojson")),
        dcc.Upload(html.A(w("upload", lang)), id=UPLOAD, className="risk-f-upload"),
    ]
    return _form(w("register", lang), "register", lang, rows, "risk-register-form")


def _lines(rows: list[list[str]]) -> str:
    return "\n".join(" | ".join(str(x) for x in row if x is not None) for row in rows)


def report_form(item: dict, draft: dict | None, lang: str) -> html.Div:
    """报告提交: the structured report; a draft that failed review comes back filled in."""
    d = draft or {}
    c = d.get("consultation") or {}
    points = [[p["description"], p.get("level") or ""] for p in d.get("risk_points") or []]
    measures = [
        [m.get("risk", ""), m["action"], m.get("owner") or "", m.get("due") or ""]
        for m in d.get("measures") or []
    ]
    rows: list = []
    last = item["reports"][-1] if item["reports"] else None
    if last and last["status"] == "draft":
        rows.append(
            html.Div(
                [
                    html.B(w("redo", lang)),
                    html.Ul([html.Li(f"{f['name']}: {f['reason']}") for f in last["failures"]]),
                ],
                className="risk-f-failed",
                id="risk-f-failed",
            )
        )
    rows += [
        _row(w("points", lang), _area("risk_points", _lines(points))),
        _row(w("consulted", lang),
             dcc.Input(id=_f("consulted"), type="number", min=0, value=c.get("consulted"))),
        _row(w("objections", lang), _area("objections", "\n".join(c.get("objections") or []))),
        *(_row(w(s, lang), _text(s, d.get(s)))
          for s in ("legality", "reasonableness", "feasibility", "controllability")),
        _row(w("level", lang), dcc.Dropdown(_options(LEVELS, lang), d.get("risk_level"),
                                            id=_f("risk_level"))),
        _row(w("measures", lang), _area("measures", _lines(measures))),
    ]  # fmt: skip
    return _form(w("report", lang), "report", lang, rows, "risk-report-form")


def step_forms(who, item: dict, lang: str) -> list[html.Div]:
    """The forms of the steps open on ``item`` to ``who``."""
    forms: list[html.Div] = []
    status, writer = item["status"], who.role in WRITERS
    if writer and status in ("registered", "assessing"):
        agencies = [
            {"label": f"{a['name']} ({a['code']})", "value": a["code"]}
            for a in client.risk_agencies(who) or []
        ]
        rows = [_row(w("agency", lang), dcc.Dropdown(agencies, None, id=_f("agency")))]
        forms.append(_form(w("assign", lang), "assign", lang, rows, "risk-assign-form"))
    if who.role in REPORTERS and status == "assessing":
        draft = client.risk_draft(who, item["id"]) if item["reports"] else None
        forms.append(report_form(item, draft, lang))
    if writer and status != "decided":
        rows = [
            _row(w("decision", lang),
                 dcc.Dropdown(_options(DECISIONS, lang), None, id=_f("decision"))),
        ]  # fmt: skip
        forms.append(_form(w("decide", lang), "decide", lang, rows, "risk-decide-form"))
    due = [f for f in item.get("follow_ups") or [] if not f["done_at"]]
    if writer and status == "decided" and due:
        days = [
            {"label": w("due", lang, days=f["days"], on=f["due_on"]), "value": f["days"]}
            for f in due
        ]
        rows = [
            _row(w("days", lang), dcc.Dropdown(days, due[0]["days"], id=_f("days"))),
            _row(w("note", lang), _area("note")),
        ]
        forms.append(_form(w("follow", lang), "follow_up", lang, rows, "risk-follow-form"))
    return forms


def forms(who, item: dict | None, lang: str) -> html.Div:
    """Every form open to ``who`` (on ``item`` when one is shown), the message line and
    the page's navigation after a step is saved."""
    parts: list = [
        dcc.Store(id=STORE, data={"lang": lang, "item": item["id"] if item else None}),
        dcc.Location(id=GO, refresh=True),
        html.Div(id=MESSAGE, className="message risk-f-message", role="status"),
    ]
    if item is not None:
        parts += step_forms(who, item, lang)
    if who.role in WRITERS:
        parts.append(register_form(who, lang))
    return html.Div(parts, id="risk-forms", className="risk-forms")


# ---------------------------------------------------------------- reading the forms


class FormError(ValueError):
    """A form filled in a way no request can be made of (the message says how to fix it)."""


def _split(text: str | None, parts: int, lang: str) -> list[list[str]]:
    out = []
    for n, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > parts or not cells[0]:
            raise FormError(w("bad_line", lang, n=n, line=line))
        out.append(cells + [""] * (parts - len(cells)))
    return out


def report_body(v: dict, lang: str) -> dict:
    """The report's JSON from the form (sections left empty are left out: the review names
    them)."""
    body: dict = {}
    points = [
        {"description": d, "level": LEVEL_WORDS.get(level.lower()) if level else None}
        for d, level in _split(v.get("risk_points"), 2, lang)
    ]
    if points:
        body["risk_points"] = points
    if v.get("consulted") is not None:
        objections = [x.strip() for x in (v.get("objections") or "").splitlines() if x.strip()]
        body["consultation"] = {"consulted": v["consulted"], "objections": objections}
    for s in ("legality", "reasonableness", "feasibility", "controllability"):
        if (v.get(s) or "").strip():
            body[s] = v[s].strip()
    if v.get("risk_level"):
        body["risk_level"] = v["risk_level"]
    measures = [
        {"risk": r, "action": a, "owner": o or None, "due": d or None}
        for r, a, o, d in _split(v.get("measures"), 4, lang)
    ]
    if measures:
        body["measures"] = measures
    return body


def item_request(v: dict, lang: str) -> dict:
    """The registration's JSON from the form: the pasted polygon, else the clicked point."""
    if not v.get("planned"):
        raise FormError(w("no_date", lang))
    text = (v.get("geojson") or "").strip()
    if text:
        try:
            place = json.loads(text)
        except ValueError as exc:
            raise FormError(w("bad_json", lang) + str(exc)) from None
        if isinstance(place, dict) and place.get("type") == "FeatureCollection":
            place = (place.get("features") or [{}])[0].get("geometry")
        elif isinstance(place, dict) and place.get("type") == "Feature":
            place = place.get("geometry")
    elif v.get("lon") is not None and v.get("lat") is not None:
        place = {"type": "Point", "coordinates": [float(v["lon"]), float(v["lat"])]}
    else:
        raise FormError(w("no_place", lang))
    planned = dt.datetime.combine(dt.date.fromisoformat(v["planned"]), dt.time(9), LOCAL)
    return {
        "kind": v.get("kind"),
        "title": (v.get("title") or "").strip(),
        "deciding_unit": v.get("deciding_unit") or "",
        "place": place,
        "planned_at": planned.isoformat(),
        "people_affected": v.get("people") if v.get("people") is not None else 0,
        "department": (v.get("department") or "").strip(),
    }


def _request(step: str, v: dict, lang: str) -> dict:
    if step == "register":
        return item_request(v, lang)
    if step == "assign":
        return {"agency": v.get("agency") or ""}
    if step == "report":
        return report_body(v, lang)
    if step == "decide":
        return {"decision": v.get("decision") or ""}
    return {"days": v.get("days") or 0, "note": (v.get("note") or "").strip() or None}


def take_step(clicks: list, _values: list, store: dict):
    """One form's button: its step through the register's services; on success the page
    shows the item again (its story, the next step's form), else the refusal's message."""
    who = client.principal()
    button = ctx.triggered_id
    if who is None or not button or not any(clicks or []):
        raise PreventUpdate
    lang, item_id = store.get("lang", "zh"), store.get("item")
    values = {s["id"]["field"]: s.get("value") for s in ctx.states_list[0]}
    step = button["step"]
    try:
        request = _request(step, values, lang)
    except FormError as exc:
        return w("refused", lang) + str(exc), dash.no_update
    status, message, answer = client.risk_act(
        who, step, None if step == "register" else item_id, **request
    )
    if status >= 300:
        return w("refused", lang) + message, dash.no_update
    saved = int(dt.datetime.now(dt.UTC).timestamp() * 1000)  # a new address: the page reloads
    query = f"?item={answer['id']}&saved={saved}" + ("&lang=en" if lang == "en" else "")
    return "", dash.get_relative_path("/risk") + query


def read_upload(contents: str | None):
    """An uploaded GeoJSON file into the polygon's box (read there, like a pasted one)."""
    if not contents:
        raise PreventUpdate
    _, _, data = contents.partition(",")
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
    except ValueError:  # not what a browser sends for a file (binascii.Error is one)
        raise PreventUpdate from None


def register_callbacks() -> None:
    """This module's callbacks, for the Dash app being built: called by its page
    module, which Dash runs once per app (a module-level ``dash.callback`` would go to
    the first app of the process only)."""
    dash.callback(
        Output(MESSAGE, "children"),
        Output(GO, "href"),
        Input({"type": BUTTON, "step": ALL}, "n_clicks"),
        State({"type": FIELD, "field": ALL}, "value"),
        State(STORE, "data"),
        prevent_initial_call=True,
    )(take_step)
    dash.callback(
        Output(_f("geojson"), "value"),
        Input(UPLOAD, "contents"),
        prevent_initial_call=True,
    )(read_upload)
