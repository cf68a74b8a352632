"""Paired A/B of the API: a server on a git commit beside one on the working tree, the same
requests alternated between them, server-side medians and their ratio. On a noisy machine
this is the figure to quote for a change (both servers see the same noise).

    python -m bench.ab 080ea15                       # the default maps, metro database
    python -m bench.ab HEAD~3 --repeat 50 --database-url postgresql://.../zhili_metro

The commit is checked out in a temporary git worktree; both servers share the cube
snapshots of ``ZHILI_CACHE_DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.bench_api import DEFAULT_URL, _analyst_token, _pick_units, _server_ms
from bench.common import free_port, http_server

HERE = Path(__file__).resolve().parent.parent


def _maps(root: str, start: str, end: str) -> dict[str, tuple[str, dict]]:
    """label → (path, params) of each request alternated: choropleth GeoJSON downloads, then
    the numbers the dashboard reads over HTTP (children/metrics)."""
    year = {"start": start, "end": end, "compare": "yoy"}
    choropleth = "/api/v1/choropleth"
    children = f"/api/v1/units/{root}/children/metrics"
    return {
        "every grid, median (GeoJSON)": (choropleth, {"parent": root, "level": "grid",
                                                      "metric": "median_days_to_close", **year}),
        "every grid, caseload (GeoJSON)": (choropleth, {"parent": root, "level": "grid",
                                                        "metric": "caseload_per_10k", **year}),
        "villages, median (GeoJSON)": (choropleth, {"parent": root, "level": "village",
                                                    "metric": "median_days_to_close", **year}),
        "children, resolution": (children, {"metric": "resolution_rate", **year}),
        "children, median": (children, {"metric": "median_days_to_close", **year}),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("commit", help="the baseline: a commit, branch or tag")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--start", default="2025-11-01")
    parser.add_argument("--end", default="2026-10-31")
    args = parser.parse_args(argv)

    units = _pick_units(args.database_url)
    token = _analyst_token(args.database_url, units["root"])
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip, deflate"}
    with contextlib.ExitStack() as stack:
        worktree = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "baseline"
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "-q", "--detach",
                        str(worktree), args.commit], check=True)  # fmt: skip
        stack.callback(subprocess.run, ["git", "-C", str(HERE), "worktree", "remove",
                                        "--force", str(worktree)])  # fmt: skip
        clients = []
        for source in (worktree, HERE):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_factory",
                       "--app-dir", str(source), "--host", "127.0.0.1", "--port", str(port),
                       "--log-level", "warning", "--no-access-log"]  # fmt: skip
            env = {"ZHILI_DATABASE_URL": args.database_url, "PYTHONPATH": str(source)}
            stack.enter_context(http_server(command, port, "/api/v1/health", env))
            client = stack.enter_context(
                httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120)
            )
            client.get(f"/api/v1/units/{units['root']}").raise_for_status()  # loads the cube
            clients.append(client)
        print(f"{'request':<32}{args.commit + ' ms':>14}{'working tree ms':>17}{'ratio':>8}")
        for name, (path, params) in _maps(units["root"], args.start, args.end).items():
            samples: list[list[float]] = [[], []]
            for client in clients:
                for _ in range(3):  # warm: summed histograms, layers
                    client.get(path, params=params).raise_for_status()
            for _ in range(args.repeat):
                for client, times in zip(clients, samples, strict=True):
                    with client.stream("GET", path, params=params) as response:
                        response.raise_for_status()
                        for _ in response.iter_raw():
                            pass
                    times.append(_server_ms(response))
            before, after = (statistics.median(t) for t in samples)
            print(f"{name:<32}{before:>14.1f}{after:>17.1f}{after / before:>7.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
