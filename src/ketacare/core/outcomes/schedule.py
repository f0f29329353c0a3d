"""Outcome schedules: which questionnaires a plan asks, when, and when the asking stops.

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
Stop conditions are a date, N days after the plan ends, or the plan being stopped (the
earliest that applies). No interval, offset or grace has a default: they are the clinic's
choice, and no source read gives one. :func:`parse_schedule` validates a schedule;
:func:`~ketacare.core.outcomes.schedule_status.evaluate_schedule` says what is due.

Examples
--------
>>> schedule = parse_schedule({
...     "grace_hours": 24,
...     "stop": {"when_plan_stopped": True},
...     "items": [{"instrument": "nrs_pain", "when": "every", "every_days": 7,
...                "starts": "first_session"}],
... }, instruments=["nrs_pain"])
>>> print(schedule.items[0].describe())
nrs_pain every 7 days from the first session
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, get_args

from ketacare.core.errors import InvalidInput

When = Literal["baseline", "before_each_session", "after_each_session", "every"]
Starts = Literal["schedule_start", "first_session", "last_session"]
WHENS: Final[tuple[When, ...]] = get_args(When)
STARTS: Final[tuple[Starts, ...]] = get_args(Starts)

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


def as_utc(value: datetime, field: str) -> datetime:
    """The same instant in UTC; a naive time is refused (its zone would be a guess)."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} {value.isoformat()} has no time zone: give one (e.g. +00:00)")
    return value.astimezone(UTC)


def utc_stamp(value: datetime) -> str:
    """The time in UTC to the minute, as pages and reasons show it."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def plain_number(value: float) -> str:
    """A number without trailing zeros (``24.0`` reads ``24``)."""
    return f"{value:g}"


def in_hours(delta: timedelta) -> float:
    """The duration in hours."""
    return delta.total_seconds() / 3600


def in_days(delta: timedelta) -> float:
    """The duration in days."""
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
            return f"{self.instrument}/after{plain_number(in_hours(self.offset))}h"
        if self.when == "every" and self.interval is not None:
            anchored = "-anchored" if self.anchored_to_last_treatment else ""
            return f"{self.instrument}/every{plain_number(in_days(self.interval))}d{anchored}"
        return f"{self.instrument}/{'before' if self.when == 'before_each_session' else 'baseline'}"

    def describe(self, name: str | None = None) -> str:
        """The item in words, for pages and reminders; ``name`` is how the instrument
        reads there (its short title), else its id.

        >>> Item(instrument="nrs_pain", when="after_each_session",
        ...      offset=timedelta(hours=24)).describe("Pain NRS")
        'Pain NRS 24 h after each session'
        """
        shown = name or self.instrument
        if self.when == "baseline":
            days = plain_number(in_days(self.lookback)) if self.lookback else ""
            extra = f" (no older than {days} days)" if self.lookback else ""
            return f"{shown} at baseline, before the first session{extra}"
        if self.when == "before_each_session" and self.lead is not None:
            hours = plain_number(in_hours(self.lead))
            return f"{shown} in the {hours} h before each session"
        if self.when == "after_each_session" and self.offset is not None:
            return f"{shown} {plain_number(in_hours(self.offset))} h after each session"
        assert self.interval is not None and self.starts is not None
        anchored = (
            ", the clock restarting at each session" if self.anchored_to_last_treatment else ""
        )
        start = self.starts.replace("_", " ")
        every = plain_number(in_days(self.interval))
        return f"{shown} every {every} days from the {start}{anchored}"


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
                out["lookback_days"] = in_days(item.lookback)
            if item.lead is not None:
                out["lead_hours"] = in_hours(item.lead)
            if item.offset is not None:
                out["offset_hours"] = in_hours(item.offset)
            if item.interval is not None:
                out["every_days"] = in_days(item.interval)
                out["starts"] = item.starts
                out["anchored_to_last_treatment"] = item.anchored_to_last_treatment
            if item.grace is not None:
                out["grace_hours"] = in_hours(item.grace)
            items.append(out)
        stop: dict[str, Any] = {}
        if self.stop.after_plan_end is not None:
            stop["after_plan_end_days"] = in_days(self.stop.after_plan_end)
        if self.stop.until is not None:
            stop["until"] = self.stop.until.isoformat()
        if self.stop.when_plan_stopped:
            stop["when_plan_stopped"] = True
        return {"grace_hours": in_hours(self.grace), "stop": stop, "items": items}


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
        most = plain_number(upper)
        raise _fail(field, f"must be above 0 and at most {most} {unit}, got {value!r}")
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
        return as_utc(value, field)
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
