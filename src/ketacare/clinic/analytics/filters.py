"""The dashboard's filters: what the reader asked for (cohort entry days in the clinic's
time zone, a condition, a protocol, the follow-up window, a split), each checked with a
clear error naming the field (:mod:`ketacare.clinic.analytics.service` reads them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.infra.settings import Settings

Split = Literal["none", "condition", "protocol"]
SPLITS: tuple[str, ...] = ("none", "condition", "protocol")
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)
MAX_LOST_AFTER_DAYS = 36_500
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Filters:
    """What the reader asked for; every field optional.

    ``started_from``/``started_to`` are calendar days in the clinic's time zone, both
    inclusive, on cohort entry. ``lost_after_days`` is the follow-up window; when not
    given, the clinic's setting applies, and without one, nobody is judged lost.
    """

    started_from: date | None = None
    started_to: date | None = None
    condition: str | None = None
    protocol: str | None = None
    lost_after_days: int | None = None
    split: Split = "none"

    def as_dict(self) -> dict[str, Any]:
        """The filters as plain values (for the audit trail and the page's form)."""
        return {
            "started_from": self.started_from.isoformat() if self.started_from else None,
            "started_to": self.started_to.isoformat() if self.started_to else None,
            "condition": self.condition,
            "protocol": self.protocol,
            "lost_after_days": self.lost_after_days,
            "split": self.split,
        }


def _day(text: str | None, name: str) -> date | None:
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} {value!r} is not a date: use YYYY-MM-DD") from None
    if not EARLIEST <= day <= LATEST:
        raise OutOfRange(name, value, f"{EARLIEST.isoformat()} to {LATEST.isoformat()}")
    return day


def _key(text: str | None, name: str, what: str) -> str | None:
    if text is None or not text.strip():
        return None
    value = text.strip()
    if not _KEY.match(value):
        raise InvalidInput(
            f"{name} {value[:80]!r} is not {what}: letters, digits, dots and dashes, "
            "at most 64 characters"
        )
    return value


def parse_filters(
    *,
    started_from: str | None = None,
    started_to: str | None = None,
    condition: str | None = None,
    protocol: str | None = None,
    lost_after_days: str | None = None,
    split: str | None = None,
) -> Filters:
    """Check the reader's filters; a bad one raises :class:`InvalidInput` naming the field.

    Examples
    --------
    >>> parse_filters(started_from="2026-01-01", split="condition").split
    'condition'
    >>> parse_filters(started_from="2026-02-30")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: started_from '2026-02-30' is not a date: use YYYY-MM-DD
    """
    first = _day(started_from, "started_from")
    last = _day(started_to, "started_to")
    if first and last and first > last:
        raise InvalidInput(
            f"started_from {first.isoformat()} is after started_to {last.isoformat()}: "
            "give the earlier day first"
        )
    window: int | None = None
    if lost_after_days is not None and lost_after_days.strip():
        text = lost_after_days.strip()
        try:
            window = int(text)
        except ValueError:
            raise InvalidInput(
                f"lost_after_days {text[:40]!r} is not a whole number of days"
            ) from None
        if not 1 <= window <= MAX_LOST_AFTER_DAYS:
            raise OutOfRange("lost_after_days", window, f"1 to {MAX_LOST_AFTER_DAYS} days")
    chosen = (split or "none").strip() or "none"
    if chosen not in SPLITS:
        raise InvalidInput(f"split {chosen[:40]!r} is not one of {', '.join(SPLITS)}")
    return Filters(
        started_from=first,
        started_to=last,
        condition=_key(condition, "condition", "a condition group or an ICD-10-CM code"),
        protocol=_key(protocol, "protocol", "a protocol id"),
        lost_after_days=window,
        split=chosen,  # type: ignore[arg-type]
    )


def clinic_lost_after_days(settings: Settings) -> int | None:
    """The clinic's follow-up window (site policy ``outcome_lost_after_days``), if set."""
    return settings.outcome_lost_after_days  # validated >= 1 by the settings class
