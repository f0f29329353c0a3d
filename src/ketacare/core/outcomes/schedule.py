"""Outcome schedules: which questionnaires are due, overdue or upcoming, and why.

A schedule is a list of items, each an instrument and *when* it is asked:

- ``baseline``: once, before the first session. Any measurement at or before the
  first session counts (the baseline rule of :mod:`ketacare.core.outcomes.patient`),
  or, when the clinic sets ``lookback_days``, only one no older than that before
  the first session.
- ``before_each_session``: opens ``lead_hours`` before each session (never before
  the previous session) and closes when the session is given.
- ``after_each_session``: opens ``offset_hours`` after each session given and
  closes when the next session is given.
- ``every``: every ``every_days`` days from ``starts`` (the schedule's start, the
  first session, or the last session of the course); with
  ``anchored_to_last_treatment`` the clock restarts whenever a session is given.

An occurrence is *due* from the moment it opens and *overdue* ``grace_hours``
later (a pre-session occurrence is overdue at the latest when its session is
due). A measurement of the instrument inside the occurrence's window satisfies
it. A stop condition (a date, N days after the plan ends, the plan being
stopped; the earliest that applies) ends the schedule. No interval, offset or
grace has a default: they are the clinic's choice, and no source read gives one.

Times are timezone-aware and handled in UTC; a naive time is refused. The core
never reads the clock: the caller passes ``now``, the schedule's ``start``, the
sessions given and booked, and the measurements already completed.

Examples
--------
>>> from datetime import UTC, datetime
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
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, Final, Literal, get_args

from ketacare.core.errors import DataFileError, InvalidInput

When = Literal["baseline", "before_each_session", "after_each_session", "every"]
Starts = Literal["schedule_start", "first_session", "last_session"]
Status = Literal["due", "overdue", "upcoming", "satisfied", "missed", "stopped"]
WHENS: Final[tuple[When, ...]] = get_args(When)
STARTS: Final[tuple[Starts, ...]] = get_args(Starts)
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

#: Sanity bounds on the clinic's numbers (input checks, not clinical values).
MAX_HOURS: Final[float] = 24.0 * 366
MAX_DAYS: Final[float] = 366.0 * 5

_ITEM_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "baseline": ("lookback_days",),
    "before_each_session": ("lead_hours",),
    "after_each_session": ("offset_hours",),
    "every": ("every_days", "starts", "anchored_to_last_treatment"),
}
_COMMON_KEYS: Final[tuple[str, ...]] = ("instrument", "when", "grace_hours")
_STOP_KEYS: Final[tuple[str, ...]] = ("after_plan_end_days", "until", "when_plan_stopped")
_TOP_KEYS: Final[tuple[str, ...]] = ("grace_hours", "stop", "items")


def _utc(value: datetime, field: str) -> datetime:
    """The same instant in UTC; a naive time is refused (its zone would be a guess)."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} {value.isoformat()} has no time zone: give one (e.g. +00:00)")
    return value.astimezone(UTC)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _num(value: float) -> str:
    return f"{value:g}"


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


@dataclass(frozen=True, slots=True)
class Item:
    """One instrument and when it is asked (only the fields of its ``when`` are set).

    >>> Item(instrument="phq9", when="every", interval=timedelta(days=7),
    ...      starts="last_session", anchored_to_last_treatment=True).key
    'phq9/every7d-anchored'
    """

    instrument: str
    when: When
    lead: timedelta | None = None
    offset: timedelta | None = None
    interval: timedelta | None = None
    starts: Starts | None = None
    anchored_to_last_treatment: bool = False
    lookback: timedelta | None = None
    grace: timedelta | None = None

    @property
    def key(self) -> str:
        """A stable name of the item, used in occurrence keys (reminders are sent once each)."""
        if self.when == "after_each_session" and self.offset is not None:
            return f"{self.instrument}/after{_num(_hours(self.offset))}h"
        if self.when == "every" and self.interval is not None:
            anchored = "-anchored" if self.anchored_to_last_treatment else ""
            return f"{self.instrument}/every{_num(_days(self.interval))}d{anchored}"
        return f"{self.instrument}/{'before' if self.when == 'before_each_session' else 'baseline'}"

    def describe(self) -> str:
        """The item in words, for pages and reminders."""
        if self.when == "baseline":
            extra = f" (no older than {_num(_days(self.lookback))} days)" if self.lookback else ""
            return f"{self.instrument} at baseline, before the first session{extra}"
        if self.when == "before_each_session" and self.lead is not None:
            return f"{self.instrument} in the {_num(_hours(self.lead))} h before each session"
        if self.when == "after_each_session" and self.offset is not None:
            return f"{self.instrument} {_num(_hours(self.offset))} h after each session"
        assert self.interval is not None and self.starts is not None
        anchored = (
            ", the clock restarting at each session" if self.anchored_to_last_treatment else ""
        )
        start = self.starts.replace("_", " ")
        return (
            f"{self.instrument} every {_num(_days(self.interval))} days from the {start}{anchored}"
        )


@dataclass(frozen=True, slots=True)
class StopCondition:
    """When the schedule ends: the earliest of the conditions that are set."""

    after_plan_end: timedelta | None = None
    until: datetime | None = None
    when_plan_stopped: bool = False


@dataclass(frozen=True, slots=True)
class Schedule:
    """Items, the grace after which a due item is overdue, and the stop condition."""

    items: tuple[Item, ...]
    grace: timedelta
    stop: StopCondition

    def to_dict(self) -> dict[str, Any]:
        """The schedule as plain JSON values; :func:`parse_schedule` reads it back.

        >>> s = parse_schedule({"grace_hours": 12, "stop": {"after_plan_end_days": 90},
        ...     "items": [{"instrument": "phq9", "when": "before_each_session",
        ...                "lead_hours": 48}]}, instruments=["phq9"])
        >>> parse_schedule(s.to_dict(), instruments=["phq9"]) == s
        True
        """
        items: list[dict[str, Any]] = []
        for item in self.items:
            out: dict[str, Any] = {"instrument": item.instrument, "when": item.when}
            if item.lookback is not None:
                out["lookback_days"] = _days(item.lookback)
            if item.lead is not None:
                out["lead_hours"] = _hours(item.lead)
            if item.offset is not None:
                out["offset_hours"] = _hours(item.offset)
            if item.interval is not None:
                out["every_days"] = _days(item.interval)
                out["starts"] = item.starts
                out["anchored_to_last_treatment"] = item.anchored_to_last_treatment
            if item.grace is not None:
                out["grace_hours"] = _hours(item.grace)
            items.append(out)
        stop: dict[str, Any] = {}
        if self.stop.after_plan_end is not None:
            stop["after_plan_end_days"] = _days(self.stop.after_plan_end)
        if self.stop.until is not None:
            stop["until"] = self.stop.until.isoformat()
        if self.stop.when_plan_stopped:
            stop["when_plan_stopped"] = True
        return {"grace_hours": _hours(self.grace), "stop": stop, "items": items}


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


# --------------------------------------------------------------------------- parsing


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}")


def _only(table: Mapping[str, Any], allowed: Sequence[str], field: str) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(
                f"{field}.{key}" if field else key, f"unknown field: allowed {', '.join(allowed)}"
            )


def _positive(value: object, field: str, unit: str, upper: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(field, f"must be a number of {unit} above 0, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0 or number > upper:
        raise _fail(field, f"must be above 0 and at most {_num(upper)} {unit}, got {value!r}")
    return number


def _required(table: Mapping[str, Any], key: str, field: str, what: str) -> object:
    if key not in table or table[key] is None:
        raise _fail(f"{field}.{key}" if field else key, f"is required ({what}); it has no default")
    return table[key]


def _hours_field(table: Mapping[str, Any], key: str, field: str, what: str) -> timedelta:
    value = _required(table, key, field, what)
    return timedelta(hours=_positive(value, f"{field}.{key}" if field else key, "hours", MAX_HOURS))


def _days_field(table: Mapping[str, Any], key: str, field: str, what: str) -> timedelta:
    value = _required(table, key, field, what)
    return timedelta(days=_positive(value, f"{field}.{key}" if field else key, "days", MAX_DAYS))


def _parse_time(value: object, field: str) -> datetime:
    if isinstance(value, datetime):
        return _utc(value, field)
    if not isinstance(value, str):
        raise _fail(field, f"must be an ISO 8601 date-time with a time zone, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise _fail(
            field,
            "must be an ISO 8601 date-time with a time zone "
            f"(e.g. 2026-12-31T23:59:00+00:00), got {value!r}",
        ) from exc
    if parsed.tzinfo is None:
        raise _fail(field, f"{value!r} has no time zone: add one (e.g. +00:00)")
    return parsed.astimezone(UTC)


def _parse_item(raw: object, field: str, instruments: Collection[str]) -> Item:
    if not isinstance(raw, Mapping):
        raise _fail(field, f"must be a table with instrument and when, got {raw!r}")
    instrument = _required(raw, "instrument", field, f"one of {', '.join(sorted(instruments))}")
    if not isinstance(instrument, str) or instrument not in instruments:
        raise _fail(
            f"{field}.instrument",
            f"unknown instrument {instrument!r}: allowed {', '.join(sorted(instruments))}",
        )
    when = _required(raw, "when", field, f"one of {', '.join(WHENS)}")
    if when not in WHENS:
        raise _fail(f"{field}.when", f"unknown {when!r}: allowed {', '.join(WHENS)}")
    kind: When = when
    _only(raw, _COMMON_KEYS + _ITEM_KEYS[kind], field)
    grace = (
        _hours_field(raw, "grace_hours", field, "hours")
        if raw.get("grace_hours") is not None
        else None
    )
    if kind == "baseline":
        lookback = (
            _days_field(raw, "lookback_days", field, "days")
            if raw.get("lookback_days") is not None
            else None
        )
        return Item(instrument=instrument, when=kind, lookback=lookback, grace=grace)
    if kind == "before_each_session":
        lead = _hours_field(raw, "lead_hours", field, "how many hours before each session it opens")
        return Item(instrument=instrument, when=kind, lead=lead, grace=grace)
    if kind == "after_each_session":
        offset = _hours_field(
            raw, "offset_hours", field, "how many hours after each session it is due"
        )
        return Item(instrument=instrument, when=kind, offset=offset, grace=grace)
    interval = _days_field(raw, "every_days", field, "the interval in days")
    starts = _required(raw, "starts", field, f"one of {', '.join(STARTS)}")
    if starts not in STARTS:
        raise _fail(f"{field}.starts", f"unknown {starts!r}: allowed {', '.join(STARTS)}")
    anchored = raw.get("anchored_to_last_treatment", False)
    if not isinstance(anchored, bool):
        raise _fail(
            f"{field}.anchored_to_last_treatment", f"must be true or false, got {anchored!r}"
        )
    return Item(
        instrument=instrument,
        when=kind,
        interval=interval,
        starts=starts,
        anchored_to_last_treatment=anchored,
        grace=grace,
    )


def _parse_stop(raw: object) -> StopCondition:
    if not isinstance(raw, Mapping):
        raise _fail("stop", f"must be a table with one or more of {', '.join(_STOP_KEYS)}")
    _only(raw, _STOP_KEYS, "stop")
    after = None
    if raw.get("after_plan_end_days") is not None:
        days = raw["after_plan_end_days"]
        if days == 0 and not isinstance(days, bool):
            after = timedelta(0)  # stop the moment the plan ends
        else:
            after = timedelta(days=_positive(days, "stop.after_plan_end_days", "days", MAX_DAYS))
    until = _parse_time(raw["until"], "stop.until") if raw.get("until") is not None else None
    stopped = raw.get("when_plan_stopped", False)
    if not isinstance(stopped, bool):
        raise _fail("stop.when_plan_stopped", f"must be true or false, got {stopped!r}")
    if after is None and until is None and not stopped:
        raise _fail(
            "stop",
            f"needs at least one condition: {', '.join(_STOP_KEYS)} "
            "(a schedule that never stops would remind a patient forever)",
        )
    return StopCondition(after_plan_end=after, until=until, when_plan_stopped=stopped)


def parse_schedule(raw: object, *, instruments: Collection[str]) -> Schedule:
    """Validate a schedule given as a dict (JSON, a form); errors name the field.

    ``instruments`` are the instrument ids the caller allows (e.g. self-report ones).

    >>> parse_schedule({"grace_hours": 24, "stop": {"when_plan_stopped": True},
    ...     "items": [{"instrument": "phq9", "when": "every", "every_days": 7}]},
    ...     instruments=["phq9"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: items[0].starts: is required (one of ...); it has no default
    >>> parse_schedule({"grace_hours": 24, "stop": {"when_plan_stopped": True},
    ...     "items": [{"instrument": "phq9", "when": "after_each_session"}]},
    ...     instruments=["phq9"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: items[0].offset_hours: is required (...); it has no default
    """
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"a schedule must be a table with {', '.join(_TOP_KEYS)}")
    _only(raw, _TOP_KEYS, "")
    grace = _hours_field(
        raw, "grace_hours", "", "hours after an item is due before it counts as overdue"
    )
    stop = _parse_stop(_required(raw, "stop", "", f"one or more of {', '.join(_STOP_KEYS)}"))
    items_raw = _required(raw, "items", "", "a list of {instrument, when}")
    if not isinstance(items_raw, list | tuple) or not items_raw:
        raise _fail("items", "must be a non-empty list of {instrument, when, ...}")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(items_raw):
        item = _parse_item(entry, f"items[{index}]", instruments)
        if item.key in seen:
            raise _fail(f"items[{index}]", f"repeats items[{seen[item.key]}] ({item.key})")
        seen[item.key] = index
        items.append(item)
    return Schedule(items=tuple(items), grace=grace, stop=stop)


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
    hours = _num(_hours(item.offset))
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
    days = _num(_days(item.interval))
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
        candidates.append((stop.until, f"the stop date {_stamp(stop.until)} was reached"))
    if plan_end is not None:
        end = _utc(plan_end.at, "plan end")
        if stop.when_plan_stopped and plan_end.stopped:
            candidates.append((end, f"the plan was stopped {_stamp(end)}"))
        if stop.after_plan_end is not None:
            candidates.append(
                (
                    end + stop.after_plan_end,
                    f"the plan ended {_stamp(end)}; the schedule ran "
                    f"{_num(_days(stop.after_plan_end))} days after",
                )
            )
    if not candidates:
        return None, None
    return min(candidates, key=lambda c: c[0])


def _satisfy(occurrence: Occurrence, times: Sequence[datetime]) -> Occurrence:
    for at in times:
        if occurrence.counts(at):
            return Occurrence(
                key=occurrence.key,
                instrument=occurrence.instrument,
                label=occurrence.label,
                opens_at=occurrence.opens_at,
                overdue_at=occurrence.overdue_at,
                closes_at=occurrence.closes_at,
                counts_from=occurrence.counts_from,
                closes_inclusive=occurrence.closes_inclusive,
                satisfied_at=at,
            )
    return occurrence


def _clip(occurrence: Occurrence, stops_at: datetime | None) -> Occurrence:
    if stops_at is None or (occurrence.closes_at is not None and occurrence.closes_at <= stops_at):
        return occurrence
    return Occurrence(
        key=occurrence.key,
        instrument=occurrence.instrument,
        label=occurrence.label,
        opens_at=occurrence.opens_at,
        overdue_at=occurrence.overdue_at,
        closes_at=stops_at,
        counts_from=occurrence.counts_from,
        closes_inclusive=False,
    )


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
    then = f"; next due {_stamp(next_due)} ({following.label})" if following and next_due else ""
    open_now = [o for o in occurrences if _is_open(o, now)]
    unsatisfied = sorted(
        (o for o in open_now if o.satisfied_at is None), key=lambda o: o.overdue_at
    )
    if unsatisfied:
        current = unsatisfied[0]
        if now >= current.overdue_at:
            reason = f"overdue since {_stamp(current.overdue_at)} ({current.label})"
            return ItemStatus(item, "overdue", reason, current, next_due)
        reason = (
            f"due since {_stamp(current.opens_at)} ({current.label}); "
            f"overdue from {_stamp(current.overdue_at)}"
        )
        return ItemStatus(item, "due", reason, current, next_due)
    if open_now:
        current = max(open_now, key=lambda o: o.opens_at)
        assert current.satisfied_at is not None
        reason = f"filled {_stamp(current.satisfied_at)} ({current.label}){then}"
        return ItemStatus(item, "satisfied", reason, current, next_due)
    if following is not None:
        reason = f"next due {_stamp(following.opens_at)} ({following.label})"
        return ItemStatus(item, "upcoming", reason, following, next_due)
    closed = sorted(
        (o for o in occurrences if o.opens_at <= now), key=lambda o: o.opens_at, reverse=True
    )
    if closed:
        last = closed[0]
        if last.satisfied_at is not None:
            reason = f"filled {_stamp(last.satisfied_at)} ({last.label})"
            return ItemStatus(item, "satisfied", reason, last, None)
        closed_at = last.closes_at or now
        reason = f"not filled ({last.label}); the window closed {_stamp(closed_at)}"
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
    now = _utc(now, "now")
    start = _utc(start, "start")
    ordered = sorted(
        (
            SessionTime(
                at=_utc(s.at, f"session {s.key}"),
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
        at = _utc(m.at, f"{m.instrument} measurement")
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


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True, slots=True)
class TemplateDomain:
    """One outcome domain of a template and the library's instrument for it (if any)."""

    domain: str
    instrument: str | None
    recommended: str
    note: str


@dataclass(frozen=True, slots=True)
class ScheduleTemplate:
    """A suggested set of instruments with its source; it carries no intervals."""

    id: str
    title: str
    citation: str
    doi: str
    url: str
    read: str
    domains: tuple[TemplateDomain, ...]

    @property
    def instruments(self) -> tuple[str, ...]:
        return tuple(d.instrument for d in self.domains if d.instrument)


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataFileError(f"schedule template {where}: {key} must be a non-empty string")
    return value


@lru_cache(maxsize=1)
def load_templates() -> tuple[ScheduleTemplate, ...]:
    """The shipped templates (``data/schedule_templates/*.toml``), each with its citation.

    >>> [(t.id, t.instruments) for t in load_templates()]
    [('immpact-core-domains', ('nrs_pain', 'bpi_sf', 'pgic'))]
    """
    root = resources.files("ketacare.core.outcomes") / "data" / "schedule_templates"
    out: list[ScheduleTemplate] = []
    for name in sorted(p.name for p in root.iterdir() if p.name.endswith(".toml")):
        try:
            table = tomllib.loads((root / name).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise DataFileError(f"schedule template {name}: not valid TOML: {exc}") from exc
        domains = []
        for d in table.get("domains", []):
            instrument = d.get("instrument")
            domains.append(
                TemplateDomain(
                    domain=_text(d, "domain", name),
                    instrument=instrument if isinstance(instrument, str) and instrument else None,
                    recommended=_text(d, "recommended", name),
                    note=_text(d, "note", name),
                )
            )
        if not domains:
            raise DataFileError(f"schedule template {name}: no domains")
        out.append(
            ScheduleTemplate(
                id=_text(table, "id", name),
                title=_text(table, "title", name),
                citation=_text(table, "citation", name),
                doi=_text(table, "doi", name),
                url=_text(table, "url", name),
                read=_text(table, "read", name),
                domains=tuple(domains),
            )
        )
    return tuple(out)
