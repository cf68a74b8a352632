"""README.md opens with the two commands, and CI runs the very same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_demo_then_test_command() -> None:
    demo, tests = readme_commands()[:2]
    assert demo.endswith("zhili demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_with_postgis() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()
    assert "CREATE EXTENSION postgis" in ci and "postgresql-15-postgis-3" in ci
