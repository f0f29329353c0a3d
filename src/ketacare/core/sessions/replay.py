"""Derive a session from its event log, and append to the log safely.

:func:`replay` folds the log through the state machine and the guards
(pre-dose checks complete, limits, alerts acknowledged, discharge rules) and
returns a :class:`~ketacare.core.sessions.state.SessionState`. :func:`append`
adds one event under optimistic concurrency: the writer says which entry it
last saw, a stale view is refused with :class:`StaleSession`, and an event the
session does not allow is refused with the log unchanged.

Time rules: dosing and state events must be entered in time order;
observations (vitals, side effects, discharge scores, other medications) may
be entered late, but not earlier than the start of the session's current state.

Examples
--------
>>> from datetime import datetime, timedelta, UTC
>>> from ketacare.core.protocols import load_library
>>> from ketacare.core.sessions.setup import session_setup
>>> from ketacare.core.sessions.events import CheckIn, Scheduled
>>> t0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
>>> setup = session_setup(protocol=load_library().get(protocol_id="crps-outpatient"),
...                       weight_kg=70)
>>> log = append((), Scheduled(at=t0, by="admin", setup=setup), expected_seq=0)
>>> log = append(log, CheckIn(at=t0 + timedelta(minutes=5), by="nurse1"), expected_seq=1)
>>> replay(log).state
'checked_in'
>>> try:
...     append(log, CheckIn(at=t0, by="nurse2"), expected_seq=1)
... except StaleSession as exc:
...     print(exc.expected_seq, exc.actual_seq, exc.latest)
1 2 check in by nurse1 at 2025-03-01T09:05:00+00:00
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ketacare.core.errors import InvalidInput, StaleSession
from ketacare.core.sessions.builder import Builder
from ketacare.core.sessions.events import (
    AcknowledgeAlert,
    Amendment,
    Event,
    RateChange,
    Scheduled,
)
from ketacare.core.sessions.state import (
    SessionState,
)


def _effective(log: tuple[Event, ...]) -> tuple[list[Event], dict[int, Amendment]]:
    by_seq = {e.seq: e for e in log}
    amendments: dict[int, Amendment] = {}
    for event in log:
        if not isinstance(event, Amendment):
            continue
        target = by_seq.get(event.target_seq)
        where = f"entry {event.seq} ({event.describe()})"
        if target is None or event.target_seq >= event.seq:
            raise InvalidInput(f"{where}: amends entry {event.target_seq}, which does not exist")
        if isinstance(target, Scheduled | Amendment):
            raise InvalidInput(
                f"{where}: entry {target.seq} is a {target.kind}, which cannot be amended"
            )
        if event.replacement is not None and type(event.replacement) is not type(target):
            raise InvalidInput(
                f"{where}: the replacement is a {event.replacement.kind} but entry "
                f"{target.seq} is a {target.kind}; an amendment keeps the kind"
            )
        amendments[event.target_seq] = event
    effective: list[Event] = []
    for event in log[1:]:
        if isinstance(event, Amendment):
            continue
        amendment = amendments.get(event.seq)
        if amendment is None:
            effective.append(event)
        elif amendment.replacement is not None:
            effective.append(dataclasses.replace(amendment.replacement, seq=event.seq))
    return effective, amendments


def replay(events: Sequence[Event]) -> SessionState:
    """Derive the session from its log (the first event must be :class:`Scheduled`).

    Raises
    ------
    IllegalTransition
        An event the state machine or a guard does not allow (naming the entry).
    InvalidInput
        A malformed log: numbering not 1, 2, 3, ..., entries out of time order,
        an amendment of a missing entry or with a replacement of another kind.
    DoseLimitExceeded, SoftLimitNeedsReview
        A rate or dose above a limit (soft: without reason and co-signature).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from ketacare.core.sessions.events import CheckIn
    >>> replay([CheckIn(at=datetime(2025, 1, 1, tzinfo=UTC), by="n", seq=1)])
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: a session log starts with its Scheduled entry
    """
    log = tuple(events)
    if not log or not isinstance(log[0], Scheduled):
        raise InvalidInput("a session log starts with its Scheduled entry")
    for i, event in enumerate(log, start=1):
        if event.seq != i:
            raise InvalidInput(f"entry {i} of the session log is numbered {event.seq}")
        if i > 1 and isinstance(event, Scheduled):
            raise InvalidInput(f"entry {i}: a session is scheduled only once")
    effective, amendments = _effective(log)
    builder = Builder(log[0])
    for event in effective:
        builder.apply(event)
    return builder.freeze(log, amendments)


def append(events: Sequence[Event], new: Event, *, expected_seq: int) -> tuple[Event, ...]:
    """The log with ``new`` appended, if the writer's view is current and the event is allowed.

    ``expected_seq`` is the number of the latest entry the writer saw (0 for a
    new session). ``new`` is numbered here. Nothing is changed on refusal: the
    caller stores the returned log only when no error is raised.

    Raises
    ------
    StaleSession
        ``expected_seq`` is not the latest entry: someone else wrote first.
    IllegalTransition, InvalidInput, DoseLimitExceeded, SoftLimitNeedsReview
        As :func:`replay`, for the log with the new event.
    """
    log = tuple(events)
    out = log + (_stamp(log, new, expected_seq),)
    replay(out)
    return out


def _stamp(log: tuple[Event, ...], new: Event, expected_seq: int) -> Event:
    actual = log[-1].seq if log else 0
    if expected_seq != actual:
        latest = log[-1].describe() if log else "no entries"
        raise StaleSession(expected_seq=expected_seq, actual_seq=actual, latest=latest)
    _new_entry_rules(new)
    stamped = dataclasses.replace(new, seq=actual + 1)
    if isinstance(stamped, Amendment) and stamped.replacement is not None:
        stamped = dataclasses.replace(
            stamped, replacement=dataclasses.replace(stamped.replacement, seq=stamped.target_seq)
        )
    return stamped


def _new_entry_rules(new: Event) -> None:
    """Rules for entries written from now on (stored entries replay as they were written).

    A rate change says why: the reason is part of the record of the dose. So does going on
    despite an alert: "continue" is a clinical judgement against a threshold that was
    crossed, and the record must say what it rested on.
    """
    entry = new.replacement if isinstance(new, Amendment) else new
    if isinstance(entry, RateChange) and not entry.reason.strip():
        raise InvalidInput(
            "rate change: the reason is required (say why the rate changes, e.g. nausea, "
            "blood pressure, the patient's request)"
        )
    if isinstance(entry, AcknowledgeAlert) and entry.action == "continue":
        if not entry.note.strip():
            raise InvalidInput(
                "alert acknowledgement: continuing despite the alert needs a note saying why "
                "(e.g. the value rechecked, the physician's decision); or choose reduce rate, "
                "pause, stop or call physician"
            )


def advance(state: SessionState, new: Event, *, expected_seq: int) -> SessionState:
    """The state after appending ``new``: what :func:`replay` of the longer log gives.

    Why: a busy chair writes every few minutes for hours, and replaying the whole
    log on each write makes every write slower than the last. A plain entry only
    moves the state forward, so it is applied to ``state`` alone; an amendment can
    change any earlier entry's effect, so the whole log is replayed for it.
    ``tests/core/sessions`` checks that both ways agree on every prefix of the
    session logs the tests build.

    Raises
    ------
    StaleSession, IllegalTransition, InvalidInput, DoseLimitExceeded, SoftLimitNeedsReview
        As :func:`append`; ``state`` is never changed (it is frozen).
    """
    stamped = _stamp(state.events, new, expected_seq)
    log = state.events + (stamped,)
    if isinstance(stamped, Amendment | Scheduled):
        return replay(log)
    builder = Builder.resume(state)
    builder.apply(stamped)
    return builder.freeze(log, dict(state.amendments))
