"""Run the benchmark suite and write bench/RESULTS.md and bench/results.json.

    python -m bench                         # everything, metro preset on PostGIS
    python -m bench --only api,export       # some sections (others keep their last figures)
    python -m bench --preset small --database-url sqlite:///small.db

Each section is a module ``bench/bench_<name>.py`` with ``run(database_url, preset) -> dict``
that prints its figures as it goes and returns them. The metro database is built by the
``seed`` section when it does not exist yet (and reused when it does).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.common import machine

SECTIONS = (
    "seed",
    "geo",
    "ingest",
    "api",
    "cube",
    "export",
    "writers",
    "browser",
    "alerts",
    "load",
)
HERE = Path(__file__).parent
DEFAULT_METRO_URL = "postgresql://postgres@127.0.0.1:5432/zhili_metro"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="metro", choices=["small", "metro"])
    parser.add_argument(
        "--database-url", default=None, help=f"default for metro: {DEFAULT_METRO_URL}"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections of: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)

    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    url = args.database_url or (DEFAULT_METRO_URL if args.preset == "metro" else None)
    if url is None:
        parser.error("--database-url is required for the small preset")

    json_path = args.out.with_suffix(".json")
    results: dict[str, Any] = {}
    if json_path.exists():
        results = json.loads(json_path.read_text())
    if results.get("preset") != args.preset:
        results = {"sections": {}}
    results.update(preset=args.preset, machine=machine(), database=url.rsplit("@", 1)[-1])
    sections = results.setdefault("sections", {})

    failed = []
    for name in SECTIONS:
        if name not in wanted:
            continue
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            figures = module.run(url, args.preset)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            figures = {"error": traceback.format_exc(limit=3).splitlines()[-1]}
        figures["section_seconds"] = round(time.perf_counter() - t0, 1)
        sections[name] = figures
        json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
        args.out.write_text(render(results))
    print(f"\nwrote {args.out} and {json_path}")
    return 1 if failed else 0


def render(results: dict[str, Any]) -> str:
    """RESULTS.md: the machine, then each section's figures."""
    m = results["machine"]
    lines = [
        "# Zhili benchmark results",
        "",
        f"Preset **{results['preset']}** on `{results['database']}`, {m['date']}.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']}, {m['platform']}.",
        "",
        "Medians and p95 after warm-up; ratios are baseline time / ours (higher is better),",
        "measured in the same process. Regenerate with `python -m bench` (see bench/__main__.py).",
        "",
    ]
    for name in SECTIONS:
        figures = results["sections"].get(name)
        if figures is None:
            continue
        lines += [f"## {name}", ""]
        lines += _render_value(figures)
        lines.append("")
    return "\n".join(lines)


def _render_value(value: Any, indent: str = "") -> list[str]:
    out: list[str] = []
    tables = {
        k: v
        for k, v in value.items()
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)
    }
    for key, item in value.items():
        if key in tables:
            continue
        if isinstance(item, dict):
            out.append(f"{indent}- **{key}**")
            out += _render_value(item, indent + "  ")
        else:
            out.append(f"{indent}- {key}: {item}")
    for key, rows in tables.items():
        columns = list(dict.fromkeys(c for r in rows for c in r))
        out += [
            "",
            f"{indent}**{key}**",
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
        ]
        out += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return out


if __name__ == "__main__":
    sys.exit(main())
