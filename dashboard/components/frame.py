"""The frame every dashboard page shows, whatever went wrong: a header with the title, a
way home, the wall and who is logged in (with logout), and a message with a way back."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import client
from dashboard.auth import signed_in_as
from dashboard.i18n import t


def home_href(lang: str) -> str:
    """The user's home unit page (the login page when nobody is logged in)."""
    who = client.principal()
    target = f"/unit/{who.unit_code}" if who else "/login"
    return dash.get_relative_path(target) + ("?lang=en" if lang == "en" else "")


def plain_header(lang: str, element_id: str = "unit-header") -> html.Div:
    """The header of a page that shows no unit: title, home, wall, who is logged in."""
    return html.Div(
        html.Div(
            [
                html.H1(t("title", lang)),
                html.Nav(
                    dcc.Link(t("home", lang), href=home_href(lang), className="crumb"),
                    className="breadcrumb",
                    id="frame-home",
                ),
                html.Div(
                    [
                        dcc.Link(
                            t("wall", lang),
                            href=dash.get_relative_path("/wall"),
                            className="nav-link",
                        ),
                        signed_in_as(lang),
                    ],
                    className="nav",
                ),
            ],
            className="header",
        ),
        id=element_id,
    )


def problem(text: str, back_href: str, back_label: str, quoted: str | None = None) -> html.Div:
    """What could not be shown, and a link that leads on; ``quoted``: the API's own
    message, quoted as it answers it (in English)."""
    words: list = [text]
    if quoted:
        words.append(html.Q(quoted, className="api-message", lang="en"))
    return html.Div(
        [
            html.P(words, className="message", id="page-problem"),
            dcc.Link(back_label, href=back_href, className="nav-link back-link", id="page-back"),
        ],
        className="problem",
    )
