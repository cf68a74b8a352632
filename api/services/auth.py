"""Users, passwords, API tokens, and the principal (``api.principal``) a token stands for.

Passwords are hashed with argon2 (argon2-cffi); tokens are random and only their SHA-256 is
stored. A dashboard session is an API token labelled ``session`` (see ``api.services.sessions``),
so listing, revoking and expiry work the same way for both.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from api.db.models import ApiToken, AuditLog, User
from api.db.populations import UserPermission
from api.principal import PERMISSIONS, ROLES, SPECIAL_POPULATIONS, Principal
from api.services.audit import audit

SESSION_LABEL = "session"
MIN_PASSWORD_LENGTH = 8
# Failed logins for one name within the window before further attempts are refused.
MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW = dt.timedelta(minutes=5)
# A token's last use is written at most this often (reads must not write on every request).
LAST_USED_RESOLUTION = dt.timedelta(minutes=10)

_hasher = PasswordHasher()  # RFC 9106 defaults of argon2-cffi (argon2id)
_dummy_hashes: dict[int, str] = {}


def _dummy_hash() -> str:
    """A hash to verify against when the user is unknown, so both cost the same time."""
    key = id(_hasher)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = _hasher.hash("not a password of anyone")
    return _dummy_hashes[key]


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """The argon2 hash of ``password``; refuses passwords too short to be worth hashing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password too short: use at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def create_user(
    session: Session,
    name: str,
    role: str,
    unit_code: str,
    password_hash: str | None = None,
) -> User:
    """Create a user; the caller checks that ``unit_code`` exists."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    user = User(
        name=name,
        role=role,
        unit_code=unit_code,
        password_hash=password_hash,
        active=True,
        created_at=now_utc(),
    )
    session.add(user)
    session.flush()
    audit(session, name, unit_code, "user.create", target=name, detail={"role": role})
    return user


def grant_permission(session: Session, user: User, permission: str) -> None:
    """Give ``user`` a permission beyond its role (``special_populations``), audited."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}: use one of {', '.join(PERMISSIONS)}")
    if session.get(UserPermission, (user.id, permission)) is None:
        session.add(UserPermission(user_id=user.id, permission=permission))
        session.flush()
        audit(
            session,
            user.name,
            user.unit_code,
            "user.permit",
            target=user.name,
            detail={"permission": permission},
        )


def set_password(session: Session, user: User, password: str) -> None:
    """Give ``user`` a new password (argon2-hashed)."""
    user.password_hash = hash_password(password)
    audit(session, user.name, user.unit_code, "user.password", target=user.name)
    session.flush()


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def _new_token(
    session: Session, user: User, ttl: dt.timedelta, label: str | None
) -> tuple[ApiToken, str]:
    token = "zh_" + secrets.token_urlsafe(32)
    now = now_utc()
    row = ApiToken(
        user_id=user.id,
        token_hash=hash_token(token),
        label=label,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    return row, token  # the token is shown once, never stored


def issue_token(session: Session, user: User, ttl_days: int, label: str | None = None) -> str:
    """Create a token for ``user`` and return it (shown once; only its hash is kept)."""
    row, token = _new_token(session, user, dt.timedelta(days=ttl_days), label)
    audit(
        session,
        user.name,
        user.unit_code,
        "token.create",
        target=user.name,
        detail={"token_id": row.id, "label": label, "expires_at": row.expires_at.isoformat()},
    )
    return token


def issue_session_token(session: Session, user: User, ttl: dt.timedelta) -> tuple[int, str]:
    """A token labelled ``session`` for a dashboard login: (token id, token)."""
    row, token = _new_token(session, user, ttl, SESSION_LABEL)
    return row.id, token


def principal_for_token(session: Session, token: str, via: str = "token") -> Principal | None:
    """The principal of a valid (unexpired, unrevoked, active-user) token, else None.

    ``via="session"`` accepts only session tokens (an API token cannot pose as a session)."""
    now = now_utc()
    row = session.execute(_TOKEN_PRINCIPAL, {"token_hash": hash_token(token)}).first()
    if row is None:
        return None
    if row.revoked_at is not None or row.expires_at <= now or not row.active:
        return None
    if via == "session" and row.label != SESSION_LABEL:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        _touch(session, row.token_id, now)
    return Principal(
        user_id=row.user_id,
        name=row.name,
        role=row.role,
        unit_code=row.unit_code,
        via=via,
        token_id=row.token_id,
        permissions=frozenset([SPECIAL_POPULATIONS]) if row.special_populations else frozenset(),
    )


# columns, not entities: every request runs it, and loading two ORM objects cost ~0.9 ms
_TOKEN_PRINCIPAL = (
    select(
        ApiToken.id.label("token_id"),
        ApiToken.label,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        ApiToken.last_used_at,
        User.id.label("user_id"),
        User.name,
        User.role,
        User.unit_code,
        User.active,
        select(UserPermission.user_id)
        .where(
            UserPermission.user_id == User.id,
            UserPermission.permission == SPECIAL_POPULATIONS,
        )
        .exists()
        .label("special_populations"),
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


_last_touch: dict[int, dt.datetime] = {}


def _touch(session: Session, token_id: int, now: dt.datetime) -> None:
    """Record a token's last use (at most once per ``LAST_USED_RESOLUTION`` per process) on
    the request's own connection, committed at once: the request has written nothing yet,
    and a second connection per request could exhaust the pool under load."""
    seen = _last_touch.get(token_id)
    if seen is not None and now - seen < LAST_USED_RESOLUTION:
        return
    _last_touch[token_id] = now
    if len(_last_touch) > 100_000:
        _last_touch.clear()
    try:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
        session.commit()
    except Exception:  # a busy SQLite file or a blip: the figure is advisory
        session.rollback()


def recent_failed_logins(session: Session, name: str) -> int:
    """Failed logins for ``name`` within the lock-out window (counted from the audit log)."""
    since = now_utc() - FAILED_LOGIN_WINDOW
    return int(
        session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "login.failure")
            .where(AuditLog.target == name[:128])
            .where(AuditLog.at >= since)
        )
        or 0
    )


class LoginRefused(Exception):
    """A login that did not succeed; ``reason`` is ``invalid`` or ``locked``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _refused(
    session: Session, name: str, user: User | None, reason: str, client: str | None
) -> LoginRefused:
    """A refused login for ``reason``, audited as ``login.failure`` (raise it)."""
    audit(
        session,
        name[:64],
        user.unit_code if user else None,
        "login.failure",
        target=name[:128],
        detail={"reason": reason, "client": client},
    )
    return LoginRefused(reason)


def authenticate(session: Session, name: str, password: str, client: str | None = None) -> User:
    """The active user with ``name`` and ``password``, or ``LoginRefused``; both outcomes are
    audited in the caller's transaction (commit it in either case)."""
    user = find_user(session, name) if name else None
    if recent_failed_logins(session, name) >= MAX_FAILED_LOGINS:
        raise _refused(session, name, user, "locked", client)
    ok = False
    try:
        ok = _hasher.verify(
            user.password_hash if user and user.password_hash else _dummy_hash(), password
        )
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.password_hash or not user.active:
        raise _refused(session, name, user, "invalid", client)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    audit(
        session,
        user.name,
        user.unit_code,
        "login.success",
        target=user.name,
        detail={"client": client},
    )
    return user


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    """Every token of a user, newest first (revoked and expired ones included)."""
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
        )
    )


def token_state(token: ApiToken, now: dt.datetime | None = None) -> str:
    """``active``, ``revoked`` or ``expired``."""
    now = now or now_utc()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at <= now:
        return "expired"
    return "active"


def revoke_token(session: Session, token: ApiToken, by: Principal | User | None) -> bool:
    """Revoke ``token`` (audited); False when it was revoked already."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = now_utc()
    owner = session.get(User, token.user_id)
    actor_name = by.name if by is not None else None
    actor_unit = by.unit_code if by is not None else (owner.unit_code if owner else None)
    action = "session.close" if token.label == SESSION_LABEL else "token.revoke"
    audit(
        session,
        actor_name,
        actor_unit,
        action,
        target=owner.name if owner else None,
        detail={"token_id": token.id, "label": token.label},
    )
    session.flush()
    return True
