"""Registry rows without identifiers: a pure function of plain records and the rules.

What leaves: a code per patient that the caller draws at random for this export (not
derived from anything about the patient, and kept nowhere, so it cannot be translated
back), sex, age at the first dose in whole years (ages over 89 as ``90+``), the year of
the first dose, the ICD-10-CM codes of the active conditions, and per session and per
score what was given or measured. Never: names, medical record numbers, contact
details, addresses, birth dates, or any date more precise than its year.

Time has two profiles (``data/deidentification.toml``):

- ``year_only``: each event keeps its calendar year and its order (the session it
  followed). No date and no day count leave.
- ``limited``: each event keeps the whole days since the patient's first dose. Day
  counts derive from dates, so this is a limited data set, for use under a data use
  agreement (the caller must name it).

Examples
--------
>>> from datetime import UTC, date, datetime
>>> p = PatientRecord(
...     patient_id=7, birth_date=date(1950, 6, 1), sex="female", conditions=("G90.50",),
...     sessions=(SessionRecord(at=datetime(2026, 3, 2, 9, tzinfo=UTC),
...                             molecule="racemic_ketamine", route="iv_infusion",
...                             mg=98.0, mg_per_kg=1.4, adverse=()),),
...     scores=(ScoreRecord(at=datetime(2026, 3, 1, 9, tzinfo=UTC), instrument="nrs_pain",
...                         total=8.0),))
>>> [r.values for r in deidentify([p], codes={7: "R-1"}, profile="year_only")
...  if r.table == "patients"]
[{'code': 'R-1', 'sex': 'female', 'age_at_first_dose': '75', 'first_dose_year': 2026, \
'conditions': 'G90.50'}]
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

from ketacare.core.errors import DataFileError, InvalidInput, UnknownItem

Profile = Literal["year_only", "limited"]
PROFILES: Final[tuple[Profile, ...]] = ("year_only", "limited")


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """A session in which dosing started: when, what, how much, what went wrong."""

    at: datetime
    molecule: str
    route: str
    mg: float
    mg_per_kg: float
    adverse: tuple[str, ...]  # kinds only (e.g. "nausea", "alert sbp_mmhg"), no free text


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreRecord:
    """A final instrument total."""

    at: datetime
    instrument: str
    total: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientRecord:
    """What the shell gathers for one consenting patient (identifiers stay behind)."""

    patient_id: int
    birth_date: date
    sex: str
    conditions: tuple[str, ...]
    sessions: tuple[SessionRecord, ...]
    scores: tuple[ScoreRecord, ...]


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One row of one table of the export (``patients``, ``sessions`` or ``scores``)."""

    table: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rules:
    """The validated ``deidentification.toml``."""

    top_coded_at_years: int
    top_label: str
    profiles: Mapping[str, Mapping[str, str]]
    sources: Mapping[str, Mapping[str, str]]
    smallest_count_shown: int  # research readers' aggregates: no count from 1 to this - 1
    small_cells_source: str


@cache
def rules() -> Rules:
    """The de-identification rules shipped with the code, with their sources."""
    name = "deidentification.toml"
    text = resources.files("ketacare.core.research").joinpath("data", name).read_text("utf-8")
    data = tomllib.loads(text)
    try:
        sources = {s["key"]: s for s in data["sources"]}
        age = data["age"]
        profiles = data["profiles"]
        if set(profiles) != set(PROFILES):
            raise DataFileError(f"{name}: profiles must be {PROFILES}, got {sorted(profiles)}")
        small = data["small_cells"]
        for table in (age, *profiles.values(), small):
            if table["source"] not in sources:
                raise DataFileError(f"{name}: unknown source {table['source']!r}")
        top = age["top_coded_at_years"]
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 130:
            raise DataFileError(f"{name}: age.top_coded_at_years must be a whole number")
        smallest = small["smallest_shown"]
        if isinstance(smallest, bool) or not isinstance(smallest, int) or not 2 <= smallest:
            raise DataFileError(
                f"{name}: small_cells.smallest_shown must be a whole number of at least 2"
            )
        return Rules(top, str(age["label"]), profiles, sources, smallest, str(small["source"]))
    except KeyError as exc:
        raise DataFileError(f"{name}: field {exc.args[0]!r} is missing") from exc


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def age_label(born: date, on: date) -> str:
    """Age in whole years on ``on``; at or above the top-coding age, one category.

    >>> from datetime import date
    >>> age_label(date(1936, 12, 2), date(2026, 12, 1)), age_label(date(1936, 12, 1),
    ...                                                             date(2026, 12, 1))
    ('89', '90+')
    """
    r = rules()
    years = _age(born, on)
    return r.top_label if years >= r.top_coded_at_years else str(years)


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{what} must be a time with a time zone")
    return value


def _round(value: float, digits: int) -> float:
    if not math.isfinite(value):
        raise InvalidInput(f"a value to export must be finite, got {value}")
    return round(value, digits)


def deidentify(
    patients: Sequence[PatientRecord],
    *,
    codes: Mapping[int, str],
    profile: str,
) -> list[ExportRow]:
    """The rows of the export, patients in the order given.

    ``codes`` maps each patient id to its export code; the caller draws them at random
    (the core reads no randomness). A patient without a first dose has no time origin
    and is exported with its scores counted only as ``before_first_session``.
    """
    if profile not in PROFILES:
        raise UnknownItem("export profile", profile, PROFILES)
    days = profile == "limited"
    out: list[ExportRow] = []
    for p in patients:
        code = codes.get(p.patient_id)
        if not code:
            raise InvalidInput(f"no export code for patient {p.patient_id}")
        sessions = sorted(p.sessions, key=lambda s: _aware(s.at, "session time"))
        first = sessions[0].at if sessions else None
        out.append(
            ExportRow(
                "patients",
                {
                    "code": code,
                    "sex": p.sex,
                    "age_at_first_dose": age_label(p.birth_date, first.date()) if first else "",
                    "first_dose_year": first.year if first else None,
                    "conditions": " ".join(sorted(set(p.conditions))),
                },
            )
        )
        for number, s in enumerate(sessions, start=1):
            row: dict[str, Any] = {
                "code": code,
                "session": number,
                "year": s.at.year,
                "molecule": s.molecule,
                "route": s.route,
                "mg": _round(s.mg, 3),
                "mg_per_kg": _round(s.mg_per_kg, 4),
                "adverse": " ".join(s.adverse),
            }
            if days:
                assert first is not None
                row["day"] = (s.at - first).days
            out.append(ExportRow("sessions", row))
        for sc in sorted(p.scores, key=lambda x: _aware(x.at, "score time")):
            after = sum(1 for s in sessions if s.at <= sc.at)
            row = {
                "code": code,
                "instrument": sc.instrument,
                "total": _round(sc.total, 3),
                "after_session": after,
                "year": sc.at.year,
            }
            if days:
                row["day"] = (
                    None if first is None else math.floor((sc.at - first).total_seconds() / 86400)
                )
            out.append(ExportRow("scores", row))
    return out
