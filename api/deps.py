"""Dependencies every route declares by type: the session, the caller, a unit in scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from api.db.models import AdminUnit
from api.db.replica import read_session
from api.db.session import session_factory
from api.errors import ApiError
from api.principal import Principal
from api.services.auth import principal_for_token
from api.services.scope import check_scope
from api.services.sessions import COOKIE_NAME, principal_for_cookie

READ_METHODS = frozenset({"GET", "HEAD"})


async def get_db(request: Request) -> AsyncIterator[Session]:
    """A session on the app's database; committed by the service that writes.

    ``async`` because opening a session does no I/O (it connects at its first query, in
    the thread that runs it): a plain ``def`` would cost a hop to the thread pool and back
    on entry and on exit. Closing one still in a transaction rolls it back on the server,
    so that is done in the thread pool; after a commit, closing does no I/O.

    A request that only reads (GET, HEAD) reads on the replica when one is configured
    (``ZHILI_READ_DATABASE_URL``; ``api.db.replica``); its writes still go to the primary."""
    settings = request.app.state.settings
    if request.method in READ_METHODS:
        session = read_session(settings.database_url, settings.read_database_url)
    else:
        session = session_factory(settings.database_url)()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_db)]


def get_principal(request: Request, session: SessionDep) -> Principal:
    """The caller, from ``Authorization: Bearer <token>`` or else the dashboard's session
    cookie (so the browser can fetch /api/v1 URLs directly)."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    header = request.headers.get("authorization", "")
    cookie = request.cookies.get(COOKIE_NAME)
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "authentication required: send 'Authorization: Bearer <token>' "
                "(create one with 'zhili user add')",
            )
        principal = principal_for_token(session, token.strip()[:256])
        if principal is None:
            raise ApiError(401, "invalid, expired or revoked token")
    elif cookie:
        principal = principal_for_cookie(session, request.app.state.settings, cookie)
        if principal is None:
            raise ApiError(401, "your session has ended: log in again at /dashboard/login")
    else:
        raise ApiError(
            401,
            "authentication required: send 'Authorization: Bearer <token>' "
            "(create one with 'zhili user add') or log in at /dashboard/login",
        )
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]

# The role checks below do no I/O: ``async`` keeps them on the event loop instead of a hop
# to the thread pool and back for each (FastAPI runs plain ``def`` dependencies there).


async def get_reader(user: CurrentUser) -> Principal:
    """A caller allowed to read figures and maps."""
    if not user.can_read:
        raise ApiError(403, f"role {user.role!r} cannot read; it may only submit cases")
    return user


Reader = Annotated[Principal, Depends(get_reader)]


async def get_case_reader(user: Reader) -> Principal:
    """A caller allowed to list and read individual cases (not a wall display)."""
    if not user.can_list_cases:
        raise ApiError(403, f"role {user.role!r} shows figures and maps, not lists of cases")
    return user


CaseReader = Annotated[Principal, Depends(get_case_reader)]


async def get_case_writer(user: CurrentUser) -> Principal:
    """A caller allowed to submit and advance cases."""
    if not user.can_write_cases:
        raise ApiError(403, f"role {user.role!r} cannot write cases (intake or admin only)")
    return user


CaseWriter = Annotated[Principal, Depends(get_case_writer)]


async def get_admin(user: CurrentUser) -> Principal:
    """A caller with the admin role (its powers still end at its subtree)."""
    if not user.is_admin:
        raise ApiError(403, f"role {user.role!r} cannot do this; it needs the admin role")
    return user


Admin = Annotated[Principal, Depends(get_admin)]


def get_scoped_unit(
    session: SessionDep, user: Reader, code: Annotated[str, Path(max_length=32)]
) -> AdminUnit:
    """The ``{code}`` path parameter as a unit inside the caller's subtree, or a 404."""
    return check_scope(session, user, code)


ScopedUnit = Annotated[AdminUnit, Depends(get_scoped_unit)]
