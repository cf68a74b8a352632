"""A deployment on this machine, built once for tests/deploy: a PostgreSQL 15 primary of the
test's own (a cluster in a temporary folder on a free port, so the shared server's
configuration is never touched), its streaming replica (``pg_basebackup -R``), the tiny
world on the primary, two API servers in their own processes (``python -m api serve``, as
on two machines: separate cube, separate cache folder, one session secret) and nginx
(Debian's) in front of them on a free port, with the configuration of docs/deploy.md.

Everything is started by the fixtures and stopped at the end, by its process id. On CI
a missing PostgreSQL or nginx binary is a failure, never a skip."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import free_port, token_for, unavailable

ROOT = Path(__file__).parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SESSION_SECRET = "deploy-test-secret-shared-by-every-server"


def _as_postgres() -> list[str]:
    """The prefix that runs a PostgreSQL tool as the ``postgres`` user when we are root
    (initdb and the server refuse to run as root)."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(args: list[str], **kw) -> None:
    done = subprocess.run([*_as_postgres(), *args], capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}")


@dataclass
class Cluster:
    """One PostgreSQL cluster in ``folder`` on ``port`` (its socket in ``folder`` too)."""

    folder: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.folder / f"data{self.port}"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = [f"-p {self.port}", f"-k {self.folder}", "-c listen_addresses=127.0.0.1"]
        options += [f"-c {k}={v}" for k, v in self.settings.items()]
        log = self.folder / f"postgres{self.port}.log"
        _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", " ".join(options),
              "-l", str(log), "-w", "-t", "60", "start"])  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    def sql(self, statement: str, database: str = "postgres") -> object:
        engine = create_engine(self.url(database), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.execute(text(statement))
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()


@dataclass
class Replicated:
    """A primary with the tiny world in database ``zhili``, and its streaming replica."""

    primary: Cluster
    replica: Cluster
    world: object
    admin_token: str

    @property
    def url(self) -> str:
        return self.primary.url("zhili")

    @property
    def read_url(self) -> str:
        return self.replica.url("zhili")

    def wait_caught_up(self, timeout: float = 20) -> None:
        """Until the replica has replayed everything the primary has written."""
        target = self.primary.sql("SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while True:
            behind = self.replica.sql(
                f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn())", "zhili"
            )
            if behind is not None and behind <= 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica is still {behind} bytes behind")
            time.sleep(0.05)


def _tools_or_skip() -> None:
    if not (PG_BIN / "initdb").exists() or shutil.which("pg_basebackup") is None:
        unavailable(f"PostgreSQL 15's initdb/pg_basebackup are not in {PG_BIN}")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        unavailable("runuser is missing (util-linux): initdb cannot run as root")


@pytest.fixture(scope="session")
def replicated() -> Iterator[Replicated]:
    """The primary and its replica, built from nothing (a few seconds), removed at the end."""
    from api.db.migrate import upgrade
    from api.db.session import dispose_engines, session_scope
    from tests.utils.world import build_tiny_world

    _tools_or_skip()
    folder = Path(tempfile.mkdtemp(prefix="zhili-deploy-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    # fsync off: a throwaway cluster; wal_level replica and senders are the defaults of 15
    primary = Cluster(folder, free_port(), {"fsync": "off", "max_wal_senders": "4"})
    replica = Cluster(folder, free_port(), {"fsync": "off", "hot_standby_feedback": "on"})
    try:
        _run([str(PG_BIN / "initdb"), "-D", str(primary.data), "-U", "postgres", "-A", "trust",
              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])  # fmt: skip
        primary.start()
        primary.sql("CREATE DATABASE zhili")
        primary.sql("CREATE EXTENSION postgis", "zhili")
        upgrade(primary.url("zhili"))
        with session_scope(primary.url("zhili")) as session:
            world = build_tiny_world(session)
        token = token_for(primary.url("zhili"), "admin", world.city, "deploy-admin")
        dispose_engines()
        # the replica: a base backup that writes its own primary_conninfo (-R)
        _run(["pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
              "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast",
              "--no-sync"])  # fmt: skip
        replica.start()
        yield Replicated(primary, replica, world, token)
    finally:
        dispose_engines()
        for cluster in (replica, primary):
            with contextlib.suppress(RuntimeError):
                cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


PERIOD = {"start": "2025-03-01", "end": "2025-03-31"}
_ids = itertools.count(1)  # external ids of the cases the tests send


def case(**fields) -> dict:
    """A case in the tiny world's first grid (东镇南村), reported in March 2025."""
    return {
        "source": "12345",
        "external_id": f"LB{next(_ids):05d}",
        "category": "neighbour",
        "channel": "hotline_12345",
        "reported_at": "2025-03-05T09:00:00+08:00",
        "lon": 121.02,
        "lat": 31.45,
        "description": "楼上漏水",
    } | fields


# ---------------------------------------------------------------- servers and nginx


@dataclass
class Server:
    """``python -m api serve`` in its own process."""

    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(name: str, folder: Path, env: dict[str, str]) -> Server:
    """Start one server on a free port (not waiting for it: see ``wait_ready``)."""
    port = free_port()
    log = folder / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ZHILI_CACHE_DIR": str(folder / name),
             "ZHILI_SESSION_SECRET": SESSION_SECRET, **env},
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return Server(name, f"http://127.0.0.1:{port}", process, log)


def wait_ready(servers: list[Server], timeout: float = 120) -> None:
    """Until every server answers its health check."""
    deadline = time.monotonic() + timeout
    waiting = list(servers)
    while waiting:
        server = waiting[0]
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/api/v1/health", timeout=2).status_code == 200:
                waiting.pop(0)
                continue
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not answer within {timeout:.0f} s")
        time.sleep(0.1)


def nginx_config(folder: Path, port: int, upstreams: list[str]) -> str:
    """docs/deploy.md's configuration, with this test's ports and folders."""
    servers = "\n".join(
        f"        server {u.removeprefix('http://')} max_fails=1 fail_timeout=30s;"
        for u in upstreams
    )
    return f"""
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/nginx-access.log;
    client_body_temp_path {folder}/nginx-tmp/body;
    proxy_temp_path {folder}/nginx-tmp/proxy;
    fastcgi_temp_path {folder}/nginx-tmp/fastcgi;
    uwsgi_temp_path {folder}/nginx-tmp/uwsgi;
    scgi_temp_path {folder}/nginx-tmp/scgi;

    upstream zhili {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 20m;
        location / {{
            proxy_pass http://zhili;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 300s;
            proxy_next_upstream error timeout http_502 http_503;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Balanced:
    """Two servers on one database behind nginx."""

    a: Server
    b: Server
    url: str  # nginx
    replicated: Replicated


@pytest.fixture(scope="module")
def balanced(replicated: Replicated) -> Iterator[Balanced]:
    """Servers a and b on the primary, nginx in front (round robin)."""
    if not Path(NGINX).exists():
        unavailable("nginx is not installed (apt-get install nginx)")
    folder = Path(tempfile.mkdtemp(prefix="zhili-balancer-"))
    env = {"ZHILI_DATABASE_URL": replicated.url, "ZHILI_READ_DATABASE_URL": ""}
    servers = [start_server(name, folder, env) for name in ("a", "b")]
    proxy = None
    try:
        wait_ready(servers)
        folder.chmod(0o755)  # nginx's workers (nobody, when the master is root) reach tmp
        tmp = folder / "nginx-tmp"
        tmp.mkdir()
        tmp.chmod(0o777)
        port = free_port()
        conf = folder / "nginx.conf"
        conf.write_text(nginx_config(folder, port, [s.url for s in servers]))
        proxy = subprocess.Popen(
            [NGINX, "-p", str(folder), "-e", str(folder / "nginx-error.log"), "-c", str(conf),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            if proxy.poll() is not None:
                raise RuntimeError(f"nginx exited: {proxy.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(f"{url}/api/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not answer within 20 s") from None
                time.sleep(0.05)
        yield Balanced(servers[0], servers[1], url, replicated)
    finally:
        if proxy is not None and proxy.poll() is None:
            proxy.terminate()
            proxy.wait(timeout=10)
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
