"""Plan arithmetic: from a protocol and a weight to concrete sessions, checked against limits.

All arithmetic is exact (:class:`decimal.Decimal` from the decimal text of each
input). Each session's dose and rates are then rounded by the protocol's stated
rule; limits are checked on the exact ordered values before rounding, so
rounding can neither hide nor create a limit breach. The cumulative dose is the
sum of the rounded session doses (what the chart will show).

An explicit dose override is never silently altered: it is given as ordered or
refused. A protocol's own cap (e.g. "0.35 mg/kg/h, not to exceed 25 mg/h")
belongs to its dose rule and applies only to the protocol dose.

Examples
--------
>>> from ketacare.core.protocols.loading import load_library
>>> p = load_library().get(protocol_id="crps-outpatient")
>>> from ketacare.core.protocols.limits import SitePolicy
>>> # illustrative ceilings for this example only, not clinical advice
>>> policy = SitePolicy(limits={("crps-outpatient", "dose_mg_per_kg", "hard"): 2.0,
...                             ("crps-outpatient", "course_mg", "hard"): 1000.0})
>>> plan = build_plan(protocol=p, weight_kg=60, bag_mg=100, bag_ml=100, site_policy=policy)
>>> s = plan.sessions[0]
>>> (s.day, s.rate_mg_per_h, s.rate_ml_per_h, s.duration_h, s.dose_mg)
(1, 21.0, 21.0, 4.0, 84.0)
>>> plan.total_dose_mg
840.0
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import NotRequired, TypedDict

from ketacare.core.errors import InvalidInput
from ketacare.core.protocols.arithmetic import (
    MINUTES_PER_HOUR,
    PRIMARY_KEY,
    ExactSession,
    check_course,
    check_limits,
    check_weight,
    exact_sessions,
    positive_decimal,
    round_to_step,
    to_decimal,
)
from ketacare.core.protocols.limits import (
    LimitReview,
    ResolvedLimit,
    SitePolicy,
    SoftLimitFinding,
    require_ceilings,
    resolve_limits,
    review_limits,
    unset_ceiling_reason,
    unset_ceilings,
)
from ketacare.core.protocols.model import Protocol, RoundingStep
from ketacare.core.protocols.wording import order_text, plan_notes, rounding_text


class SessionDoc(TypedDict):
    """One session of a plan as stored and sent (:meth:`PlannedSession.to_dict`)."""

    number: int
    day: int
    date: str | None
    phase: str
    dose_mg: float
    dose_mg_per_kg: float
    rate_mg_per_h: float | None
    rate_mg_per_kg_per_h: float | None
    rate_ml_per_h: float | None
    duration_h: float | None
    duration_min: float | None
    capped_by_rule: bool
    #: where a titrated infusion starts (plans stored before titration lack it)
    start_rate_mg_per_h: NotRequired[float | None]
    #: the session number under its older name, in plans stored before ``number``
    session: NotRequired[int]


class PlanDoc(TypedDict):
    """A plan as stored with the plan record and printed by ``plan preview --json``
    (:meth:`Plan.to_dict`)."""

    protocol: str
    title: str
    weight_kg: float
    order: str
    concentration_mg_per_ml: float | None
    sessions: list[SessionDoc]
    total_dose_mg: float
    rounding: str
    limits: dict[str, dict[str, object]]
    soft_limit_findings: list[dict[str, object]]
    limits_not_configured: list[str]
    requires_review: bool
    usable: bool
    hard_limits_not_set: list[str]
    not_usable_reason: str | None
    notes: list[str]


@dataclass(frozen=True, slots=True)
class PlannedSession:
    """One concrete session of a plan (rates and duration are None for non-infusions)."""

    number: int
    day: int
    date: dt.date | None
    phase: str
    dose_mg: float
    dose_mg_per_kg: float
    rate_mg_per_h: float | None
    rate_mg_per_kg_per_h: float | None
    rate_ml_per_h: float | None
    duration_min: float | None
    capped_by_rule: bool
    #: where the infusion starts when its source titrates up to ``rate_mg_per_h`` (the
    #: ceiling); None when it runs at its rate from the start
    start_rate_mg_per_h: float | None = None

    @property
    def duration_h(self) -> float | None:
        """Duration in hours, to three decimals (40 min is 0.667 h)."""
        if self.duration_min is None:
            return None
        hours = to_decimal(self.duration_min) / MINUTES_PER_HOUR
        return float(hours.quantize(Decimal("0.001"), ROUND_HALF_UP))

    def to_dict(self) -> SessionDoc:
        """JSON-ready form (the design document's session shape, plus detail)."""
        return {
            "number": self.number,
            "day": self.day,
            "date": self.date.isoformat() if self.date else None,
            "phase": self.phase,
            "dose_mg": self.dose_mg,
            "dose_mg_per_kg": self.dose_mg_per_kg,
            "rate_mg_per_h": self.rate_mg_per_h,
            "rate_mg_per_kg_per_h": self.rate_mg_per_kg_per_h,
            "rate_ml_per_h": self.rate_ml_per_h,
            "duration_h": self.duration_h,
            "duration_min": self.duration_min,
            "capped_by_rule": self.capped_by_rule,
            "start_rate_mg_per_h": self.start_rate_mg_per_h,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """A protocol made concrete for one patient: sessions, cumulative dose and limit findings."""

    protocol_id: str
    protocol_title: str
    weight_kg: float
    order: str
    concentration_mg_per_ml: float | None
    sessions: tuple[PlannedSession, ...]
    total_dose_mg: float
    rounding: str
    limits: tuple[ResolvedLimit, ...]
    soft_findings: tuple[SoftLimitFinding, ...]
    not_configured: tuple[str, ...]
    notes: tuple[str, ...]
    #: hard limits unset (only on a :func:`preview_plan`; :func:`build_plan` refuses them)
    hard_limits_not_set: tuple[str, ...] = ()
    #: why the protocol cannot be used for a plan (set when ``hard_limits_not_set`` is)
    not_usable_reason: str | None = None

    @property
    def usable(self) -> bool:
        """True when every hard limit is set, so the plan can be signed and given."""
        return not self.hard_limits_not_set

    @property
    def requires_review(self) -> bool:
        """True when a soft limit is exceeded or a limit is not configured."""
        return bool(self.soft_findings or self.not_configured)

    def to_dict(self) -> PlanDoc:
        """JSON-ready form (the ``ketacare plan preview --json`` document)."""
        limits: dict[str, dict[str, object]] = {}
        for bound in self.limits:
            limits.setdefault(bound.key, {"unit": bound.unit})[bound.level] = bound.to_dict()
        return {
            "protocol": self.protocol_id,
            "title": self.protocol_title,
            "weight_kg": self.weight_kg,
            "order": self.order,
            "concentration_mg_per_ml": self.concentration_mg_per_ml,
            "sessions": [s.to_dict() for s in self.sessions],
            "total_dose_mg": self.total_dose_mg,
            "rounding": self.rounding,
            "limits": limits,
            "soft_limit_findings": [f.to_dict() for f in self.soft_findings],
            "limits_not_configured": list(self.not_configured),
            "requires_review": self.requires_review,
            "usable": self.usable,
            "hard_limits_not_set": list(self.hard_limits_not_set),
            "not_usable_reason": self.not_usable_reason,
            "notes": list(self.notes),
        }


def build_plan(
    *,
    protocol: Protocol,
    weight_kg: float,
    bag_mg: float | None = None,
    bag_ml: float | None = None,
    dose_mg_per_kg_per_h: float | None = None,
    dose_mg: float | None = None,
    start: dt.date | None = None,
    site_policy: SitePolicy | None = None,
) -> Plan:
    """Turn a protocol into concrete sessions for one patient and check every limit.

    Parameters
    ----------
    protocol
        The protocol (from :func:`~ketacare.core.protocols.load_library`).
    weight_kg
        Current weight, 20 to 350 kg.
    bag_mg, bag_ml
        Bag concentration for infusions (both or neither), e.g. 100 mg in 100 mL.
    dose_mg_per_kg_per_h
        Override: infusion rate in mg/kg/h (infusion protocols only).
    dose_mg
        Override: dose per session in mg (an infusion spreads it over the
        session's duration). Required for a ``clinic_set`` protocol.
    start
        Date of the first session; sessions then carry dates.
    site_policy
        The clinic's values for site-policy limits.

    Returns
    -------
    Plan
        Sessions, cumulative dose, resolved limits, soft findings and limits
        not configured.

    Raises
    ------
    OutOfRange
        Weight outside 20 to 350 kg.
    InvalidInput
        Bad bag, conflicting or missing override, an override the route cannot
        take, or a dose the protocol's source does not allow.
    DoseLimitExceeded
        A dose or rate above a hard limit, or a course total above the hard
        limit per course, naming dose, limit and protocol.
    HardLimitNotSet
        A hard ceiling (per session mg or mg/kg, per course mg, or a declared
        rate ceiling) that neither the source nor the site policy sets.

    Examples
    --------
    >>> from ketacare.core.protocols.loading import load_library
    >>> p = load_library().get(protocol_id="crps-outpatient")
    >>> build_plan(protocol=p, weight_kg=70, dose_mg_per_kg_per_h=2.1)
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DoseLimitExceeded: dose 2.1 mg/kg/h exceeds the hard limit 1.0 mg/kg/h ...
    """
    return _build(
        protocol=protocol,
        weight_kg=weight_kg,
        bag_mg=bag_mg,
        bag_ml=bag_ml,
        dose_mg_per_kg_per_h=dose_mg_per_kg_per_h,
        dose_mg=dose_mg,
        start=start,
        site_policy=site_policy,
        preview=False,
    )


def preview_plan(
    *,
    protocol: Protocol,
    weight_kg: float,
    bag_mg: float | None = None,
    bag_ml: float | None = None,
    dose_mg_per_kg_per_h: float | None = None,
    dose_mg: float | None = None,
    start: dt.date | None = None,
    site_policy: SitePolicy | None = None,
) -> Plan:
    """What a protocol would give one patient, even before the clinic has set its ceilings.

    A preview orders nothing, so a protocol whose hard ceilings are unset is
    shown rather than refused: the plan comes back with ``usable`` False,
    ``hard_limits_not_set`` naming each one and ``not_usable_reason`` saying
    where to set it. Every limit that *is* set is enforced exactly as by
    :func:`build_plan` (a dose above it is refused). Signing always goes
    through :func:`build_plan`, which refuses the unusable protocol.

    Examples
    --------
    >>> from ketacare.core.protocols.loading import load_library
    >>> p = load_library().get(protocol_id="crps-outpatient")
    >>> plan = preview_plan(protocol=p, weight_kg=60)
    >>> (plan.usable, plan.hard_limits_not_set, plan.sessions[0].rate_mg_per_h)
    (False, ('dose_mg_per_kg', 'course_mg'), 21.0)
    >>> build_plan(protocol=p, weight_kg=60)
    Traceback (most recent call last):
    ...
    ketacare.core.errors.HardLimitNotSet: protocol crps-outpatient cannot be used for a plan: ...
    >>> preview_plan(protocol=p, weight_kg=70, dose_mg_per_kg_per_h=2.1)
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DoseLimitExceeded: dose 2.1 mg/kg/h exceeds the hard limit 1.0 mg/kg/h ...
    """
    return _build(
        protocol=protocol,
        weight_kg=weight_kg,
        bag_mg=bag_mg,
        bag_ml=bag_ml,
        dose_mg_per_kg_per_h=dose_mg_per_kg_per_h,
        dose_mg=dose_mg,
        start=start,
        site_policy=site_policy,
        preview=True,
    )


def _build(
    *,
    protocol: Protocol,
    weight_kg: float,
    bag_mg: float | None,
    bag_ml: float | None,
    dose_mg_per_kg_per_h: float | None,
    dose_mg: float | None,
    start: dt.date | None,
    site_policy: SitePolicy | None,
    preview: bool,
) -> Plan:
    weight = check_weight(weight_kg)
    per_kg_per_h = positive_decimal("dose_mg_per_kg_per_h", dose_mg_per_kg_per_h)
    mg = positive_decimal("dose_mg", dose_mg)
    if per_kg_per_h is not None and mg is not None:
        raise InvalidInput("give either dose_mg_per_kg_per_h or dose_mg, not both")
    if per_kg_per_h is not None and not protocol.is_infusion:
        raise InvalidInput(
            f"protocol {protocol.id} is {protocol.route}, not an infusion: give dose_mg instead "
            "of dose_mg_per_kg_per_h"
        )
    if protocol.dose.kind == "clinic_set" and mg is None:
        raise InvalidInput(
            f"protocol {protocol.id} has no published dose: the clinician must order dose_mg"
        )
    if (bag_mg is None) != (bag_ml is None):
        raise InvalidInput("give both bag_mg and bag_ml (the bag concentration), or neither")
    bag: tuple[Decimal, Decimal] | None = None
    if bag_mg is not None and bag_ml is not None:
        if not protocol.is_infusion:
            raise InvalidInput(
                f"protocol {protocol.id} is {protocol.route}: a bag applies only to infusions"
            )
        bag = (
            _require(positive_decimal("bag_mg", bag_mg)),
            _require(positive_decimal("bag_ml", bag_ml)),
        )

    exact = exact_sessions(protocol, weight, per_kg_per_h, mg)
    limits = resolve_limits(protocol=protocol, site_policy=site_policy)
    if per_kg_per_h is not None:
        first = "rate_mg_per_kg_per_h"
    elif mg is not None:
        first = "dose_mg"
    else:
        first = PRIMARY_KEY[protocol.dose.kind]
    findings = check_limits(protocol, exact, weight, limits, first)
    if mg is not None and protocol.dose.allowed_mg and float(mg) not in protocol.dose.allowed_mg:
        allowed = " or ".join(f"{v:g}" for v in protocol.dose.allowed_mg)
        source = protocol.source(protocol.dose.source_key or "").label
        raise InvalidInput(
            f"protocol {protocol.id} allows {allowed} mg per session ({source}), not {mg} mg"
        )
    findings += check_course(protocol, exact, limits)
    unset = unset_ceilings(protocol=protocol, site_policy=site_policy)
    if unset and not preview:
        # fail closed: a protocol whose hard ceilings are not all set plans nothing
        require_ceilings(protocol=protocol, site_policy=site_policy)

    sessions = tuple(
        _round_session(protocol, i + 1, s, weight, bag, start, limits) for i, s in enumerate(exact)
    )
    total = sum((to_decimal(s.dose_mg) for s in sessions), Decimal(0))
    # soft slots only: an unset hard one was refused above, or is named on a preview
    not_configured = tuple(
        f"{b.key} {b.level}" for b in limits if b.basis == "not_configured" and b.level == "soft"
    )
    return Plan(
        protocol_id=protocol.id,
        protocol_title=protocol.title,
        weight_kg=float(weight_kg),
        order=order_text(protocol, per_kg_per_h, mg),
        concentration_mg_per_ml=(
            float((bag[0] / bag[1]).quantize(Decimal("0.0001"), ROUND_HALF_UP)) if bag else None
        ),
        sessions=sessions,
        total_dose_mg=float(total),
        rounding=rounding_text(protocol),
        limits=limits,
        soft_findings=findings,
        not_configured=not_configured,
        notes=plan_notes(
            protocol,
            capped=any(x.capped_by_rule for x in sessions),
            start_rate=sessions[0].start_rate_mg_per_h if sessions else None,
            rate=sessions[0].rate_mg_per_h if sessions else None,
        ),
        hard_limits_not_set=tuple(r.key for r in unset),
        not_usable_reason=(
            unset_ceiling_reason(protocol_id=protocol.id, unset=unset) if unset else None
        ),
    )


def _require(value: Decimal | None) -> Decimal:
    if value is None:
        raise InvalidInput("a required number is missing")
    return value


def _bounds_mg(
    limits: tuple[ResolvedLimit, ...], keys: tuple[str, str], weight: Decimal
) -> tuple[Decimal, ...]:
    """The set soft and hard bounds among ``keys``, per kg ones converted at ``weight``."""
    return tuple(
        to_decimal(b.value) * (weight if "per_kg" in b.key else 1)
        for b in limits
        if b.key in keys and b.value is not None
    )


def _round_within(value: Decimal, step: RoundingStep, bounds: tuple[Decimal, ...]) -> Decimal:
    """Round ``value`` to its step, but never up across a bound the exact value respects.

    The chair checks the ordered (rounded) value against the same limits, so a rate of
    0.35 mg/kg/h for 73 kg (25.55 mg/h) rounded half up to 25.6 mg/h would be 0.3507
    mg/kg/h there: above a 0.35 soft limit that the plan never breached. Such a value is
    rounded down instead.

    >>> _round_within(Decimal("25.55"), RoundingStep(0.1, "half_up"), (Decimal("25.55"),))
    Decimal('25.5')
    >>> _round_within(Decimal("25.55"), RoundingStep(0.1, "half_up"), (Decimal("30"),))
    Decimal('25.6')
    >>> _round_within(Decimal("31"), RoundingStep(0.1, "half_up"), (Decimal("30"),))
    Decimal('31.0')
    """
    rounded = round_to_step(value, step)
    if any(value <= bound < rounded for bound in bounds):
        return round_to_step(value, RoundingStep(step.step, "down"))
    return rounded


def _round_session(
    protocol: Protocol,
    number: int,
    session: ExactSession,
    weight: Decimal,
    bag: tuple[Decimal, Decimal] | None,
    start: dt.date | None,
    limits: tuple[ResolvedLimit, ...],
) -> PlannedSession:
    rounding = protocol.rounding
    dose_caps = _bounds_mg(limits, ("dose_mg", "dose_mg_per_kg"), weight)
    dose = _round_within(session.dose_mg, rounding.dose_mg, dose_caps)
    rate = rate_ml = rate_per_kg = None
    if session.rate_mg_per_h is not None:
        rate_caps = _bounds_mg(limits, ("rate_mg_per_h", "rate_mg_per_kg_per_h"), weight)
        rate = float(_round_within(session.rate_mg_per_h, rounding.rate_mg_per_h, rate_caps))
        rate_per_kg = float(
            (session.rate_mg_per_h / weight).quantize(Decimal("0.001"), ROUND_HALF_UP)
        )
        if bag is not None:  # mL/h = mg/h x bag mL / bag mg (no rounded concentration)
            ml_per_mg = bag[1] / bag[0]
            rate_ml = float(
                _round_within(
                    session.rate_mg_per_h * ml_per_mg,
                    rounding.rate_ml_per_h,
                    tuple(cap * ml_per_mg for cap in rate_caps),
                )
            )
    return PlannedSession(
        number=number,
        day=session.day,
        date=start + dt.timedelta(days=session.day - 1) if start else None,
        phase=session.phase,
        dose_mg=float(dose),
        dose_mg_per_kg=float((session.dose_mg / weight).quantize(Decimal("0.001"), ROUND_HALF_UP)),
        rate_mg_per_h=rate,
        rate_mg_per_kg_per_h=rate_per_kg,
        rate_ml_per_h=rate_ml,
        duration_min=float(session.duration_min) if session.duration_min is not None else None,
        capped_by_rule=session.capped,
        start_rate_mg_per_h=_start_rate(protocol, weight, rate),
    )


def _start_rate(protocol: Protocol, weight: Decimal, rate: float | None) -> float | None:
    """The titrated infusion's start for this weight, rounded as rates are and never above
    the session's own rate (the ceiling); None without a titration or a rate."""
    titration = protocol.dose.titration
    if titration is None or rate is None:
        return None
    start = round_to_step(titration.start_for(weight_kg=weight), protocol.rounding.rate_mg_per_h)
    return min(float(start), rate)


def review_plan(
    *, plan: Plan, reason: str | None, prescriber_id: str | None, cosigner_id: str | None
) -> LimitReview:
    """Document the decision to go ahead with a plan that needs review.

    A plan needs review when a soft limit is exceeded or a limit is not
    configured. The reason must be given and the co-signer must be a second
    clinician (not the prescriber).

    Raises
    ------
    SoftLimitNeedsReview
        When the reason or the co-signer is missing, or the co-signer is the prescriber.

    Examples
    --------
    >>> from ketacare.core.protocols.loading import load_library
    >>> p = load_library().get(protocol_id="crps-outpatient")
    >>> from ketacare.core.protocols.limits import SitePolicy
    >>> # illustrative ceilings for this example only, not clinical advice
    >>> policy = SitePolicy(limits={("crps-outpatient", "dose_mg_per_kg", "hard"): 2.0,
    ...                             ("crps-outpatient", "course_mg", "hard"): 1000.0})
    >>> plan = build_plan(protocol=p, weight_kg=50, dose_mg_per_kg_per_h=0.4, site_policy=policy)
    >>> plan.soft_findings[0].message.split(":")[0]
    'dose 0.4 mg/kg/h exceeds the soft limit 0.35 mg/kg/h of protocol crps-outpatient (source'
    >>> review_plan(plan=plan, reason="partial response", prescriber_id="dr-a", cosigner_id="dr-a")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.SoftLimitNeedsReview: protocol crps-outpatient: the co-signer must be ...
    """
    return review_limits(
        protocol_id=plan.protocol_id,
        findings=plan.soft_findings,
        not_configured=plan.not_configured,
        reason=reason,
        prescriber_id=prescriber_id,
        cosigner_id=cosigner_id,
    )
