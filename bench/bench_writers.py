"""Writers benchmark: the choropleth downloads of every grid (and every village) of the city,
as the app writes them, with tipg beside them.

    python -m bench --only writers
    python -m bench.bench_writers [DATABASE_URL] [--repeat N]   # default: metro, 15

Two servers run at once on the same database, as real uvicorn processes:

- the app (``api.app:app_factory``): ``GET /api/v1/choropleth`` writes its GeoJSON with the
  plain writer (``api.engine.feature_collection``: orjson over the rows, the display
  geometry serialised once), its CSV and GeoPackage from the same table; the app's GZip
  middleware compresses for a client that takes gzip (a deflate-only client gets identity);
- tipg (developmentseed's OGC API - Features server) on ``admin_unit``, the items of the
  level in one page (the raw table geometry: bigger than our display geometry).

Every request of a round (GeoJSON, CSV and GeoPackage, each with gzip and identity, then
tipg with gzip and identity) is made once per round, the rounds repeated, so all of them
see the same noise of a shared machine. The GeoJSON with gzip and with identity must decode
to the same JSON. Each figure: the app's own ``Server-Timing`` (request in → response out,
compression included; tipg has none) and the client's wall clock to the last byte (bytes
read raw, not decoded), median and p95; bytes as sent. The issue's target for a download
(a file an analyst opens): client median ≤ 1 s for every grid of the metro city, and
faster than tipg in the same encoding; each download of each level is judged.
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
APP = "api.app:app_factory"
FORMATS = ("geojson", "csv", "gpkg")
ENCODINGS = ("gzip", "identity")


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
    """The GeoJSON with gzip and with identity decode to the same JSON; returns the number
    of features."""
    url, params, _ = requests["geojson, identity"]
    identity = _decoded(client, url, params, "identity")
    url, params, _ = requests["geojson, gzip"]
    if _decoded(client, url, params, "gzip") != identity:
        raise RuntimeError("the GeoJSON with gzip differs from the GeoJSON with identity")
    return len(identity["features"])


def _requests(bases: dict[str, str], root: str, level: str, year: dict) -> dict[str, tuple]:
    """name → (url, params, Accept-Encoding) of every request of one round: each download
    (``geojson, gzip`` ...) in each encoding, then tipg's (``tipg items, gzip`` ...)."""
    choropleth = {"parent": root, "level": level, "metric": METRIC, **year}
    app = f"{bases['app']}/api/v1/choropleth"
    tipg = f"{bases['tipg']}/collections/public.admin_unit/items"
    items = {"level": level, "limit": 10000, "f": "geojson"}
    out = {
        f"{fmt}, {encoding}": (app, {**choropleth, "format": fmt}, encoding)
        for fmt in FORMATS
        for encoding in ENCODINGS
    }
    out.update({f"tipg items, {encoding}": (tipg, items, encoding) for encoding in ENCODINGS})
    return out


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
    print(f"  {'level':<8}{'request':<24}{'server ms':>10}{'p95':>8}{'client ms':>11}"
          f"{'p95':>8}{'KB':>8}")  # fmt: skip
    for r in rows:
        med = "-" if r["server_median_ms"] is None else f"{r['server_median_ms']:.1f}"
        p95 = "-" if r["server_p95_ms"] is None else f"{r['server_p95_ms']:.1f}"
        print(f"  {r['level']:<8}{r['request']:<24}{med:>10}{p95:>8}"
              f"{r['client_median_ms']:>11.1f}{r['client_p95_ms']:>8.1f}{r['kb']:>8}",
              flush=True)  # fmt: skip


def _verdict(rows: list[dict]) -> dict[str, dict[str, bool]]:
    """The issue's target per level and download: client median ≤ 1 s and below tipg's in
    the same encoding (gzip against gzip, identity against identity)."""
    out: dict[str, dict[str, bool]] = {}
    for r in rows:
        if r["request"].startswith("tipg"):
            continue
        encoding = r["request"].split(", ")[1]
        tipg = next(t for t in rows if t["level"] == r["level"]
                    and t["request"] == f"tipg items, {encoding}")  # fmt: skip
        ours = r["client_median_ms"]
        out.setdefault(r["level"], {})[r["request"]] = (
            ours <= TARGET_MS and ours < tipg["client_median_ms"]
        )
    return out


def run(database_url: str | None = None, preset: str = "metro", repeat: int | None = None) -> dict:
    """Start the app and tipg, measure both levels, print and return the figures."""
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
    ports = {"app": free_port(), "tipg": free_port()}
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
        app_cmd = _uvicorn(APP, ports["app"])
        stack.enter_context(http_server(app_cmd, ports["app"], "/api/v1/health", env))
        stack.enter_context(http_server(tipg_cmd, ports["tipg"], "/collections", tipg_env))
        client = stack.enter_context(
            httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=600)
        )
        bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        client.get(f"{bases['app']}/api/v1/units/{root}").raise_for_status()  # loads the cube
        rows = []
        for level in levels:
            print(f"  {level} ...", flush=True)
            found = _measure_level(client, bases, root, level, year, repeat)
            out["levels"][level] = found["features"]
            rows += found["rows"]
            _print(found["rows"])
    out["rows"] = rows
    verdict = out["within_1s_and_faster_than_tipg"] = _verdict(rows)
    for level, found in verdict.items():
        for name, ok in found.items():
            print(f"  {level} {name}: ≤ {TARGET_MS:g} ms and faster than tipg: {ok}")
    out["all_within_1s_and_faster_than_tipg"] = all(
        ok for found in verdict.values() for ok in found.values()
    )
    print(f"every download within {TARGET_MS / 1000:g} s and faster than tipg: "
          f"{out['all_within_1s_and_faster_than_tipg']}")  # fmt: skip
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
