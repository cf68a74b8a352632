"""Writers benchmark: the choropleth download of every grid (and every village) of the city,
written by the spliced deflate writer beside the plain writer, with tipg beside both.

    python -m bench --only writers
    python -m bench.bench_writers [DATABASE_URL] [--repeat N]   # default: metro, 15

Four servers run at once on the same database, as real uvicorn processes:

- spliced: the app as it is (``api.app:app_factory``); its GeoJSON is spliced from
  pre-deflated feature openings (``api.engine.spliced``): ``splice_zlib`` for a client that
  takes deflate, ``splice_gzip`` for one that takes only gzip, ``splice`` for neither;
- plain: the same app with the plain writer (``bench.plain_server``): orjson over the rows,
  then the app's GZip middleware for a gzip client, ``zlib.compress`` level 1 for a
  deflate-only client, nothing for identity;
- spliced without ``splice_gzip``: the app as it is, but a gzip-only client gets the plain
  splice compressed by the GZip middleware (``bench.plain_server:no_splice_gzip_factory``);
- tipg (developmentseed's OGC API - Features server) on ``admin_unit``, the items of the
  level in one page (the raw table geometry: bigger than our display geometry).

Every request of a round (each writer in each encoding, the CSV and GeoPackage downloads of
the same map, tipg with and without gzip) is made once per round, the rounds repeated, so
all of them see the same noise of a shared machine. Each figure: the app's own
``Server-Timing`` (request in → response out, compression included; tipg has none) and the
client's wall clock to the last byte (bytes read raw, not decoded), median and p95; bytes as
sent. The issue's target: a download of every grid of the metro city within 1 s, and faster
than tipg.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from sqlalchemy import text

from api.db.session import dispose_engines, normalize_url, session_scope
from bench.bench_api import _analyst_token, _pick_units, _server_ms
from bench.common import free_port, http_server, summarize

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/zhili_metro"
TIPG_VENV = Path("/tmp/tipg-venv")
REPEAT = 15
TARGET_MS = 1000.0
METRIC = "caseload_per_10k"
WARMUP = 2
SERVERS = {  # name → uvicorn factory
    "spliced": "api.app:app_factory",
    "plain": "bench.plain_server:app_factory",
    "no_splice_gzip": "bench.plain_server:no_splice_gzip_factory",
}


def _tipg_python() -> Path:
    """tipg's own venv (it pins versions of its own), installed on first use."""
    python = TIPG_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing tipg into {TIPG_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "tipg==1.*", "uvicorn"], check=True
        )
    return python


def _uvicorn(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip


def _year(url: str) -> dict[str, str]:
    """The last year of cases, compared with the year before (as the dashboard shows)."""
    with session_scope(url) as session:
        last = session.scalar(
            text("SELECT max(reported_at AT TIME ZONE 'Asia/Shanghai')::date FROM \"case\"")
        )
    start = last - dt.timedelta(days=364)
    return {"start": str(start), "end": str(last), "compare": "yoy"}


def _get(client: httpx.Client, url: str, params: dict, encoding: str) -> tuple[float, float, int]:
    """(server ms or NaN, client ms to the last byte, bytes as sent)."""
    t0 = time.perf_counter()
    with client.stream("GET", url, params=params, headers={"Accept-Encoding": encoding}) as r:
        r.raise_for_status()
        wire = sum(len(chunk) for chunk in r.iter_raw())
    ms = (time.perf_counter() - t0) * 1000
    sent = r.headers.get("content-encoding", "identity")
    if sent != encoding:
        raise RuntimeError(f"{url} asked {encoding}, got {sent}")
    server = _server_ms(r) if "server-timing" in r.headers else float("nan")
    return server, ms, wire


def _decoded(client: httpx.Client, url: str, params: dict, encoding: str) -> dict:
    """The body as JSON, decoded as a client decodes it."""
    r = client.get(url, params=params, headers={"Accept-Encoding": encoding})
    r.raise_for_status()
    return orjson.loads(r.content)


def _check_same(client: httpx.Client, requests: dict[str, tuple]) -> int:
    """Every GeoJSON request of the round gives the plain writer's GeoJSON once decoded
    (the plain writer is the reference); returns the number of features."""
    url, params, _ = requests["plain geojson, identity"]
    reference = _decoded(client, url, params, "identity")
    for name, (url, params, encoding) in requests.items():
        if "geojson" in name and _decoded(client, url, params, encoding) != reference:
            raise RuntimeError(f"{name} differs from the plain writer's GeoJSON")
    return len(reference["features"])


def _requests(bases: dict[str, str], root: str, level: str, year: dict) -> dict[str, tuple]:
    """name → (url, params, Accept-Encoding) of every request of one round."""
    choropleth = {"parent": root, "level": level, "metric": METRIC, **year}
    spliced = f"{bases['spliced']}/api/v1/choropleth"
    plain = f"{bases['plain']}/api/v1/choropleth"
    no_splice_gzip = f"{bases['no_splice_gzip']}/api/v1/choropleth"
    tipg = f"{bases['tipg']}/collections/public.admin_unit/items"
    items = {"level": level, "limit": 10000, "f": "geojson"}
    return {
        "spliced geojson, deflate (splice_zlib)": (spliced, choropleth, "deflate"),
        "spliced geojson, gzip (splice_gzip)": (spliced, choropleth, "gzip"),
        "spliced geojson, identity (splice)": (spliced, choropleth, "identity"),
        "spliced geojson, gzip (splice + middleware)": (no_splice_gzip, choropleth, "gzip"),
        "plain geojson, gzip (middleware)": (plain, choropleth, "gzip"),
        "plain geojson, deflate (zlib level 1)": (plain, choropleth, "deflate"),
        "plain geojson, identity": (plain, choropleth, "identity"),
        "csv, gzip (middleware)": (spliced, {**choropleth, "format": "csv"}, "gzip"),
        "csv, identity": (spliced, {**choropleth, "format": "csv"}, "identity"),
        "gpkg, gzip (middleware)": (spliced, {**choropleth, "format": "gpkg"}, "gzip"),
        "gpkg, identity": (spliced, {**choropleth, "format": "gpkg"}, "identity"),
        "tipg items, gzip": (tipg, items, "gzip"),
        "tipg items, identity": (tipg, items, "identity"),
    }


def _measure_level(
    client: httpx.Client, bases: dict[str, str], root: str, level: str, year: dict, repeat: int
) -> dict:
    """One level: every request of the round, ``repeat`` rounds; figures per request."""
    requests = _requests(bases, root, level, year)
    features = _check_same(client, requests)
    tipg_url, tipg_params, _ = requests["tipg items, identity"]
    tipg_features = len(_decoded(client, tipg_url, tipg_params, "identity")["features"])
    for url, params, encoding in requests.values():
        for _ in range(WARMUP):
            _get(client, url, params, encoding)
    samples: dict[str, list] = {name: [] for name in requests}
    for _ in range(repeat):
        for name, (url, params, encoding) in requests.items():
            samples[name].append(_get(client, url, params, encoding))
    rows = []
    for name, found in samples.items():
        server = summarize([s for s, _, _ in found]) if found[0][0] == found[0][0] else None
        trip = summarize([c for _, c, _ in found])
        rows.append({
            "level": level,
            "request": name,
            "features": tipg_features if name.startswith("tipg") else features,
            "server_median_ms": server["median_ms"] if server else None,
            "server_p95_ms": server["p95_ms"] if server else None,
            "client_median_ms": trip["median_ms"],
            "client_p95_ms": trip["p95_ms"],
            "kb": round(found[-1][2] / 1024),
            "n": trip["n"],
        })  # fmt: skip
    return {"features": features, "rows": rows}


def _print(rows: list[dict]) -> None:
    print(f"  {'level':<8}{'request':<46}{'server ms':>10}{'p95':>8}{'client ms':>11}"
          f"{'p95':>8}{'KB':>8}")  # fmt: skip
    for r in rows:
        med = "-" if r["server_median_ms"] is None else f"{r['server_median_ms']:.1f}"
        p95 = "-" if r["server_p95_ms"] is None else f"{r['server_p95_ms']:.1f}"
        print(f"  {r['level']:<8}{r['request']:<46}{med:>10}{p95:>8}"
              f"{r['client_median_ms']:>11.1f}{r['client_p95_ms']:>8.1f}{r['kb']:>8}",
              flush=True)  # fmt: skip


def _verdict(rows: list[dict]) -> dict:
    """The issue's target on the grid rows: client median ≤ 1 s and below tipg's (gzip for
    gzip, identity for identity; deflate is set against tipg with gzip)."""
    grid = {r["request"]: r for r in rows if r["level"] == "grid"}
    tipg = {"gzip": grid["tipg items, gzip"], "identity": grid["tipg items, identity"]}
    out = {}
    for name, r in grid.items():
        if name.startswith("tipg"):
            continue
        against = tipg["identity" if "identity" in name else "gzip"]
        out[name] = (r["client_median_ms"] <= TARGET_MS
                     and r["client_median_ms"] < against["client_median_ms"])  # fmt: skip
    return out


def run(database_url: str | None = None, preset: str = "metro", repeat: int | None = None) -> dict:
    """Start the four servers, measure both levels, print and return the figures."""
    repeat = repeat or (REPEAT if preset == "metro" else 3)
    url = normalize_url(database_url or DEFAULT_URL)
    units = _pick_units(url)
    root = units["root"]
    token = _analyst_token(url, root)
    year = _year(url)
    with session_scope(url) as session:
        levels = [lvl for lvl in ("village", "grid") if session.scalar(
            text("SELECT 1 FROM admin_unit WHERE level = :l LIMIT 1"), {"l": lvl})]  # fmt: skip
    dispose_engines()
    ports = {name: free_port() for name in (*SERVERS, "tipg")}
    env = {"ZHILI_DATABASE_URL": url}
    tipg_env = {
        "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": '["public.admin_unit"]',
        "TIPG_MAX_FEATURES_PER_QUERY": "10000",
    }
    tipg_cmd = [str(_tipg_python()), "-m", "uvicorn", "tipg.main:app", "--host",
                "127.0.0.1", "--port", str(ports["tipg"]), "--log-level", "warning",
                "--no-access-log"]  # fmt: skip
    print(f"writers bench: {METRIC} {year['start']}..{year['end']} yoy under {root}, "
          f"{repeat} rounds", flush=True)  # fmt: skip
    out: dict = {"metric": METRIC, **year, "repeat": repeat, "levels": {}}
    with contextlib.ExitStack() as stack:
        for name, app in SERVERS.items():
            port = ports[name]
            stack.enter_context(http_server(_uvicorn(app, port), port, "/api/v1/health", env))
        stack.enter_context(http_server(tipg_cmd, ports["tipg"], "/collections", tipg_env))
        client = stack.enter_context(
            httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=600)
        )
        bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for name in SERVERS:  # loads the cube
            client.get(f"{bases[name]}/api/v1/units/{root}").raise_for_status()
        rows = []
        for level in levels:
            print(f"  {level} ...", flush=True)
            found = _measure_level(client, bases, root, level, year, repeat)
            out["levels"][level] = found["features"]
            rows += found["rows"]
            _print(found["rows"])
    out["rows"] = rows
    if "grid" in levels:
        out["grid_within_1s_and_faster_than_tipg"] = _verdict(rows)
        for name, ok in out["grid_within_1s_and_faster_than_tipg"].items():
            print(f"  grid target (≤ {TARGET_MS:g} ms and faster than tipg): {name}: {ok}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_writers")
    parser.add_argument("database_url", nargs="?", default=DEFAULT_URL)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    out = run(args.database_url, "metro", args.repeat)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
