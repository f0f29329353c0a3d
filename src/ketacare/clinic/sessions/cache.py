"""The replayed states of recently used sessions, kept per database and process.

Replaying a long log on every write made each write slower than the last, so each
process keeps the replayed states of recently used sessions (:class:`StateCache`).
A cached state is only ever one that was committed: a write offers its new state
with :func:`remember`, and the SQLAlchemy ``after_commit`` hook publishes it (the
``after_rollback`` hook drops it). A state is used only when its ``last_seq`` equals
the session row's: entries written since (by another process) are read and applied
on top; anything else falls back to a full replay (:func:`state_for`).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ketacare.clinic.sessions.orm import SessionEvent
from ketacare.core.sessions import SessionState, advance, event_from_dict, replay


class StateCache:
    """Committed session states of one database, most recently used first (bounded).

    Thread-safe: the server answers requests from a thread pool.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._states: OrderedDict[int, SessionState] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: int) -> SessionState | None:
        with self._lock:
            state = self._states.get(session_id)
            if state is not None:
                self._states.move_to_end(session_id)
            return state

    def put(self, session_id: int, state: SessionState) -> None:
        with self._lock:
            known = self._states.get(session_id)
            if known is not None and known.last_seq > state.last_seq:
                return  # a newer committed state is already here
            self._states[session_id] = state
            self._states.move_to_end(session_id)
            while len(self._states) > self.capacity:
                self._states.popitem(last=False)


_caches: weakref.WeakKeyDictionary[Engine, StateCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()
_PENDING = "ketacare.sessions.pending_states"


def cache_for(session: Session) -> StateCache:
    """The state cache of the database ``session`` is bound to."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = StateCache()
        return cache


@sa_event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        cache = cache_for(session)
        for session_id, state in pending.items():
            cache.put(session_id, state)


@sa_event.listens_for(Session, "after_rollback")
def _drop_uncommitted(session: Session) -> None:
    session.info.pop(_PENDING, None)


def remember(session: Session, session_id: int, state: SessionState) -> None:
    """Offer ``state`` to the cache once (and only if) this transaction commits."""
    session.info.setdefault(_PENDING, {})[session_id] = state


def written_here(session: Session, session_id: int) -> SessionState | None:
    """The state this transaction wrote for the session (not committed yet), if any."""
    pending: dict[int, SessionState] = session.info.get(_PENDING, {})
    return pending.get(session_id)


def events_of(*, session: Session, session_id: int, after_seq: int = 0) -> tuple[Any, ...]:
    """The session's log as stored (from entry ``after_seq + 1`` on)."""
    rows = session.scalars(
        select(SessionEvent.data)
        .where(SessionEvent.session_id == session_id, SessionEvent.seq > after_seq)
        .order_by(SessionEvent.seq)
    )
    return tuple(event_from_dict(data) for data in rows)


class SessionRow(Protocol):
    """What :func:`state_for` reads of a session row (a mapped row or its head)."""

    @property
    def id(self) -> int: ...

    @property
    def last_seq(self) -> int: ...


def state_for(*, session: Session, row: SessionRow) -> SessionState:
    """The replayed state of the session ``row`` (cached, topped up, or replayed)."""
    known, base = _lookup(session, row)
    if known is not None:
        return known
    after = base.last_seq if base is not None else 0
    newer = events_of(session=session, session_id=row.id, after_seq=after)
    return _caught_up(session, row.id, base, newer)


def states_for(*, session: Session, rows: Sequence[SessionRow]) -> dict[int, SessionState]:
    """The replayed states of many sessions, as :func:`state_for` gives each, reading the
    logs of those not cached in one query a chunk of sessions (a page over hundreds of
    sessions asks the database a few times, not twice a session)."""
    states: dict[int, SessionState] = {}
    behind: dict[int, SessionState | None] = {}
    for row in rows:
        known, base = _lookup(session, row)
        if known is not None:
            states[row.id] = known
        else:
            behind[row.id] = base
    ids = list(behind)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        logs: dict[int, list[Any]] = {sid: [] for sid in chunk}
        rows_read = session.execute(
            select(SessionEvent.session_id, SessionEvent.seq, SessionEvent.data)
            .where(SessionEvent.session_id.in_(chunk))
            .order_by(SessionEvent.session_id, SessionEvent.seq)
        )
        for sid, seq, data in rows_read:
            base = behind[sid]
            if base is None or seq > base.last_seq:
                logs[sid].append(event_from_dict(data))
        for sid in chunk:
            states[sid] = _caught_up(session, sid, behind[sid], tuple(logs[sid]))
    return states


#: sessions one query reads (well under SQLite's and PostgreSQL's bind limits)
CHUNK = 500


def _lookup(session: Session, row: SessionRow) -> tuple[SessionState | None, SessionState | None]:
    """(the row's latest state if this transaction wrote it or the cache holds it, else
    None; a cached older state its newer entries can be applied to, else None: replay)."""
    pending = written_here(session, row.id)
    if pending is not None and pending.last_seq == row.last_seq:
        return pending, None
    cached = cache_for(session).get(row.id)
    if cached is None:
        return None, None
    if cached.last_seq == row.last_seq:
        return cached, None
    return None, cached if 0 < cached.last_seq < row.last_seq else None


def _caught_up(
    session: Session, session_id: int, base: SessionState | None, newer: tuple[Any, ...]
) -> SessionState:
    """``base`` with the ``newer`` entries applied (or the log ``newer`` replayed when there
    is no base), offered to the cache."""
    if base is not None:
        state = base
        for entry in newer:
            state = advance(state, entry, expected_seq=state.last_seq)
    else:
        state = replay(newer)
    remember(session, session_id, state)
    return state
