"""Login, logout, who am I, and the caller's API tokens."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.db.models import ApiToken, User
from api.deps import CurrentUser, SessionDep
from api.errors import ApiError
from api.responses import ORJSONResponse
from api.services import auth as auth_service
from api.services.scope import in_scope
from api.services.sessions import (
    COOKIE_NAME,
    close_session,
    cookie_options,
    open_session,
)
from api.services.units import get_unit

router = APIRouter(prefix="/auth", tags=["auth"])

LOGIN_PAGE = "/dashboard/login"
HOME_PAGE = "/dashboard/"
MAX_LOGIN_BODY = 4096

_credentials_schema = {
    "type": "object",
    "required": ["name", "password"],
    "properties": {
        "name": {"type": "string", "maxLength": 64},
        "password": {"type": "string", "maxLength": 256},
        "next": {"type": "string", "maxLength": 512},
    },
}


class Me(BaseModel):
    """The caller as the server sees it."""

    name: str
    role: str
    unit_code: str
    unit_name: str | None
    unit_level: str | None
    via: str = Field(description="token or session")
    can_read: bool
    can_write_cases: bool


class TokenInfo(BaseModel):
    """An API token or dashboard session (never the token itself)."""

    id: int
    user: str
    label: str | None
    state: str = Field(description="active, revoked or expired")
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class NewToken(BaseModel):
    """A token to create for the caller."""

    label: str = Field("api", min_length=1, max_length=64)
    ttl_days: int = Field(90, ge=1, le=3650)


class IssuedToken(TokenInfo):
    token: str = Field(description="shown once; only its hash is kept")


def _safe_next(target: str | None) -> str:
    """Only a path of this site's dashboard (no open redirect)."""
    unsafe = ("//", "\\", "\n", "\r")
    if target and target.startswith("/dashboard") and not any(u in target for u in unsafe):
        return target[:512]
    return HOME_PAGE


def _me(session, principal: auth_service.Principal) -> Me:
    unit = get_unit(session, principal.unit_code)
    return Me(
        name=principal.name,
        role=principal.role,
        unit_code=principal.unit_code,
        unit_name=unit.name if unit else None,
        unit_level=unit.level if unit else None,
        via=principal.via,
        can_read=principal.can_read,
        can_write_cases=principal.can_write_cases,
    )


async def _credentials(request: Request) -> tuple[str, str, str | None, bool]:
    """(name, password, next, is_form) from a JSON or form body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > MAX_LOGIN_BODY:
        raise ApiError(413, f"a login is at most {MAX_LOGIN_BODY} bytes")
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        is_form = True
    elif content_type in ("application/json", ""):
        try:
            values = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            raise ApiError(
                400, "the body is not JSON: send {'name': ..., 'password': ...}"
            ) from None
        is_form = False
    else:
        raise ApiError(415, "send the login as JSON or as an HTML form")
    if not isinstance(values, dict):
        raise ApiError(422, "send an object with 'name' and 'password'")
    name = values.get("name", values.get("username"))
    password = values.get("password")
    nxt = values.get("next")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise ApiError(422, "both 'name' and 'password' are required, as strings")
    if len(name) > 64 or len(password) > 256:
        raise ApiError(422, "name is at most 64 and password at most 256 characters")
    return name, password, nxt if isinstance(nxt, str) else None, is_form


@router.post(
    "/login",
    response_model=Me,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _credentials_schema},
                "application/x-www-form-urlencoded": {"schema": _credentials_schema},
            },
        }
    },
)
async def login(request: Request, session: SessionDep) -> Response:
    """Log in with name and password (JSON, or an HTML form that is then redirected);
    sets the dashboard's session cookie (HttpOnly, SameSite=Lax)."""
    name, password, nxt, is_form = await _credentials(request)
    settings = request.app.state.settings
    client = request.client.host if request.client else None

    def attempt() -> tuple[str | None, Me | None, str | None]:
        try:
            user = auth_service.authenticate(session, name, password, client)
        except auth_service.LoginRefused as refused:
            session.commit()  # the failure stays in the audit log
            return None, None, refused.reason
        cookie = open_session(session, settings, user)
        principal = auth_service.Principal(user.id, user.name, user.role, user.unit_code, "session")
        me = _me(session, principal)
        session.commit()
        return cookie, me, None

    cookie, me, refused = await run_in_threadpool(attempt)
    if refused is not None:
        if is_form:
            target = f"{LOGIN_PAGE}?error={refused}&next={quote(_safe_next(nxt))}"
            target += f"&name={quote((name or '')[:64])}"  # the form keeps the user name
            return RedirectResponse(target, status_code=303)
        if refused == "locked":
            raise ApiError(
                429,
                f"too many failed logins for {name!r}: wait "
                f"{int(auth_service.FAILED_LOGIN_WINDOW.total_seconds() // 60)} minutes",
            )
        raise ApiError(401, "wrong user name or password")
    response: Response
    if is_form:
        response = RedirectResponse(_safe_next(nxt), status_code=303)
    else:
        response = ORJSONResponse(me.model_dump())
    response.set_cookie(value=cookie, **cookie_options(settings))
    return response


@router.post("/logout", status_code=200)
def logout(request: Request, session: SessionDep) -> Response:
    """End the dashboard session named by the cookie (it is revoked server-side)."""
    cookie = request.cookies.get(COOKIE_NAME)
    closed = bool(cookie) and close_session(session, request.app.state.settings, cookie)
    session.commit()
    wants_html = "text/html" in request.headers.get("accept", "")
    response: Response
    if wants_html:
        response = RedirectResponse(LOGIN_PAGE, status_code=303)
    else:
        response = ORJSONResponse({"logged_out": closed})
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")
    return response


@router.get("/whoami", response_model=Me)
def whoami(session: SessionDep, user: CurrentUser) -> Me:
    """Who the token or session acts as: name, role, home unit."""
    return _me(session, user)


def _info(token: ApiToken, owner: str) -> TokenInfo:
    return TokenInfo(
        id=token.id,
        user=owner,
        label=token.label,
        state=auth_service.token_state(token),
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


def _visible_user(session, user: auth_service.Principal, name: str) -> User:
    """The caller itself, or (for an admin) a user whose home unit is in its subtree."""
    account = auth_service.find_user(session, name)
    if account is not None and (
        account.id == user.user_id
        or (user.is_admin and in_scope(session, user.unit_code, account.unit_code))
    ):
        return account
    raise ApiError(404, f"no user {name!r} in your jurisdiction")


@router.get("/tokens", response_model=list[TokenInfo])
def list_tokens(
    session: SessionDep,
    user: CurrentUser,
    name: Annotated[str | None, Query(alias="user", max_length=64)] = None,
) -> list[TokenInfo]:
    """Your tokens and sessions (an admin may name a user of its subtree with ``user=``)."""
    account = _visible_user(session, user, name or user.name)
    return [_info(t, account.name) for t in auth_service.list_tokens(session, account.id)]


@router.post("/tokens", response_model=IssuedToken, status_code=201)
def create_token(
    request: Request, session: SessionDep, user: CurrentUser, body: NewToken
) -> IssuedToken:
    """Create an API token for yourself (lifetime capped by the server's token lifetime);
    the token is shown in this response only."""
    account = session.get(User, user.user_id)
    if account is None:
        raise ApiError(404, "your user no longer exists")
    ttl = min(body.ttl_days, request.app.state.settings.token_ttl_days)
    token = auth_service.issue_token(session, account, ttl, label=body.label)
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == auth_service.hash_token(token))
    )
    session.commit()
    return IssuedToken(**_info(row, account.name).model_dump(), token=token)


@router.delete("/tokens/{token_id}", response_model=TokenInfo)
def revoke_token(
    session: SessionDep,
    user: CurrentUser,
    token_id: Annotated[int, Path(ge=1, le=2**62)],
) -> TokenInfo:
    """Revoke one of your tokens or sessions (an admin: any of its subtree's users')."""
    token = session.get(ApiToken, token_id)
    owner = session.get(User, token.user_id) if token is not None else None
    if owner is None or not (
        owner.id == user.user_id
        or (user.is_admin and in_scope(session, user.unit_code, owner.unit_code))
    ):
        raise ApiError(404, f"no token {token_id} of yours or of your jurisdiction")
    auth_service.revoke_token(session, token, user)
    session.commit()
    return _info(token, owner.name)
