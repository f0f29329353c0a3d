"""A session's log written: the next entry claimed on the session row, then inserted.

Two staff writing at once never lose each other's entries: each write names the
sequence number it saw, the row is claimed guarded by that number, and a stale write is
refused with what the session holds now. When this process's cached state
(:mod:`~ketacare.clinic.sessions.cache`) is the one the writer saw, the write goes
without reading the row first (:func:`fast_append`). What may be written is the
service's (:mod:`~ketacare.clinic.sessions.service`) to decide.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ketacare.clinic.audit import service as audit
from ketacare.clinic.sessions.cache import cache_for, remember, written_here
from ketacare.clinic.sessions.orm import DosingSession, SessionEvent
from ketacare.core.errors import KetacareError
from ketacare.core.sessions import (
    SessionState,
    StaleSession,
    advance,
    event_from_dict,
    event_to_dict,
    replay,
)
from ketacare.infra.errors import NotFound


@dataclass(frozen=True, slots=True)
class SessionHead:
    """The columns of a session row that a write and its answer need.

    Read as plain columns, not as a mapped object: every vitals post reads one, and
    building the object cost more than the rest of the read.
    """

    id: int
    plan_id: int
    patient_id: int
    session_number: int
    state: str
    last_seq: int


_HEAD = select(
    DosingSession.__table__.c.id,
    DosingSession.__table__.c.plan_id,
    DosingSession.__table__.c.patient_id,
    DosingSession.__table__.c.session_number,
    DosingSession.__table__.c.state,
    DosingSession.__table__.c.last_seq,
).where(DosingSession.__table__.c.id == bindparam("session_id"))


def head(*, session: Session, session_id: int) -> SessionHead:
    """The session's head (as committed, or as written earlier in this transaction)."""
    session.flush()  # a pending change to the row would otherwise be missed
    found = session.connection().execute(_HEAD, {"session_id": session_id}).first()
    if found is None:
        raise NotFound(f"session {session_id} does not exist")
    return SessionHead(*found)


def append(
    session: Session,
    row: DosingSession | SessionHead,
    before: SessionState | None,
    new: Any,
    expected_seq: int,
    actor: audit.Actor,
    now: datetime,
) -> SessionState:
    if before is None:
        if expected_seq != 0:
            raise StaleSession(expected_seq=expected_seq, actual_seq=0, latest="no entries")
        state = replay((dataclasses.replace(new, seq=1),))
    else:
        state = advance(before, new, expected_seq=expected_seq)
    seen = 0 if before is None else before.last_seq
    if _claim_and_append(session, row.id, seen, state, actor, now) is None:
        raise _overtaken(session, row.id, seen)
    return state


def _claim_and_append(
    session: Session,
    session_id: int,
    seen: int,
    state: SessionState,
    actor: audit.Actor,
    now: datetime,
) -> tuple[int, int, int] | None:
    """Write ``state``'s last entry; None (nothing written) when the row is past ``seen``.

    The next number is claimed on the session row first, guarded by the number this
    write saw: a concurrent writer that got there first leaves no row to update
    (PostgreSQL re-checks the guard once the other transaction ends), so the loser is
    refused cleanly before it inserts anything. Plain statements, not the unit of work
    (whose flush of one dirty row cost more than the rest of the write). Gives the
    row's plan, patient and number.
    """
    claimed = session.execute(
        _CLAIM,
        {
            "b_id": session_id,
            "b_seen": seen,
            "b_state": state.state,
            "b_seq": state.last_seq,
            "b_now": now,
        },
    ).first()
    if claimed is None:
        return None
    plan_id, patient_id, number = claimed
    loaded = session.identity_map.get(Session.identity_key(DosingSession, session_id))
    if loaded is not None:  # keep a mapped copy of the row in step, without a flush
        for key, value in (
            ("state", state.state),
            ("last_seq", state.last_seq),
            ("updated_at", now),
        ):
            set_committed_value(loaded, key, value)
    added = state.events[-1]
    try:
        # a plain INSERT (entries are never changed, so the unit of work has nothing to
        # track); a duplicate (session, seq) means another writer took this number first
        session.execute(
            cast(Table, SessionEvent.__table__).insert(),
            {
                "session_id": session_id,
                "seq": added.seq,
                "kind": type(added).__name__,
                "at": added.at,
                "recorded_by": actor.user_id,
                "data": event_to_dict(added),
            },
        )
    except IntegrityError:
        # the row's guard makes this unreachable unless the row and its log disagree
        raise StaleSession(
            expected_seq=seen, actual_seq=added.seq, latest="written at the same moment"
        ) from None
    remember(session, session_id, state)
    return int(plan_id), int(patient_id), int(number)


def fast_append(
    session: Session,
    session_id: int,
    event: Any,
    expected_seq: int,
    actor: audit.Actor,
    now: datetime,
) -> tuple[SessionHead, SessionState] | None:
    """The write without reading the row first, when this process's cached state is the
    one the writer saw; None (nothing written) when it may not be.

    The guard on the row is what makes it safe: the cached state is committed, and a
    row still at its entry number holds exactly the log that state was built from. A
    refusal on the cached state is not trusted (the session may have moved on in
    another process): the full path decides what to say.
    """
    if expected_seq == 0 or written_here(session, session_id) is not None:
        return None
    cached = cache_for(session).get(session_id)
    if cached is None or cached.last_seq != expected_seq:
        return None
    try:
        state = advance(cached, event, expected_seq=expected_seq)
    except KetacareError:
        return None
    session.flush()  # a pending change of this transaction goes first, as in head()
    claimed = _claim_and_append(session, session_id, cached.last_seq, state, actor, now)
    if claimed is None:
        return None
    plan_id, patient_id, number = claimed
    return SessionHead(session_id, plan_id, patient_id, number, state.state, state.last_seq), state


def _overtaken(session: Session, session_id: int, seen: int) -> StaleSession:
    """The refusal for a write that another writer overtook: what the session holds now."""
    current = session.execute(
        select(DosingSession.last_seq).where(DosingSession.id == session_id)
    ).scalar_one()
    data = session.execute(
        select(SessionEvent.data).where(
            SessionEvent.session_id == session_id, SessionEvent.seq == current
        )
    ).scalar_one_or_none()
    latest = "no entries" if data is None else event_from_dict(data).describe()
    return StaleSession(expected_seq=seen, actual_seq=current, latest=latest)


_SESSIONS = cast(Table, DosingSession.__table__)
_CLAIM = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("b_id"), _SESSIONS.c.last_seq == bindparam("b_seen"))
    .values(state=bindparam("b_state"), last_seq=bindparam("b_seq"), updated_at=bindparam("b_now"))
    .returning(_SESSIONS.c.plan_id, _SESSIONS.c.patient_id, _SESSIONS.c.session_number)
)
