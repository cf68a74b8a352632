"""Fixtures of the dashboard's browser tests: a logged-in browser page that records every
request and every console error, and cases posted through the real API."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.db.session import session_scope
from tests.conftest import token_for

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Watched:
    """A page and what it did: every request URL, console errors and page errors."""

    page: object
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def external(self) -> list[str]:
        """Requests that left 127.0.0.1 (data: and blob: URLs never leave the page)."""
        return [
            u
            for u in self.requests
            if not u.startswith(("http://127.0.0.1:", "data:", "blob:", "about:"))
        ]


def login_cookie(db_url: str, settings, role: str, unit_code: str) -> str:
    """A session cookie of a new user with ``role`` at ``unit_code``."""
    from api.services.auth import create_user
    from api.services.sessions import open_session

    with session_scope(db_url) as session:
        user = create_user(session, f"{role}-{uuid.uuid4().hex[:6]}", role, unit_code)
        return open_session(session, settings, user)


def watched_page(browser, server_url: str, cookie: str, **context_args) -> Watched:
    """A new browser context logged in with ``cookie``, and its page, watched."""
    from api.services.sessions import COOKIE_NAME

    context = browser.new_context(**({"viewport": {"width": 1600, "height": 1000}} | context_args))
    context.add_cookies([{"name": COOKIE_NAME, "value": cookie, "url": server_url}])
    page = context.new_page()
    watched = Watched(page)
    page.on("request", lambda r: watched.requests.append(r.url))
    page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    return watched


@pytest.fixture
def admin_page(browser, live_server, db_url, settings, world) -> Iterator[Watched]:
    """A page logged in as the city admin of the tiny world."""
    cookie = login_cookie(db_url, settings, "admin", world.city)
    watched = watched_page(browser, live_server.url, cookie)
    yield watched
    watched.page.context.close()


@dataclass(frozen=True)
class PostedCase:
    leaf: str  # the village or grid it was filed in
    category: str
    channel: str
    reported_at: dt.datetime


@pytest.fixture
def cases(live_server, db_url, world) -> list[PostedCase]:
    """Cases posted through POST /api/v1/cases, this year, unevenly spread: town 1 gets
    most, town 2 a few, the 街道 none (its map shape is no-data)."""
    token = token_for(db_url, "intake", world.city)
    now = dt.datetime.now(SHANGHAI)
    # today at 09:00, or just now when that is still to come (a case from the future is
    # refused): every case stays inside today, "this month" and "this year"
    day = min(now.replace(hour=9, minute=0, second=0, microsecond=0), now - dt.timedelta(minutes=2))
    if day.month == 1 and day.day < 3:  # keep every case inside "this year"
        day = min(day.replace(hour=0, minute=2), now - dt.timedelta(minutes=2))
    per_leaf = {world.grids[0]: 14, world.grids[1]: 9, world.grids[2]: 6, world.grids[3]: 3}
    per_leaf[world.leaf_village] = 2
    channels = ("hotline_12345", "grid_patrol", "police_110")
    categories = ("neighbour", "property", "labour")
    posted, items = [], []
    for leaf, n in per_leaf.items():
        for i in range(n):
            at = day - dt.timedelta(seconds=5 * i)
            case = PostedCase(leaf, categories[i % 3], channels[i % 3], at)
            posted.append(case)
            items.append(
                {
                    "source": "test",
                    "external_id": f"{leaf}-{i}",
                    "category": case.category,
                    "channel": case.channel,
                    "reported_at": at.isoformat(),
                    "unit_code": leaf,
                }
            )
    response = httpx.post(
        f"{live_server.url}/api/v1/cases",
        json=items,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code in (200, 201, 207), response.text
    return posted
