"""``zhili user ...``: an administrator creates users, lists them and their tokens, revokes."""

from __future__ import annotations

from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.cli import main


def zhili(db_url: str, *args: str, stdin: str | None = None):
    return CliRunner().invoke(main, [*args, "--database-url", db_url], input=stdin)


def test_user_lifecycle_from_the_command_line(app, db_url, world) -> None:
    added = zhili(
        db_url, "user", "add", "wang", "--role", "official", "--unit", world.towns[0],
        "--password", "-", stdin="long enough pw\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    assert token.startswith("zh_")

    with TestClient(app) as browser:  # the password works for the dashboard login
        login = browser.post(
            "/api/v1/auth/login", json={"name": "wang", "password": "long enough pw"}
        )
        assert login.status_code == 200
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get("/api/v1/auth/whoami").json()["unit_code"] == world.towns[0]

    listed = zhili(db_url, "user", "list", "--unit", world.towns[0])
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if line.startswith("wang "))
    assert row.split()[1:5] == ["official", world.towns[0], "yes", "yes"]
    elsewhere = zhili(db_url, "user", "list", "--unit", world.towns[1])
    assert "wang" not in elsewhere.output

    tokens = zhili(db_url, "user", "tokens", "wang")
    lines = [line.split() for line in tokens.output.splitlines()[1:]]
    assert {(cols[1], cols[2]) for cols in lines} == {("cli", "active"), ("session", "active")}
    assert token not in tokens.output
    cli_id = next(cols[0] for cols in lines if cols[1] == "cli")

    revoked = zhili(db_url, "user", "revoke", "wang", "--token-id", cli_id)
    assert revoked.exit_code == 0 and "revoked 1" in revoked.output
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get("/api/v1/auth/whoami").status_code == 401
    everything = zhili(db_url, "user", "revoke", "wang", "--all")
    assert "revoked 1" in everything.output  # the session that was left


def test_user_commands_refuse_bad_input_in_one_line(db_url, world) -> None:
    cases = [
        ("user", "add", "x", "--role", "official", "--unit", "999", "--password", "long enough"),
        ("user", "add", "x", "--role", "official", "--unit", world.city, "--password", "short"),
        ("user", "tokens", "nobody"),
        ("user", "revoke", "nobody", "--all"),
    ]
    for args in cases:
        result = zhili(db_url, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert "at least 8" in zhili(db_url, *cases[1]).output
    zhili(db_url, "user", "add", "li", "--role", "analyst", "--unit", world.city)
    neither = zhili(db_url, "user", "revoke", "li")
    assert neither.exit_code == 2 and "--token-id" in neither.output
    twice = zhili(db_url, "user", "add", "li", "--role", "analyst", "--unit", world.city)
    assert twice.exit_code == 2 and "exists" in twice.output
