"""The physician's monitoring order: part of a signed plan for a supervised session.

Why: no source gives notify or stop parameters for an off-label ketamine infusion,
and an unset parameter used to mean "no alert". A supervised session (IV routes and
esketamine nasal spray) is therefore given only under a complete order, signed by a
physician: the vitals interval during dosing and during recovery, the minimum
observation after dosing ends (discharge waits for it), and the notify / stop
parameters (systolic and diastolic high and low, heart rate high and low, SpO2 low,
respiratory rate low, MOAA/S sedation at or below), and the NEWS2 SpO2 scale. Each
value comes from the
clinic's session policy where it sets it, from a protocol's sourced interval, or is
entered by the physician at signing; the origin of each is kept.

NEWS2 is scored on SpO2 scale 1 unless the order prescribes scale 2 with its basis:
RCP 2017 Chart 1 keeps scale 2 for a prescribed target of 88-92% (e.g. hypercapnic
respiratory failure), under the direction of a qualified clinician, so it is never a
clinic-wide default and never implied.

Sourced rules stay on top: an interval longer than a protocol's sourced one, or an
observation shorter than a protocol's sourced minimum (esketamine: 2 h), is refused,
and the esketamine label's pre-dose blood-pressure guide is kept beside the order (it
is not a slot of the order).

Examples
--------
>>> from ketacare.core.protocols import load_library
>>> p = load_library().get(protocol_id="depression-iv")
>>> entered = {"sbp_high": 180, "sbp_low": 90, "dbp_high": 110, "dbp_low": 50, "hr_high": 120,
...            "hr_low": 50, "spo2_low": 92, "rr_low": 10, "moaas_at_or_below": 2,
...            "observation_min": 60}
>>> o = monitoring_order(protocol=p, entered=entered, policy=None, set_by="dr_a")
>>> o.values["vitals_interval_min"], o.origins["vitals_interval_min"], o.origins["sbp_high"]
(10.0, 'sourced', 'plan')
>>> o.values["observation_min"], o.origins["observation_min"]
(60.0, 'plan')
>>> o.spo2_scale
1
>>> o2 = monitoring_order(protocol=p, policy=None, set_by="dr_a", entered={**entered,
...     "spo2_low": 88, "news2_spo2_scale": "2",
...     "news2_spo2_scale_basis": "hypercapnic; target 88-92%"})
>>> o2.spo2_scale, o2.lines()[-1]
(2, 'NEWS2 SpO2 scale: 2 (target 88-92%; basis: hypercapnic; target 88-92%)')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NotRequired, TypedDict

from ketacare.core.errors import InvalidInput
from ketacare.core.protocols import Protocol
from ketacare.core.sessions.news2 import scale2_target
from ketacare.core.sessions.rules import (
    PLAUSIBILITY,
    Direction,
    Observed,
    Threshold,
    load_session_rules,
)
from ketacare.core.sessions.setup import SessionSetup, Setting, Spo2Scale
from ketacare.core.sessions.site_policy import SessionPolicy

Origin = Literal["clinic_policy", "plan", "sourced"]

#: The routes of a supervised session: dosing under a nurse's eyes at the chair.
SUPERVISED_ROUTES: Final = ("iv_infusion", "iv_bolus", "intranasal_esketamine")

#: The order's interval fields (minutes).
INTERVALS: Final = ("vitals_interval_min", "recovery_vitals_interval_min")

#: The minimum observation after dosing ends (minutes): discharge waits for it. No
#: source gives one for racemic ketamine, so without it a session would have no
#: minimum at all; the esketamine labels' 2 h is the floor where a protocol cites it.
OBSERVATION: Final = "observation_min"

#: Fields a plan signed before the observation joined the order may lack; a session of
#: such a plan then needs the clinic's policy or the protocol to set it (else refused).
ADDED_LATER: Final = (OBSERVATION,)

#: The order's notify/stop fields: (field, what it watches, direction).
PARAMETERS: Final[tuple[tuple[str, Observed, Direction], ...]] = (
    ("sbp_high", "sbp_mmhg", "high"),
    ("sbp_low", "sbp_mmhg", "low"),
    ("dbp_high", "dbp_mmhg", "high"),
    ("dbp_low", "dbp_mmhg", "low"),
    ("hr_high", "hr_per_min", "high"),
    ("hr_low", "hr_per_min", "low"),
    ("spo2_low", "spo2_pct", "low"),
    ("rr_low", "rr_per_min", "low"),
    ("moaas_at_or_below", "sedation_moaas", "low"),
)

#: Every field of an order, in the order forms show them.
FIELDS: Final[tuple[str, ...]] = (*INTERVALS, OBSERVATION, *(f for f, _, _ in PARAMETERS))

LABELS: Final[Mapping[str, str]] = {
    "vitals_interval_min": "vitals interval during dosing (min)",
    "recovery_vitals_interval_min": "vitals interval during recovery (min)",
    "observation_min": "minimum observation after dosing ends (min)",
    "sbp_high": "systolic high (mmHg)",
    "sbp_low": "systolic low (mmHg)",
    "dbp_high": "diastolic high (mmHg)",
    "dbp_low": "diastolic low (mmHg)",
    "hr_high": "heart rate high (/min)",
    "hr_low": "heart rate low (/min)",
    "spo2_low": "SpO2 low (%)",
    "rr_low": "respiratory rate low (/min)",
    "moaas_at_or_below": "sedation: MOAA/S at or below",
}

#: The order's NEWS2 SpO2 scale (1 or 2) and, for scale 2, its recorded basis.
SCALE: Final = "news2_spo2_scale"
SCALE_BASIS: Final = "news2_spo2_scale_basis"

#: Longest basis kept for scale 2 (characters): a data-entry bound, not a clinical number.
_MAX_BASIS: Final = 500

#: How an origin reads on a page.
ORIGIN_NAMES: Final[Mapping[str, str]] = {
    "clinic_policy": "clinic policy",
    "plan": "this plan",
    "sourced": "sourced",
}

#: Data-entry bound of an interval (minutes): a day; not a clinical number.
_MAX_INTERVAL_MIN: Final = 1440.0


def needs_order(protocol: Protocol) -> bool:
    """True for a supervised session's protocol (IV routes, esketamine nasal spray)."""
    return protocol.route in SUPERVISED_ROUTES


class OrderDoc(TypedDict):
    """A monitoring order as stored with its plan (:meth:`MonitoringOrder.to_dict`)."""

    values: dict[str, float]
    origins: dict[str, str]
    set_by: str
    #: absent in orders signed before the scale joined the order: scale 1
    news2_spo2_scale: NotRequired[int]
    news2_spo2_scale_basis: NotRequired[str | None]


@dataclass(frozen=True, slots=True)
class MonitoringOrder:
    """A complete monitoring order: every field's value and where it came from, and the
    NEWS2 SpO2 scale (2 only with the basis the physician recorded)."""

    values: Mapping[str, float]
    origins: Mapping[str, str]
    set_by: str
    spo2_scale: Spo2Scale = 1
    spo2_scale_basis: str | None = None

    def to_dict(self) -> OrderDoc:
        """JSON-ready (stored with the plan)."""
        return {
            "values": dict(self.values),
            "origins": dict(self.origins),
            "set_by": self.set_by,
            "news2_spo2_scale": self.spo2_scale,
            "news2_spo2_scale_basis": self.spo2_scale_basis,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitoringOrder:
        """Rebuild a stored order (checked to be complete)."""
        values = {k: float(v) for k, v in dict(data["values"]).items()}
        missing = [f for f in FIELDS if f not in values and f not in ADDED_LATER]
        if missing:
            raise InvalidInput(f"stored monitoring order is missing {', '.join(missing)}")
        scale, basis = _scale(data.get(SCALE), data.get(SCALE_BASIS))
        return cls(values, dict(data["origins"]), str(data["set_by"]), scale, basis)

    def lines(self) -> tuple[str, ...]:
        """One line per field for pages and the summary: value and origin."""
        return tuple(
            f"{LABELS[f]}: {self.values[f]:g} ({ORIGIN_NAMES.get(self.origins.get(f, ''), '?')})"
            for f in FIELDS
            if f in self.values
        ) + (self.scale_line(),)

    def scale_line(self) -> str:
        """The NEWS2 SpO2 scale as the order states it."""
        if self.spo2_scale == 2:
            low, high = scale2_target()
            return f"NEWS2 SpO2 scale: 2 (target {low:g}-{high:g}%; basis: {self.spo2_scale_basis})"
        return "NEWS2 SpO2 scale: 1 (the RCP's scale for every patient not prescribed scale 2)"


def _scale(raw: object, basis: object) -> tuple[Spo2Scale, str | None]:
    """The order's SpO2 scale: 1 unless 2 is given, and 2 only with a recorded basis."""
    text = basis.strip() if isinstance(basis, str) else basis
    if text is not None and not isinstance(text, str):
        raise InvalidInput(f"monitoring order: {SCALE_BASIS} must be text, got {basis!r}")
    if isinstance(raw, float) and raw in (1.0, 2.0):  # a JSON number read as a float
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | str | None):
        raise InvalidInput(f"monitoring order: {SCALE} must be 1 or 2, got {raw!r}")
    if raw in (None, "", 1, "1"):
        if text:
            raise InvalidInput(
                f"monitoring order: {SCALE_BASIS} is recorded only with {SCALE} 2 "
                "(SpO2 scale 2 was not chosen)"
            )
        return 1, None
    if raw not in (2, "2"):
        raise InvalidInput(f"monitoring order: {SCALE} must be 1 or 2, got {raw!r}")
    if not text:
        low, high = scale2_target()
        raise InvalidInput(
            f"monitoring order: NEWS2 SpO2 scale 2 needs its basis ({SCALE_BASIS}): RCP 2017 "
            f"keeps scale 2 for a prescribed target of {low:g}-{high:g}% (e.g. hypercapnic "
            "respiratory failure), under the direction of a qualified clinician"
        )
    if len(text) > _MAX_BASIS:
        raise InvalidInput(
            f"monitoring order: {SCALE_BASIS} is {len(text)} characters, at most {_MAX_BASIS}"
        )
    return 2, text


def _number(field: str, raw: object) -> float:
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise InvalidInput(f"monitoring order: {field} must be a number, got {raw!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise InvalidInput(f"monitoring order: {field} must be a number, got {raw!r}")
    return float(raw)


def order_defaults(
    *, protocol: Protocol, policy: SessionPolicy | None
) -> dict[str, tuple[float, str] | None]:
    """Each field's pre-filled value and origin: the clinic's policy, else a protocol's
    sourced interval; None where the signing physician must enter it."""
    site = (policy or SessionPolicy()).for_protocol(protocol.id)
    from_policy: dict[str, float | None] = {
        "vitals_interval_min": site.vitals_interval_min,
        "recovery_vitals_interval_min": site.recovery_vitals_interval_min,
        "moaas_at_or_below": site.sedation_moaas_at_or_below,
        OBSERVATION: site.observation_min,
    }
    for field, vital, direction in PARAMETERS:
        if vital != "sedation_moaas":
            from_policy[field] = site.thresholds.get((vital, direction))
    sourced = protocol.monitoring.vitals_interval_min.value
    sourced_observation = protocol.monitoring.observation_min.value
    out: dict[str, tuple[float, str] | None] = {}
    for field in FIELDS:
        value = from_policy.get(field)
        if value is not None:
            floor = sourced_observation if field == OBSERVATION else None
            out[field] = (max(float(value), floor or 0.0), "clinic_policy")
        elif field in INTERVALS and sourced is not None:
            out[field] = (float(sourced), "sourced")
        elif field == OBSERVATION and sourced_observation is not None:
            out[field] = (float(sourced_observation), "sourced")
        else:
            out[field] = None
    return out


def monitoring_order(
    *,
    protocol: Protocol,
    entered: Mapping[str, object] | None,
    policy: SessionPolicy | None,
    set_by: str,
) -> MonitoringOrder:
    """The plan's order: entered values, else the clinic's policy, else a sourced interval.

    Raises
    ------
    InvalidInput
        Naming the field: an unknown field, a missing value (neither entered nor set by
        the clinic), a value outside its data-entry bounds, a low at or above its high,
        an interval longer than the protocol's sourced one, or an observation shorter
        than the protocol's sourced minimum.
    """
    given = {k: v for k, v in dict(entered or {}).items() if v not in (None, "")}
    unknown = sorted(set(given) - {*FIELDS, SCALE, SCALE_BASIS})
    if unknown:
        raise InvalidInput(
            f"monitoring order: unknown field {unknown[0]!r} "
            f"(allowed: {', '.join((*FIELDS, SCALE, SCALE_BASIS))})"
        )
    spo2_scale, basis = _scale(given.pop(SCALE, None), given.pop(SCALE_BASIS, None))
    defaults = order_defaults(protocol=protocol, policy=policy)
    sourced = protocol.monitoring.vitals_interval_min.value
    values: dict[str, float] = {}
    origins: dict[str, str] = {}
    missing: list[str] = []
    for field in FIELDS:
        default = defaults[field]
        if field in given:
            values[field] = _number(field, given[field])
            # a pre-filled value sent back unchanged keeps its origin (the form posts all)
            kept = default is not None and default[0] == values[field]
            origins[field] = default[1] if kept and default is not None else "plan"
        elif default is not None:
            values[field], origins[field] = default
        else:
            missing.append(field)
    if missing:
        raise InvalidInput(
            "monitoring order incomplete: the clinic's session policy does not set "
            + ", ".join(f"{f} ({LABELS[f]})" for f in missing)
            + ": the signing physician must enter them"
        )
    for field in INTERVALS:
        value = values[field]
        if not 0 < value <= _MAX_INTERVAL_MIN:
            raise InvalidInput(
                f"monitoring order: {field} {value:g} is outside the data-entry bounds "
                f"(more than 0, at most {_MAX_INTERVAL_MIN:g} min)"
            )
        if sourced is not None and value > sourced:
            raise InvalidInput(
                f"monitoring order: {field} {value:g} min would loosen the sourced interval of "
                f"{sourced:g} min of protocol {protocol.id}"
            )
    observation = values[OBSERVATION]
    if not 0 < observation <= _MAX_INTERVAL_MIN:
        raise InvalidInput(
            f"monitoring order: {OBSERVATION} {observation:g} is outside the data-entry bounds "
            f"(more than 0, at most {_MAX_INTERVAL_MIN:g} min)"
        )
    floor = protocol.monitoring.observation_min.value
    if floor is not None and observation < floor:
        raise InvalidInput(
            f"monitoring order: {OBSERVATION} {observation:g} min would shorten the sourced "
            f"minimum observation of {floor:g} min of protocol {protocol.id}"
        )
    scale, lo, hi, _ = load_session_rules().sedation
    for field, vital, _direction in PARAMETERS:
        value = values[field]
        if vital == "sedation_moaas":
            low, high, unit = float(lo), float(hi), scale
        else:
            bound = PLAUSIBILITY[vital]
            low, high, unit = bound.min, bound.max, bound.unit
        if not low <= value <= high:
            raise InvalidInput(
                f"monitoring order: {field} {value:g} is outside the data-entry bounds "
                f"{low:g}-{high:g} {unit}"
            )
    if spo2_scale == 2:
        low, high = scale2_target()
        if values["spo2_low"] > low:
            raise InvalidInput(
                f"monitoring order: spo2_low {values['spo2_low']:g} % is above {low:g} %, the "
                f"lower end of the {low:g}-{high:g} % target SpO2 scale 2 is for (RCP 2017 "
                "Chart 1): the session would alert at saturations on target; set spo2_low at "
                f"or below {low:g} %, or keep scale 1"
            )
    for low_field, high_field in (
        ("sbp_low", "sbp_high"),
        ("dbp_low", "dbp_high"),
        ("hr_low", "hr_high"),
    ):
        if values[low_field] >= values[high_field]:
            raise InvalidInput(
                f"monitoring order: {low_field} {values[low_field]:g} must be below "
                f"{high_field} {values[high_field]:g}"
            )
    return MonitoringOrder(values, origins, set_by, spo2_scale, basis)


def apply_order(setup: SessionSetup, order: MonitoringOrder) -> SessionSetup:
    """The session setup with the order's intervals and thresholds in force.

    The sourced thresholds (esketamine pre-dose blood pressure) are kept; the clinic's
    thresholds for a vital and direction the order covers are replaced by the order's;
    the others (temperature, SpO2 high, respiratory rate high) stay as the clinic set them.
    """

    def who(field: str) -> str:
        origin = ORIGIN_NAMES.get(order.origins.get(field, ""), "?")
        return f"monitoring order signed by {order.set_by}, value from {origin}"

    def interval(name: str, field: str, current: Setting) -> Setting:
        if order.origins.get(field) == "sourced" and current.basis == "sourced":
            return current
        return Setting(name, order.values[field], "min", "order", None, who(field))

    def observation(current: Setting) -> Setting:
        if OBSERVATION not in order.values:  # signed before the order carried it
            return current
        if order.origins.get(OBSERVATION) == "sourced" and current.basis == "sourced":
            return current
        return Setting(
            "minimum observation after dosing",
            order.values[OBSERVATION],
            "min",
            "order",
            None,
            who(OBSERVATION),
        )

    covered = {(vital, direction) for _, vital, direction in PARAMETERS}
    kept = [
        t for t in setup.thresholds if t.basis == "sourced" or (t.vital, t.direction) not in covered
    ]
    ordered = [
        Threshold(
            id=f"order-{field}",
            vital=vital,
            direction=direction,
            value=order.values[field],
            phase="session",
            basis="order",
            source=who(field),
            inclusive=vital == "sedation_moaas",
        )
        for field, vital, direction in PARAMETERS
    ]
    return dataclasses.replace(
        setup,
        vitals_interval=interval("vitals interval", "vitals_interval_min", setup.vitals_interval),
        recovery_vitals_interval=interval(
            "recovery vitals interval",
            "recovery_vitals_interval_min",
            setup.recovery_vitals_interval,
        ),
        observation=observation(setup.observation),
        thresholds=tuple(kept + ordered),
        news2_spo2_scale=order.spo2_scale,
        news2_spo2_scale_note=(
            None
            if order.spo2_scale == 1
            else f"SpO2 scale 2 prescribed in the monitoring order signed by {order.set_by}: "
            f"{order.spo2_scale_basis}"
        ),
    )
