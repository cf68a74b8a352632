"""Fixtures: fresh migrated databases (SQLite and real PostGIS), a tiny world, API clients,
a live server and a headless browser.

PostGIS and Chromium tests skip with the reason when those are missing; with CI=true they
fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.db.migrate import upgrade
from api.db.session import dispose_engines, session_scope
from api.settings import Settings

ON_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "ZHILI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CHROMIUM = os.environ.get("ZHILI_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"


def unavailable(reason: str) -> None:
    """Skip locally; on CI a missing dependency is a failure, never a skip."""
    if ON_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


# ---------------------------------------------------------------- databases


class PostgisServer:
    """A PostgreSQL server with PostGIS on which tests create throwaway databases."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"zhili_t{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.created: list[str] = []

    def url_for(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        for attempt in range(50):  # a just-closed connection may still hold the template
            try:
                with self.admin.connect() as conn:
                    if template:
                        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
                    else:
                        conn.execute(text(f'CREATE DATABASE "{name}"'))
                break
            except Exception as exc:
                if "being accessed by other users" not in str(exc) or attempt == 49:
                    raise
                gc.collect()  # a connection to the template may wait for the collector
                time.sleep(0.1)
        self.created.append(name)
        if not template:
            with create_engine(self.url_for(name)).begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        return name

    def drop(self, name: str) -> None:
        dispose_engines()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        for name in self.created:
            self.drop(name)
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgis_server() -> Iterator[PostgisServer]:
    try:
        server = PostgisServer(PG_ADMIN_URL)
        with server.admin.connect() as conn:
            has_postgis = conn.execute(
                text("select 1 from pg_available_extensions where name = 'postgis'")
            ).scalar()
    except Exception as exc:  # no server, refused, bad URL
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {type(exc).__name__}")
    if not has_postgis:
        unavailable("PostGIS is not installed (apt-get install postgresql-15-postgis-3)")
    yield server
    dispose_engines()
    server.close()


@pytest.fixture(scope="session")
def postgis_template(postgis_server: PostgisServer) -> str:
    """A migrated, empty PostGIS database to copy."""
    name = postgis_server.create()
    upgrade(postgis_server.url_for(name))
    dispose_engines()
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file to copy."""
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    dispose_engines()
    return path


@pytest.fixture(scope="session")
def small_world_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The ``small`` seed world (seed=1) in a SQLite file, built once per test session.

    Read-only for tests: copy the file first to change anything.
    """
    from seed.build import seed_database

    path = tmp_path_factory.mktemp("small_world") / "small.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    seed_database(url, preset="small", seed=1, progress=False)
    dispose_engines()
    return url


DATABASES = ["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)]


@pytest.fixture(params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostGIS."""
    return request.param


@pytest.fixture
def db_url(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database migrated to head, of each kind."""
    if db_kind == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "zhili.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        dispose_engines()
        return
    server: PostgisServer = request.getfixturevalue("postgis_server")
    name = server.create(template=request.getfixturevalue("postgis_template"))
    yield server.url_for(name)
    server.drop(name)


@pytest.fixture
def empty_db_url(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database with no schema at all (PostGIS has its extension)."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        dispose_engines()
        return
    server: PostgisServer = request.getfixturevalue("postgis_server")
    name = server.create()
    yield server.url_for(name)
    server.drop(name)


# ---------------------------------------------------------------- a tiny world


@pytest.fixture
def world(db_url: str):
    """The tiny world of ``tests.utils.world`` written into a fresh database."""
    from tests.utils.world import build_tiny_world

    with session_scope(db_url) as session:
        return build_tiny_world(session)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, cache_dir=tmp_path / "cache")


@pytest.fixture
def app(settings: Settings):
    from api.app import create_app

    return create_app(settings, with_dashboard=False)


def token_for(db_url: str, role: str, unit_code: str, name: str | None = None) -> str:
    """Create a user of ``role`` at ``unit_code`` and return a fresh API token."""
    from api.services.auth import create_user, issue_token

    with session_scope(db_url) as session:
        user = create_user(
            session, name or f"{role}-{unit_code}-{uuid.uuid4().hex[:6]}", role, unit_code
        )
        return issue_token(session, user, ttl_days=1)


@pytest.fixture
def client(app, db_url: str, world):
    """An API client acting as a city admin of the tiny world."""
    from fastapi.testclient import TestClient

    token = token_for(db_url, "admin", world.city)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


# ---------------------------------------------------------------- live server, browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The whole app (API + dashboard) served by uvicorn in a thread."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from api.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(settings: Settings, world) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (no downloaded browser)."""
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    """Folder for screenshots and other things a person should look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
