"""Separation of duties: a clinical role is granted by two people, never by one.

An administrator who gives an account a clinical role (physician, nurse, therapist),
at its creation or by a change of role, only *asks*: the request waits until a second
person approves it, either another administrator (not the one who asked) or a
physician, and never the account's holder. Until then a new account cannot log in and
an existing one keeps the role it had. Asking, approving and rejecting are audited.

An account holds one role (``users.role``), so an administrator account never holds a
clinical role at the same time: giving it one replaces ``admin`` (after approval), and
nobody changes their own role. A person who is both needs two accounts.

Accounts the system creates (the demo seeding, ``ketacare user create`` run by the
server's operator) are created directly: whoever runs the server's own commands can
change its database anyway, so a second approver adds nothing there, and the first
accounts of an installation have nobody to approve them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import RoleRequest, User
from ketacare.clinic.audit import service as audit
from ketacare.core.errors import InvalidInput
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict, Forbidden, NotFound
from ketacare.infra.permissions import Role

#: the roles that reach patient records for care: granted only with a second approval
CLINICAL_ROLES = frozenset({Role.PHYSICIAN, Role.NURSE, Role.THERAPIST})
#: who may approve a request (besides never the one who asked, nor the account itself)
APPROVER_ROLES = frozenset({Role.ADMIN, Role.PHYSICIAN})


def needs_approval(role: Role, actor: audit.Actor) -> bool:
    """Whether granting ``role`` by ``actor`` waits for a second person."""
    return role in CLINICAL_ROLES and actor.user_id is not None


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A request waiting for a decision, with the names a reader needs."""

    id: int
    user_id: int
    username: str
    full_name: str
    role: str
    previous_role: str | None
    requested_by: str | None
    requested_at: datetime


def ask(
    *, session: Session, actor: audit.Actor, user: User, role: Role, now: datetime
) -> RoleRequest:
    """Record that ``actor`` asks for ``role`` on ``user`` (audited as ``role_request``)."""
    request = RoleRequest(
        user_id=user.id,
        role=role.value,
        previous_role=user.role if user.role_approved else None,
        requested_by_id=actor.user_id,
        requested_at=now,
    )
    session.add(request)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="role_request",
        resource_type="user",
        resource_id=user.id,
        at=now,
        detail={"request_id": request.id, "role": role.value, "previous": request.previous_role},
    )
    return request


def change_role(
    *, session: Session, actor: audit.Actor, user_id: int, role: str, now: datetime
) -> RoleRequest | None:
    """An administrator changes an account's role.

    A clinical role is asked for (returns the pending request; the account keeps its
    role meanwhile); any other is set at once (returns None, audited ``role_change``).
    """
    user = existing(session, User, user_id, "user")
    try:
        new = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role if r is not Role.PATIENT)
        raise InvalidInput(f"role {role!r} is not known: allowed {allowed}") from None
    if user.id == actor.user_id:
        raise Forbidden("nobody changes their own role: another administrator does")
    if Role.PATIENT in (new, Role(user.role)):
        raise InvalidInput(
            "a patient account stays a patient account, and a staff account cannot become "
            "one: create a separate account"
        )
    if _pending(session, user.id) is not None:
        raise Conflict(f"a role request for {user.username} is pending: approve or reject it first")
    if new.value == user.role and user.role_approved:
        raise InvalidInput(f"{user.username} already holds the role {new.value}")
    if needs_approval(new, actor):
        return ask(session=session, actor=actor, user=user, role=new, now=now)
    previous = user.role
    user.role = new.value
    user.role_approved = True
    audit.record(
        session=session,
        actor=actor,
        action="role_change",
        resource_type="user",
        resource_id=user.id,
        at=now,
        detail={"role": new.value, "previous": previous},
    )
    return None


def decide(
    *,
    session: Session,
    actor: audit.Actor,
    request_id: int,
    approve: bool,
    now: datetime,
    reason: str = "",
) -> RoleRequest:
    """Approve or reject a pending request (audited ``role_approve`` / ``role_reject``).

    The decider is an administrator other than the one who asked, or a physician, and
    never the account itself. A rejection needs a reason; the account keeps its role
    (a new account stays unable to log in).
    """
    request = session.get(RoleRequest, request_id)
    if request is None or request.outcome is not None:
        raise NotFound(f"role request {request_id} does not exist or is already decided")
    if Role(actor.role) not in APPROVER_ROLES:
        raise Forbidden("a role request is decided by an administrator or a physician")
    if actor.user_id == request.user_id:
        raise Forbidden("nobody decides a request for their own account's role")
    if approve and actor.user_id == request.requested_by_id:
        raise Forbidden(
            "the administrator who asked cannot approve: a second administrator or a physician does"
        )
    reason = reason.strip()
    if not approve and not reason:
        raise InvalidInput("a rejection needs a reason")
    user = session.get(User, request.user_id)
    assert user is not None
    request.outcome = "approved" if approve else "rejected"
    request.decided_by_id = actor.user_id
    request.decided_at = now
    request.reason = reason or None
    if approve:
        user.role = request.role
        user.role_approved = True
    audit.record(
        session=session,
        actor=actor,
        action="role_approve" if approve else "role_reject",
        resource_type="user",
        resource_id=user.id,
        at=now,
        detail={
            "request_id": request.id,
            "role": request.role,
            "previous": request.previous_role,
            "requested_by_id": request.requested_by_id,
            **({"reason": reason} if reason else {}),
        },
    )
    return request


def _pending(session: Session, user_id: int) -> RoleRequest | None:
    return session.scalar(
        select(RoleRequest).where(RoleRequest.user_id == user_id, RoleRequest.outcome.is_(None))
    )


def list_pending(*, session: Session) -> list[PendingRequest]:
    """Every request waiting for a decision, oldest first."""
    asker = User.__table__.alias("asker")
    rows = session.execute(
        select(RoleRequest, User.username, User.full_name, asker.c.username)
        .join(User, User.id == RoleRequest.user_id)
        .outerjoin(asker, asker.c.id == RoleRequest.requested_by_id)
        .where(RoleRequest.outcome.is_(None))
        .order_by(RoleRequest.requested_at, RoleRequest.id)
    ).all()
    return [
        PendingRequest(
            id=r.id,
            user_id=r.user_id,
            username=username,
            full_name=full_name,
            role=r.role,
            previous_role=r.previous_role,
            requested_by=asked_by,
            requested_at=r.requested_at,
        )
        for r, username, full_name, asked_by in rows
    ]
