"""Accounts: argon2 passwords, throttled logins (never a lock-out), account administration.

Login sessions and API tokens are in :mod:`.tokens` (re-exported here)."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts import approvals, totp
from ketacare.clinic.accounts.orm import User
from ketacare.clinic.accounts.passwords import password_problem
from ketacare.clinic.accounts.throttle import LoginThrottle, Refusal
from ketacare.clinic.accounts.tokens import (
    LISTED_KINDS,
    MFA_STEP_MINUTES,
    TOUCH_SECONDS,
    Principal,
    end_session,
    is_live,
    list_sessions,
    log_out_everywhere,
    resolve,
    revoke_all,
    revoke_session,
    start_session,
)
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.orm import Patient
from ketacare.core.errors import InvalidInput
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict, NotAuthenticated, Throttled
from ketacare.infra.permissions import Role
from ketacare.infra.settings import Settings

#: the login sessions and tokens (:mod:`.tokens`) are part of this service's API
__all__ = [
    "LISTED_KINDS",
    "MFA_STEP_MINUTES",
    "TOUCH_SECONDS",
    "Principal",
    "end_session",
    "is_live",
    "list_sessions",
    "log_out_everywhere",
    "resolve",
    "revoke_all",
    "revoke_session",
    "start_session",
]


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


def hash_password(password: str, *, settings: Settings) -> str:
    """An argon2id hash of ``password`` (the settings' parameters are kept in the hash)."""
    return password_hasher(settings).hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    """Whether ``password`` opens ``stored_hash`` (no audit, no throttle: for the demo)."""
    try:
        return PasswordHasher().verify(stored_hash, password)  # the hash carries its parameters
    except (VerificationError, InvalidHashError):
        return False


def validate_new_password(password: str, *, username: str, full_name: str) -> None:
    """Refuse a password that breaks a rule of :mod:`.passwords`, naming the rule."""
    problem = password_problem(password, username=username, full_name=full_name)
    if problem is not None:
        raise InvalidInput(problem)


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
    require_approval: bool | None = None,
) -> User:
    """Create an account (a patient account must name its patient record).

    A clinical role given by a person waits for a second person's approval (see
    :mod:`.approvals`; the account cannot log in until then); the system's own accounts
    (seeding, the operator's CLI) are created directly. ``require_approval`` overrides
    that choice (an account provisioned by single sign-on asks like a person would).
    """
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
    validate_new_password(password, username=username, full_name=full_name)
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
    audit.stored(
        user,
        session=session,
        actor=actor,
        at=now,
        resource_type="user",
        patient_id=patient_id,
        detail={"username": username, "role": role.value},
    )
    if require_approval is None:
        require_approval = approvals.needs_approval(role, actor)
    if require_approval and role in approvals.CLINICAL_ROLES:
        user.role_approved = False
        approvals.ask(session=session, actor=actor, user=user, role=role, now=now)
    return user


def authenticate(
    *,
    session: Session,
    username: str,
    password: str,
    now: datetime,
    throttle: LoginThrottle,
    settings: Settings,
    remote_addr: str | None = None,
) -> User:
    """Check a login, throttled per (account, address) pair and per address (never a lock).

    Unknown, deactivated and known accounts take the same path: a refusal while throttled
    comes before any look-up, and a wrong password costs one argon2 check either way.
    """
    refusal = throttle.refusal(username=username, address=remote_addr)
    if refusal is not None:
        _audit_login(session, username, None, "login_throttled", now, remote_addr)
        raise _throttled(refusal)
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not user.is_active:
        _dummy_verify(settings, password)  # same cost as a real check
        throttle.failed(username=username, address=remote_addr)
        _audit_login(session, username, None, "login_failed", now, remote_addr)
        raise NotAuthenticated("wrong username or password")
    hasher = password_hasher(settings)
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        throttle.failed(username=username, address=remote_addr)
        _audit_login(session, username, user, "login_failed", now, remote_addr)
        raise NotAuthenticated("wrong username or password") from None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    if not settings.local_passwords_for_staff and user.role != Role.PATIENT.value:
        _audit_login(session, username, user, "login_password_off", now, remote_addr)
        raise NotAuthenticated(
            "staff sign in with single sign-on here: local passwords are turned off"
        )
    if not user.role_approved:
        _audit_login(session, username, user, "login_unapproved", now, remote_addr)
        raise NotAuthenticated(
            "this account's role waits for approval by a second administrator or a "
            "physician: ask them to approve it"
        )
    # an enrolled account is logged in (and its pair's count cleared) only once its
    # second factor is checked: a right password alone must not reset wrong codes
    if user.totp_secret is not None:
        _audit_login(session, username, user, "password_ok", now, remote_addr)
    else:
        throttle.succeeded(username=username, address=remote_addr)
        _audit_login(session, username, user, "login", now, remote_addr)
    return user


def second_factor(
    *,
    session: Session,
    user: User,
    code: str,
    now: datetime,
    throttle: LoginThrottle,
    remote_addr: str | None = None,
) -> None:
    """Check the second factor of a login whose password was right (throttled like one).

    A wrong code counts as a failed login of the pair; a recovery code is spent.
    """
    refusal = throttle.refusal(username=user.username, address=remote_addr)
    if refusal is not None:
        _audit_login(session, user.username, user, "login_throttled", now, remote_addr)
        raise _throttled(refusal)
    kind = totp.check(session=session, user=user, code=code, now=now)
    if kind is None:
        throttle.failed(username=user.username, address=remote_addr)
        _audit_login(session, user.username, user, "totp_failed", now, remote_addr)
        raise NotAuthenticated(
            "wrong authenticator code: enter the 6 digits your app shows now, or an unused "
            "recovery code"
        )
    throttle.succeeded(username=user.username, address=remote_addr)
    _audit_login(
        session, user.username, user, "login", now, remote_addr, detail={"second_factor": kind}
    )


def _throttled(refusal: Refusal) -> Throttled:
    whose = "for this account from your address" if refusal.scope == "pair" else ""
    whose = whose or "from your address"
    return Throttled(
        f"too many failed logins {whose}: try again in {refusal.seconds} seconds "
        "(other addresses are not affected)",
        retry_after=refusal.seconds,
    )


def _audit_login(
    session: Session,
    username: str,
    user: User | None,
    action: str,
    now: datetime,
    remote_addr: str | None,
    detail: dict[str, str] | None = None,
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
        detail=detail,
    )


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
    throttle: LoginThrottle,
    settings: Settings,
    keep_session_id: int | None = None,
    remote_addr: str | None = None,
) -> None:
    """A user changes their own password; their other sessions and tokens end.

    A wrong current password counts as a failed login of the account from this address
    (whoever holds an unattended session must not guess the password without limit):
    once that pair is throttled the change is refused and this session ends. The caller
    commits after a refusal so that the audit row (and the ended session) stay: nothing
    else is written before one.
    """
    user = existing(session, User, user_id, "user")
    refusal = throttle.refusal(username=user.username, address=remote_addr)
    if refusal is None:
        try:
            password_hasher(settings).verify(user.password_hash, current)
        except (VerificationError, InvalidHashError):
            throttle.failed(username=user.username, address=remote_addr)
            _audit_login(session, user.username, user, "password_failed", now, remote_addr)
            refusal = throttle.refusal(username=user.username, address=remote_addr)
            if refusal is None:
                raise InvalidInput("the current password is wrong") from None
    if refusal is not None:
        if keep_session_id is not None:
            end_session(session=session, session_id=keep_session_id, now=now)
        raise _throttled(refusal)
    validate_new_password(new, username=user.username, full_name=user.full_name)
    if new == current:
        raise InvalidInput("the new password must differ from the current one")
    user.password_hash = hash_password(new, settings=settings)
    throttle.succeeded(username=user.username, address=remote_addr)
    revoke_all(session, user_id, now, keep_session_id)
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
    user = existing(session, User, user_id, "user")
    if user.id == actor.user_id and not active:
        raise InvalidInput("you cannot deactivate your own account")
    user.is_active = active
    if not active:
        revoke_all(session, user_id, now, None)
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
    """An administrator sets a new password; the account's sessions and tokens end."""
    user = existing(session, User, user_id, "user")
    validate_new_password(new, username=user.username, full_name=user.full_name)
    user.password_hash = hash_password(new, settings=settings)
    revoke_all(session, user_id, now, None)
    audit.record(
        session=session,
        actor=actor,
        action="password_reset",
        resource_type="user",
        resource_id=user.id,
        at=now,
    )
    return user
