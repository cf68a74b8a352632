"""Export benchmark: whole village and grid layers as GeoJSON, ours beside tipg.

    python -m bench --only export
    python -m bench.bench_export [DATABASE_URL]      # default: the metro database on PostGIS

Both servers run as real uvicorn processes on 127.0.0.1 and are read over HTTP the way QGIS
or GDAL read them (gzip accepted, every ``next`` page followed):

- ours: ``/api/v1/choropleth`` (one response: display geometry + the metric, its count, change
  and class) and ``/ogc/collections/{level}/items`` (full geometry, pages of 1,000);
- tipg (developmentseed's OGC API - Features server, the usual pick for "serve a PostGIS
  table") on the same ``admin_unit`` table, current units of the level, pages of 1,000.

tipg is installed on first use into ``bench/.venv-tipg`` (it pins versions of its own). The
section also prints our server's RSS at rest and after the reads.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import select

from api.db.models import AdminUnit
from api.db.session import dispose_engines, normalize_url, session_scope
from bench.common import free_port, http_server, ratio, rss_mb

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/zhili_metro"
TIPG_VENV = Path(__file__).parent / ".venv-tipg"
PAGE = 1000
REPEAT = 3


def _tipg_python() -> Path:
    python = TIPG_VENV / "bin" / "python"
    if not python.exists():
        print("installing tipg into bench/.venv-tipg ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "tipg==1.6.*", "uvicorn"], check=True
        )
    return python


def _admin_token(url: str) -> tuple[str, str]:
    from api.services.auth import create_user, issue_token

    with session_scope(url) as session:
        root = session.scalar(
            select(AdminUnit.code).where(
                AdminUnit.parent_code.is_(None), AdminUnit.valid_to.is_(None)
            )
        )
        user = create_user(session, f"bench-export-{uuid.uuid4().hex[:8]}", "admin", root)
        return root, issue_token(session, user, ttl_days=1)


def _read_all(client: httpx.Client, url: str, params: dict | None) -> tuple[int, int, int]:
    """Follow ``next`` links to the end: (features, bytes on the wire, bytes decoded)."""
    features = wire = decoded = 0
    matched = None
    next_url: str | None = url
    while next_url:
        response = client.get(next_url, params=params)
        response.raise_for_status()
        wire += int(response.headers.get("content-length") or len(response.content))
        decoded += len(response.content)
        body = response.json()
        features += len(body["features"])
        matched = body.get("numberMatched", matched)
        if matched is not None and features > matched:
            raise RuntimeError(f"{url}: read {features} features of {matched}: a page repeats")
        next_url = next(
            (link["href"] for link in body.get("links", []) if link.get("rel") == "next"), None
        )
        params = None  # the next link carries them (httpx: params={} would drop its query)
    return features, wire, decoded


def _measure(client: httpx.Client, url: str, params: dict) -> dict:
    t0 = time.perf_counter()
    _read_all(client, url, params)  # cold: caches of the server and the database fill here
    first_s = round(time.perf_counter() - t0, 2)
    print(f"    {url.rsplit('/', 2)[-2:]}: first read {first_s} s", flush=True)
    samples = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        features, wire, decoded = _read_all(client, url, params)
        samples.append((time.perf_counter() - t0) * 1000)
    return {
        "features": features,
        "first_read_s": first_s,
        "median_ms": round(statistics.median(samples), 1),
        "max_ms": round(max(samples), 1),
        "wire_kb": round(wire / 1024),
        "json_kb": round(decoded / 1024),
    }


def run(database_url: str | None = None, preset: str = "metro") -> dict:
    """Time both servers on both levels; print and return the figures."""
    url = normalize_url(database_url or DEFAULT_URL)
    root, token = _admin_token(url)
    dispose_engines()
    with session_scope(url) as session:
        levels = [lvl for lvl in ("village", "grid") if session.scalar(
            select(AdminUnit.code).where(AdminUnit.level == lvl).limit(1))]  # fmt: skip
    dispose_engines()
    out: dict = {"levels": {}}

    ours_port = free_port()
    ours_cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_factory",
                "--host", "127.0.0.1", "--port", str(ours_port), "--log-level", "warning",
                "--no-access-log"]  # fmt: skip
    tipg_port = free_port()
    tipg_cmd = [
        str(_tipg_python()),
        "-m",
        "uvicorn",
        "tipg.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(tipg_port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    tipg_env = {
        "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": '["public.admin_unit"]',
        "TIPG_MAX_FEATURES_PER_QUERY": "10000",
    }

    ours_env = {"ZHILI_DATABASE_URL": url}
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    with (
        http_server(ours_cmd, ours_port, "/api/v1/health", ours_env) as ours,
        http_server(tipg_cmd, tipg_port, "/collections", tipg_env),
        httpx.Client(headers=headers, timeout=1800) as client,
    ):
        out["server_rss_mb_at_rest"] = rss_mb(ours.pid)
        base = f"http://127.0.0.1:{ours_port}"
        tipg = f"http://127.0.0.1:{tipg_port}/collections/public.admin_unit/items"
        for level in levels:
            print(f"  {level} ...", flush=True)
            choropleth = _measure(client, f"{base}/api/v1/choropleth",
                                  {"parent": root, "level": level, "metric": "caseload",
                                   "period": "last-30d"})  # fmt: skip
            ogc = _measure(client, f"{base}/ogc/collections/{level}/items", {"limit": PAGE})
            baseline = _measure(client, tipg, {
                "limit": PAGE, "filter-lang": "cql2-text",
                "filter": f"level = '{level}' AND valid_to IS NULL"})  # fmt: skip
            row = {
                "choropleth": choropleth,
                "ogc_items": ogc,
                "tipg_items": baseline,
                "ratio_ogc_vs_tipg": ratio(baseline["median_ms"], ogc["median_ms"]),
                "ratio_choropleth_vs_tipg": ratio(baseline["median_ms"], choropleth["median_ms"]),
            }
            out["levels"][level] = row
            print(
                f"  {level}: choropleth {choropleth['median_ms']} ms "
                f"({choropleth['wire_kb']} KB on the wire), OGC items {ogc['median_ms']} ms "
                f"({ogc['wire_kb']} KB), tipg {baseline['median_ms']} ms "
                f"({baseline['wire_kb']} KB); OGC x{row['ratio_ogc_vs_tipg']} vs tipg",
                flush=True,
            )
        out["server_rss_mb_after"] = rss_mb(ours.pid)
    print(f"  our server RSS: {out['server_rss_mb_at_rest']} MiB at rest, "
          f"{out['server_rss_mb_after']} MiB after the exports", flush=True)  # fmt: skip
    return out


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else None)
