"""NEWS2 for each complete vitals set of a session, and when it must alert.

A vitals entry with respiratory rate, SpO2, supplemental oxygen (yes/no),
temperature, systolic blood pressure, heart rate and level of consciousness
(ACVPU) is scored by the instruments core (``news2``, RCP 2017, SpO2 scale 1).
Which results alert is data (``data/news2_alerts.toml``): a single parameter
scoring 3, or an aggregate at the RCP's urgent-response threshold. These
alerts are always on; the clinic's session policy cannot turn them off.

Dissociation is an expected ketamine effect and NEWS2 was not validated for
it; no source read says how to score it, so the consciousness item is the
clinician's judgement (:data:`DISSOCIATION_NOTE` is shown wherever NEWS2 is).

Examples
--------
>>> from datetime import datetime, UTC
>>> from ketacare.core.sessions.events import Vitals
>>> v = Vitals(at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC), by="nurse1", rr_per_min=8,
...            spo2_pct=97, supplemental_oxygen=False, temperature_c=37.0,
...            sbp_mmhg=120, dbp_mmhg=80, hr_per_min=70, consciousness="alert")
>>> n = news2_for(v)
>>> n.total, n.band, n.alerting
(3, 'low_medium', True)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Final

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.instruments import get_instrument, score
from ketacare.core.sessions.events import Vitals

__all__ = [
    "DISSOCIATION_NOTE",
    "News2Rules",
    "News2Score",
    "PartialNews2",
    "news2_for",
    "news2_rules",
    "partial_news2",
]

_DATA = Path(__file__).parent / "data" / "news2_alerts.toml"


@dataclass(frozen=True, slots=True)
class News2Rules:
    """Which NEWS2 flags raise a session alert, with the source."""

    instrument: str
    alert_flags: tuple[str, ...]
    continuous_monitoring_flag: str
    citation: str
    url: str
    dissociation_note: str


@cache
def news2_rules() -> News2Rules:
    """The validated ``data/news2_alerts.toml`` (every alert flag must exist in the instrument)."""
    data = tomllib.loads(_DATA.read_text(encoding="utf-8"))
    keys = {
        "instrument",
        "alert_flags",
        "continuous_monitoring_flag",
        "citation",
        "url",
        "dissociation_note",
    }
    if set(data) != keys:
        raise DataFileError(f"{_DATA.name}: fields must be exactly {', '.join(sorted(keys))}")
    flags = data["alert_flags"]
    if not isinstance(flags, list) or not flags or not all(isinstance(f, str) for f in flags):
        raise DataFileError(f"{_DATA.name}: alert_flags must be a non-empty list of flag ids")
    known = {f.id for f in get_instrument(data["instrument"]).flags}
    unknown = sorted((set(flags) | {data["continuous_monitoring_flag"]}) - known)
    if unknown:
        raise DataFileError(f"{_DATA.name}: alert_flags: unknown flag(s) {', '.join(unknown)}")
    return News2Rules(
        instrument=data["instrument"],
        alert_flags=tuple(flags),
        continuous_monitoring_flag=data["continuous_monitoring_flag"],
        citation=data["citation"],
        url=data["url"],
        dissociation_note=data["dissociation_note"],
    )


DISSOCIATION_NOTE: Final[str] = news2_rules().dissociation_note


@dataclass(frozen=True, slots=True)
class News2Score:
    """NEWS2 of one vitals entry.

    ``total`` is None when the set could not be scored (``not_scored`` says
    why, e.g. a reading finer than the chart's resolution); such a set is
    shown loudly, never treated as a score of 0.
    """

    seq: int
    at: datetime
    total: int | None
    band: str | None
    band_label: str | None
    subscores: Mapping[str, int]
    flags: tuple[str, ...]
    flag_messages: tuple[str, ...]
    not_scored: str | None = None

    @property
    def alerting(self) -> bool:
        """True when a flag the RCP calls urgent was raised (see ``news2_alerts.toml``)."""
        return any(f in news2_rules().alert_flags for f in self.flags)

    def describe(self) -> str:
        """One line: total, band and the parameters that scored."""
        if self.total is None:
            return f"NEWS2 not scored: {self.not_scored}"
        names = {s.id: s.label for s in get_instrument(news2_rules().instrument).subscales}
        scored = ", ".join(f"{names.get(k, k)} scores {v}" for k, v in self.subscores.items() if v)
        return f"NEWS2 {self.total} ({self.band_label})" + (f": {scored}" if scored else "")


#: each NEWS2 parameter as a vitals set names it, in the instrument's item order
_PARAMETERS: Final = (
    ("rr_per_min", "respiratory rate", "/min"),
    ("spo2_pct", "SpO2", "%"),
    ("supplemental_oxygen", "supplemental oxygen", ""),
    ("temperature_c", "temperature", "°C"),
    ("sbp_mmhg", "systolic blood pressure", "mmHg"),
    ("hr_per_min", "heart rate", "/min"),
    ("consciousness", "consciousness", ""),
)


def _answer(field: str, reading: object) -> object:
    """A vitals reading as the ``news2`` instrument's item takes it (oxygen and ACVPU as
    0/1; whole numbers as ints, the temperature as read)."""
    if field == "supplemental_oxygen":
        return int(bool(reading))
    if field == "consciousness":
        return 0 if reading == "alert" else 1
    if isinstance(reading, float) and reading.is_integer() and field != "temperature_c":
        return int(reading)
    return reading


def _answers(vitals: Vitals) -> list[object] | None:
    readings = [getattr(vitals, field) for field, _, _ in _PARAMETERS]
    if any(r is None for r in readings):
        return None
    return [_answer(field, r) for (field, _, _), r in zip(_PARAMETERS, readings, strict=True)]


@dataclass(frozen=True, slots=True)
class PartialNews2:
    """An incomplete vitals set: no aggregate NEWS2, but a parameter it holds can score 3
    on its own (a red score), which RCP 2017 Chart 3 answers with an urgent response."""

    seq: int
    at: datetime
    #: the recorded parameters that score 3 on their own, as read ("SpO2 89 %")
    red: tuple[str, ...]
    #: the parameters the set lacks for an aggregate score
    missing: tuple[str, ...]


def partial_news2(vitals: Vitals) -> PartialNews2 | None:
    """What an incomplete vitals set says on the NEWS2 chart; None for a complete set.

    >>> from datetime import datetime, UTC
    >>> v = Vitals(at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC), by="n", spo2_pct=89,
    ...            rr_per_min=9, hr_per_min=110)
    >>> p = partial_news2(v)
    >>> p.red
    ('SpO2 89 %',)
    >>> p.missing
    ('supplemental oxygen', 'temperature', 'systolic blood pressure', 'consciousness')
    """
    readings = [getattr(vitals, field) for field, _, _ in _PARAMETERS]
    if all(r is not None for r in readings):
        return None
    items = get_instrument(news2_rules().instrument).items
    red: list[str] = []
    for (field, label, unit), item, reading in zip(_PARAMETERS, items, readings, strict=True):
        if reading is None:
            continue
        try:
            points = item.points(_answer(field, reading), None)
        except ValueError:  # finer than the chart: not for ketacare to place
            continue
        if points == 3:
            shown = reading if isinstance(reading, str) else f"{reading:g} {unit}".strip()
            red.append(f"{label} {shown}" if not isinstance(reading, bool) else label)
    missing = tuple(
        label for (_, label, _), r in zip(_PARAMETERS, readings, strict=True) if r is None
    )
    return PartialNews2(seq=vitals.seq, at=vitals.at, red=tuple(red), missing=missing)


def news2_for(vitals: Vitals) -> News2Score | None:
    """NEWS2 of a vitals entry, or None when the set is not complete.

    A complete set whose reading is finer than the chart (SpO2 97.5 %, a
    temperature in hundredths) is returned unscored with the reason rather
    than rounded: which chart range it falls in is not for ketacare to guess.
    """
    answers = _answers(vitals)
    if answers is None:
        return None
    try:
        result = score(news2_rules().instrument, answers)
    except InvalidInput as exc:
        return News2Score(
            seq=vitals.seq,
            at=vitals.at,
            total=None,
            band=None,
            band_label=None,
            subscores=MappingProxyType({}),
            flags=(),
            flag_messages=(),
            not_scored=str(exc),
        )
    assert isinstance(result.total, int)
    return News2Score(
        seq=vitals.seq,
        at=vitals.at,
        total=result.total,
        band=result.band,
        band_label=result.band_label,
        subscores=MappingProxyType(
            {k: int(v) for k, v in result.subscores.items() if v is not None}
        ),
        flags=result.flags,
        flag_messages=tuple(str(d["message"]) for d in result.flag_details),
    )
