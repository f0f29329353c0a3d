"""Accounts: argon2 passwords, lockout after repeated failures, sessions and tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import AuthSession, User
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.orm import Patient
from ketacare.core.errors import InvalidInput
from ketacare.infra.clock import as_utc
from ketacare.infra.errors import Conflict, LockedOut, NotAuthenticated
from ketacare.infra.permissions import Role
from ketacare.infra.settings import Settings


@lru_cache(maxsize=4)
def _argon2(time_cost: int, memory_kib: int, parallelism: int) -> tuple[PasswordHasher, str]:
    """The hasher of these parameters, and a hash of a non-password for timing-equal refusals."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    return hasher, hasher.hash("timing-equaliser-not-a-password")


def password_hasher(settings: Settings) -> PasswordHasher:
    """The argon2id hasher of the settings' password-hash parameters."""
    return _argon2(
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )[0]


def _dummy_verify(settings: Settings, password: str) -> None:
    """Spend what checking a real password costs, so a refusal does not tell why by its time."""
    hasher, dummy = _argon2(
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )
    try:
        hasher.verify(dummy, password)
    except VerificationError:
        pass


USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user of one request."""

    user_id: int
    username: str
    full_name: str
    role: Role
    patient_id: int | None
    session_id: int
    csrf_token: str

    def actor(self, remote_addr: str | None = None) -> audit.Actor:
        return audit.Actor(self.user_id, self.username, self.role.value, remote_addr)


def hash_password(password: str, *, settings: Settings) -> str:
    """An argon2id hash of ``password`` (the settings' parameters are kept in the hash)."""
    return password_hasher(settings).hash(password)


def validate_new_password(password: str) -> None:
    """Refuse passwords that are too short."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters")


def create_user(
    *,
    session: Session,
    username: str,
    full_name: str,
    role: Role | str,
    password: str,
    now: datetime,
    settings: Settings,
    patient_id: int | None = None,
    actor: audit.Actor = audit.SYSTEM,
) -> User:
    """Create an account (a patient account must name its patient record)."""
    if not USERNAME.match(username):
        raise InvalidInput(
            f"username {username!r} is not allowed: use 2-64 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(
            f"role {role!r} is not known: allowed {', '.join(r.value for r in Role)}"
        ) from None
    validate_new_password(password)
    if (role is Role.PATIENT) != (patient_id is not None):
        raise InvalidInput("a patient account needs a patient record, and only a patient account")
    if patient_id is not None and session.get(Patient, patient_id) is None:
        raise InvalidInput(f"patient {patient_id} does not exist")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is already taken")
    user = User(
        username=username,
        full_name=full_name.strip() or username,
        role=role.value,
        password_hash=hash_password(password, settings=settings),
        patient_id=patient_id,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="create",
        resource_type="user",
        resource_id=user.id,
        patient_id=patient_id,
        at=now,
        detail={"username": username, "role": role.value},
    )
    return user


def authenticate(
    *,
    session: Session,
    username: str,
    password: str,
    now: datetime,
    settings: Settings,
    remote_addr: str | None = None,
) -> User:
    """Check a login; count failures and lock the account after too many."""
    user = session.scalar(
        select(User).where(User.username == username.strip().lower()).with_for_update()
    )  # row lock: parallel guesses on PostgreSQL cannot overwrite each other's count
    if user is None or not user.is_active:
        _dummy_verify(settings, password)
        _audit_login(session, username, None, "login_failed", now, remote_addr)
        raise NotAuthenticated("wrong username or password")
    if user.locked_until is not None and as_utc(user.locked_until) > now:
        _dummy_verify(settings, password)  # same cost as a real check
        _audit_login(session, username, user, "login_locked", now, remote_addr)
        raise _locked_out(settings, user, now)
    hasher = password_hasher(settings)
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        _count_failure(session, user, "login_failed", now, settings, remote_addr)
        raise NotAuthenticated("wrong username or password") from None
    user.failed_logins = 0
    user.locked_until = None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    _audit_login(session, username, user, "login", now, remote_addr)
    return user


def _count_failure(
    session: Session,
    user: User,
    action: str,
    now: datetime,
    settings: Settings,
    remote_addr: str | None,
) -> bool:
    """Count one wrong password (at login or at a password change) and lock at the limit.

    Returns whether the account is now locked. The caller commits this even though the
    request is refused, so that guesses cannot be spread over requests for free.
    """
    user.failed_logins += 1
    locked = user.failed_logins >= settings.max_failed_logins
    if locked:
        user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
        user.failed_logins = 0
    _audit_login(session, user.username, user, action, now, remote_addr)
    return locked


def _locked_out(settings: Settings, user: User, now: datetime) -> LockedOut:
    assert user.locked_until is not None
    minutes = max(1, round((as_utc(user.locked_until) - now).total_seconds() / 60))
    return LockedOut(
        f"account locked after {settings.max_failed_logins} failed logins: "
        f"try again in {minutes} minute(s) or ask an administrator"
    )


def _audit_login(
    session: Session,
    username: str,
    user: User | None,
    action: str,
    now: datetime,
    remote_addr: str | None,
) -> None:
    actor = audit.Actor(
        user.id if user else None, username[:64], user.role if user else "unknown", remote_addr
    )
    audit.record(
        session=session,
        actor=actor,
        action=action,
        resource_type="auth",
        resource_id=user.id if user else None,
        at=now,
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    *,
    session: Session,
    user: User,
    kind: str,
    now: datetime,
    settings: Settings,
    remote_addr: str | None = None,
) -> str:
    """Open a login session (``cookie``) or issue an API token (``bearer``); returns the token."""
    hours = settings.session_hours if kind == "cookie" else settings.token_hours
    token = secrets.token_urlsafe(32)
    session.add(
        AuthSession(
            token_hash=_digest(token),
            kind=kind,
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            remote_addr=remote_addr,
        )
    )
    session.flush()
    return token


# Built once, as it runs on every request: table columns, not mapped entities.
_AUTH = AuthSession.__table__
_USERS = User.__table__
_RESOLVE = (
    select(
        _AUTH.c.id,
        _AUTH.c.csrf_token,
        _AUTH.c.revoked_at,
        _AUTH.c.expires_at,
        _USERS.c.id,
        _USERS.c.username,
        _USERS.c.full_name,
        _USERS.c.role,
        _USERS.c.patient_id,
        _USERS.c.is_active,
    )
    .join(_USERS, _USERS.c.id == _AUTH.c.user_id)
    .where(_AUTH.c.token_hash == bindparam("digest"), _AUTH.c.kind == bindparam("kind"))
)


def resolve(*, session: Session, token: str, kind: str, now: datetime) -> Principal | None:
    """The principal behind a live token, or None."""
    row = session.execute(_RESOLVE, {"digest": _digest(token), "kind": kind}).first()
    if row is None:
        return None
    auth_id, csrf, revoked_at, expires_at, user_id, username, full_name, role, pid, active = row
    if revoked_at is not None or as_utc(expires_at) <= now or not active:
        return None
    return Principal(
        user_id=user_id,
        username=username,
        full_name=full_name,
        role=Role(role),
        patient_id=pid,
        session_id=auth_id,
        csrf_token=csrf,
    )


def end_session(*, session: Session, session_id: int, now: datetime) -> None:
    """Log out: revoke the session (kept for the record)."""
    auth = session.get(AuthSession, session_id)
    if auth is not None and auth.revoked_at is None:
        auth.revoked_at = now


def list_users(*, session: Session) -> list[User]:
    """Every account, by username."""
    return list(session.scalars(select(User).order_by(User.username)))


def count_users(*, session: Session) -> int:
    """How many accounts exist (0 on a fresh installation)."""
    return session.scalar(select(func.count(User.id))) or 0


def change_password(
    *,
    session: Session,
    user_id: int,
    current: str,
    new: str,
    now: datetime,
    settings: Settings,
    keep_session_id: int | None = None,
    remote_addr: str | None = None,
) -> None:
    """A user changes their own password; their other sessions and tokens end.

    A wrong current password counts toward the lockout as a failed login does (whoever
    holds an unattended session must not guess the password without limit); at the
    limit the account locks and every session of it ends. The caller commits after a
    refusal so that the count and its audit row stay: nothing else is written before
    one.
    """
    user = session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise InvalidInput(f"user {user_id} does not exist")
    if user.locked_until is not None and as_utc(user.locked_until) > now:
        raise _locked_out(settings, user, now)
    try:
        password_hasher(settings).verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        action = "password_failed"
        if _count_failure(session, user, action, now, settings, remote_addr):
            _revoke_all(session, user_id, now, keep=None)
            raise _locked_out(settings, user, now) from None
        raise InvalidInput("the current password is wrong") from None
    validate_new_password(new)
    if new == current:
        raise InvalidInput("the new password must differ from the current one")
    user.password_hash = hash_password(new, settings=settings)
    user.failed_logins = 0
    _revoke_all(session, user_id, now, keep_session_id)
    audit.record(
        session=session,
        actor=audit.Actor(user.id, user.username, user.role),
        action="password_change",
        resource_type="user",
        resource_id=user.id,
        at=now,
    )


def set_active(
    *, session: Session, actor: audit.Actor, user_id: int, active: bool, now: datetime
) -> User:
    """Deactivate (or reactivate) an account; it is never deleted. Deactivation ends sessions."""
    user = session.get(User, user_id)
    if user is None:
        raise InvalidInput(f"user {user_id} does not exist")
    if user.id == actor.user_id and not active:
        raise InvalidInput("you cannot deactivate your own account")
    user.is_active = active
    if not active:
        _revoke_all(session, user_id, now, None)
    audit.record(
        session=session,
        actor=actor,
        action="activate" if active else "deactivate",
        resource_type="user",
        resource_id=user.id,
        patient_id=user.patient_id,
        at=now,
    )
    return user


def reset_password(
    *,
    session: Session,
    actor: audit.Actor,
    user_id: int,
    new: str,
    now: datetime,
    settings: Settings,
) -> User:
    """An administrator sets a new password (and unlocks the account)."""
    user = session.get(User, user_id)
    if user is None:
        raise InvalidInput(f"user {user_id} does not exist")
    validate_new_password(new)
    user.password_hash = hash_password(new, settings=settings)
    user.failed_logins = 0
    user.locked_until = None
    _revoke_all(session, user_id, now, None)
    audit.record(
        session=session,
        actor=actor,
        action="password_reset",
        resource_type="user",
        resource_id=user.id,
        at=now,
    )
    return user


def _revoke_all(session: Session, user_id: int, now: datetime, keep: int | None) -> None:
    for auth in session.scalars(
        select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    ):
        if auth.id != keep:
            auth.revoked_at = now
