"""登录 Login: a plain HTML form that posts to ``/api/v1/auth/login``.

The form is submitted by the browser itself (no callback), so the session cookie is set by
the API's response and the browser is redirected to ``next``. Everything is served locally.
"""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import client
from dashboard.auth import LOGIN_ACTION, logout_button

dash.register_page(__name__, path="/login", title="登录 · 治理 Zhili")

FONT = '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif'
ERRORS = {
    "invalid": "用户名或密码错误。 Wrong user name or password.",
    "locked": "失败次数过多，请 5 分钟后再试。 Too many failed attempts: wait 5 minutes.",
}

PAGE = {
    "minHeight": "100vh",
    "display": "flex",
    "alignItems": "center",
    "justifyContent": "center",
    "background": "linear-gradient(160deg, #0b1d33 0%, #12355b 60%, #1d4e80 100%)",
    "fontFamily": FONT,
    "position": "fixed",
    "inset": 0,
    "overflow": "auto",
}
CARD = {
    "width": "min(380px, 90vw)",
    "background": "#ffffff",
    "borderRadius": "10px",
    "boxShadow": "0 12px 40px rgba(0,0,0,.35)",
    "padding": "32px 32px 24px",
    "color": "#1f2933",
}
LABEL = {"display": "block", "fontSize": "14px", "margin": "14px 0 6px", "color": "#3e4c59"}
INPUT = {
    "width": "100%",
    "boxSizing": "border-box",
    "padding": "10px 12px",
    "fontSize": "16px",
    "border": "1px solid #cbd2d9",
    "borderRadius": "6px",
    "fontFamily": FONT,
}
BUTTON = {
    "width": "100%",
    "marginTop": "22px",
    "padding": "11px",
    "fontSize": "16px",
    "letterSpacing": "4px",
    "color": "#fff",
    "background": "#c8102e",
    "border": "none",
    "borderRadius": "6px",
    "cursor": "pointer",
    "fontFamily": FONT,
}


def _header() -> list:
    return [
        html.Div("治理 Zhili", style={"fontSize": "28px", "fontWeight": 700, "color": "#12355b"}),
        html.Div(
            "综治中心 · 多级网格化治理平台",
            style={"fontSize": "14px", "color": "#616e7c", "marginTop": "4px"},
        ),
    ]


def _signed_in(name: str, unit: str, target: str) -> html.Div:
    return html.Div(
        [
            *_header(),
            html.P(f"已登录：{name}（{unit}）", style={"marginTop": "24px"}),
            html.A("进入驾驶舱 Open the dashboard", href=target, style={"display": "block"}),
            html.Div(logout_button(), style={"marginTop": "16px"}),
        ],
        style=CARD,
    )


def layout(
    error: str | None = None, next: str | None = None, name: str | None = None, **_query: str
) -> html.Div:
    """The login card; after a failed attempt it says why."""
    target = next if next and next.startswith("/dashboard") else "/dashboard/"
    user = client.principal()
    if user is not None and not error:
        return html.Div(_signed_in(user.name, user.unit_code, target), style=PAGE, id="login")
    children = [
        *_header(),
        html.Div(
            ERRORS.get(error or "", "登录出错，请重试。 Could not log in." if error else ""),
            id="login-error",
            role="alert",
            style={
                "color": "#b42318",
                "fontSize": "14px",
                "marginTop": "16px",
                "minHeight": "20px",
            },
        ),
        html.Form(
            [
                html.Label("用户名 User", htmlFor="login-name", style=LABEL),
                dcc.Input(
                    id="login-name",
                    name="name",
                    type="text",
                    autoComplete="username",
                    required=True,
                    maxLength=64,
                    value=(name or "")[:64] if error else None,  # a wrong password: kept
                    autoFocus=not (error and name),
                    style=INPUT,
                ),
                html.Label("密码 Password", htmlFor="login-password", style=LABEL),
                dcc.Input(
                    id="login-password",
                    name="password",
                    type="password",
                    autoComplete="current-password",
                    required=True,
                    autoFocus=bool(error and name),
                    maxLength=256,
                    style=INPUT,
                ),
                dcc.Input(id="login-next", name="next", type="hidden", value=target),
                html.Button("登 录", id="login-submit", type="submit", style=BUTTON),
            ],
            action=LOGIN_ACTION,
            method="POST",
            id="login-form",
        ),
        html.P(
            "账号由管理员通过 zhili user add 创建。 Accounts are created by an administrator.",
            style={"fontSize": "12px", "color": "#7b8794", "marginTop": "18px"},
        ),
    ]
    return html.Div(html.Div(children, style=CARD), style=PAGE, id="login")
