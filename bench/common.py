"""Shared timing helpers and the machine description for every benchmark."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any


def timed(fn: Callable[[], Any], repeat: int = 20, warmup: int = 3) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times, then ``repeat`` times; median/p95/min in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return summarize(samples)


def summarize(samples_ms: list[float]) -> dict[str, float]:
    """Median, p95 and min of samples in milliseconds."""
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "min_ms": round(ordered[0], 2),
        "n": len(ordered),
    }


def ratio(baseline_ms: float, ours_ms: float) -> float:
    """How many times faster ours is than the baseline (>1 means faster)."""
    return round(baseline_ms / ours_ms, 1) if ours_ms else float("inf")


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid or os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def machine() -> dict[str, Any]:
    """What this machine is, for the results header."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def http_server(
    command: list[str], port: int, ready_path: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Run a server process until ``http://127.0.0.1:{port}{ready_path}`` answers; stop it
    afterwards. Raises with the server's own output when it does not come up in 120 s.
    Its output goes to a temporary file: a pipe nobody reads fills up and blocks a server
    that logs (a database outage logs a line per request)."""
    import httpx

    with tempfile.TemporaryFile("w+") as output:
        proc = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, stdout=output, stderr=subprocess.STDOUT
        )

        def last_output() -> str:
            output.seek(0)
            return output.read()[-2000:]

        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{command[:3]} exited: {last_output()}")
                try:
                    ready = httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2)
                    if ready.status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[:3]} did not answer on port {port} within 120 s")
                time.sleep(0.3)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
