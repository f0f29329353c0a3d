"""The Patient Monitoring Form built from a session's record, what is missing, and when
it is due.

Pure: the shell hands the facts it read (the replayed session, the patient, the site, the
answers recorded for the form) and the clinic's time zone. Every value the form shows
comes from one place of the record, named in ``WHERE`` so a missing item says where to
record it. Blood pressure "40 minutes post-administration" is the reading taken after
the first device whose time is closest to 40 minutes after it; the form shows the minute
it was actually taken (no window is assumed). Due: the treatment's date in the clinic's
time zone plus the REMS's days to submit (``data/spravato-rems.toml``).

Examples
--------
>>> from datetime import date
>>> due_date(treated_on=date(2026, 3, 2))
datetime.date(2026, 3, 9)
>>> queue_status(due=date(2026, 3, 9), today=date(2026, 3, 9), submitted=False)
'due'
>>> queue_status(due=date(2026, 3, 9), today=date(2026, 3, 10), submitted=False)
'overdue'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ketacare.core.rems import rules

__all__ = [
    "ANSWERS",
    "FIELD_OF",
    "BpReading",
    "FormFacts",
    "MonitoringForm",
    "build_form",
    "due_date",
    "queue_status",
]

#: the answers the form needs that the session log does not hold (recorded on the form)
ANSWERS = {
    "provider_telephone": "text",
    "provider_email": "text",
    "first_treatment": "yes_no",
    "concomitant_benzodiazepines": "yes_no",
    "concomitant_non_benzo_hypnotics": "yes_no",
    "concomitant_psychostimulants": "yes_no",
    "concomitant_maois": "yes_no",
    "concomitant_opioids": "yes_no",
    "vitals_acceptable_before": "yes_no",
    "vitals_acceptable_at_completion": "yes_no",
    "sedation": "yes_no_time",
    "dissociation": "yes_no_time",
    "respiratory_depression": "yes_no_time",
    "ready_to_leave_min": "minutes",
}

_ANSWER_PLACE = "the REMS form's answers for this session"
#: where each item of the form is recorded in ketacare (said when it is missing)
WHERE = {
    "patient_name": "the patient's record (given and family name)",
    "patient_birth_date": "the patient's record (birth date)",
    "patient_sex": "the patient's record (sex)",
    "monitoring_provider": "the account of the provider who discharged the patient (full name)",
    "setting": "REMS: the site's certification",
    "treatment_date": "the session: the first device's self-administration",
    "dose_administered": "the session: self-administration (devices)",
    "lot": "the session: pre-dose check 'medication_lot' with the lot number",
    "treatment_duration_min": "the session: the discharge",
    "bp_before": "the session: vitals with blood pressure before the first device",
    "bp_40_min": "the session: vitals with blood pressure after the first device",
    "bp_completion": "the session: vitals with blood pressure before the discharge "
    "(a reading after the 40-minute one)",
    "pulse_oximetry": "the session: vitals with SpO2 during monitoring",
    **dict.fromkeys(ANSWERS, _ANSWER_PLACE),
}


#: the form field (``data/spravato-rems.toml``) each item fills: every item is one of the
#: form's fields, read in the source the field names
FIELD_OF = {
    "lot": "dose_administered",
    "bp_before": "blood_pressure",
    "bp_40_min": "blood_pressure",
    "bp_completion": "blood_pressure",
    "provider_telephone": "monitoring_provider",
    "provider_email": "monitoring_provider",
    "vitals_acceptable_before": "vitals_acceptable",
    "vitals_acceptable_at_completion": "vitals_acceptable",
}


@dataclass(frozen=True, slots=True)
class BpReading:
    at: datetime
    sbp: float
    dbp: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FormFacts:
    """What the record holds for one session (the shell reads it)."""

    patient_given: str
    patient_family: str
    patient_birth_date: date
    patient_sex: str
    provider_name: str | None
    setting: str | None
    first_device_at: datetime | None
    devices: int
    device_mg: float | None
    lots: tuple[str, ...]
    blood_pressures: tuple[BpReading, ...]
    spo2: tuple[tuple[datetime, float], ...]
    discharged_at: datetime | None
    answers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitoringForm:
    """The form's items in order (name, label, value shown, the form field's status) and
    the missing ones."""

    items: tuple[tuple[str, str, str, str], ...]
    missing: tuple[tuple[str, str], ...]  # (item, where to record it)

    @property
    def complete(self) -> bool:
        return not self.missing


def due_date(*, treated_on: date) -> date:
    """The last day to submit the form of a treatment given on ``treated_on``."""
    return treated_on + timedelta(days=rules().submit_within_days)


def queue_status(*, due: date, today: date, submitted: bool) -> str:
    """``submitted``, ``overdue`` (after its due day) or ``due``."""
    if submitted:
        return "submitted"
    return "overdue" if today > due else "due"


def _minutes(a: datetime, b: datetime) -> int:
    return round((b - a).total_seconds() / 60)


def _answer(answers: Mapping[str, Any], name: str) -> str | None:
    value = answers.get(name)
    kind = ANSWERS[name]
    if kind == "yes_no":
        return None if value not in (True, False) else ("yes" if value else "no")
    if kind == "text":
        return value.strip() if isinstance(value, str) and value.strip() else None
    if kind == "minutes":
        return None if not isinstance(value, int) or isinstance(value, bool) else f"{value} min"
    if not isinstance(value, Mapping) or value.get("present") not in (True, False):
        return None
    if not value["present"]:
        return "no"
    at = value.get("at")
    return f"yes, at {at}" if isinstance(at, str) and at.strip() else None


def build_form(facts: FormFacts, *, zone: ZoneInfo) -> MonitoringForm:
    """The form's values from the record; each item absent is listed with where to record it."""

    def local(t: datetime) -> str:
        return t.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def bp(r: BpReading) -> str:
        return f"{r.sbp:g}/{r.dbp:g} mmHg at {local(r.at)}"

    values: dict[str, str | None] = {
        "patient_name": f"{facts.patient_given} {facts.patient_family}",
        "patient_birth_date": facts.patient_birth_date.isoformat(),
        "patient_sex": facts.patient_sex,
        "monitoring_provider": facts.provider_name,
        "setting": facts.setting,
    }
    first = facts.first_device_at
    values["treatment_date"] = first.astimezone(zone).date().isoformat() if first else None
    values["dose_administered"] = (
        f"{facts.devices * facts.device_mg:g} mg ({facts.devices} devices)"
        if first and facts.device_mg
        else None
    )
    values["lot"] = ", ".join(facts.lots) or None
    end = facts.discharged_at
    values["treatment_duration_min"] = (
        f"{_minutes(first, end)} min" if first and end and end > first else None
    )
    before = [r for r in facts.blood_pressures if first and r.at <= first]
    after = [
        r for r in facts.blood_pressures if first and r.at > first and (not end or r.at <= end)
    ]
    values["bp_before"] = bp(before[-1]) if before else None
    at_s = rules().bp_after_first_device_min * 60
    forty = (
        min(after, key=lambda r: abs((r.at - first).total_seconds() - at_s))
        if after and first
        else None
    )
    values["bp_40_min"] = (
        f"{bp(forty)} ({_minutes(first, forty.at)} min after the first device)"
        if forty and first
        else None
    )
    later = [r for r in after if forty and r.at > forty.at]
    values["bp_completion"] = bp(later[-1]) if later and end else None
    during = [v for t, v in facts.spo2 if first and t > first and (not end or t <= end)]
    values["pulse_oximetry"] = (
        f"{len(during)} readings, lowest SpO2 {min(during):g}%" if during else None
    )
    for name in ANSWERS:
        values[name] = _answer(facts.answers, name)
    labels = {
        "lot": "Lot number(s)",
        "bp_before": "Blood pressure prior to administration",
        "bp_40_min": "Blood pressure 40 minutes post-administration",
        "bp_completion": "Blood pressure prior to treatment session completion",
        "vitals_acceptable_before": "Vital signs acceptable prior to administration",
        "vitals_acceptable_at_completion": "Vital signs acceptable prior to session completion",
        "provider_telephone": "Monitoring provider's telephone",
        "provider_email": "Monitoring provider's email",
        **{f.id: f.label for f in rules().fields},
    }
    status = {f.id: f.status for f in rules().fields}
    order: Sequence[str] = tuple(values)
    items = tuple(
        (name, labels.get(name, name), values[name] or "", status[FIELD_OF.get(name, name)])
        for name in order
    )
    missing = tuple((name, WHERE[name]) for name in order if not values[name])
    return MonitoringForm(items=items, missing=missing)
