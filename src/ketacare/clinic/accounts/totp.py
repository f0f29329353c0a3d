"""The TOTP second factor (RFC 6238, `pyotp`): enrolment, checks, recovery codes, reset.

A code is the 6-digit TOTP of the current 30-second step, or of the step before or after
(clock drift); a step once accepted is never accepted again (RFC 6238 §5.2). Recovery
codes are 10 random codes of 16 base-32 characters (80 bits each), kept as SHA-256
hashes (random codes of that length need no slow hash), each usable once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
import segno
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import RecoveryCode, User
from ketacare.clinic.audit import service as audit
from ketacare.core.errors import InvalidInput
from ketacare.infra.db import existing
from ketacare.infra.settings import Settings

RECOVERY_CODES = 10
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def required(settings: Settings, role: str) -> bool:
    """Whether this role must sign in with a second factor."""
    return role in settings.totp_roles


def needs_second_factor(settings: Settings, user: User) -> bool:
    """Whether a login of this account asks for a code (required, or enrolled anyway)."""
    return user.totp_secret is not None or required(settings, user.role)


def offer(*, session: Session, user_id: int) -> str:
    """The secret offered for enrolment (kept until confirmed or replaced)."""
    user = _user(session, user_id)
    if user.totp_pending_secret is None:
        user.totp_pending_secret = pyotp.random_base32()
    return user.totp_pending_secret


def provisioning_uri(*, secret: str, username: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as an SVG ``data:`` URI (allowed by the page's CSP)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=4))


def _check_totp(user: User, secret: str, code: str, now: datetime) -> bool:
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return False
    totp = pyotp.TOTP(secret)
    base = totp.timecode(now)
    for step in (base, base - 1, base + 1):
        if step > (user.totp_last_step or -1) and hmac.compare_digest(
            totp.generate_otp(step), code
        ):
            user.totp_last_step = step
            return True
    return False


def confirm(
    *, session: Session, user_id: int, code: str, now: datetime, actor: audit.Actor
) -> list[str]:
    """Confirm enrolment with a first code; returns the recovery codes (shown once)."""
    user = _user(session, user_id)
    if user.totp_pending_secret is None:
        raise InvalidInput("no enrolment is in progress: open the second-factor page again")
    if not _check_totp(user, user.totp_pending_secret, code, now):
        raise InvalidInput(
            "the code does not match: enter the 6 digits your authenticator app shows now "
            "(check that the phone's clock is set automatically)"
        )
    user.totp_secret = user.totp_pending_secret
    user.totp_pending_secret = None
    user.totp_enrolled_at = now
    codes = _new_recovery_codes(session, user, now)
    audit.record(
        session=session,
        actor=actor,
        action="totp_enrol",
        resource_type="user",
        resource_id=user.id,
        at=now,
    )
    return codes


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace("-", "").encode()).hexdigest()


def _new_recovery_codes(session: Session, user: User, now: datetime) -> list[str]:
    for old in session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ):
        old.used_at = now  # replaced: no longer usable
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
        session.add(RecoveryCode(user_id=user.id, code_hash=_digest(raw), created_at=now))
    session.flush()
    return codes


def check(*, session: Session, user: User, code: str, now: datetime) -> str | None:
    """Check a second factor: ``"totp"`` or ``"recovery"`` when accepted, else None.

    A recovery code is spent by its use.
    """
    if user.totp_secret is None or not code.strip():
        return None
    if _check_totp(user, user.totp_secret, code, now):
        return "totp"
    cleaned = code.strip().upper().replace("-", "").replace(" ", "")
    if len(cleaned) != 16:
        return None
    row = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _digest(cleaned),
            RecoveryCode.used_at.is_(None),
        )
    )
    if row is None:
        return None
    row.used_at = now
    return "recovery"


def unused_recovery_codes(*, session: Session, user_id: int) -> int:
    """How many recovery codes are left."""
    return len(
        session.scalars(
            select(RecoveryCode.id).where(
                RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
            )
        ).all()
    )


def renew_recovery_codes(
    *, session: Session, user_id: int, code: str, now: datetime, actor: audit.Actor
) -> list[str]:
    """New recovery codes (the old ones stop working), confirmed with a current TOTP code."""
    user = _user(session, user_id)
    if user.totp_secret is None or not _check_totp(user, user.totp_secret, code, now):
        raise InvalidInput("enter the current 6-digit code of your authenticator app")
    codes = _new_recovery_codes(session, user, now)
    audit.record(
        session=session,
        actor=actor,
        action="totp_recovery_renew",
        resource_type="user",
        resource_id=user.id,
        at=now,
    )
    return codes


def reset(
    *, session: Session, actor: audit.Actor, user_id: int, reason: str, now: datetime
) -> User:
    """Another administrator removes an account's second factor (it enrols again at login)."""
    user = _user(session, user_id)
    if user.id == actor.user_id:
        raise InvalidInput("another administrator must reset your second factor")
    reason = reason.strip()
    if len(reason) < 3:
        raise InvalidInput("give the reason for the reset (3 or more characters)")
    user.totp_secret = None
    user.totp_pending_secret = None
    user.totp_enrolled_at = None
    user.totp_last_step = None
    for row in session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ):
        row.used_at = now
    audit.record(
        session=session,
        actor=actor,
        action="totp_reset",
        resource_type="user",
        resource_id=user.id,
        at=now,
        detail={"reason": reason[:500]},
    )
    return user


def _user(session: Session, user_id: int) -> User:
    return existing(session, User, user_id, "user")
