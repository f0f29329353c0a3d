"""The amount and unit of a dose as written at the chair: "4 mg", "1 tablet", "500 mL".

A rescue or adjunct medicine is recorded as text, and text without a unit cannot be read
back: "ondansetron 4" could be 4 mg or 4 mL. A dose given is therefore written as an
amount followed by one of the units of ``dose_units.toml`` (UCUM codes, with the
spellings clinicians use); anything after the unit ("slow push", "over 5 min") is kept
as written.

Examples
--------
>>> stated_dose("4 mg")
StatedDose(amount=4.0, unit='mg', ucum='mg')
>>> stated_dose("0.5mcg slow push").ucum
'ug'
>>> stated_dose("1 tablet").unit
'tablet'
>>> stated_dose("4")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ketacare.core.errors.InvalidInput: dose '4' gives no unit: write the amount and its unit, ...
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ketacare.core.datafile import Reader
from ketacare.core.errors import InvalidInput

__all__ = ["DoseUnit", "StatedDose", "dose_units", "stated_dose"]

FILE = "dose_units.toml"

_AMOUNT = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(.*)$", re.S)


@dataclass(frozen=True, slots=True)
class DoseUnit:
    """One unit a dose is written in: its UCUM code, how it is shown, its spellings."""

    ucum: str
    shown: str
    spellings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StatedDose:
    """A dose's amount and unit as read from its text."""

    amount: float
    unit: str
    ucum: str


@cache
def dose_units() -> tuple[DoseUnit, ...]:
    """The units of ``dose_units.toml``, each spelling given to one unit only."""
    path = resources.files("ketacare.core.terminology").joinpath(FILE)
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    top = Reader(kind="dose units", path=FILE, table=data)
    top.fields(required=("units", "unit"))
    units: list[DoseUnit] = []
    seen: dict[str, str] = {}
    for i, table in enumerate(data["unit"]):
        entry = top.child(table, f"unit[{i}]")
        entry.fields(required=("ucum", "shown", "spellings"))
        spellings = table["spellings"]
        if not isinstance(spellings, list) or not spellings:
            raise entry.fail("spellings", "must be a non-empty list of words")
        unit = DoseUnit(entry.text("ucum"), entry.text("shown"), tuple(map(str, spellings)))
        for spelling in unit.spellings:
            key = spelling.casefold()
            if key in seen:
                raise entry.fail("spellings", f"{spelling!r} is already a spelling of {seen[key]}")
            seen[key] = unit.ucum
        units.append(unit)
    return tuple(units)


@cache
def _by_spelling() -> dict[str, DoseUnit]:
    return {s.casefold(): u for u in dose_units() for s in u.spellings}


def stated_dose(text: str) -> StatedDose:
    """The amount and unit ``text`` starts with; InvalidInput naming the units otherwise."""
    allowed = ", ".join(u.shown for u in dose_units())
    found = _AMOUNT.match(text)
    if found is None:
        raise InvalidInput(
            f"dose {text.strip()!r} does not start with an amount: write the amount and its "
            f"unit, e.g. '4 mg' (units: {allowed})"
        )
    amount, rest = found.groups()
    words = rest.strip().split()
    spelling = _longest_unit(words)
    if spelling is None:
        raise InvalidInput(
            f"dose {text.strip()!r} gives no unit: write the amount and its unit, e.g. "
            f"'4 mg' (units: {allowed})"
        )
    unit = _by_spelling()[spelling]
    return StatedDose(float(amount.replace(",", ".")), unit.shown, unit.ucum)


def _longest_unit(words: list[str]) -> str | None:
    """The unit the words start with (two-word spellings first), casefolded, or None."""
    for n in (2, 1):
        if len(words) >= n:
            candidate = " ".join(words[:n]).casefold().rstrip(".,;")
            if candidate in _by_spelling():
                return candidate
    return None
