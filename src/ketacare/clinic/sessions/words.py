"""The session log in clinical words: the chair's event list, the summary, its messages.

The log's entries and the core's refusals speak of fields, kinds and times as the
record stores them (``rate_mg_per_h``, ``start_infusion``, ISO timestamps in UTC).
At the chair they are shown as a nurse reads them: words, units, and the clinic's
local time to the minute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ketacare.core.instruments import score
from ketacare.core.sessions import VITALS, Amendment, Event
from ketacare.core.sessions.rules import observed_label
from ketacare.core.sessions.setup import DISCHARGE_INSTRUMENT

#: Field and value names the core's messages use, as the chair says them.
FIELD_WORDS: Mapping[str, str] = {
    "rate_mg_per_h": "rate (mg/h)",
    "rate_mg_per_kg_per_h": "rate (mg/kg/h)",
    "amount_mg": "amount (mg)",
    "dose_mg": "session dose (mg)",
    "dose_mg_per_kg": "session dose (mg/kg)",
    "course_mg": "course total (mg)",
    "sbp_mmhg": "systolic BP",
    "dbp_mmhg": "diastolic BP",
    "hr_per_min": "heart rate",
    "spo2_pct": "SpO2",
    "rr_per_min": "respiratory rate",
    "temperature_c": "temperature",
    "sedation_moaas": "sedation (MOAA/S)",
    "pain_nrs": "pain (NRS)",
    "expected_seq": "the page's entry number (reload the page)",
    "off_schedule_reason": "Reason, if not on the booked day",
    "alert_id": "the alert",
    "target_seq": "the corrected entry",
    "vital_signs": "vital signs",
    "pre_dose_checks": "pre-dose checks",
    "checked_in": "checked in",
    "stopped_early": "ended early",
    "call_physician": "call physician",
    "reduce_rate": "reduce rate",
}

#: A session's state as the record and its pages say it.
STATE_WORDS: Mapping[str, str] = {
    "scheduled": "scheduled",
    "checked_in": "checked in",
    "pre_dose_checks": "pre-dose checks",
    "dosing": "dosing",
    "recovery": "recovery",
    "discharged": "discharged",
    "stopped_early": "ended early",
}

_ISO = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?\b"
)
_ALERT_ID = re.compile(r"\b\d+/[A-Za-z0-9_.-]+")
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def local_minutes(at: datetime, zone: ZoneInfo, *, today: datetime | None = None) -> str:
    """``at`` in the clinic's time to the minute; the date too when it is not ``today``."""
    here = at.astimezone(zone)
    if today is not None and here.date() == today.astimezone(zone).date():
        return here.strftime("%H:%M")
    return here.strftime("%Y-%m-%d %H:%M")


def clinical_message(
    text: str,
    *,
    zone: ZoneInfo,
    now: datetime | None = None,
    alerts: Mapping[str, str] | None = None,
) -> str:
    """A refusal as the chair shows it: local times to the minute, alerts by what they say,
    fields and kinds in words (no internal names).

    Examples
    --------
    >>> clinical_message(
    ...     "entry 7 (rate change by nurse at 2025-03-01T08:05:12.345678+00:00): "
    ...     "rate_mg_per_h must be positive; open alerts: 5/order-sbp_high",
    ...     zone=ZoneInfo("Europe/Amsterdam"),
    ...     alerts={"5/order-sbp_high": "Systolic BP 190 is above the limit 180"})
    'rate change by nurse at 2025-03-01 09:05: rate (mg/h) must be positive; open alerts: \
"Systolic BP 190 is above the limit 180"'
    """
    known = dict(alerts or {})

    def when(match: re.Match[str]) -> str:
        raw = match.group(0)
        try:
            at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return raw
        if at.tzinfo is None:
            return f"{match.group(1)} {match.group(2)}"
        return local_minutes(at, zone, today=now)

    def alert(match: re.Match[str]) -> str:
        text = known.get(match.group(0))
        return f'"{text.rstrip(".")}"' if text else "an alert"

    out = re.sub(r"^entry \d+ \((.*?)\): ", r"\1: ", text)
    out = _ISO.sub(when, out)
    out = _ALERT_ID.sub(alert, out)
    out = _SNAKE.sub(lambda m: FIELD_WORDS.get(m.group(0), m.group(0).replace("_", " ")), out)
    return out


@dataclass(frozen=True, slots=True)
class EntryLine:
    """One line of the event list: entry number, time, who and what, in words."""

    seq: int
    at: datetime
    by: str
    what: str
    corrected: bool = False


def _g(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:g}{(' ' + unit) if unit else ''}"


def _vitals(e: Any) -> str:
    parts = []
    if e.sbp_mmhg is not None or e.dbp_mmhg is not None:
        parts.append(f"BP {_g(e.sbp_mmhg)}/{_g(e.dbp_mmhg)} mmHg")
    for name, label, unit in (
        ("hr_per_min", "HR", "/min"),
        ("spo2_pct", "SpO2", "%"),
        ("rr_per_min", "RR", "/min"),
        ("temperature_c", "temp", "°C"),
    ):
        if getattr(e, name) is not None:
            parts.append(f"{label} {_g(getattr(e, name), unit)}")
    if e.consciousness:
        parts.append(
            f"ACVPU {'new confusion' if e.consciousness == 'confusion' else e.consciousness}"
        )
    if e.supplemental_oxygen is not None:
        parts.append("on oxygen" if e.supplemental_oxygen else "on air")
    return "vitals: " + (", ".join(parts) or "none")


def _side_effects(e: Any) -> str:
    parts = []
    if e.sedation_moaas is not None:
        parts.append(f"MOAA/S {e.sedation_moaas}")
    if e.pain_nrs is not None:
        parts.append(f"pain {e.pain_nrs}/10")
    flags = ("nausea", "vomiting", "dizziness", "dissociation", "emergence_reaction")
    parts += [f.replace("_", " ") for f in flags if getattr(e, f, None) is True]
    absent = [f.replace("_", " ") for f in flags if getattr(e, f, None) is False]
    if absent:  # asked and absent; a symptom not asked is not named at all
        parts.append("absent: " + ", ".join(absent))
    if getattr(e, "note", ""):
        parts.append(e.note)
    return "side effects: " + (", ".join(parts) or "none")


def _reason(text: str, label: str = "reason") -> str:
    return f" ({label}: {text})" if text and text.strip() else ""


def describe_entry(event: Event, *, state: Any = None) -> str:
    """One log entry in clinical words (what the chair's event list shows)."""
    kind = event.kind
    e: Any = event
    if kind == "scheduled":
        su = e.setup
        planned = f", planned {su.planned_dose_mg:g} mg" if su.planned_dose_mg else ""
        return f"session opened{planned}"
    if kind == "check_in":
        return "checked in"
    if kind == "pre_dose_check":
        label = e.item.replace("_", " ")
        return f"pre-dose check: {label} {'done' if e.ok else 'NOT passed'}" + (
            f" ({e.detail})" if e.detail else ""
        )
    if kind == "vitals":
        return _vitals(e)
    if kind == "side_effects":
        return _side_effects(e)
    if kind == "medication":
        return f"medication given: {e.drug} {e.dose} {e.route}, purpose {e.purpose}" + _reason(
            e.reason
        )
    if kind == "start_infusion":
        return f"infusion started at {e.rate_mg_per_h:g} mg/h" + _override(e)
    if kind == "rate_change":
        return f"rate changed to {e.rate_mg_per_h:g} mg/h" + _reason(e.reason) + _override(e)
    if kind == "pause":
        return "infusion paused" + _reason(e.reason)
    if kind == "resume":
        return "infusion resumed"
    if kind == "bolus":
        return f"bolus {e.amount_mg:g} mg" + _reason(e.reason) + _override(e)
    if kind == "self_administration":
        given = f"{e.devices} device(s)" if e.devices is not None else f"{e.amount_mg:g} mg"
        return f"dose self-administered: {given}"
    if kind == "stop":
        return f"dosing stopped: {e.reason.replace('_', ' ')}" + (
            f" ({e.detail})" if e.detail else ""
        )
    if kind == "acknowledge_alert":
        return f"{_alert_named(e.alert_id, state)} acknowledged, action: " + (
            f"{e.action.replace('_', ' ')}" + (f" ({e.note})" if e.note else "")
        )
    if kind == "discharge_score":
        try:
            total = score(DISCHARGE_INSTRUMENT, dict(e.answers)).total
            shown = f" {total:g}" if isinstance(total, int | float) else ""
        except Exception:  # noqa: BLE001 - a line of a list never fails the page
            shown = ""
        return f"discharge score (PADSS){shown}" + _reason(
            e.vital_signs_reason, "vital signs scored better than the record"
        )
    if kind == "escort_confirmed":
        who = ", ".join(x for x in (e.name, e.relation) if x)
        return "escort confirmed" + (f": {who}" if who else "")
    if kind == "discharge":
        return f"discharged: {e.instructions}"
    if kind == "end_session":
        return f"session ended early: {e.reason}"
    if isinstance(event, Amendment):
        new = (
            "entered in error"
            if e.replacement is None
            else "now: " + describe_entry(e.replacement, state=state)
        )
        return f"correction of entry {e.target_seq}: {new}" + _reason(e.reason)
    return kind.replace("_", " ")


def _alert_named(alert_id: str, state: Any) -> str:
    """Which alert an acknowledgement closes, by what it said ("alert" when the state is
    not at hand)."""
    found = next((a for a in getattr(state, "alerts", ()) if a.id == alert_id), None)
    if found is None:
        return "alert"
    if found.threshold is None:
        return f"alert NEWS2 {found.value:g}"
    return (
        f"alert {OBSERVED_NAMES.get(found.threshold.vital, found.threshold.vital)} {found.value:g}"
    )


def _override(e: Any) -> str:
    ov = getattr(e, "override", None)
    if ov is None:
        return ""
    return f" (above the soft limit: {ov.reason}; co-signed by {ov.cosigned_by})"


def entry_lines(state: Any) -> list[EntryLine]:
    """The whole log, newest first, each entry in clinical words."""
    corrected = set(getattr(state, "amendments", {}) or {})
    return [
        EntryLine(e.seq, e.at, e.by, describe_entry(e, state=state), e.seq in corrected)
        for e in reversed(state.events)
    ]


def observed_name(observed: str) -> str:
    """A vital (or the MOAA/S sedation score) as the chair's table, chart and alerts name it:
    the core's label and unit (``core/sessions/data/sessions.toml``).

    >>> observed_name("sbp_mmhg"), observed_name("spo2_pct"), observed_name("sedation_moaas")
    ('Systolic blood pressure (mmHg)', 'SpO2 (%)', 'Sedation (MOAA/S)')
    """
    label, unit = observed_label(observed)
    name = label[:1].upper() + label[1:]
    return f"{name} ({unit})" if unit else name


#: every observed value's name, vitals first (the chart's labels)
OBSERVED_NAMES: Mapping[str, str] = {o: observed_name(o) for o in (*VITALS, "sedation_moaas")}


def alert_text(alert: Any) -> str:
    """A session alert in words: the value, the limit it crossed and whose limit it is."""
    t = alert.threshold
    if t is None:  # NEWS2 (always on)
        news2 = alert.news2
        # the instrument lists its responses mildest first (RCP 2017 Chart 3): the last
        # one raised is the response that applies, and it includes the milder ones
        messages = news2.flag_messages[-1] if news2 is not None and news2.flag_messages else ""
        return f"{news2.describe() if news2 is not None else 'NEWS2'}. {messages}".strip()
    above = "above" if t.direction == "high" else "below"
    if t.inclusive:
        above = "at or " + above
    basis = "monitoring order" if t.basis == "order" else str(t.basis).replace("_", " ")
    action = f" {t.action}" if getattr(t, "action", "") else ""
    name = OBSERVED_NAMES.get(t.vital, t.vital)
    return f"{name} {alert.value:g} is {above} the {basis} limit {t.value:g}.{action}"
