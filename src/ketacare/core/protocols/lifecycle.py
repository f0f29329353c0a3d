"""The plan lifecycle: statuses, moves and the legal transitions, as data.

A plan is drafted, signed (and, when it needs review, co-signed by a second
physician), activated by its first dose, and ends ``completed``, ``stopped`` (with
a reason) or ``superseded`` by a new version signed after it::

    draft -> signed -> active -> completed
      \\-> awaiting_cosign -/  \\
           (stop or supersede from awaiting_cosign, signed, active)

:data:`TRANSITIONS` maps each move to the statuses it may be made from and the
status it leads to; anything not listed is refused. The shell reads the table for
every status change (signing, co-signing, the status route, the first dose, a new
version's signature), the tests are generated from it and ``docs/protocols.md``
prints it. Nothing here reads the database or the clock.

Examples
--------
>>> next_status("draft", "sign_for_review")
'awaiting_cosign'
>>> next_status("completed", "stop") is None
True
>>> allowed_moves("signed")
('activate', 'stop', 'supersede')
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, cast, get_args

Status = Literal[
    "draft",
    "awaiting_cosign",
    "signed",
    "active",
    "completed",
    "stopped",
    "superseded",
]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

Move = Literal[
    "sign",
    "sign_for_review",
    "cosign",
    "activate",
    "complete",
    "stop",
    "supersede",
]
MOVES: Final[tuple[Move, ...]] = get_args(Move)

#: Statuses of a plan in force: a patient has at most one (another is signed only as
#: a new version of it, which supersedes it).
IN_FORCE: Final[tuple[Status, ...]] = ("awaiting_cosign", "signed", "active")

#: Statuses under which a plan's sessions are booked and given, and from which a new
#: version is drafted (a draft is edited directly; an ended plan stays as it was).
GIVEN: Final[tuple[Status, ...]] = ("signed", "active")

#: Statuses under which the patient sees the plan on their own pages and through the API:
#: signed (by every physician it needs) and later. A draft, or a plan awaiting its
#: co-signature, is not shown to the patient at all.
SHOWN_TO_PATIENT: Final[tuple[Status, ...]] = (
    "signed",
    "active",
    "completed",
    "stopped",
    "superseded",
)

#: Statuses a plan ends in; nothing moves it out of them.
FINAL: Final[tuple[Status, ...]] = ("completed", "stopped", "superseded")

#: The moves a physician makes through the status route (``stop`` needs a reason).
STATUS_ACTIONS: Final[tuple[Move, ...]] = ("activate", "complete", "stop")

#: move -> {from status: to status}. Anything not listed is refused.
TRANSITIONS: Final[Mapping[Move, Mapping[Status, Status]]] = MappingProxyType(
    {
        "sign": {"draft": "signed"},
        # a plan above a soft limit (or using a limit the clinic has not set)
        "sign_for_review": {"draft": "awaiting_cosign"},
        "cosign": {"awaiting_cosign": "signed"},
        # by the status route, or by the first dose given under the plan
        "activate": {"signed": "active"},
        "complete": {"active": "completed"},
        "stop": dict.fromkeys(IN_FORCE, "stopped"),
        # when a new version of the plan is signed (or co-signed)
        "supersede": dict.fromkeys(IN_FORCE, "superseded"),
    }
)


def next_status(status: str, move: str) -> Status | None:
    """The status after ``move`` from ``status``; None when the table does not allow it.

    Examples
    --------
    >>> next_status("signed", "activate")
    'active'
    >>> next_status("awaiting_cosign", "supersede")
    'superseded'
    >>> next_status("draft", "activate") is None, next_status("draft", "fly") is None
    (True, True)
    """
    table = cast(Mapping[str, Mapping[str, Status]], TRANSITIONS)
    return table.get(move, {}).get(status)


def allowed_moves(status: str) -> tuple[Move, ...]:
    """The moves the table allows from ``status``, sorted by name (none from a final one).

    Examples
    --------
    >>> allowed_moves("draft")
    ('sign', 'sign_for_review')
    >>> allowed_moves("superseded")
    ()
    """
    return tuple(sorted(m for m in MOVES if status in TRANSITIONS[m]))
