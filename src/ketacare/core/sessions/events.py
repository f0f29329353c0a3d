"""The session log's events: frozen values, validated when they are made.

A session is an append-only list of events; everything shown at the chair
(state, delivered dose, rate, timers, alerts) is derived from it by
:func:`~ketacare.core.sessions.replay.replay`, never typed. Each event has:

- ``seq``: its position in the log (1, 2, ...; 0 until appended),
- ``at``: when it happened (timezone-aware), and
- ``by``: who recorded it (a staff identifier).

An event that cannot be true is refused when it is made, so nothing is
stored: an implausible vital raises :class:`~ketacare.core.errors.OutOfRange`
naming the value and the data-entry bound. A wrong entry is never edited: an
:class:`Amendment` names the entry it corrects, gives a reason and a
replacement (or none, for "entered in error"); the original stays in the log.

Examples
--------
>>> from datetime import datetime, UTC
>>> t = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
>>> Vitals(at=t, by="nurse1", sbp_mmhg=120, dbp_mmhg=80, spo2_pct=98).kind
'vitals'
>>> Vitals(at=t, by="nurse1", spo2_pct=101)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ketacare.core.errors.OutOfRange: SpO2 101 % is out of range: allowed 0 to 100 % (a data-entry ...
>>> Vitals(at=t, by="nurse1", sbp_mmhg=80, dbp_mmhg=90)
Traceback (most recent call last):
...
ketacare.core.errors.InvalidInput: diastolic blood pressure 90 mmHg must be below systolic 80 mmHg
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import ClassVar, Final, Literal, get_args

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.instruments import get_instrument, score
from ketacare.core.sessions.rules import (
    CHECK_ITEMS,
    PLAUSIBILITY,
    VITALS,
    CheckItem,
    Vital,
    load_session_rules,
)
from ketacare.core.sessions.setup import DISCHARGE_INSTRUMENT, SessionSetup

StopReason = Literal["completed", "adverse_effect", "patient_request", "equipment", "other"]
STOP_REASONS: Final[tuple[StopReason, ...]] = get_args(StopReason)
#: The purposes the chair offers for another medication; any other purpose is typed in
#: free text (e.g. "rescue for emergence agitation").
MEDICATION_PURPOSES: Final[tuple[str, ...]] = ("premedication", "rescue", "other")
#: Level of consciousness on the ACVPU scale of NEWS2 (RCP 2017): alert, new
#: confusion, responds to voice, responds to pain, unresponsive.
Consciousness = Literal["alert", "confusion", "voice", "pain", "unresponsive"]
CONSCIOUSNESS_LEVELS: Final[tuple[Consciousness, ...]] = get_args(Consciousness)


def _text(value: object, field: str, *, required: bool = True) -> None:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text, got {value!r}")
    if required and not value.strip():
        raise InvalidInput(f"{field} is required")


def _positive(value: object, field: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number, got {value!r}")
    if value <= 0:
        raise OutOfRange(field, value, f"more than 0 {unit}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every event has: ``seq`` (0 until appended), ``at`` (aware) and ``by``."""

    kind: ClassVar[str]
    at: datetime
    by: str
    seq: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise InvalidInput(f"{self.kind} time must be a timezone-aware datetime")
        _text(self.by, f"{self.kind} recorded by")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 0:
            raise InvalidInput(f"{self.kind} sequence number must be a whole number >= 0")

    def describe(self) -> str:
        """A short line naming the event, who and when (for conflict messages, reports)."""
        return f"{self.kind.replace('_', ' ')} by {self.by} at {self.at.isoformat()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Scheduled(Event):
    """The session's first event: what it will be checked against (see :class:`SessionSetup`)."""

    kind: ClassVar[str] = "scheduled"  # not a move: scheduling creates the session
    setup: SessionSetup

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if not isinstance(self.setup, SessionSetup):
            raise InvalidInput("a scheduled session needs its SessionSetup")

    def describe(self) -> str:
        """A short line naming the event."""
        return f"scheduled by {self.by} at {self.at.isoformat()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckIn(Event):
    """The patient has arrived and been identified."""

    kind: ClassVar[str] = "check_in"


@dataclass(frozen=True, slots=True, kw_only=True)
class PreDoseCheck(Event):
    """One pre-dose check item, passed (``ok``) or not, with detail.

    ``medication_lot`` needs the lot in ``detail`` when passed. Baseline vitals
    are recorded as a :class:`Vitals` event, not here.
    """

    kind: ClassVar[str] = "pre_dose_check"
    item: CheckItem
    ok: bool
    detail: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if self.item not in CHECK_ITEMS or self.item == "baseline_vitals":
            items = [i for i in CHECK_ITEMS if i != "baseline_vitals"]
            raise InvalidInput(
                f"unknown pre-dose check {self.item!r}: known are {', '.join(items)} "
                "(baseline vitals are recorded as vitals)"
            )
        if not isinstance(self.ok, bool):
            raise InvalidInput(f"pre-dose check {self.item}: ok must be true or false")
        _text(self.detail, f"pre-dose check {self.item} detail", required=False)
        if self.item == "medication_lot" and self.ok and not self.detail.strip():
            raise InvalidInput("pre-dose check medication_lot: record the lot number in detail")


@dataclass(frozen=True, slots=True, kw_only=True)
class Vitals(Event):
    """Vital signs; any subset, but blood pressure as a pair.

    Values are checked against data-entry bounds (:data:`PLAUSIBILITY`), which
    catch impossible readings and typing errors; they are not clinical
    thresholds (those are the session's alert thresholds).

    ``consciousness`` (ACVPU) and ``supplemental_oxygen`` complete a NEWS2
    set. Both are optional and have no default answer: ``None`` means not
    assessed (never "alert" or "on air"), so entries stored before they
    existed still load and simply have no NEWS2.
    """

    kind: ClassVar[str] = "vitals"
    sbp_mmhg: float | None = None
    dbp_mmhg: float | None = None
    hr_per_min: float | None = None
    spo2_pct: float | None = None
    rr_per_min: float | None = None
    temperature_c: float | None = None
    consciousness: Consciousness | None = None
    supplemental_oxygen: bool | None = None

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        present = self.values()
        if self.consciousness is not None and self.consciousness not in CONSCIOUSNESS_LEVELS:
            raise InvalidInput(
                f"level of consciousness {self.consciousness!r}: allowed "
                f"{', '.join(CONSCIOUSNESS_LEVELS)} (ACVPU)"
            )
        if self.supplemental_oxygen is not None and not isinstance(self.supplemental_oxygen, bool):
            raise InvalidInput(
                f"supplemental oxygen {self.supplemental_oxygen!r}: allowed true (yes) or "
                "false (no), or leave it out when not recorded"
            )
        if not present and self.consciousness is None and self.supplemental_oxygen is None:
            raise InvalidInput("vitals: record at least one value")
        for vital, value in present.items():
            bound = PLAUSIBILITY[vital]
            if not bound.min <= value <= bound.max:
                raise OutOfRange(
                    f"{bound.label}",
                    f"{value:g} {bound.unit}",
                    f"{bound.min:g} to {bound.max:g} {bound.unit} "
                    "(a data-entry bound, not a clinical threshold)",
                )
        if (self.sbp_mmhg is None) != (self.dbp_mmhg is None):
            raise InvalidInput("vitals: record systolic and diastolic blood pressure together")
        if self.sbp_mmhg is not None and self.dbp_mmhg is not None:
            if self.dbp_mmhg >= self.sbp_mmhg:
                raise InvalidInput(
                    f"diastolic blood pressure {self.dbp_mmhg:g} mmHg must be below systolic "
                    f"{self.sbp_mmhg:g} mmHg"
                )

    def values(self) -> dict[Vital, float]:
        """The values recorded, by vital (checked to be finite numbers)."""
        out: dict[Vital, float] = {}
        for vital in VITALS:
            value = getattr(self, vital)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"{PLAUSIBILITY[vital].label} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InvalidInput(f"{PLAUSIBILITY[vital].label} must be a finite number")
            out[vital] = float(value)
        return out

    @property
    def is_complete_baseline(self) -> bool:
        """Blood pressure, heart rate, SpO2 and respiratory rate all present."""
        return all(getattr(self, v) is not None for v in VITALS if v != "temperature_c")


@dataclass(frozen=True, slots=True, kw_only=True)
class SideEffects(Event):
    """Side-effect ratings; any subset.

    ``sedation_moaas`` is the MOAA/S (0 = no response to painful trapezius
    squeeze ... 5 = responds readily to name in normal tone; sourced anchors).
    ``pain_nrs`` is the 0-10 numeric rating. Nausea, vomiting, dizziness, an
    emergence reaction and dissociation are recorded as present or absent: no
    sourced severity scale for them was found (the CADSS, the dissociation
    scale of the trials, has no sourced scoring, so ketacare does not score it).
    """

    kind: ClassVar[str] = "side_effects"
    sedation_moaas: int | None = None
    pain_nrs: int | None = None
    nausea: bool | None = None
    vomiting: bool | None = None
    dizziness: bool | None = None
    emergence_reaction: bool | None = None
    dissociation: bool | None = None
    note: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        scale, lo, hi, _ = load_session_rules().sedation
        for name, low, high, label in (
            ("sedation_moaas", lo, hi, scale),
            ("pain_nrs", 0, 10, "pain NRS"),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"{label} must be a whole number, got {value!r}")
            if not low <= value <= high:
                raise OutOfRange(label, value, f"{low} to {high}")
        flags = ("nausea", "vomiting", "dizziness", "emergence_reaction", "dissociation")
        for name in flags:
            if getattr(self, name) not in (None, True, False):
                raise InvalidInput(f"{name} must be true, false or empty")
        _text(self.note, "side effects note", required=False)
        recorded = [
            f.name for f in fields(self) if f.name in (*flags, "sedation_moaas", "pain_nrs")
        ]
        if all(getattr(self, n) is None for n in recorded) and not self.note.strip():
            raise InvalidInput("side effects: record at least one rating")


@dataclass(frozen=True, slots=True, kw_only=True)
class Medication(Event):
    """A medication other than the session's ketamine.

    ``purpose`` is one of :data:`MEDICATION_PURPOSES` or the purpose in free text;
    a plain ``rescue`` needs its ``reason`` (what it was given for).
    """

    kind: ClassVar[str] = "medication"
    drug: str
    dose: str
    route: str
    purpose: str
    reason: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _text(self.drug, "medication drug")
        _text(self.dose, "medication dose")
        _text(self.route, "medication route")
        _text(self.purpose, "medication purpose")
        _text(self.reason, "medication reason", required=self.purpose.strip() == "rescue")


@dataclass(frozen=True, slots=True)
class LimitOverride:
    """A documented reason and a second clinician for a value above a soft limit."""

    reason: str
    cosigned_by: str

    def __post_init__(self) -> None:
        _text(self.reason, "override reason")
        _text(self.cosigned_by, "override co-signature")


@dataclass(frozen=True, slots=True, kw_only=True)
class StartInfusion(Event):
    """The infusion starts at ``rate_mg_per_h``."""

    kind: ClassVar[str] = "start_infusion"
    rate_mg_per_h: float
    override: LimitOverride | None = None

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _positive(self.rate_mg_per_h, "rate_mg_per_h", "mg/h")


@dataclass(frozen=True, slots=True, kw_only=True)
class RateChange(Event):
    """A new infusion rate (while paused, the rate the infusion resumes at).

    A new entry needs its ``reason`` (see :func:`~ketacare.core.sessions.replay.append`);
    entries stored before that rule replay as they were written.
    """

    kind: ClassVar[str] = "rate_change"
    rate_mg_per_h: float
    override: LimitOverride | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _positive(self.rate_mg_per_h, "rate_mg_per_h", "mg/h")
        _text(self.reason, "rate change reason", required=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pause(Event):
    """The infusion is paused (nothing flows until :class:`Resume`)."""

    kind: ClassVar[str] = "pause"
    reason: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _text(self.reason, "pause reason", required=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume(Event):
    """The paused infusion resumes at its programmed rate."""

    kind: ClassVar[str] = "resume"


@dataclass(frozen=True, slots=True, kw_only=True)
class Bolus(Event):
    """An IV bolus of the session's drug."""

    kind: ClassVar[str] = "bolus"
    amount_mg: float
    reason: str = ""
    override: LimitOverride | None = None

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _positive(self.amount_mg, "bolus amount_mg", "mg")
        _text(self.reason, "bolus reason", required=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SelfAdministration(Event):
    """Observed self-administration (e.g. intranasal devices).

    Give ``devices`` when the session has a device size (esketamine: 28 mg per
    device, sourced); otherwise give ``amount_mg``.
    """

    kind: ClassVar[str] = "self_administration"
    devices: int | None = None
    amount_mg: float | None = None

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if (self.devices is None) == (self.amount_mg is None):
            raise InvalidInput("self-administration: give either devices or amount_mg")
        if self.devices is not None and (
            isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1
        ):
            raise OutOfRange("devices", self.devices, "a whole number of at least 1")
        if self.amount_mg is not None:
            _positive(self.amount_mg, "self-administration amount_mg", "mg")


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop(Event):
    """Dosing ends (the infusion is stopped, or the last device given); recovery starts."""

    kind: ClassVar[str] = "stop"
    reason: StopReason
    detail: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if self.reason not in STOP_REASONS:
            raise InvalidInput(
                f"unknown stop reason {self.reason!r}: known are {', '.join(STOP_REASONS)}"
            )
        _text(self.detail, "stop detail", required=self.reason == "other")


@dataclass(frozen=True, slots=True, kw_only=True)
class AcknowledgeAlert(Event):
    """An alert acknowledged with the action taken.

    ``alert_id`` is the alert's id, ``"<seq>/<threshold id>"`` (the vitals entry
    that opened it and the threshold it crossed): stable under amendments.
    ``action`` is one of :data:`ALERT_ACTIONS` (chosen, never defaulted: what the
    chair did is a decision); ``note`` says more in free text.
    """

    kind: ClassVar[str] = "acknowledge_alert"
    alert_id: str
    action: str
    note: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _text(self.alert_id, "alert id")
        _text(self.action, "alert acknowledgement action")
        if self.action not in ALERT_ACTIONS:
            raise InvalidInput(
                f"alert acknowledgement action {self.action!r} is not one of "
                f"{', '.join(ALERT_ACTIONS)}"
            )
        _text(self.note, "alert acknowledgement note", required=False)


#: The actions an alert is acknowledged with, in the order the chair view offers them.
ALERT_ACTIONS: Final[tuple[str, ...]] = (
    "continue",
    "reduce_rate",
    "pause",
    "stop",
    "call_physician",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DischargeScore(Event):
    """A discharge score: the raw PADSS answers, scored by the instruments core."""

    kind: ClassVar[str] = "discharge_score"
    answers: Mapping[str, object]
    vital_signs_reason: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if not isinstance(self.answers, Mapping):
            raise InvalidInput("discharge score answers must be keyed by item id")
        # every item is a decision: one left out is refused, never taken as the best answer
        items = get_instrument(DISCHARGE_INSTRUMENT).items
        missing = [i.id for i in items if self.answers.get(i.id) is None]
        if missing:
            raise InvalidInput(
                "discharge score: every item must be answered; missing: " + ", ".join(missing)
            )
        score(DISCHARGE_INSTRUMENT, dict(self.answers))  # refuses invalid answers now
        _text(self.vital_signs_reason, "vital signs reason", required=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class EscortConfirmed(Event):
    """A responsible adult is here to accompany the patient home."""

    kind: ClassVar[str] = "escort_confirmed"
    name: str = ""
    relation: str = ""

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _text(self.name, "escort name", required=False)
        _text(self.relation, "escort relation", required=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Discharge(Event):
    """The patient leaves; allowed only when every discharge condition is met."""

    kind: ClassVar[str] = "discharge"
    instructions: str

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _text(self.instructions, "discharge instructions")


@dataclass(frozen=True, slots=True, kw_only=True)
class EndSession(Event):
    """The session ends early (did not attend, a failed check, transfer of care)."""

    kind: ClassVar[str] = "end_session"
    reason: str

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _text(self.reason, "end of session reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class Amendment(Event):
    """Corrects entry ``target_seq``: ``replacement`` (same kind) or None (entered in error)."""

    kind: ClassVar[str] = "amendment"
    target_seq: int
    reason: str
    replacement: Event | None = None

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _text(self.reason, "amendment reason")
        if isinstance(self.target_seq, bool) or not isinstance(self.target_seq, int):
            raise InvalidInput("amendment target_seq must be an entry number")
        if self.target_seq < 1:
            raise OutOfRange("amendment target_seq", self.target_seq, "an entry number >= 1")
        if isinstance(self.replacement, Amendment | Scheduled):
            raise InvalidInput("an amendment's replacement cannot be an amendment or a schedule")


#: Every event class by its ``kind``.
EVENT_TYPES: Final[Mapping[str, type[Event]]] = {
    cls.kind: cls
    for cls in (
        Scheduled,
        CheckIn,
        PreDoseCheck,
        Vitals,
        SideEffects,
        Medication,
        StartInfusion,
        RateChange,
        Pause,
        Resume,
        Bolus,
        SelfAdministration,
        Stop,
        AcknowledgeAlert,
        DischargeScore,
        EscortConfirmed,
        Discharge,
        EndSession,
        Amendment,
    )
}
