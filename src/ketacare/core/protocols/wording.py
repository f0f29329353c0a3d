"""What a plan says in words: the order, the rounding rule and the notes beside the sessions.

Kept apart from the arithmetic (:mod:`ketacare.core.protocols.plan`) so that a sentence
can change without touching a number.

Examples
--------
>>> from ketacare.core.protocols.loading import load_library
>>> order_text(load_library().get(protocol_id="crps-outpatient"), None, None)
'protocol dose: 0.35 mg/kg/h for 240 min, not to exceed 25 mg/h'
"""

from __future__ import annotations

from decimal import Decimal

from ketacare.core.protocols.arithmetic import format_number
from ketacare.core.protocols.model import Protocol


def rounding_text(protocol: Protocol) -> str:
    """The protocol's rounding rule in one sentence."""
    r = protocol.rounding
    words = {"half_up": "half up", "down": "down"}
    parts = [
        f"doses to {r.dose_mg.step:g} mg ({words[r.dose_mg.mode]})",
        f"rates to {r.rate_mg_per_h.step:g} mg/h ({words[r.rate_mg_per_h.mode]})",
        f"pump rates to {r.rate_ml_per_h.step:g} mL/h ({words[r.rate_ml_per_h.mode]})",
    ]
    if not protocol.is_infusion:
        parts = parts[:1]
    return (
        "; ".join(parts)
        + "; limits are checked on the exact values before rounding; "
        + "the total is the sum of the rounded session doses"
    )


def order_text(protocol: Protocol, per_kg_per_h: Decimal | None, mg: Decimal | None) -> str:
    """What was ordered: the protocol's dose rule, or the clinician's override."""
    if per_kg_per_h is not None:
        return f"override: {format_number(per_kg_per_h)} mg/kg/h"
    if mg is not None:
        return f"override: {format_number(mg)} mg per session"
    rule = protocol.dose
    if rule.kind == "rate_per_kg":
        cap = f", not to exceed {rule.max_mg_per_h:g} mg/h" if rule.max_mg_per_h else ""
        return f"protocol dose: {rule.mg_per_kg_per_h:g} mg/kg/h for {rule.duration_min:g} min{cap}"
    if rule.kind == "rate_fixed":
        return f"protocol dose: {rule.mg_per_h:g} mg/h for {rule.duration_min:g} min"
    if rule.kind == "amount_per_kg":
        return f"protocol dose: {rule.mg_per_kg:g} mg/kg over {rule.duration_min:g} min"
    return f"protocol dose: {rule.mg:g} mg per session"


def titration_text(protocol: Protocol, *, start_rate: float, rate: float) -> str | None:
    """How an infusion the source titrates is started and raised (the plan's rate is the
    ceiling).

    Examples
    --------
    >>> from ketacare.core.protocols.loading import load_library
    >>> p = load_library().get(protocol_id="crps-continuous")
    >>> for part in titration_text(p, start_rate=3.6, rate=22.0).split(", ")[:3]:
    ...     print(part)
    titrate: start at 3.6 mg/h (5 mg/h per 70 kg
    Dahan 2011)
    then raise it slowly
    """
    t = protocol.dose.titration
    if t is None:
        return None
    per = f" per {t.per_kg:g} kg" if t.per_kg else ""
    label = protocol.source(t.source_key).label
    text = (
        f"titrate: start at {start_rate:g} mg/h ({t.start_mg_per_h:g} mg/h{per}, {label}), "
        f"then raise it slowly, never above the ordered {rate:g} mg/h"
    )
    return f"{text}: {t.note}" if t.note else text


def plan_notes(
    protocol: Protocol, *, capped: bool, start_rate: float | None, rate: float | None
) -> tuple[str, ...]:
    """The notes printed beside a plan's sessions (cap, first session, titration,
    open-ended phases, review points)."""
    notes = []
    if capped:
        notes.append(
            f"rate capped at {protocol.dose.max_mg_per_h:g} mg/h by the protocol's dose rule"
        )
    first = protocol.dose.first_session_mg
    if first is not None:
        notes.append(f"the first session is {first:g} mg as the source requires")
    if start_rate is not None and rate is not None:
        line = titration_text(protocol, start_rate=start_rate, rate=rate)
        notes.extend([line] if line else [])
    for phase in protocol.phases:
        if phase.open_ended:
            notes.append(
                f"phase {phase.name!r} from day {phase.start_day} is not expanded: {phase.note}"
            )
    if not protocol.phases:
        notes.append("no published schedule: one session is shown; the clinic sets the schedule")
    for point in protocol.review_points:
        when = f"after session {point.after_session}" if point.after_session else "review"
        notes.append(f"{when}: {point.text} ({protocol.source(point.source_key).label})")
    return tuple(notes)
