"""Outcome schedule status: which questionnaires are due, overdue or upcoming, and why.

An occurrence is *due* from the moment it opens and *overdue* ``grace_hours``
later (a pre-session occurrence is overdue at the latest when its session is
due). A measurement of the instrument inside the occurrence's window satisfies
it. Once the schedule's stop condition applies, every item is stopped.

Times are timezone-aware and handled in UTC; a naive time is refused. The core
never reads the clock: the caller passes ``now``, the schedule's ``start``, the
sessions given and booked, and the measurements already completed.

Examples
--------
>>> from datetime import UTC, datetime
>>> from ketacare.core.outcomes.schedule import parse_schedule
>>> schedule = parse_schedule({
...     "grace_hours": 24,
...     "stop": {"when_plan_stopped": True},
...     "items": [
...         {"instrument": "nrs_pain", "when": "baseline"},
...         {"instrument": "nrs_pain", "when": "after_each_session", "offset_hours": 24},
...     ],
... }, instruments=["nrs_pain", "phq9"])
>>> t = lambda day, hour=9: datetime(2026, 3, day, hour, tzinfo=UTC)
>>> status = evaluate_schedule(schedule, now=t(3, 12), start=t(1),
...     sessions=[SessionTime(at=t(2), given=True, key="1", label="session 1")],
...     measurements=[Measurement(instrument="nrs_pain", at=t(1, 15))])
>>> for s in status.items:
...     print(s.item.when, s.status, s.reason.split(";")[0])
baseline satisfied filled 2026-03-01 15:00 UTC (baseline)
after_each_session due due since 2026-03-03 09:00 UTC (24 h after session 1)
>>> status.items[1].occurrence.overdue_at.isoformat()
'2026-03-04T09:00:00+00:00'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Literal, get_args

from ketacare.core.outcomes.schedule import (
    Item,
    Schedule,
    StopCondition,
    as_utc,
    in_days,
    in_hours,
    plain_number,
    utc_stamp,
)

Status = Literal["due", "overdue", "upcoming", "satisfied", "missed", "stopped"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)


@dataclass(frozen=True, slots=True)
class SessionTime:
    """A dosing session of the plan: given (dosing started at ``at``) or booked for ``at``.

    ``key`` names the session stably (booked and later given keep the same key);
    ``last_of_course`` marks the course's last planned session.
    """

    at: datetime
    given: bool
    key: str
    label: str = ""
    last_of_course: bool = False


@dataclass(frozen=True, slots=True)
class Measurement:
    """A completed instrument (only final, scored assessments should be passed)."""

    instrument: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PlanEnd:
    """The plan ended at ``at``: stopped, or completed (``stopped`` False)."""

    at: datetime
    stopped: bool


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One time an item is asked.

    Due from ``opens_at``, overdue from ``overdue_at``; a measurement from
    ``counts_from`` (or any earlier one when None) until ``closes_at`` satisfies it
    (``closes_at`` None: still open). ``key`` is unique and stable per occurrence.
    """

    key: str
    instrument: str
    label: str
    opens_at: datetime
    overdue_at: datetime
    closes_at: datetime | None
    counts_from: datetime | None
    closes_inclusive: bool
    satisfied_at: datetime | None = None

    def counts(self, at: datetime) -> bool:
        """Whether a measurement at ``at`` falls in this occurrence's window."""
        if self.counts_from is not None and at < self.counts_from:
            return False
        if self.closes_at is None:
            return True
        return at <= self.closes_at if self.closes_inclusive else at < self.closes_at


@dataclass(frozen=True, slots=True)
class ItemStatus:
    """An item's status at ``now`` with the occurrence it is about and the reason in words.

    ``occurrence`` is the open one (due, overdue, satisfied), the next one (upcoming)
    or the last one (missed, satisfied). ``next_due_at`` is when the next one opens.
    """

    item: Item
    status: Status
    reason: str
    occurrence: Occurrence | None
    next_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    """Every item's status at ``at``; ``stops_at`` when the stop condition is known."""

    at: datetime
    items: tuple[ItemStatus, ...]
    stops_at: datetime | None
    stop_reason: str | None

    @property
    def outstanding(self) -> tuple[ItemStatus, ...]:
        """Items due or overdue now (what a patient should fill)."""
        return tuple(s for s in self.items if s.status in ("due", "overdue"))


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True, slots=True)
class _Plan:
    """The item's occurrences that matter at ``now``: the open ones, the next, the last."""

    occurrences: tuple[Occurrence, ...]
    waiting: str | None = None


def _overdue(opens: datetime, grace: timedelta, cap: datetime | None) -> datetime:
    due = opens + grace
    return min(due, cap) if cap is not None and cap >= opens else due


def _first(sessions: Sequence[SessionTime]) -> SessionTime | None:
    """The first session: the earliest given one, else the earliest booked one."""
    given = [s for s in sessions if s.given]
    return given[0] if given else (sessions[0] if sessions else None)


def _baseline(
    item: Item, grace: timedelta, start: datetime, sessions: Sequence[SessionTime]
) -> _Plan:
    first = _first(sessions)
    counts_from = first.at - item.lookback if first and item.lookback else None
    opens = max(start, counts_from) if counts_from else start
    closes = first.at if first and first.given else None
    return _Plan(
        (
            Occurrence(
                key=f"{item.key}",
                instrument=item.instrument,
                label="baseline",
                opens_at=opens,
                overdue_at=_overdue(opens, grace, first.at if first else None),
                closes_at=closes,
                counts_from=counts_from,
                closes_inclusive=True,
            ),
        )
    )


def _before(
    item: Item, grace: timedelta, start: datetime, sessions: Sequence[SessionTime]
) -> _Plan:
    assert item.lead is not None
    out: list[Occurrence] = []
    for index, s in enumerate(sessions):
        if s.given and s.at <= start:
            continue  # given before the schedule began: nothing was asked for it
        counts_from = s.at - item.lead
        if index > 0:
            counts_from = max(counts_from, sessions[index - 1].at)
        opens = max(counts_from, start)
        out.append(
            Occurrence(
                key=f"{item.key}/{s.key}",
                instrument=item.instrument,
                label=f"before {s.label or 'the session'}",
                opens_at=opens,
                overdue_at=_overdue(opens, grace, s.at),
                closes_at=s.at if s.given else None,
                counts_from=counts_from,
                closes_inclusive=True,
            )
        )
    booked = any(not s.given for s in sessions)
    return _Plan(tuple(out), None if booked else "no further session is booked yet")


def _after(
    item: Item,
    grace: timedelta,
    start: datetime,
    sessions: Sequence[SessionTime],
    now: datetime,
) -> _Plan:
    assert item.offset is not None
    out: list[Occurrence] = []
    hours = plain_number(in_hours(item.offset))
    for index, s in enumerate(sessions):
        if not s.given and s.at <= now:
            continue  # booked for a time that has passed without dosing: nothing to follow
        opens = s.at + item.offset
        if opens < start:
            continue
        following = sessions[index + 1] if index + 1 < len(sessions) else None
        if following is not None and following.at <= opens:
            continue  # the next session comes first: it takes over
        out.append(
            Occurrence(
                key=f"{item.key}/{s.key}",
                instrument=item.instrument,
                label=f"{hours} h after {s.label or 'the session'}",
                opens_at=opens,
                overdue_at=opens + grace,
                closes_at=following.at if following is not None and following.given else None,
                counts_from=opens,
                closes_inclusive=True,
            )
        )
    waiting = None if sessions else "no session is given or booked yet"
    return _Plan(tuple(out), waiting)


def _every(
    item: Item, grace: timedelta, start: datetime, sessions: Sequence[SessionTime], now: datetime
) -> _Plan:
    assert item.interval is not None and item.starts is not None
    if item.starts == "schedule_start":
        origin: datetime | None = start
    elif item.starts == "first_session":
        first = _first(sessions)
        origin = first.at if first else None
    else:
        origin = next((s.at for s in sessions if s.last_of_course), None)
    if origin is None:
        which = "first session" if item.starts == "first_session" else "last session of the course"
        return _Plan((), f"starts at the {which}, which is not booked yet")
    given = [s for s in sessions if s.given and s.at <= now]
    if item.anchored_to_last_treatment and given and given[-1].at > origin:
        origin = given[-1].at
    days = plain_number(in_days(item.interval))
    # the occurrence open now (k >= 1) and the next one; earlier ones have closed
    k = max(0, math.floor((now - origin) / item.interval))
    out: list[Occurrence] = []
    for step in (k, k + 1):
        if step < 1:
            continue
        opens = origin + step * item.interval
        if opens < start:
            continue
        closes = origin + (step + 1) * item.interval
        if item.anchored_to_last_treatment:
            later = [s.at for s in sessions if s.given and opens < s.at < closes]
            closes = min(later) if later else closes
        out.append(
            Occurrence(
                key=f"{item.key}/{opens.strftime('%Y%m%dT%H%MZ')}",
                instrument=item.instrument,
                label=f"every {days} days",
                opens_at=opens,
                overdue_at=opens + grace,
                closes_at=closes,
                counts_from=opens,
                closes_inclusive=False,
            )
        )
    return _Plan(tuple(out))


def stop_time(stop: StopCondition, plan_end: PlanEnd | None) -> tuple[datetime | None, str | None]:
    """When the schedule stops (the earliest condition that applies) and why.

    >>> from datetime import UTC, datetime
    >>> end = PlanEnd(at=datetime(2026, 4, 1, 12, tzinfo=UTC), stopped=False)
    >>> at, why = stop_time(StopCondition(after_plan_end=timedelta(days=30)), end)
    >>> at.isoformat()
    '2026-05-01T12:00:00+00:00'
    >>> print(why)
    the plan ended 2026-04-01 12:00 UTC; the schedule ran 30 days after
    """
    candidates: list[tuple[datetime, str]] = []
    if stop.until is not None:
        candidates.append((stop.until, f"the stop date {utc_stamp(stop.until)} was reached"))
    if plan_end is not None:
        end = as_utc(plan_end.at, "plan end")
        if stop.when_plan_stopped and plan_end.stopped:
            candidates.append((end, f"the plan was stopped {utc_stamp(end)}"))
        if stop.after_plan_end is not None:
            candidates.append(
                (
                    end + stop.after_plan_end,
                    f"the plan ended {utc_stamp(end)}; the schedule ran "
                    f"{plain_number(in_days(stop.after_plan_end))} days after",
                )
            )
    if not candidates:
        return None, None
    return min(candidates, key=lambda c: c[0])


def _satisfy(occurrence: Occurrence, times: Sequence[datetime]) -> Occurrence:
    for at in times:
        if occurrence.counts(at):
            return replace(occurrence, satisfied_at=at)
    return occurrence


def _clip(occurrence: Occurrence, stops_at: datetime | None) -> Occurrence:
    if stops_at is None or (occurrence.closes_at is not None and occurrence.closes_at <= stops_at):
        return occurrence
    return replace(occurrence, closes_at=stops_at, closes_inclusive=False, satisfied_at=None)


def _is_open(occurrence: Occurrence, now: datetime) -> bool:
    if occurrence.opens_at > now:
        return False
    if occurrence.closes_at is None:
        return True
    return (
        now <= occurrence.closes_at if occurrence.closes_inclusive else now < occurrence.closes_at
    )


def _status_of(
    item: Item, plan: _Plan, now: datetime, times: Sequence[datetime], stops_at: datetime | None
) -> ItemStatus:
    occurrences = [
        _satisfy(_clip(o, stops_at), times)
        for o in plan.occurrences
        if stops_at is None or o.opens_at < stops_at
    ]
    upcoming = sorted((o for o in occurrences if o.opens_at > now), key=lambda o: o.opens_at)
    following = upcoming[0] if upcoming else None
    next_due = following.opens_at if following else None
    then = f"; next due {utc_stamp(next_due)} ({following.label})" if following and next_due else ""
    open_now = [o for o in occurrences if _is_open(o, now)]
    unsatisfied = sorted(
        (o for o in open_now if o.satisfied_at is None), key=lambda o: o.overdue_at
    )
    if unsatisfied:
        current = unsatisfied[0]
        if now >= current.overdue_at:
            reason = f"overdue since {utc_stamp(current.overdue_at)} ({current.label})"
            return ItemStatus(item, "overdue", reason, current, next_due)
        reason = (
            f"due since {utc_stamp(current.opens_at)} ({current.label}); "
            f"overdue from {utc_stamp(current.overdue_at)}"
        )
        return ItemStatus(item, "due", reason, current, next_due)
    if open_now:
        current = max(open_now, key=lambda o: o.opens_at)
        assert current.satisfied_at is not None
        reason = f"filled {utc_stamp(current.satisfied_at)} ({current.label}){then}"
        return ItemStatus(item, "satisfied", reason, current, next_due)
    if following is not None:
        reason = f"next due {utc_stamp(following.opens_at)} ({following.label})"
        return ItemStatus(item, "upcoming", reason, following, next_due)
    closed = sorted(
        (o for o in occurrences if o.opens_at <= now), key=lambda o: o.opens_at, reverse=True
    )
    if closed:
        last = closed[0]
        if last.satisfied_at is not None:
            reason = f"filled {utc_stamp(last.satisfied_at)} ({last.label})"
            return ItemStatus(item, "satisfied", reason, last, None)
        closed_at = last.closes_at or now
        reason = f"not filled ({last.label}); the window closed {utc_stamp(closed_at)}"
        return ItemStatus(item, "missed", reason, last, None)
    reason = f"waiting: {plan.waiting}" if plan.waiting else "nothing more is asked"
    return ItemStatus(item, "upcoming", reason, None, None)


def evaluate_schedule(
    schedule: Schedule,
    *,
    now: datetime,
    start: datetime,
    sessions: Sequence[SessionTime],
    measurements: Sequence[Measurement],
    plan_end: PlanEnd | None = None,
) -> ScheduleStatus:
    """Each item's status at ``now``.

    ``start`` is when the schedule began (nothing is asked for earlier times, except
    that an earlier measurement can serve as the baseline); ``sessions`` are the
    plan's sessions given and booked; ``measurements`` the completed instruments.

    >>> from datetime import UTC, datetime
    >>> from ketacare.core.outcomes.schedule import parse_schedule
    >>> t = lambda day, hour=9: datetime(2026, 3, day, hour, tzinfo=UTC)
    >>> weekly = parse_schedule({"grace_hours": 48, "stop": {"until": "2026-12-31T00:00:00+00:00"},
    ...     "items": [{"instrument": "phq9", "when": "every", "every_days": 7,
    ...                "starts": "first_session", "anchored_to_last_treatment": True}]},
    ...     instruments=["phq9"])
    >>> given = [SessionTime(at=t(2), given=True, key="1"),
    ...          SessionTime(at=t(6), given=True, key="2")]
    >>> status = evaluate_schedule(weekly, now=t(10), start=t(1), sessions=given, measurements=[])
    >>> status.items[0].reason
    'next due 2026-03-13 09:00 UTC (every 7 days)'
    """
    now = as_utc(now, "now")
    start = as_utc(start, "start")
    ordered = sorted(
        (
            SessionTime(
                at=as_utc(s.at, f"session {s.key}"),
                given=s.given,
                key=s.key,
                label=s.label,
                last_of_course=s.last_of_course,
            )
            for s in sessions
        ),
        key=lambda s: s.at,
    )
    by_instrument: dict[str, list[datetime]] = {}
    for m in measurements:
        at = as_utc(m.at, f"{m.instrument} measurement")
        if at <= now:
            by_instrument.setdefault(m.instrument, []).append(at)
    for times in by_instrument.values():
        times.sort()
    stops_at, stop_reason = stop_time(schedule.stop, plan_end)
    out: list[ItemStatus] = []
    for item in schedule.items:
        if stops_at is not None and now >= stops_at:
            out.append(ItemStatus(item, "stopped", f"stopped: {stop_reason}", None, None))
            continue
        grace = item.grace if item.grace is not None else schedule.grace
        if item.when == "baseline":
            plan = _baseline(item, grace, start, ordered)
        elif item.when == "before_each_session":
            plan = _before(item, grace, start, ordered)
        elif item.when == "after_each_session":
            plan = _after(item, grace, start, ordered, now)
        else:
            plan = _every(item, grace, start, ordered, now)
        out.append(_status_of(item, plan, now, by_instrument.get(item.instrument, []), stops_at))
    return ScheduleStatus(at=now, items=tuple(out), stops_at=stops_at, stop_reason=stop_reason)
