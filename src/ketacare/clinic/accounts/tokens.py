"""Login sessions and API tokens: issued, resolved on every request, listed and ended.

A token is stored only as its SHA-256 digest; a page session (``cookie``) also ends
after the site's idle time. Who may get one (passwords, second factor, throttling) is
the accounts service's (:mod:`~ketacare.clinic.accounts.service`) to decide.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import AuthSession, User
from ketacare.clinic.audit import service as audit
from ketacare.core.errors import InvalidInput
from ketacare.infra.clock import as_utc
from ketacare.infra.permissions import Role
from ketacare.infra.settings import Settings

#: how long a right password waits for its second factor
MFA_STEP_MINUTES = 5
#: a session's last-seen time is written at most once a minute (not at every request)
TOUCH_SECONDS = 60


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
    ended = revoke_all(session, actor.user_id, now, None)
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


def revoke_all(session: Session, user_id: int, now: datetime, keep: int | None) -> int:
    ended = 0
    for auth in session.scalars(
        select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    ):
        if auth.id != keep:
            auth.revoked_at = now
            ended += as_utc(auth.expires_at) > now
    return ended
