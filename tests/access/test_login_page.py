"""The login page in a real headless Chromium: Chinese renders, a wrong password is said so,
a right one lands on the dashboard with an HttpOnly cookie, logout ends the session."""

from __future__ import annotations

import pytest

from tests.access.conftest import make_user

pytestmark = pytest.mark.browser
# The page is the same on either database (the API tests cover sessions on both).
on_sqlite = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)

PASSWORD = "城南-password-1"


@on_sqlite
def test_logging_in_and_out_through_the_page(browser, live_server, db_url, world, artifacts):
    name = make_user(db_url, "official", world.towns[0], PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    outside: list[str] = []
    context.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    target = f"/dashboard/login?next=/dashboard/unit/{world.towns[0]}"
    page.goto(live_server.url + target)
    page.wait_for_selector("#login-form")
    assert "用户名" in page.inner_text("#login") and "密码" in page.inner_text("#login")
    page.screenshot(path=str(artifacts / "access_login.png"))

    page.fill("#login-name", name)
    page.fill("#login-password", "not the password")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:has-text('用户名或密码错误')")
    page.screenshot(path=str(artifacts / "access_login_error.png"))

    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"**/dashboard/unit/{world.towns[0]}**")
    cookie = next(c for c in context.cookies() if c["name"] == "zhili_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert "zhili_session" not in page.evaluate("document.cookie")  # scripts cannot read it
    me = page.evaluate("fetch('/api/v1/auth/whoami').then(r => r.json())")
    assert me["name"] == name and me["via"] == "session"

    page.goto(live_server.url + "/dashboard/login")
    page.wait_for_selector("text=已登录")
    page.click("button.zhili-logout")
    page.wait_for_selector("#login-form")
    status = page.evaluate("fetch('/api/v1/auth/whoami').then(r => r.status)")
    assert status == 401
    assert not outside, outside
    assert not errors, errors
    context.close()
