"""Who is logged in to the dashboard: the session cookie set by ``POST /api/v1/auth/login``.

The Dash app runs in the same process as the API (Flask mounted at /dashboard/), so a Dash
callback reads the same cookie the API accepts::

    from dashboard.auth import current_principal, login_href
    user = current_principal()          # Principal | None
    if user is None:
        return dcc.Location(href=login_href("/dashboard/unit/..."), id="to-login")
"""

from __future__ import annotations

from urllib.parse import quote

import flask
from dash import html

from api.db.session import session_factory
from api.services.auth import Principal
from api.services.sessions import COOKIE_NAME, principal_for_cookie
from api.settings import Settings, get_settings

LOGIN_PATH = "/dashboard/login"
LOGIN_ACTION = "/api/v1/auth/login"
LOGOUT_ACTION = "/api/v1/auth/logout"
_NOBODY = object()


def _settings() -> Settings:
    if flask.has_app_context():
        found = flask.current_app.config.get("ZHILI_SETTINGS")
        if found is not None:
            return found
    return get_settings()


def session_cookie() -> str | None:
    """The raw session cookie of the current request, if any."""
    if not flask.has_request_context():
        return None
    return flask.request.cookies.get(COOKIE_NAME)


def current_principal() -> Principal | None:
    """The logged-in user of the current Flask request (a page or a Dash callback), or None
    when nobody is logged in or the session has ended (logout, revocation, expiry)."""
    if not flask.has_request_context():
        return None
    cached = flask.g.get("zhili_principal", _NOBODY)
    if cached is not _NOBODY:
        return cached
    cookie = session_cookie()
    principal = None
    if cookie:
        settings = _settings()
        session = session_factory(settings.database_url)()
        try:
            principal = principal_for_cookie(session, settings, cookie)
        finally:
            session.close()
    flask.g.zhili_principal = principal
    return principal


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
}


def signed_in_as(lang: str = "zh") -> html.Span:
    """Who is logged in (name and role) with a logout button, for a page's header; empty
    when nobody is."""
    who = current_principal()
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
