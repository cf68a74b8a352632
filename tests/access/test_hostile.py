"""Hostile input: schemathesis against the OpenAPI document with a valid admin token, and the
limits that refuse oversized input before anything parses it."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.conftest import DATABASES, token_for

# Revoking tokens at random would lock the fuzzer out of its own session; logout likewise.
EXCLUDED = r"/auth/(tokens/\{token_id\}|logout)$"
LEAKS = ("Traceback", "sqlalchemy", "psycopg", "SELECT ", "INSERT INTO", 'File "/')


def _module_app():
    """One app for the whole module (schemathesis reads its OpenAPI document at import);
    each test points it at its own fresh database through ``app.state.settings``."""
    from api.app import create_app
    from api.settings import Settings

    return create_app(Settings(database_url="sqlite:///:memory:"), with_dashboard=False)


fuzzed_app = _module_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app).exclude(path_regex=EXCLUDED)


@pytest.fixture(scope="module", params=DATABASES)
def fuzzed_db(request, tmp_path_factory):
    """One database with the tiny world per kind for all fuzzed operations (what the fuzzer
    writes stays: later operations meet a database that has seen earlier ones)."""
    import shutil

    from api.db.session import dispose_engines, session_scope
    from tests.utils.world import build_tiny_world

    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "zhili.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        server = request.getfixturevalue("postgis_server")
        url = server.url_for(server.create(template=request.getfixturevalue("postgis_template")))
    with session_scope(url) as session:
        world = build_tiny_world(session)
    yield url, world
    dispose_engines()


@pytest.fixture
def fuzzed(fuzzed_db, tmp_path):
    """The module's app on the fuzzing database, and a city admin's token."""
    from api.settings import Settings

    url, world = fuzzed_db
    fuzzed_app.state.settings = Settings(database_url=url, cache_dir=tmp_path / "cache")
    return token_for(url, "admin", world.city)


@schema.parametrize()
@hypothesis_settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_survives_generated_input(case, fuzzed) -> None:
    """No 5xx, every documented answer matches its own schema, no stack trace or SQL."""
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzzed}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
    if response.status_code >= 400:
        assert not any(leak in response.text for leak in LEAKS), response.text[:300]


@pytest.fixture
def admin(client):
    return client


def test_oversized_bodies_are_refused_before_parsing(app, settings, admin) -> None:
    limit = settings.max_body_bytes
    declared = admin.post(
        "/api/v1/cases",
        content=b"[" + b" " * (limit + 1) + b"]",
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == 413
    assert f"{limit:,}" in declared.json()["message"]

    def chunks():  # no Content-Length: the body is counted as it streams in
        for _ in range(limit // 1_000_000 + 2):
            yield b" " * 1_000_000

    streamed = admin.post(
        "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_long_query_strings_and_bad_values_are_bounded(admin, world) -> None:
    long = admin.get("/api/v1/levels", params={"x": "a" * 10_000})
    assert long.status_code == 414 and "query string" in long.json()["message"]
    for url, params in [
        ("/api/v1/audit", {"limit": 10**9}),
        ("/api/v1/cases", {"limit": 10**9}),
        ("/api/v1/audit", {"cursor": "1 OR 1=1"}),
        ("/api/v1/boundaries", {"parent": "'; DROP TABLE admin_unit; --"}),
        ("/api/v1/boundaries", {"parent": "x" * 200}),
    ]:
        response = admin.get(url, params=params)
        assert 400 <= response.status_code < 500, (url, params, response.status_code)
        assert response.json()["message"]
        assert not any(leak in response.text for leak in LEAKS)


def test_errors_never_echo_internals(app, db_url, world) -> None:
    """An unexpected failure answers a plain 500 message; the details go to the log only."""

    @app.get("/api/v1/_boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("SELECT secret FROM app_user -- internal detail")

    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/api/v1/_boom")
    assert response.status_code == 500
    assert "secret" not in response.text and "Traceback" not in response.text
