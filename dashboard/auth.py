"""Who is logged in to the dashboard, as the pages show it: the login and logout links and
forms, and the name in a page's header. The session cookie set by ``POST /api/v1/auth/login``
is read by ``dashboard.client.principal`` (the Dash app runs in the same process as the
API, Flask mounted at /dashboard/, so a Dash callback sees the same cookie the API accepts)::

    from dashboard import client
    from dashboard.auth import login_href
    user = client.principal()           # Principal | None
    if user is None:
        return dcc.Location(href=login_href("/dashboard/unit/..."), id="to-login")
"""

from __future__ import annotations

from urllib.parse import quote

from dash import html

from dashboard import client

LOGIN_PATH = "/dashboard/login"
LOGIN_ACTION = "/api/v1/auth/login"
LOGOUT_ACTION = "/api/v1/auth/logout"


def login_href(next_path: str | None = None) -> str:
    """The login page's URL, coming back to ``next_path`` (a /dashboard path) afterwards."""
    if next_path and next_path.startswith("/dashboard") and not next_path.startswith("//"):
        return f"{LOGIN_PATH}?next={quote(next_path, safe='/')}"
    return LOGIN_PATH


def logout_button(label: str = "退出登录", **style: str) -> html.Form:
    """A small form that logs out (revokes the session) and returns to the login page."""
    return html.Form(
        html.Button(label, type="submit", className="zhili-logout", style=style or None),
        action=LOGOUT_ACTION,
        method="POST",
        style={"display": "inline", "margin": 0},
    )


ROLE_NAMES = {
    "admin": ("管理员", "admin"),
    "official": ("干部", "official"),
    "village_worker": ("村（社区）工作人员", "village worker"),
    "analyst": ("分析员", "analyst"),
    "display": ("大屏", "display"),
    "intake": ("受理", "intake"),
    "assessor": ("评估机构", "assessor"),
}


def signed_in_as(lang: str = "zh") -> html.Span:
    """Who is logged in (name and role) with a logout button, for a page's header; empty
    when nobody is."""
    who = client.principal()
    if who is None:
        return html.Span(id="signed-in")
    zh, en = ROLE_NAMES.get(who.role, (who.role, who.role))
    role = en if lang == "en" else zh
    label = "Log out" if lang == "en" else "退出登录"
    return html.Span(
        [html.Span(f"{who.name} · {role}", className="user-name"), logout_button(label)],
        id="signed-in",
        className="signed-in",
    )
