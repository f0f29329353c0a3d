"""NEWS2 for each complete vitals set of a session, and when it must alert.

A vitals entry with respiratory rate, SpO2, supplemental oxygen (yes/no),
temperature, systolic blood pressure, heart rate and level of consciousness
(ACVPU) is scored by the instruments core: ``news2`` (RCP 2017, SpO2 scale 1) for
every patient, unless the physician's monitoring order prescribes SpO2 scale 2
(``news2_scale2``: a target of 88-92%, e.g. hypercapnic respiratory failure), where
88-92% scores 0 and a saturation of 93% or more on oxygen scores.
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
>>> n = news2_for(v, scale=1)
>>> n.total, n.band, n.alerting
(3, 'low_medium', True)

On scale 2, 89% on air is on target, and 97% on oxygen scores 3 (over-oxygenation):

>>> import dataclasses
>>> on_target = dataclasses.replace(v, rr_per_min=16, spo2_pct=89)
>>> news2_for(on_target, scale=1).total, news2_for(on_target, scale=2).total
(3, 0)
>>> n = news2_for(dataclasses.replace(on_target, spo2_pct=97, supplemental_oxygen=True), scale=2)
>>> n.total, n.band, n.subscores["spo2_scale2"]
(5, 'medium', 3)
>>> n.describe().split(", SpO2 scale 2: ")[1]
'SpO2 scale 2 scores 3, Air or oxygen scores 2'
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
from ketacare.core.sessions.setup import Spo2Scale

__all__ = [
    "DISSOCIATION_NOTE",
    "News2Rules",
    "News2Score",
    "PartialNews2",
    "Spo2Scale",
    "news2_for",
    "scale2_target",
    "news2_rules",
    "partial_news2",
]

_DATA = Path(__file__).parent / "data" / "news2_alerts.toml"


@dataclass(frozen=True, slots=True)
class News2Rules:
    """Which NEWS2 flags raise a session alert, with the source."""

    instrument: str
    scale2_instrument: str
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
        "scale2_instrument",
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
    for instrument in (data["instrument"], data["scale2_instrument"]):
        known = {f.id for f in get_instrument(instrument).flags}
        unknown = sorted((set(flags) | {data["continuous_monitoring_flag"]}) - known)
        if unknown:
            raise DataFileError(
                f"{_DATA.name}: alert_flags: unknown flag(s) {', '.join(unknown)} in {instrument}"
            )
    return News2Rules(
        instrument=data["instrument"],
        scale2_instrument=data["scale2_instrument"],
        alert_flags=tuple(flags),
        continuous_monitoring_flag=data["continuous_monitoring_flag"],
        citation=data["citation"],
        url=data["url"],
        dissociation_note=data["dissociation_note"],
    )


def scale2_target() -> tuple[float, float]:
    """The saturation target SpO2 scale 2 is for: the range that scores 0 on oxygen.

    >>> scale2_target()
    (88.0, 92.0)
    """
    item = get_instrument(news2_rules().scale2_instrument).item(_SCALE2_SPO2[True])
    [on_target] = [r for r in item.ranges if r.points == 0]
    assert on_target.min is not None and on_target.max is not None
    return float(on_target.min), float(on_target.max)


def _instrument_id(scale: Spo2Scale) -> str:
    rules = news2_rules()
    if scale == 1:
        return rules.instrument
    if scale == 2:
        return rules.scale2_instrument
    raise InvalidInput(f"NEWS2 SpO2 scale must be 1 or 2, got {scale!r}")


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
    #: the SpO2 scale it was scored on (2 only under a monitoring order prescribing it)
    scale: Spo2Scale = 1

    @property
    def alerting(self) -> bool:
        """True when a flag the RCP calls urgent was raised (see ``news2_alerts.toml``)."""
        return any(f in news2_rules().alert_flags for f in self.flags)

    def describe(self) -> str:
        """One line: total, band and the parameters that scored."""
        if self.total is None:
            return f"NEWS2 not scored: {self.not_scored}"
        names = {s.id: s.label for s in get_instrument(_instrument_id(self.scale)).subscales}
        scored = ", ".join(f"{names.get(k, k)} scores {v}" for k, v in self.subscores.items() if v)
        scale = ", SpO2 scale 2" if self.scale == 2 else ""
        return f"NEWS2 {self.total} ({self.band_label}){scale}" + (f": {scored}" if scored else "")


#: each NEWS2 parameter as a vitals set names it, and its ``news2`` (scale 1) item; on
#: scale 2 SpO2 is one of two items (:data:`_SCALE2_SPO2`)
_PARAMETERS: Final = (
    ("rr_per_min", "respiratory rate", "/min", "respiratory_rate_per_min"),
    ("spo2_pct", "SpO2", "%", "spo2_pct"),
    ("supplemental_oxygen", "supplemental oxygen", "", "on_supplemental_oxygen"),
    ("temperature_c", "temperature", "°C", "temperature_c"),
    ("sbp_mmhg", "systolic blood pressure", "mmHg", "systolic_mmhg"),
    ("hr_per_min", "heart rate", "/min", "heart_rate_per_min"),
    ("consciousness", "consciousness", "", "consciousness_cvpu"),
)
_ITEMS: Final = {field: item for field, _, _, item in _PARAMETERS}

#: scale 2's SpO2 item by air (False) or oxygen (True), as its skip logic asks it
_SCALE2_SPO2: Final = {False: "spo2_on_air_pct", True: "spo2_on_oxygen_pct"}


def _item_ids(field: str, scale: Spo2Scale, oxygen: bool | None) -> tuple[str, ...]:
    """The instrument item(s) a vitals field is read as: on scale 2, SpO2 is the air or
    the oxygen item, or either while the oxygen is not recorded."""
    if field != "spo2_pct" or scale == 1:
        return (_ITEMS[field],)
    if oxygen is None:
        return tuple(_SCALE2_SPO2.values())
    return (_SCALE2_SPO2[oxygen],)


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


def _answers(vitals: Vitals, scale: Spo2Scale) -> dict[str, object] | None:
    """The set as the scale's instrument takes it, keyed by item; None when incomplete."""
    readings = {field: getattr(vitals, field) for field, _, _, _ in _PARAMETERS}
    if any(r is None for r in readings.values()):
        return None
    oxygen = bool(vitals.supplemental_oxygen)
    return {
        _item_ids(field, scale, oxygen)[0]: _answer(field, reading)
        for field, reading in readings.items()
    }


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


def partial_news2(vitals: Vitals, *, scale: Spo2Scale) -> PartialNews2 | None:
    """What an incomplete vitals set says on the NEWS2 chart; None for a complete set.

    On scale 2 a saturation whose points depend on air or oxygen is placed only when
    the oxygen is recorded (83% or less scores 3 on either).

    >>> from datetime import datetime, UTC
    >>> v = Vitals(at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC), by="n", spo2_pct=89,
    ...            rr_per_min=9, hr_per_min=110)
    >>> p = partial_news2(v, scale=1)
    >>> p.red
    ('SpO2 89 %',)
    >>> p.missing
    ('supplemental oxygen', 'temperature', 'systolic blood pressure', 'consciousness')
    >>> partial_news2(v, scale=2).red
    ()
    """
    readings = [getattr(vitals, field) for field, _, _, _ in _PARAMETERS]
    if all(r is not None for r in readings):
        return None
    items = {i.id: i for i in get_instrument(_instrument_id(scale)).items}
    oxygen = None if vitals.supplemental_oxygen is None else bool(vitals.supplemental_oxygen)
    red: list[str] = []
    for (field, label, unit, _), reading in zip(_PARAMETERS, readings, strict=True):
        if reading is None:
            continue
        try:
            placed = {
                items[i].points(_answer(field, reading), None)
                for i in _item_ids(field, scale, oxygen)
            }
        except ValueError:  # finer than the chart: not for ketacare to place
            continue
        if placed == {3}:
            shown = reading if isinstance(reading, str) else f"{reading:g} {unit}".strip()
            red.append(f"{label} {shown}" if not isinstance(reading, bool) else label)
    missing = tuple(
        label for (_, label, _, _), r in zip(_PARAMETERS, readings, strict=True) if r is None
    )
    return PartialNews2(seq=vitals.seq, at=vitals.at, red=tuple(red), missing=missing)


def news2_for(vitals: Vitals, *, scale: Spo2Scale) -> News2Score | None:
    """NEWS2 of a vitals entry on the session's SpO2 scale, or None when the set is not
    complete.

    A complete set whose reading is finer than the chart (SpO2 97.5 %, a
    temperature in hundredths) is returned unscored with the reason rather
    than rounded: which chart range it falls in is not for ketacare to guess.
    """
    answers = _answers(vitals, scale)
    if answers is None:
        return None
    try:
        result = score(_instrument_id(scale), answers)
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
            scale=scale,
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
        scale=scale,
    )
