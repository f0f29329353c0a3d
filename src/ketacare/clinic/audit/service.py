"""The one audit writer, the chain verifier, and amendments (the trail as read: :mod:`.trail`).

Every read and write of patient data goes through :func:`record`. Rows are
chained: each row's ``hash`` is an HMAC-SHA256, under a key kept outside the
database (:meth:`Settings.effective_audit_key`), of its fields and the previous
row's hash, and ``prev_hash`` is unique. Altering, removing or inserting a row
breaks the chain at that row, which :func:`verify` reports; recomputing the
later hashes needs the key. Removing the newest rows (or all of them) leaves a
shorter chain that is still whole: anchors kept elsewhere (:mod:`.anchors`)
detect that.

Rows written before the key was introduced carry a plain SHA-256 hash (the
chain's first version). They are accepted only as the chain's prefix: the first
keyed row covers the last of them, so none can be changed without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Table, bindparam, func, select, text
from sqlalchemy.orm import Session

from ketacare.clinic.audit.orm import Amendment, AuditEvent
from ketacare.infra.clock import as_utc
from ketacare.infra.settings import load_settings

GENESIS = "0" * 64

#: ``Session.info`` entry holding the audit key (set by the app's and the CLI's
#: session factories; see :func:`session_info`).
AUDIT_KEY = "ketacare.audit_key"


def session_info(key: bytes) -> dict[str, object]:
    """The ``info`` of a session factory whose sessions sign audit rows with ``key``."""
    return {AUDIT_KEY: key}


_ENV_KEYS: dict[tuple[str | None, ...], bytes] = {}
_KEY_ENV = ("KETACARE_AUDIT_KEY_FILE", "KETACARE_VAR_DIR", "KETACARE_PRODUCTION")


def key_of(session: Session) -> bytes:
    """The key the session's factory carries, else the one the environment's settings name.

    The fallback serves sessions made outside the app and the CLI (a script, a seed);
    in production mode it refuses when no key file is configured.
    """
    key = session.info.get(AUDIT_KEY)
    if isinstance(key, bytes):
        return key
    marker = tuple(os.environ.get(name) for name in _KEY_ENV)
    if marker not in _ENV_KEYS:
        _ENV_KEYS[marker] = load_settings().effective_audit_key()
    return _ENV_KEYS[marker]


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


def compute_hash(row: Any, key: bytes) -> str:
    """HMAC-SHA256 under ``key`` of the row's canonical payload (which includes ``prev_hash``)."""
    return _hash_of({k: getattr(row, k) for k in _HASHED}, key)


def _hash_of(fields: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, _payload(fields).encode(), hashlib.sha256).hexdigest()


def _legacy_hash_of(fields: Mapping[str, Any]) -> str:
    """The chain's first version: plain SHA-256, no key."""
    return hashlib.sha256(_payload(fields).encode()).hexdigest()


# Built once: every request of the application writes one audit row.
_APPEND_LOCK = text("SELECT pg_advisory_xact_lock(4242001)")
_TABLE = cast(Table, AuditEvent.__table__)
_LAST_HASH = select(_TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)
_INSERT = _TABLE.insert()


#: ``Session.info`` entry: the row this session's transaction appended last, with the
#: transaction (and savepoint) it was appended in
_HEAD = "ketacare.audit_head"


def _known_head(session: Session) -> str | None:
    """The chain's head when this very transaction appended it, else None (read it).

    The first append of a transaction takes the chain's lock: PostgreSQL's advisory lock
    and SQLite's write lock (``BEGIN IMMEDIATE``, or the insert itself) are both held
    until the transaction ends, so no other writer can append in between, and the row
    this transaction appended last is still the head. It is trusted only in the same
    transaction and savepoint it was written in: a savepoint rolled back, or any new
    transaction, reads the head again (under the lock, as the first append does).
    """
    known = session.info.get(_HEAD)
    if known is None:
        return None
    transaction, nested, head = known
    current = session.get_transaction()
    if current is None or transaction is not current or not current.is_active:
        return None
    if nested is not session.get_nested_transaction():
        return None
    return cast(str, head)


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
    last = _known_head(session)
    if last is None:
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
    values["hash"] = _hash_of(values, key_of(session))
    session.execute(_INSERT, values)
    session.info[_HEAD] = (
        session.get_transaction(),
        session.get_nested_transaction(),
        values["hash"],
    )


class _Row(Protocol):
    @property
    def id(self) -> int: ...


class _PatientRow(_Row, Protocol):
    @property
    def patient_id(self) -> int: ...


_R = TypeVar("_R", bound=_Row)


def stored(
    row: _R,
    *,
    session: Session,
    actor: Actor,
    at: datetime,
    resource_type: str,
    patient_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
    action: str = "create",
    resource_id: object | None = None,
) -> _R:
    """Add a new row, flush it (so it has its id) and record its creation; gives the row.

    ``resource_id``: the resource the event is about when not the row itself (an entry
    added to a consent or a plan is recorded against that consent or plan).
    """
    session.add(row)
    session.flush()
    record(
        session=session,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=row.id if resource_id is None else resource_id,
        patient_id=patient_id,
        at=at,
        detail=detail,
    )
    return row


def read_row(
    row: _PatientRow,
    *,
    session: Session,
    actor: Actor,
    at: datetime,
    resource_type: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Record that ``actor`` read one row of a patient's record (by its id)."""
    record(
        session=session,
        actor=actor,
        action="read",
        resource_type=resource_type,
        resource_id=row.id,
        patient_id=row.patient_id,
        at=at,
        detail=detail,
    )


def read_patient(
    patient_id: int,
    *,
    session: Session,
    actor: Actor,
    at: datetime,
    resource_type: str,
    detail: Mapping[str, Any] | None = None,
    action: str = "read",
) -> None:
    """Record that ``actor`` read (or exported) a part of one patient's record as a whole."""
    record(
        session=session,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=patient_id,
        patient_id=patient_id,
        at=at,
        detail=detail,
    )


def read_list(
    rows: list[_R],
    patient_id: int,
    *,
    session: Session,
    actor: Actor,
    at: datetime,
    resource_type: str,
) -> list[_R]:
    """Record that ``actor`` read a list of one patient's rows (how many); gives the rows."""
    record(
        session=session,
        actor=actor,
        action="read",
        resource_type=resource_type,
        patient_id=patient_id,
        at=at,
        detail={"count": len(rows)},
    )
    return rows


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of verifying the chain.

    ``rows`` counts the events verified, ``head`` is the last one's hash (GENESIS
    for an empty chain) and ``first`` the first one's; ``legacy_rows`` counts the
    unkeyed rows written before the key. ``seen`` maps each watched id to its
    position in the chain (1-based) and its hash.
    """

    ok: bool
    rows: int
    first_broken_id: int | None = None
    problem: str | None = None
    head: str = GENESIS
    head_id: int | None = None
    first: str | None = None
    legacy_rows: int = 0
    seen: Mapping[int, tuple[int, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A verified point of the chain to continue from: after ``head_id``, ``count``
    rows, the last hash ``head``; ``keyed`` once a keyed row has been seen."""

    head_id: int
    count: int
    head: str
    first: str | None
    legacy_rows: int
    keyed: bool


_COLUMNS = select(_TABLE).order_by(_TABLE.c.id)


def verify(
    *,
    session: Session,
    key: bytes | None = None,
    since: Checkpoint | None = None,
    watch: Collection[int] = (),
    batch: int = 5000,
) -> ChainReport:
    """Walk the chain in order (from ``since`` if given) and report the first broken link."""
    key = key_of(session) if key is None else key
    previous = since.head if since else GENESIS
    count = since.count if since else 0
    last_id = since.head_id if since else 0
    first = since.first if since else None
    legacy = since.legacy_rows if since else 0
    keyed = since.keyed if since else False
    seen: dict[int, tuple[int, str]] = {}
    watched = frozenset(watch)

    def broken(row_id: int, problem: str) -> ChainReport:
        return ChainReport(
            ok=False,
            rows=count,
            first_broken_id=row_id,
            problem=problem,
            head=previous,
            head_id=last_id or None,
            first=first,
            legacy_rows=legacy,
            seen=seen,
        )

    while True:
        rows = session.execute(_COLUMNS.where(_TABLE.c.id > last_id).limit(batch)).all()
        if not rows:
            return ChainReport(
                ok=True,
                rows=count,
                head=previous,
                head_id=last_id or None,
                first=first,
                legacy_rows=legacy,
                seen=seen,
            )
        for row in rows:
            if row.prev_hash != previous:
                return broken(
                    row.id,
                    f"row {row.id} does not follow the row before it "
                    "(a row was removed or inserted)",
                )
            fields = {k: getattr(row, k) for k in _HASHED}
            if hmac.compare_digest(_hash_of(fields, key), row.hash):
                keyed = True
            elif not keyed and _legacy_hash_of(fields) == row.hash:
                legacy += 1
            elif keyed and _legacy_hash_of(fields) == row.hash:
                return broken(
                    row.id,
                    f"row {row.id} carries an unkeyed hash after the keyed chain began "
                    "(rewritten without the key)",
                )
            else:
                return broken(
                    row.id,
                    f"row {row.id} was altered (its hash does not match its content), "
                    "or the audit key is not the one that wrote it",
                )
            previous = row.hash
            count += 1
            last_id = row.id
            if first is None:
                first = row.hash
            if row.id in watched:
                seen[row.id] = (count, row.hash)


def head(*, session: Session) -> tuple[int, int | None, str]:
    """The chain's length, its newest id and hash (GENESIS when empty), as stored."""
    last = session.execute(
        select(_TABLE.c.id, _TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)
    ).first()
    if last is None:
        return 0, None, GENESIS
    count = session.scalar(select(func.count()).select_from(_TABLE).where(_TABLE.c.id <= last.id))
    return int(count or 0), int(last.id), str(last.hash)


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


_HISTORY = (
    select(Amendment).where(Amendment.patient_id == bindparam("patient_id")).order_by(Amendment.id)
)


def history(*, session: Session, patient_id: int) -> list[Amendment]:
    """Every amendment to a patient's record, oldest first."""
    return list(session.scalars(_HISTORY, {"patient_id": patient_id}))


def _jsonable(values: Mapping[str, Any]) -> dict[str, object]:
    plain: dict[str, object] = json.loads(json.dumps(dict(values), default=str))
    return plain
