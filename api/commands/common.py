"""What every ``zhili`` command shares: the database option, one-line errors (exit code 2)
and the database URL every part agrees on."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from api.db.session import DatabaseURLError, normalize_url
from api.settings import get_settings

database_option = click.option(
    "--database-url",
    envvar="ZHILI_DATABASE_URL",
    default=None,
    help="Database URL (default: ZHILI_DATABASE_URL or sqlite:///zhili.db).",
)


class UsageProblem(click.ClickException):
    """A problem the user can fix; printed in one line, exit code 2."""

    exit_code = 2


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn database and input errors into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DatabaseURLError as exc:
            raise UsageProblem(str(exc)) from None
        except (OperationalError, ProgrammingError) as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise UsageProblem(f"cannot use the database: {reason}") from None
        except (ValueError, LookupError, FileNotFoundError) as exc:
            raise UsageProblem(str(exc)) from None

    return wrapper


def resolve_url(database_url: str | None) -> str:
    """The database URL to use, checked, and exported so that every part agrees on it."""
    url = normalize_url(database_url or get_settings().database_url)
    os.environ["ZHILI_DATABASE_URL"] = url
    get_settings.cache_clear()
    return url
