"""The one audit writer, the chain verifier, and amendments.

Every read and write of patient data goes through :func:`record`. Rows are
hash-chained: each row's ``hash`` covers its fields and the previous row's
hash, and ``prev_hash`` is unique, so altering, removing or inserting a row
breaks the chain at that row, which :func:`verify` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ketacare.clinic.audit.orm import Amendment, AuditEvent
from ketacare.infra.clock import as_utc

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, and from where."""

    user_id: int | None
    username: str
    role: str
    remote_addr: str | None = None


SYSTEM = Actor(user_id=None, username="system", role="system")


_HASHED = (
    "at",
    "user_id",
    "username",
    "role",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "remote_addr",
    "detail",
    "prev_hash",
)


def _payload(fields: Mapping[str, Any]) -> str:
    canonical = {k: fields[k] for k in _HASHED}
    canonical["at"] = fields["at"].isoformat(timespec="microseconds")
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)


def compute_hash(row: AuditEvent) -> str:
    """SHA-256 of the row's canonical payload (which includes ``prev_hash``)."""
    return _hash_of({k: getattr(row, k) for k in _HASHED})


def _hash_of(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(_payload(fields).encode()).hexdigest()


# Built once: every request of the application writes one audit row.
_APPEND_LOCK = text("SELECT pg_advisory_xact_lock(4242001)")
_TABLE = AuditEvent.__table__
_LAST_HASH = select(_TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)
_INSERT = _TABLE.insert()


def record(
    *,
    session: Session,
    actor: Actor,
    action: str,
    resource_type: str,
    at: datetime,
    resource_id: object | None = None,
    patient_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one event to the chain, inside the caller's transaction.

    A plain INSERT, not the unit of work: the row is never changed afterwards.
    """
    if session.get_bind().dialect.name == "postgresql":
        # serialise appends across processes until this transaction ends
        session.execute(_APPEND_LOCK)
    last = session.execute(_LAST_HASH).scalar_one_or_none()
    values: dict[str, Any] = {
        "at": as_utc(at),
        "user_id": actor.user_id,
        "username": actor.username,
        "role": actor.role,
        "action": action,
        "resource_type": resource_type,
        "resource_id": None if resource_id is None else str(resource_id),
        "patient_id": patient_id,
        "remote_addr": actor.remote_addr,
        "detail": dict(detail or {}),
        "prev_hash": last or GENESIS,
    }
    values["hash"] = _hash_of(values)
    session.execute(_INSERT, values)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of verifying the chain."""

    ok: bool
    rows: int
    first_broken_id: int | None = None
    problem: str | None = None


def verify(*, session: Session, batch: int = 5000) -> ChainReport:
    """Walk the chain in order and report the first broken link."""
    previous = GENESIS
    count = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return ChainReport(ok=True, rows=count)
        for row in rows:
            if row.prev_hash != previous:
                return ChainReport(
                    ok=False,
                    rows=count,
                    first_broken_id=row.id,
                    problem=f"row {row.id} does not follow the row before it "
                    "(a row was removed or inserted)",
                )
            if compute_hash(row) != row.hash:
                return ChainReport(
                    ok=False,
                    rows=count,
                    first_broken_id=row.id,
                    problem=f"row {row.id} was altered (its hash does not match its content)",
                )
            previous = row.hash
            count += 1
            last_id = row.id


def amend(
    *,
    session: Session,
    actor: Actor,
    resource_type: str,
    resource_id: int,
    patient_id: int,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    reason: str,
    at: datetime,
) -> Amendment:
    """Keep the values before and after a correction, with its reason, and audit it."""
    amendment = Amendment(
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        before=_jsonable(before),
        after=_jsonable(after),
        reason=reason,
        amended_by=actor.user_id or 0,
        amended_at=at,
    )
    session.add(amendment)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="amend",
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        at=at,
        detail={"amendment_id": amendment.id, "fields": sorted(after)},
    )
    return amendment


def history(*, session: Session, patient_id: int) -> list[Amendment]:
    """Every amendment to a patient's record, oldest first."""
    return list(
        session.scalars(
            select(Amendment).where(Amendment.patient_id == patient_id).order_by(Amendment.id)
        )
    )


def recent(
    *, session: Session, limit: int = 200, patient_id: int | None = None
) -> list[AuditEvent]:
    """The newest audit events, optionally for one patient."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if patient_id is not None:
        query = query.where(AuditEvent.patient_id == patient_id)
    return list(session.scalars(query))


def _jsonable(values: Mapping[str, Any]) -> dict[str, object]:
    return json.loads(json.dumps(dict(values), default=str))
