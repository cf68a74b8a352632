"""Dashboard sessions: a signed cookie that names a server-side session.

A session is an API token labelled ``session`` (so logout, revocation and expiry are the
token's); the cookie carries that random token signed with the session secret (itsdangerous),
nothing else. The same cookie is read by the API (``api.deps.get_principal``) and by the
Dash callbacks (``dashboard.auth.current_principal``).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from api.db.models import ApiToken, User
from api.principal import Principal
from api.services.auth import issue_session_token, principal_for_token, revoke_token
from api.settings import Settings

COOKIE_NAME = "zhili_session"
SESSION_TTL = dt.timedelta(days=7)
_SALT = "zhili-session-v1"
_secrets: dict[str, str] = {}


def session_secret(settings: Settings) -> str:
    """``settings.session_secret``, or one generated once and kept (mode 0600) in the cache
    directory, so every worker process on this machine signs with the same key. Servers on
    several machines must share ``ZHILI_SESSION_SECRET``."""
    if settings.session_secret:
        return settings.session_secret
    path = Path(settings.cache_dir).resolve() / "session_secret"
    key = str(path)
    if key in _secrets:
        return _secrets[key]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        candidate = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        try:
            os.link(candidate, path)  # atomic: the first writer wins
        except FileExistsError:
            pass
        finally:
            candidate.unlink(missing_ok=True)
    _secrets[key] = path.read_text().strip()
    return _secrets[key]


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(session_secret(settings), salt=_SALT)


def open_session(session: Session, settings: Settings, user: User) -> str:
    """Start a session for ``user``; returns the cookie value (the caller commits)."""
    _, token = issue_session_token(session, user, SESSION_TTL)
    return _serializer(settings).dumps(token)


def _token_of(settings: Settings, cookie: str) -> str | None:
    if not cookie or len(cookie) > 512:
        return None
    try:
        token = _serializer(settings).loads(cookie, max_age=int(SESSION_TTL.total_seconds()))
    except BadSignature:  # includes SignatureExpired
        return None
    return token if isinstance(token, str) else None


def principal_for_cookie(session: Session, settings: Settings, cookie: str) -> Principal | None:
    """The principal of a valid session cookie, else None."""
    token = _token_of(settings, cookie)
    if token is None:
        return None
    return principal_for_token(session, token, via="session")


def close_session(session: Session, settings: Settings, cookie: str) -> bool:
    """Revoke the session named by ``cookie`` (logout); False when there was none."""
    principal = principal_for_cookie(session, settings, cookie)
    if principal is None:
        return False
    tok = session.get(ApiToken, principal.token_id)
    return revoke_token(session, tok, principal) if tok is not None else False


def cookie_options(settings: Settings) -> dict:
    """Attributes of the session cookie (HttpOnly, SameSite=Lax, path /)."""
    return {
        "key": COOKIE_NAME,
        "max_age": int(SESSION_TTL.total_seconds()),
        "httponly": True,
        "samesite": "lax",
        "path": "/",
        "secure": False,  # intranets often serve plain HTTP; a TLS proxy may add Secure
    }
