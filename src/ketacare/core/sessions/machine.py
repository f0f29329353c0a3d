"""The session state machine: states, moves and the legal transitions, as data.

A session moves through ``scheduled -> checked_in -> pre_dose_checks -> dosing
-> recovery -> discharged``; ``stopped_early`` ends a session from any
non-final state (did not attend, a pre-dose check failed, transfer of care).
Stopping the infusion early (with a reason) is *not* ``stopped_early``: the
patient still goes through recovery and discharge.

Every event kind is a *move*. :data:`TRANSITIONS` maps each move to the states
it may be made from and the state it leads to (observations leave the state
unchanged). The table is the single truth: :func:`transition` reads it, the
tests are generated from it and ``docs/sessions.md`` prints it.

Examples
--------
>>> transition("dosing", "stop")
'recovery'
>>> try:
...     transition("scheduled", "start_infusion")
... except IllegalTransition as exc:
...     print(exc.message.split(": ")[0])
...     print(exc.allowed)
cannot start_infusion in state scheduled
('amendment', 'check_in', 'end_session')
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

from ketacare.core.errors import IllegalTransition

State = Literal[
    "scheduled",
    "checked_in",
    "pre_dose_checks",
    "dosing",
    "recovery",
    "discharged",
    "stopped_early",
]
STATES: Final[tuple[State, ...]] = get_args(State)

#: States a session ends in; only amendments are recorded after them.
FINAL_STATES: Final[tuple[State, ...]] = ("discharged", "stopped_early")

Move = Literal[
    "check_in",
    "pre_dose_check",
    "vitals",
    "side_effects",
    "medication",
    "start_infusion",
    "self_administration",
    "rate_change",
    "pause",
    "resume",
    "bolus",
    "stop",
    "acknowledge_alert",
    "discharge_score",
    "escort_confirmed",
    "discharge",
    "end_session",
    "amendment",
]
MOVES: Final[tuple[Move, ...]] = get_args(Move)

_ACTIVE: Final[tuple[State, ...]] = ("pre_dose_checks", "dosing", "recovery")
_NOT_FINAL: Final[tuple[State, ...]] = tuple(s for s in STATES if s not in FINAL_STATES)


def _stay(*states: State) -> dict[State, State]:
    return {s: s for s in states}


#: move -> {from state: to state}. Anything not listed is refused.
TRANSITIONS: Final[Mapping[Move, Mapping[State, State]]] = MappingProxyType(
    {
        "check_in": {"scheduled": "checked_in"},
        # Any pre-dose check item (or the baseline vitals) opens the pre-dose checks.
        "pre_dose_check": {"checked_in": "pre_dose_checks", "pre_dose_checks": "pre_dose_checks"},
        "vitals": {"checked_in": "pre_dose_checks", **_stay(*_ACTIVE)},
        "side_effects": _stay(*_ACTIVE),
        "medication": _stay(*_ACTIVE),
        "start_infusion": {"pre_dose_checks": "dosing"},
        "self_administration": {"pre_dose_checks": "dosing", "dosing": "dosing"},
        "rate_change": _stay("dosing"),
        "pause": _stay("dosing"),
        "resume": _stay("dosing"),
        "bolus": _stay("dosing"),
        "stop": {"dosing": "recovery"},
        "acknowledge_alert": _stay(*_ACTIVE),
        "discharge_score": _stay("recovery"),
        "escort_confirmed": _stay("recovery"),
        "discharge": {"recovery": "discharged"},
        "end_session": dict.fromkeys(_NOT_FINAL, "stopped_early"),
        "amendment": _stay(*STATES),
    }
)


def allowed_moves(state: State) -> tuple[Move, ...]:
    """The moves the table allows from ``state``, sorted by name.

    Examples
    --------
    >>> allowed_moves("discharged")
    ('amendment',)
    """
    if state not in STATES:
        raise IllegalTransition(
            f"unknown session state {state!r}: known are {', '.join(STATES)}",
            state=str(state),
            move="",
            allowed=(),
        )
    return tuple(sorted(m for m in MOVES if state in TRANSITIONS[m]))


def transition(state: State, move: str) -> State:
    """The state after ``move`` from ``state``, or :class:`IllegalTransition`.

    The refusal names the state, the attempted move and every allowed move.

    Examples
    --------
    >>> transition("checked_in", "vitals")
    'pre_dose_checks'
    >>> transition("recovery", "vitals")
    'recovery'
    """
    allowed = allowed_moves(state)
    if move not in allowed:
        known = "" if move in MOVES else f" ({move!r} is not a known move)"
        raise IllegalTransition(
            f"cannot {move} in state {state}{known}: allowed moves from {state} are "
            f"{', '.join(allowed)}",
            state=state,
            move=move,
            allowed=allowed,
        )
    return TRANSITIONS[move][state]
