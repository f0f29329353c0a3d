"""Accounts: argon2 passwords, throttled logins (never a lock-out), sessions and tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from ketacare.clinic.accounts import approvals, totp
from ketacare.clinic.accounts.orm import AuthSession, User
from ketacare.clinic.accounts.passwords import password_problem
from ketacare.clinic.accounts.throttle import LoginThrottle, Refusal
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.orm import Patient
from ketacare.core.errors import InvalidInput
from ketacare.infra.clock import as_utc
from ketacare.infra.errors import Conflict, NotAuthenticated, Throttled
from ketacare.infra.permissions import Role
from ketacare.infra.settings import Settings

#: how long a right password waits for its second factor
MFA_STEP_MINUTES = 5
#: a session's last-seen time is written at most once a minute (not at every request)
TOUCH_SECONDS = 60


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
    totp_enrolled: bool = False

    def actor(self, remote_addr: str | None = None) -> audit.Actor:
        return audit.Actor(self.user_id, self.username, self.role.value, remote_addr)


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
    user_agent: str | None = None,
) -> str:
    """Open a login session (``cookie``) or issue an API token (``bearer``); returns the token."""
    hours = {"cookie": settings.session_hours, "mfa": MFA_STEP_MINUTES / 60}.get(
        kind, settings.token_hours
    )
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
            last_seen_at=now,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    session.flush()
    return token


# Built once, as it runs on every request: table columns, not mapped entities.
_AUTH = cast(Table, AuthSession.__table__)
_USERS = User.__table__
_RESOLVE = (
    select(
        _AUTH.c.id,
        _AUTH.c.csrf_token,
        _AUTH.c.revoked_at,
        _AUTH.c.expires_at,
        _AUTH.c.last_seen_at,
        _USERS.c.id,
        _USERS.c.username,
        _USERS.c.full_name,
        _USERS.c.role,
        _USERS.c.patient_id,
        _USERS.c.is_active,
        _USERS.c.role_approved,
        _USERS.c.totp_secret.is_not(None),
    )
    .join(_USERS, _USERS.c.id == _AUTH.c.user_id)
    .where(_AUTH.c.token_hash == bindparam("digest"), _AUTH.c.kind == bindparam("kind"))
)


_TOUCH = (
    update(_AUTH)
    .where(_AUTH.c.id == bindparam("auth_id"))
    .values(last_seen_at=bindparam("seen"))
    .execution_options(synchronize_session=False)
)


def resolve(
    *,
    session: Session,
    token: str,
    kind: str,
    now: datetime,
    idle_minutes: float = 0,
    touch: bool = True,
) -> Principal | None:
    """The principal behind a live token, or None.

    ``idle_minutes`` (page sessions): a session not used for longer has ended (0: never).
    ``touch``: this request counts as use (a background refresh does not), and the
    session's last-seen time moves on (written at most every :data:`TOUCH_SECONDS`).
    """
    row = session.execute(_RESOLVE, {"digest": _digest(token), "kind": kind}).first()
    if row is None:
        return None
    (
        auth_id,
        csrf,
        revoked_at,
        expires_at,
        last_seen_at,
        user_id,
        username,
        full_name,
        role,
        pid,
        active,
        approved,
        enrolled,
    ) = row
    if revoked_at is not None or as_utc(expires_at) <= now or not (active and approved):
        return None
    seen = as_utc(last_seen_at) if last_seen_at is not None else None
    if idle_minutes and seen is not None and now - seen > timedelta(minutes=idle_minutes):
        return None
    if touch and (seen is None or (now - seen).total_seconds() >= TOUCH_SECONDS):
        session.execute(_TOUCH, {"auth_id": auth_id, "seen": now})
    return Principal(
        user_id=user_id,
        username=username,
        full_name=full_name,
        role=Role(role),
        patient_id=pid,
        session_id=auth_id,
        csrf_token=csrf,
        totp_enrolled=bool(enrolled),
    )


def end_session(*, session: Session, session_id: int, now: datetime) -> None:
    """Log out: revoke the session (kept for the record)."""
    auth = session.get(AuthSession, session_id)
    if auth is not None and auth.revoked_at is None:
        auth.revoked_at = now


#: the kinds of session a person holds and may list and end (not a pending second factor)
LISTED_KINDS = ("cookie", "bearer")


def is_live(auth: AuthSession, *, now: datetime, idle_minutes: float) -> bool:
    """Whether a session or token still opens anything (not revoked, expired or idle)."""
    if auth.revoked_at is not None or as_utc(auth.expires_at) <= now:
        return False
    seen = as_utc(auth.last_seen_at) if auth.last_seen_at is not None else None
    idle = timedelta(minutes=idle_minutes)
    return not (auth.kind == "cookie" and idle_minutes and seen and now - seen > idle)


def list_sessions(
    *, session: Session, user_id: int, now: datetime, settings: Settings
) -> list[AuthSession]:
    """One's live page sessions and API tokens, the most recently used first."""
    rows = session.scalars(
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.kind.in_(LISTED_KINDS),
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.last_seen_at.desc(), AuthSession.id.desc())
    )
    idle = settings.idle_timeout_minutes
    return [auth for auth in rows if is_live(auth, now=now, idle_minutes=idle)]


def revoke_session(*, session: Session, actor: audit.Actor, session_id: int, now: datetime) -> None:
    """End one of one's own sessions or tokens (another person's is refused)."""
    auth = session.get(AuthSession, session_id)
    if auth is None or auth.user_id != actor.user_id or auth.kind not in LISTED_KINDS:
        raise InvalidInput(f"session {session_id} is not one of your sessions or tokens")
    if auth.revoked_at is None:
        auth.revoked_at = now
    audit.record(
        session=session,
        actor=actor,
        action="session_revoke",
        resource_type="auth",
        resource_id=actor.user_id,
        at=now,
        detail={"session_id": auth.id, "kind": auth.kind},
    )


def log_out_everywhere(*, session: Session, actor: audit.Actor, now: datetime) -> int:
    """End every page session and API token of the actor (this one too); returns how many."""
    if actor.user_id is None:
        raise InvalidInput("only a person's account has sessions to end")
    ended = _revoke_all(session, actor.user_id, now, None)
    audit.record(
        session=session,
        actor=actor,
        action="logout_all",
        resource_type="auth",
        resource_id=actor.user_id,
        at=now,
        detail={"ended": ended},
    )
    return ended


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
    user = session.get(User, user_id)
    if user is None:
        raise InvalidInput(f"user {user_id} does not exist")
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
    """An administrator sets a new password; the account's sessions and tokens end."""
    user = session.get(User, user_id)
    if user is None:
        raise InvalidInput(f"user {user_id} does not exist")
    validate_new_password(new, username=user.username, full_name=user.full_name)
    user.password_hash = hash_password(new, settings=settings)
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


def _revoke_all(session: Session, user_id: int, now: datetime, keep: int | None) -> int:
    ended = 0
    for auth in session.scalars(
        select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    ):
        if auth.id != keep:
            auth.revoked_at = now
            ended += as_utc(auth.expires_at) > now
    return ended
