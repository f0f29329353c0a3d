"""Where a plan's sessions land: the plan's days from its start date, on open days only.

Rules (the same for every protocol):

1. Session *n* of day *d* is planned on ``start + (d - 1)`` days (the plan's own dates).
2. The schedule's spacing is the minimum: a session comes at least as many days after
   the one before it as the schedule puts between them (the rule booking enforces).
3. A session whose day is closed (not an opening day, or a closure) moves to the next
   open day that keeps rule 2; the sessions after it move only as far as rule 2 needs.
4. A session moves at most the clinic's ``max_shift_days`` later than planned. The
   protocols' data give no maximum spacing or window, so that bound is the clinic's
   choice; unset, no session is moved and a closed day refuses the booking.

A session already booked keeps its day; the others are placed around it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ketacare.core.errors import InvalidInput
from ketacare.core.scheduling.hours import ClinicHours

__all__ = ["Placement", "PlannedDay", "place_sessions"]

#: how far ahead an open day is looked for before the clinic counts as closed for good
_SEARCH_DAYS = 366


@dataclass(frozen=True, slots=True)
class PlannedDay:
    """One session of the schedule: its number and its day (day 1 = the start date)."""

    number: int
    day: int


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one session lands: its planned date, the date it is booked, why it moved."""

    number: int
    day: int
    planned: dt.date
    date: dt.date
    why_moved: str | None = None
    already_booked: bool = False

    @property
    def shift_days(self) -> int:
        return (self.date - self.planned).days

    @property
    def booking_reason(self) -> str | None:
        """Why the session is booked on another day than its schedule's, with the day it
        was planned for, as its booking keeps it; None on its planned day.

        >>> Placement(1, 6, dt.date(2026, 3, 7), dt.date(2026, 3, 9), "closed on Saturdays"
        ...           ).booking_reason
        'planned Sat 07 Mar 2026: closed on Saturdays'
        """
        return f"planned {_show(self.planned)}: {self.why_moved}" if self.why_moved else None


def _show(day: dt.date) -> str:
    return f"{day:%a %d %b %Y}"


def _next_open(hours: ClinicHours, day: dt.date, number: int) -> dt.date:
    for _ in range(_SEARCH_DAYS):
        if hours.closed_because(day) is None:
            return day
        day += dt.timedelta(days=1)
    raise InvalidInput(f"session {number}: the clinic has no open day within a year of it")


def place_sessions(
    *,
    sessions: Sequence[PlannedDay],
    start: dt.date,
    hours: ClinicHours,
    booked: Mapping[int, dt.date] | None = None,
) -> tuple[Placement, ...]:
    """Place every session of a schedule on the clinic's open days (see the module rules).

    ``booked`` holds the sessions already booked (number -> date): they keep their day.

    Raises
    ------
    InvalidInput
        A session that would move further than ``max_shift_days`` (or at all, when the
        clinic sets none), or that could not keep the spacing before an already booked
        session; the message names the session, its planned day and why.

    Examples
    --------
    >>> from ketacare.core.scheduling.hours import OpeningHours
    >>> h = ClinicHours(days={d: OpeningHours() for d in range(5)}, max_shift_days=3)
    >>> plan = [PlannedDay(n, n) for n in range(1, 6)]          # daily x 5
    >>> [f"{p.date:%a %d}" for p in place_sessions(sessions=plan, start=dt.date(2025, 12, 11),
    ...                                             hours=h)]  # from a Thursday
    ['Thu 11', 'Fri 12', 'Mon 15', 'Tue 16', 'Wed 17']
    """
    booked = dict(booked or {})
    ordered = sorted(sessions, key=lambda s: (s.day, s.number))
    out: list[Placement] = []
    previous: Placement | None = None
    for index, s in enumerate(ordered):
        planned = start + dt.timedelta(days=s.day - 1)
        if s.number in booked:
            placed = Placement(s.number, s.day, planned, booked[s.number], already_booked=True)
        else:
            earliest, why = planned, hours.closed_because(planned)
            if previous is not None:
                spaced = previous.date + dt.timedelta(days=s.day - previous.day)
                if spaced > earliest:
                    earliest = spaced
                    moved = (
                        f", which moved from {_show(previous.planned)} to {_show(previous.date)}"
                        if previous.date != previous.planned
                        else f" ({_show(previous.date)})"
                    )
                    why = (
                        f"it must stay {s.day - previous.day} day(s) after session "
                        f"{previous.number}{moved}"
                    )
            day = _next_open(hours, earliest, s.number)
            if day != earliest:
                why = hours.closed_because(earliest) if why is None else why
            placed = Placement(s.number, s.day, planned, day, why if day != planned else None)
            _check_shift(placed, hours)
            _check_before_booked(placed, ordered[index + 1 :], booked)
        out.append(placed)
        previous = placed
    return tuple(out)


def _check_shift(placed: Placement, hours: ClinicHours) -> None:
    shift = placed.shift_days
    if shift <= 0:
        return
    head = (
        f"nothing was booked: session {placed.number} (day {placed.day}) is planned on "
        f"{_show(placed.planned)}: {placed.why_moved}; the first open day that keeps the "
        f"schedule's spacing is {_show(placed.date)}, {shift} day(s) after its planned day"
    )
    if hours.max_shift_days is None:
        raise InvalidInput(
            f"{head}, and the clinic hours file sets no limit on how far a session may move "
            "([moves] max_shift_days), so none is moved (the protocols' data give no maximum "
            "spacing): book the sessions one at a time, or ask the administrator to set it"
        )
    if shift > hours.max_shift_days:
        raise InvalidInput(
            f"{head}, more than the {hours.max_shift_days} day(s) the clinic hours file lets a "
            "session move: book the sessions one at a time on days you choose"
        )


def _check_before_booked(
    placed: Placement, later: Sequence[PlannedDay], booked: Mapping[int, dt.date]
) -> None:
    for s in later:
        if s.number in booked:
            latest = booked[s.number] - dt.timedelta(days=s.day - placed.day)
            if placed.date > latest:
                raise InvalidInput(
                    f"session {placed.number} (day {placed.day}) would land on "
                    f"{_show(placed.date)}, less than {s.day - placed.day} day(s) before "
                    f"session {s.number}, already booked on {_show(booked[s.number])}"
                )
            return
