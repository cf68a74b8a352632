"""Reads from a streaming replica (docs/deploy.md): a server with ``ZHILI_READ_DATABASE_URL``
serves figures, maps and exports from the replica while intake writes on the primary, and
``/api/v1/health`` reports how far behind the replica is. Replay is paused on the replica
to make the lag visible: the figures are then those of the replica, not the primary's."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from api.db.models import AuditLog, Case
from api.db.replica import ReplicaSession, read_session
from api.db.session import session_scope
from tests.conftest import token_for
from tests.deploy.conftest import PERIOD, Replicated, case

pytestmark = pytest.mark.postgis


def caseload(client: TestClient, village: str) -> float:
    r = client.get(
        f"/api/v1/units/{village}/children/metrics", params={"metric": "caseload", **PERIOD}
    )
    assert r.status_code == 200, r.text
    return r.json()["self"]["value"]


def health(client: TestClient) -> dict:
    r = client.get("/api/v1/health")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_server_reads_the_replica_and_writes_the_primary(
    replicated: Replicated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.app import create_app
    from api.settings import Settings

    monkeypatch.setenv("ZHILI_READ_DATABASE_URL", replicated.read_url)
    settings = Settings(database_url=replicated.url, cache_dir=tmp_path / "cache")
    assert settings.read_database_url == replicated.read_url
    village = replicated.world.villages[0]
    replicated.wait_caught_up()
    auth = {"Authorization": f"Bearer {replicated.admin_token}"}
    with TestClient(create_app(settings, with_dashboard=False), headers=auth) as client:
        lag = health(client)["replica"]
        assert lag["status"] == "streaming" and lag["lag_bytes"] == 0, lag
        assert lag["lag_seconds"] == 0
        start = caseload(client, village)

        replicated.replica.sql("SELECT pg_wal_replay_pause()")
        try:
            # a write through this server goes to the primary
            r = client.post("/api/v1/cases", json=case(external_id="RP00001"))
            assert r.status_code == 200 and r.json()["created"] == 1, r.text
            with session_scope(replicated.url) as session:
                assert session.scalar(
                    select(func.count()).select_from(Case).where(Case.external_id == "RP00001")
                )
            # the figures come from the replica, which has not replayed it yet
            assert caseload(client, village) == start
            lag = health(client)["replica"]
            assert lag["status"] == "paused" and lag["lag_bytes"] > 0, lag
            # who calls is read on the primary: a token made a moment ago works at once
            fresh = token_for(replicated.url, "official", replicated.world.towns[0])
            r = client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {fresh}"})
            assert r.status_code == 200, r.text
        finally:
            replicated.replica.sql("SELECT pg_wal_replay_resume()")

        # caught up: the replica's figures have the case, health says so
        deadline = time.monotonic() + 20
        while (lag := health(client)["replica"])["lag_bytes"] != 0:
            assert time.monotonic() < deadline, lag
            time.sleep(0.05)
        assert lag["status"] == "streaming" and lag["lag_seconds"] == 0, lag
        assert caseload(client, village) == start + 1

        # an export read from the replica, its audit entry written on the primary
        def exports() -> int:
            with session_scope(replicated.url) as session:
                return session.scalar(
                    select(func.count()).select_from(AuditLog).where(AuditLog.action == "export")
                )

        before = exports()
        r = client.get(
            "/api/v1/choropleth",
            params={"parent": replicated.world.towns[0], "level": "village",
                    "metric": "caseload", "format": "csv", **PERIOD},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert exports() == before + 1
        rows = {row["code"]: row for row in csv.DictReader(io.StringIO(r.text.lstrip("\ufeff")))}
        assert float(rows[village]["value"]) == start + 1, rows[village]


def test_reads_route_to_the_replica_and_writes_to_the_primary(replicated: Replicated) -> None:
    """The rule of ``ReplicaSession``, statement by statement, on the real pair."""
    from api.db.models import ApiToken, DatasetVersion

    session = read_session(replicated.url, replicated.read_url)
    assert isinstance(session, ReplicaSession)
    with session:
        port = lambda stmt, **kw: session.get_bind(clause=stmt, **kw).url.port  # noqa: E731
        primary, replica = replicated.primary.port, replicated.replica.port
        assert port(select(Case.id)) == replica
        assert port(select(Case.id).with_for_update()) == primary
        assert port(update(DatasetVersion).values(version=1)) == primary
        assert port(select(ApiToken.id), mapper=ApiToken.__mapper__) == primary
        assert port(text("SELECT 1")) == replica
        assert port(text("  insert into audit_log default values")) == primary
        assert session.scalar(select(func.pg_is_in_recovery())) is True
    plain = read_session(replicated.url, None)
    assert not isinstance(plain, ReplicaSession)
    plain.close()


def test_health_says_when_the_read_database_is_down_or_no_replica(
    replicated: Replicated, tmp_path: Path
) -> None:
    from api.app import create_app
    from api.settings import Settings
    from tests.conftest import free_port

    down = f"postgresql://postgres@127.0.0.1:{free_port()}/zhili"  # nothing listens there
    for read_url, status in ((down, "unavailable"), (replicated.url, "not_a_replica")):
        settings = Settings(
            database_url=replicated.url, read_database_url=read_url, cache_dir=tmp_path
        )
        with TestClient(create_app(settings, with_dashboard=False)) as client:
            body = health(client)
        assert body["status"] == f"replica_{status}", body
        assert body["replica"]["status"] == status, body
        assert body["schema_revision"] == body["schema_head"]  # the primary answers
