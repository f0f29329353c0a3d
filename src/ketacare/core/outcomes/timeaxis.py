"""One time axis for outcomes: naive UTC timestamps as int64 seconds.

The core never reads the clock; the shell passes times in (``datetime``,
``date``, ISO strings or numpy ``datetime64`` of any unit) and ``as_of``.

Examples
--------
>>> s = to_seconds(["2026-03-03", "2026-03-04T12:00"], field="time")
>>> float(s[1] - s[0]) / SECONDS_PER_DAY
1.5
>>> format_day(int(s[0]))
'2026-03-03'
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketacare.core.errors import InvalidInput, OutOfRange

SECONDS_PER_DAY = 86_400


def to_seconds(values: ArrayLike, *, field: str) -> NDArray[np.int64]:
    """Times as int64 seconds since 1970-01-01 (naive UTC); refuses missing times."""
    raw = np.asarray(values)
    try:
        if raw.dtype.kind == "M":
            stamps = raw.astype("datetime64[s]")
        elif raw.dtype.kind in "OU" or raw.size == 0:
            stamps = np.asarray(values, dtype="datetime64[s]")
        else:
            raise InvalidInput(
                f"{field} must be dates or datetimes (datetime64), got numbers of type {raw.dtype}"
            )
    except ValueError as exc:
        raise InvalidInput(f"{field} has a value that is not a date or time: {exc}") from exc
    missing = np.flatnonzero(np.isnat(stamps))
    if missing.size:
        raise InvalidInput(f"{field} has a missing time at position {int(missing[0])}")
    return np.atleast_1d(stamps.astype(np.int64))


def one_time(value: object, *, field: str) -> int:
    """One time as int64 seconds (see :func:`to_seconds`)."""
    return int(to_seconds(np.asarray([value]), field=field)[0])


def to_duration_seconds(value: object, *, field: str) -> int:
    """A positive duration (``timedelta`` or ``timedelta64``) as whole seconds.

    Examples
    --------
    >>> to_duration_seconds(np.timedelta64(30, "D"), field="window")
    2592000
    >>> to_duration_seconds(dt.timedelta(days=-1), field="window")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.OutOfRange: window -1 day, 0:00:00 is out of range: allowed a positive ...
    """
    if isinstance(value, dt.timedelta):
        seconds = int(value.total_seconds())
    elif isinstance(value, np.timedelta64) and not np.isnat(value):
        seconds = int(value.astype("timedelta64[s]").astype(np.int64))
    else:
        raise InvalidInput(f"{field} must be a duration (timedelta), got {value!r}")
    if seconds <= 0:
        raise OutOfRange(field, value, "a positive duration")
    return seconds


def format_day(seconds: int) -> str:
    """The calendar day (YYYY-MM-DD) of a time in seconds."""
    return str(np.datetime_as_string(np.datetime64(int(seconds), "s"), unit="D"))
