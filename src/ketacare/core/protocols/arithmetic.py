"""Exact plan arithmetic: each session's dose and rate before rounding, and its limit checks.

Every input becomes a :class:`decimal.Decimal` from its decimal text; sessions are computed
exactly from the protocol's dose rule (or the clinician's override) and checked against the
resolved limits on these exact values, so rounding (done by
:func:`~ketacare.core.protocols.plan.build_plan`) can neither hide nor create a breach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from ketacare.core.errors import DoseLimitExceeded, InvalidInput, OutOfRange
from ketacare.core.protocols.limits import ResolvedLimit, SoftLimitFinding
from ketacare.core.protocols.model import Phase, Protocol, RoundingStep

#: Accepted patient weight, as the foundation validates it.
WEIGHT_MIN_KG = 20.0
WEIGHT_MAX_KG = 350.0

MINUTES_PER_HOUR = Decimal(60)


def to_decimal(value: float) -> Decimal:
    """The exact decimal of a number's shortest text (``0.1`` is ``Decimal('0.1')``)."""
    return Decimal(str(value))


def round_to_step(value: Decimal, step: RoundingStep) -> Decimal:
    """Round ``value`` to a multiple of ``step.step`` (``half_up`` or ``down``).

    Examples
    --------
    >>> round_to_step(Decimal("22.75"), RoundingStep(0.1, "half_up"))
    Decimal('22.8')
    >>> round_to_step(Decimal("22.75"), RoundingStep(0.1, "down"))
    Decimal('22.7')
    >>> round_to_step(Decimal("57"), RoundingStep(28, "half_up"))
    Decimal('56')
    """
    unit = to_decimal(step.step)
    mode = ROUND_HALF_UP if step.mode == "half_up" else ROUND_DOWN
    return (value / unit).quantize(Decimal(1), rounding=mode) * unit


def format_number(value: Decimal | float) -> str:
    """Show a value with at least one and at most three decimals.

    Examples
    --------
    >>> format_number(1), format_number(2.1), format_number(Decimal("0.35")), format_number(0.47571)
    ('1.0', '2.1', '0.35', '0.476')
    """
    number = Decimal(str(value)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    text = format(number.normalize(), "f")
    return text if "." in text else f"{text}.0"


@dataclass(frozen=True, slots=True)
class ExactSession:
    """One session's exact dose, rate and duration (before rounding)."""

    day: int
    phase: str
    dose_mg: Decimal
    rate_mg_per_h: Decimal | None
    duration_min: Decimal | None
    capped: bool


def check_weight(weight_kg: float) -> Decimal:
    """The weight as a decimal; OutOfRange outside the accepted weights."""
    if (
        isinstance(weight_kg, bool)
        or not isinstance(weight_kg, int | float)
        or not math.isfinite(weight_kg)
        or not WEIGHT_MIN_KG <= weight_kg <= WEIGHT_MAX_KG
    ):
        raise OutOfRange("weight_kg", weight_kg, f"{WEIGHT_MIN_KG:g} to {WEIGHT_MAX_KG:g} kg")
    return to_decimal(weight_kg)


def positive_decimal(name: str, value: float | None) -> Decimal | None:
    """``value`` as a decimal (None stays None); InvalidInput unless it is positive."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInput(f"{name} must be a positive number, got {value!r}")
    return to_decimal(value)


def _days(protocol: Protocol) -> list[tuple[int, Phase | None]]:
    days: list[tuple[int, Phase | None]] = [(d, ph) for ph in protocol.phases for d in ph.days()]
    return days or [(1, None)]


def exact_sessions(
    protocol: Protocol,
    weight: Decimal,
    per_kg_per_h: Decimal | None,
    mg: Decimal | None,
) -> list[ExactSession]:
    """Each session's exact dose and rate: the override when given, else the protocol's rule."""
    rule = protocol.dose
    duration = to_decimal(rule.duration_min) if rule.duration_min is not None else None
    sessions = []
    for index, (day, phase) in enumerate(_days(protocol)):
        name = phase.name if phase else "single dose (schedule is site policy)"
        capped = False
        rate: Decimal | None = None
        if protocol.is_infusion:
            assert duration is not None  # the loader requires it for infusion rules
            hours = duration / MINUTES_PER_HOUR
            if per_kg_per_h is not None:
                rate = per_kg_per_h * weight
            elif mg is not None:
                rate = mg / hours
            elif rule.kind == "rate_per_kg":
                rate = to_decimal(rule.mg_per_kg_per_h or 0) * weight
                if rule.max_mg_per_h is not None and rate > to_decimal(rule.max_mg_per_h):
                    rate, capped = to_decimal(rule.max_mg_per_h), True
            elif rule.kind == "rate_fixed":
                rate = to_decimal(rule.mg_per_h or 0)
            else:  # amount_per_kg
                rate = to_decimal(rule.mg_per_kg or 0) * weight / hours
            dose = mg if mg is not None else rate * hours
        else:
            if index == 0 and rule.first_session_mg is not None:
                dose = to_decimal(rule.first_session_mg)
            elif mg is not None:
                dose = mg
            else:
                dose = to_decimal(rule.mg or 0)
        sessions.append(ExactSession(day, name, dose, rate, duration, capped))
    return sessions


def _values(session: ExactSession, weight: Decimal) -> dict[str, Decimal]:
    values = {"dose_mg": session.dose_mg, "dose_mg_per_kg": session.dose_mg / weight}
    if session.rate_mg_per_h is not None:
        values["rate_mg_per_h"] = session.rate_mg_per_h
        values["rate_mg_per_kg_per_h"] = session.rate_mg_per_h / weight
    return values


def _limit_label(bound: ResolvedLimit) -> str:
    return f"source: {bound.source}" if bound.source else "site policy"


#: The quantity each kind of dose rule orders (checked first against the limits).
PRIMARY_KEY = {
    "rate_per_kg": "rate_mg_per_kg_per_h",
    "rate_fixed": "rate_mg_per_h",
    "amount_per_kg": "dose_mg_per_kg",
    "amount_fixed": "dose_mg",
    "clinic_set": "dose_mg",
}


def _ordered(values: dict[str, Decimal], first: str) -> list[tuple[str, Decimal]]:
    """The session's values with the quantity the clinician ordered checked first."""
    order = ("rate_mg_per_kg_per_h", "rate_mg_per_h", "dose_mg_per_kg", "dose_mg")
    return sorted(values.items(), key=lambda item: (item[0] != first, order.index(item[0])))


def check_limits(
    protocol: Protocol,
    sessions: list[ExactSession],
    weight: Decimal,
    limits: tuple[ResolvedLimit, ...],
    first: str,
) -> tuple[SoftLimitFinding, ...]:
    """Refuse any hard-limit breach (``first`` named first); the soft-limit findings."""
    by_level = {(b.key, b.level): b for b in limits}
    # hard limits first, across every session: one hard breach refuses the whole plan;
    # the ordered quantity (e.g. mg/kg/h for a rate override) is named first
    for session in sessions:
        for key, value in _ordered(_values(session, weight), first):
            hard = by_level.get((key, "hard"))
            if hard is not None and hard.value is not None and value > to_decimal(hard.value):
                raise DoseLimitExceeded(
                    f"dose {format_number(value)} {hard.unit} exceeds the hard limit "
                    f"{format_number(hard.value)} {hard.unit} of protocol {protocol.id} "
                    f"({_limit_label(hard)}; day {session.day})"
                )
    findings = []
    for session in sessions:
        for key, value in _values(session, weight).items():
            soft = by_level.get((key, "soft"))
            if soft is not None and soft.value is not None and value > to_decimal(soft.value):
                message = (
                    f"dose {format_number(value)} {soft.unit} exceeds the soft limit "
                    f"{format_number(soft.value)} {soft.unit} of protocol {protocol.id} "
                    f"({_limit_label(soft)}; day {session.day}): needs a reason and a co-signature"
                )
                findings.append(
                    SoftLimitFinding(
                        day=session.day,
                        key=key,
                        value=float(value.quantize(Decimal("0.001"), ROUND_HALF_UP)),
                        limit=soft.value,
                        unit=soft.unit,
                        basis=soft.basis,
                        source=soft.source,
                        message=message,
                    )
                )
    return tuple(findings)


def check_course(
    protocol: Protocol, sessions: list[ExactSession], limits: tuple[ResolvedLimit, ...]
) -> tuple[SoftLimitFinding, ...]:
    """Refuse a course whose exact total dose passes the hard ceiling per course; the
    soft-limit finding when it passes the soft one (a reason and a co-signature).

    Examples
    --------
    >>> from ketacare.core.protocols.loading import load_library
    >>> from ketacare.core.protocols.limits import SitePolicy, resolve_limits
    >>> p = load_library().get(protocol_id="crps-outpatient")
    >>> # illustrative values for this example only, not clinical advice
    >>> policy = SitePolicy(limits={("crps-outpatient", "course_mg", "soft"): 900.0,
    ...                             ("crps-outpatient", "course_mg", "hard"): 1200.0})
    >>> limits = resolve_limits(protocol=p, site_policy=policy)
    >>> sessions = exact_sessions(p, Decimal(70), None, None)
    >>> print(check_course(p, sessions, limits)[0].message)  # doctest: +NORMALIZE_WHITESPACE
    course dose 980.0 mg (10 sessions) exceeds the soft limit 900.0 mg per course of protocol
    crps-outpatient (site policy): needs a reason and a co-signature
    """
    bounds = {b.level: b for b in limits if b.key == "course_mg"}
    total = sum((s.dose_mg for s in sessions), Decimal(0))
    hard = bounds.get("hard")
    if hard is not None and hard.value is not None and total > to_decimal(hard.value):
        raise DoseLimitExceeded(
            f"course dose {format_number(total)} mg ({len(sessions)} sessions) exceeds the hard "
            f"limit {format_number(hard.value)} mg per course of protocol {protocol.id} "
            f"({_limit_label(hard)})"
        )
    soft = bounds.get("soft")
    if soft is None or soft.value is None or total <= to_decimal(soft.value):
        return ()
    return (
        SoftLimitFinding(
            day=None,
            key="course_mg",
            value=float(total.quantize(Decimal("0.001"), ROUND_HALF_UP)),
            limit=soft.value,
            unit="mg",
            basis=soft.basis,
            source=soft.source,
            message=(
                f"course dose {format_number(total)} mg ({len(sessions)} sessions) exceeds the "
                f"soft limit {format_number(soft.value)} mg per course of protocol "
                f"{protocol.id} ({_limit_label(soft)}): needs a reason and a co-signature"
            ),
        ),
    )
