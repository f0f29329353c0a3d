"""The clinic's opening days and hours, and its closures (``KETACARE_CLINIC_HOURS_FILE``).

These are the clinic's own choices, not clinical numbers: nothing here has a source.
A file looks like::

    [opening]
    days = ["mon", "tue", "wed", "thu", "fri"]
    opens = "08:00"
    closes = "18:00"
    hours.fri = { opens = "08:00", closes = "14:00" }   # a day with its own hours

    [[closure]]
    date = 2026-12-25
    label = "Christmas Day"

    [[closure]]
    from = 2026-12-28
    to = 2026-12-31
    label = "Winter closure"

    [moves]
    max_shift_days = 4   # how many days a closed day may push a session later

Without ``[opening]`` the opening days are not set: every day is bookable, and the
calendar says so. Without ``opens``/``closes`` any time of an open day is bookable.
Without ``max_shift_days`` a session planned on a closed day is not moved (its booking
is refused with the reason): the protocols' data give no maximum spacing to fall back on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ketacare.core.datafile import Reader, read_toml

__all__ = [
    "DAY_NAMES",
    "ClinicHours",
    "Closure",
    "OpeningHours",
    "load_clinic_hours",
    "parse_clinic_hours",
]

_KIND: Final = "clinic hours"

#: the day names a file uses, Monday first (index = :meth:`datetime.date.weekday`)
DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_WORDS: Final = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """When an open day's chairs may be booked (both None: any time of the day)."""

    opens: dt.time | None = None
    closes: dt.time | None = None

    def text(self) -> str:
        """``08:00-18:00``, or "all day" when no hours are set."""
        if self.opens is None or self.closes is None:
            return "all day"
        return f"{self.opens:%H:%M}-{self.closes:%H:%M}"


@dataclass(frozen=True, slots=True)
class Closure:
    """Days the clinic is closed (``first`` to ``last``, inclusive), with a label."""

    first: dt.date
    last: dt.date
    label: str

    def covers(self, day: dt.date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True, slots=True)
class ClinicHours:
    """The clinic's opening days and hours, closures and how far a session may move.

    ``days`` maps a weekday (0 = Monday) to its hours; empty means the opening days
    are not set (every day is bookable).

    Examples
    --------
    >>> h = parse_clinic_hours({"opening": {"days": ["mon", "tue"], "opens": "08:00",
    ...     "closes": "17:00"}, "closure": [{"date": dt.date(2026, 3, 3), "label": "Training"}]})
    >>> h.closed_because(dt.date(2026, 3, 2)) is None   # a Monday
    True
    >>> h.closed_because(dt.date(2026, 3, 3))
    'closed: Training'
    >>> h.closed_because(dt.date(2026, 3, 4))
    'closed on Wednesdays (open Mon-Tue)'
    """

    days: Mapping[int, OpeningHours] = field(default_factory=dict)
    closures: tuple[Closure, ...] = ()
    max_shift_days: int | None = None
    path: str | None = None

    @property
    def opening_days_set(self) -> bool:
        """Whether the clinic has said which days it opens."""
        return bool(self.days)

    def opening_days_text(self) -> str:
        """``Mon-Fri`` or ``Mon, Wed, Fri``; "not set" when no opening days are set."""
        if not self.days:
            return "not set"
        names = [DAY_NAMES[d].capitalize() for d in sorted(self.days)]
        ordered = sorted(self.days)
        if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
            return f"{names[0]}-{names[-1]}"
        if len(ordered) == 2 and ordered[1] == ordered[0] + 1:
            return f"{names[0]}-{names[1]}"
        return ", ".join(names)

    def closure_on(self, day: dt.date) -> Closure | None:
        """The closure covering ``day``, if any."""
        return next((c for c in self.closures if c.covers(day)), None)

    def closed_because(self, day: dt.date) -> str | None:
        """Why the clinic is closed on ``day`` (None: it is open)."""
        closure = self.closure_on(day)
        if closure is not None:
            return f"closed: {closure.label}"
        if self.days and day.weekday() not in self.days:
            return f"closed on {_DAY_WORDS[day.weekday()]}s (open {self.opening_days_text()})"
        return None

    def hours_on(self, day: dt.date) -> OpeningHours | None:
        """The opening hours of ``day``; None when closed (any time when no days are set)."""
        if self.closed_because(day) is not None:
            return None
        if not self.days:
            return OpeningHours()
        return self.days[day.weekday()]

    def open_at(self, moment: dt.datetime) -> bool | None:
        """Whether the clinic is open at ``moment`` (its local time); None when the
        opening days are not set, so nobody can say.

        >>> h = parse_clinic_hours({"opening": {"days": ["mon"], "opens": "08:00",
        ...     "closes": "17:00"}})
        >>> h.open_at(dt.datetime(2026, 3, 2, 9, 0)), h.open_at(dt.datetime(2026, 3, 2, 19, 0))
        (True, False)
        """
        if not self.days:
            return None
        hours = self.hours_on(moment.date())
        if hours is None:
            return False
        if hours.opens is None or hours.closes is None:
            return True
        return hours.opens <= moment.time() < hours.closes

    def next_opening(self, moment: dt.datetime, *, within_days: int = 60) -> dt.datetime | None:
        """When the clinic next opens after ``moment`` (local time; None: not within
        ``within_days``, or no opening days set).

        >>> h = parse_clinic_hours({"opening": {"days": ["mon"], "opens": "08:00",
        ...     "closes": "17:00"}})
        >>> h.next_opening(dt.datetime(2026, 3, 2, 19, 0))
        datetime.datetime(2026, 3, 9, 8, 0)
        """
        if not self.days:
            return None
        for offset in range(within_days + 1):
            day = moment.date() + dt.timedelta(days=offset)
            hours = self.hours_on(day)
            if hours is None:
                continue
            opens = dt.datetime.combine(day, hours.opens or dt.time(0, 0), moment.tzinfo)
            if opens > moment:
                return opens
        return None

    def outside_hours(self, day: dt.date, starts: dt.time, ends: dt.time | None) -> str | None:
        """Why a chair held from ``starts`` to ``ends`` on ``day`` is outside the hours.

        ``ends`` None: the booking runs past midnight. None when it fits.
        """
        hours = self.hours_on(day)
        if hours is None:
            return self.closed_because(day)
        if hours.opens is None or hours.closes is None:
            return None
        if starts < hours.opens or ends is None or ends > hours.closes:
            until = "past midnight" if ends is None else f"{ends:%H:%M}"
            return (
                f"{starts:%H:%M} to {until} is outside the clinic's hours on "
                f"{_DAY_WORDS[day.weekday()]}s ({hours.text()})"
            )
        return None


NOT_SET: Final = ClinicHours()


def _time(reader: Reader, name: str) -> dt.time | None:
    if not reader.has(name):
        return None
    text = reader.text(name)
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise reader.fail(name, f"{text!r} is not a time: write HH:MM, e.g. 08:00") from None


def _hours(reader: Reader) -> OpeningHours:
    opens, closes = _time(reader, "opens"), _time(reader, "closes")
    if (opens is None) != (closes is None):
        raise reader.fail("closes" if closes is None else "opens", "give both opens and closes")
    if opens is not None and closes is not None and opens >= closes:
        raise reader.fail("closes", f"{closes:%H:%M} must be after opens {opens:%H:%M}")
    return OpeningHours(opens=opens, closes=closes)


def _date(reader: Reader, name: str) -> dt.date:
    value = reader.table.get(name)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise reader.fail(name, f"must be a date written YYYY-MM-DD, got {value!r}")


def _closure(reader: Reader) -> Closure:
    reader.only(("date", "from", "to", "label"))
    label = reader.text("label")
    if reader.has("date"):
        if reader.has("from") or reader.has("to"):
            raise reader.fail("date", "give either date or from and to, not both")
        day = _date(reader, "date")
        return Closure(first=day, last=day, label=label)
    first, last = _date(reader, "from"), _date(reader, "to")
    if last < first:
        raise reader.fail("to", f"{last} is before from {first}")
    return Closure(first=first, last=last, label=label)


def parse_clinic_hours(data: Mapping[str, Any], *, path: str = "<text>") -> ClinicHours:
    """Validate a clinic hours file (parsed TOML); see the module's docstring.

    Examples
    --------
    >>> parse_clinic_hours({"opening": {"days": ["mon", "sunday"]}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: clinic hours file <text>: field 'opening.days': ...
    """
    top = Reader(kind=_KIND, path=path, table=data)
    top.only(("opening", "closure", "moves"))
    days: dict[int, OpeningHours] = {}
    opening = top.opt_sub("opening")
    if opening is not None:
        opening.only(("days", "opens", "closes", "hours"))
        names = opening.strings("days", non_empty=True)
        unknown = [n for n in names if n not in DAY_NAMES]
        if unknown:
            raise opening.fail(
                "days", f"unknown day {unknown[0]!r} (allowed: {', '.join(DAY_NAMES)})"
            )
        usual = _hours(opening)
        own = dict(opening.named_tables("hours", required=False))
        for name, reader in own.items():
            if name not in names:
                raise opening.fail(f"hours.{name}", f"is not an opening day ({', '.join(names)})")
            reader.only(("opens", "closes"))
        for name in names:
            days[DAY_NAMES.index(name)] = _hours(own[name]) if name in own else usual
    closures = tuple(_closure(r) for r in top.tables("closure"))
    moves = top.opt_sub("moves")
    max_shift = None
    if moves is not None:
        moves.only(("max_shift_days",))
        max_shift = moves.opt_integer("max_shift_days", minimum=0)
    return ClinicHours(days=days, closures=closures, max_shift_days=max_shift, path=path)


def load_clinic_hours(*, path: Path) -> ClinicHours:
    """Read a clinic hours file (raises :class:`~ketacare.core.errors.DataFileError`)."""
    return parse_clinic_hours(read_toml(path, kind=_KIND), path=str(path))
