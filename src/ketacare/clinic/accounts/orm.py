"""Tables of the accounts domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class User(Base):
    """A staff or patient account. Accounts are deactivated, never deleted."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # False while an account created with a clinical role waits for a second person's
    # approval (see approvals.py): it cannot log in until then
    role_approved: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # the TOTP second factor (RFC 6238): the confirmed secret, one offered at enrolment
    # and not yet confirmed, and the last time step accepted (a code is never accepted twice)
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_pending_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuthSession(Base):
    """A login session (cookie) or an API bearer token; only the token's hash is kept."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # "cookie" | "bearer" | "mfa" (a right password waiting for its second factor)
    kind: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    remote_addr: Mapped[str | None] = mapped_column(String(64), default=None)
    # the last request made with it (to the minute: see service.TOUCH_SECONDS), and the
    # browser or client that opened it, for the holder's list of their sessions
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    user_agent: Mapped[str | None] = mapped_column(String(255), default=None)


class RecoveryCode(Base):
    """A single-use recovery code of a TOTP second factor; only its hash is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class RoleRequest(Base):
    """A clinical role asked for an account, pending until a second person decides.

    Kept after the decision (approved or rejected) for the record; never deleted.
    """

    __tablename__ = "role_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    # the role held when asked; None for a new account (it holds none until approval)
    previous_role: Mapped[str | None] = mapped_column(String(20), default=None)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # "approved" | "rejected"; None while pending
    outcome: Mapped[str | None] = mapped_column(String(10), default=None)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
