"""The page for a dashboard path that names no page: the frame (header, a way home,
logout) and the message, in the language the URL asks for."""

from __future__ import annotations

import dash
from dash import html

from dashboard.components.frame import home_href, plain_header, problem
from dashboard.i18n import t

dash.register_page(__name__, path="/404", title="治理 Zhili")


def layout(**query: str) -> html.Div:
    """Header, message and the way home."""
    lang = "en" if query.get("lang") == "en" else "zh"
    return html.Div(
        [
            plain_header(lang, "page-header"),
            problem(t("page_not_found", lang), home_href(lang), t("back_home", lang)),
        ],
        id="not-found-page",
        className=f"unit-page lang-{lang}",
    )
