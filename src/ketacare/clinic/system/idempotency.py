"""Idempotency keys of API writes: a retried request gets the first answer.

A client that cannot tell whether its write arrived (a timeout, a dropped connection, a
server killed mid-request) sends it again with the same ``Idempotency-Key`` header.
:func:`claim` runs in the write's own unit of work, once the account is known: the
first time it inserts the key (committed with the write, or rolled back with it); a
replay with the same body and route gets the stored answer and writes nothing; the same
key with another body or route is refused. :func:`keep_answer` stores the answer once
it is sent. The rows hold no clinical record of their own: the answer is a copy of what
the account was already shown. A key is kept for ``keep`` (the setting
``KETACARE_IDEMPOTENCY_KEEP_HOURS``, 24 h by default): after that a request with it is a
new request, and :func:`purge` removes the old rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ketacare.clinic.system.orm import IdempotencyKey
from ketacare.infra.errors import IdempotencyKeyPending, IdempotencyKeyReused

#: the longest key accepted (a UUID is 36 characters)
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer to a key: what a replay gets back."""

    status: int
    content_type: str
    body: bytes


def claim(
    *,
    session: Session,
    user_id: int,
    key: str,
    route: str,
    body_sha256: str,
    now: datetime,
    keep: timedelta,
) -> tuple[int | None, StoredAnswer | None]:
    """Reserve ``key`` for this write, or find its first answer.

    Returns ``(row id, None)`` for a new key (the row is flushed in ``session``, so two
    concurrent requests with one key cannot both write: the second fails on the unique
    key), or ``(None, answer)`` for a replay. Raises :class:`IdempotencyKeyReused` when
    the key came with another body or route, :class:`IdempotencyKeyPending` when the
    first request has no stored answer. A key older than ``keep`` is a new key.
    """
    row = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).one_or_none()
    if row is not None and row.created_at < now - keep:
        session.delete(row)  # expired: the key is free again
        session.flush()
        row = None
    if row is None:
        row = IdempotencyKey(
            user_id=user_id, key=key, route=route, body_sha256=body_sha256, created_at=now
        )
        session.add(row)
        session.flush()
        return row.id, None
    if row.route != route:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {key!r} was first used for {row.route}, not {route}: "
            "send a new key for a new request"
        )
    if row.body_sha256 != body_sha256:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {key!r} was first sent with a different body: a retry "
            "must repeat the first request exactly; send a new key for a new request"
        )
    if row.status is None or row.response is None:
        raise IdempotencyKeyPending(
            f"the first request with Idempotency-Key {key!r} has no stored answer: it is "
            "still running, or the server stopped before answering (its write, if any, "
            "is saved: look it up before sending a new request)"
        )
    return None, StoredAnswer(
        status=row.status,
        content_type=row.content_type or "application/json",
        body=row.response.encode(),
    )


def keep_answer(
    *, session: Session, claim_id: int, status: int, content_type: str, body: bytes
) -> None:
    """Store the answer given to the request that claimed ``claim_id``. A request whose
    unit of work was rolled back left no row, and nothing is stored."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim_id, IdempotencyKey.status.is_(None))
        .values(
            status=status,
            content_type=content_type[:200],
            response=body.decode("utf-8", errors="replace"),
        )
    )


def purge(*, session: Session, now: datetime, keep: timedelta) -> int:
    """Remove the keys (and their answers) older than ``keep``; how many were removed."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - keep))
    return int(getattr(result, "rowcount", 0) or 0)
