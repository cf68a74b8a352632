"""Several servers, one database (docs/deploy.md): two API servers in their own processes
behind nginx. A case written through one is in the other's figures on its next request;
a re-sent case is stored once whichever server takes it; a dashboard session opened on
one is valid on the other; nginx spreads the requests and steps around a server that
stops."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from api.db.models import Case
from api.db.session import session_scope
from tests.deploy.conftest import PERIOD, Balanced, case

pytestmark = pytest.mark.postgis


def caseload(client: httpx.Client, base: str, village: str) -> tuple[float, str | None]:
    """The village's caseload over March 2025 as served at ``base``, and which upstream
    nginx chose (None straight from a server)."""
    r = client.get(
        f"{base}/api/v1/units/{village}/children/metrics",
        params={"metric": "caseload", **PERIOD},
    )
    assert r.status_code == 200, r.text
    return r.json()["self"]["value"], r.headers.get("x-upstream")


def stored(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(Case))


def test_two_servers_behind_nginx_share_one_database(balanced: Balanced) -> None:
    world = balanced.replicated.world
    village = world.villages[0]
    auth = {"Authorization": f"Bearer {balanced.replicated.admin_token}"}
    a, b, lb = balanced.a.url, balanced.b.url, balanced.url
    with httpx.Client(headers=auth, timeout=30) as client:
        start = caseload(client, a, village)[0]
        assert caseload(client, b, village)[0] == start  # both cubes built and warm

        # written through a: b's next request counts it, and the reverse
        r = client.post(f"{a}/api/v1/cases", json=case())
        assert r.status_code == 200 and r.json()["created"] == 1, r.text
        assert caseload(client, b, village)[0] == start + 1
        r = client.post(f"{b}/api/v1/cases", json=case())
        assert r.json()["created"] == 1, r.text
        assert caseload(client, a, village)[0] == start + 2

        # the same case sent to both servers is stored once
        twice = case()
        assert client.post(f"{a}/api/v1/cases", json=twice).json()["created"] == 1
        again = client.post(f"{b}/api/v1/cases", json=twice).json()
        assert again["created"] == 0 and again["items"][0]["status"] == "unchanged", again
        assert stored(balanced.replicated.url) == 3

        # through nginx: round robin over both, each answer with every case
        r = client.post(f"{lb}/api/v1/cases", json=case())
        assert r.status_code == 200 and r.json()["created"] == 1, r.text
        seen = [caseload(client, lb, village) for _ in range(4)]
        assert {value for value, _ in seen} == {start + 4}, seen
        upstreams = {upstream for _, upstream in seen}
        assert upstreams == {a.removeprefix("http://"), b.removeprefix("http://")}, seen

    # a dashboard session opened through one server is good on the other (shared secret)
    from api.db.models import User
    from api.services.auth import set_password

    with session_scope(balanced.replicated.url) as session:
        user = session.scalar(select(User).where(User.name == "deploy-admin"))
        set_password(session, user, "balanced-pass-1")
    with httpx.Client(timeout=30) as browser:
        login = browser.post(
            f"{a}/api/v1/auth/login", json={"name": "deploy-admin", "password": "balanced-pass-1"}
        )
        assert login.status_code == 200, login.text
        assert browser.get(f"{b}/api/v1/auth/whoami").json()["name"] == "deploy-admin"

    # b stops: nginx steps around it to a (the address it tried last), nothing fails
    balanced.b.stop()
    with httpx.Client(headers=auth, timeout=30) as client:
        after = [caseload(client, lb, village) for _ in range(4)]
    assert [value for value, _ in after] == [start + 4] * 4, after
    assert {upstream.split(", ")[-1] for _, upstream in after} == {a.removeprefix("http://")}
