"""Dosing regimens: IV bolus, IV infusion (rate or total amount), IM, intranasal, oral, sublingual.

The JSON form is the one in the design document::

    {"doses": [
      {"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_kg_per_h": 0.35},
      {"route": "iv_bolus", "start_h": 48, "amount_mg": 10},
      {"route": "intranasal", "start_h": 72, "amount_mg": 56}]}

An infusion gives exactly one of ``rate_mg_per_h``, ``rate_mg_per_kg_per_h`` or a total
``amount_mg`` spread evenly over ``duration_h``. Stepped or titrated rates are consecutive
infusions. Infusions share one line, so two infusions may not overlap in time.

Examples
--------
>>> r = parse_regimen({"doses": [
...     {"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_kg_per_h": 0.35},
...     {"route": "oral", "start_h": 24, "amount_mg": 50}]}, weight_kg=70)
>>> r.doses[0].amount_mg, r.total_dose_mg, r.end_h
(98.0, 148.0, 24.0)
>>> parse_regimen({"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": -1}]}, weight_kg=70)
Traceback (most recent call last):
...
ketacare.core.errors.OutOfRange: dose 1 amount_mg -1 is out of range: allowed more than 0 mg
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ketacare.core.errors import InvalidInput, OutOfRange, UnknownItem
from ketacare.core.pharmacology.models import KNOWN_ROUTES

__all__ = ["MAX_HORIZON_H", "Dose", "Regimen", "make_regimen", "parse_regimen"]

#: Latest dose start accepted (one year), a guard against unit mistakes (minutes for hours).
MAX_HORIZON_H = 24.0 * 366

_INFUSION_KEYS = {"rate_mg_per_h", "rate_mg_per_kg_per_h", "amount_mg"}


@dataclass(frozen=True, slots=True)
class Dose:
    """One administration: ``duration_h`` > 0 only for an IV infusion."""

    route: str
    start_h: float
    amount_mg: float
    duration_h: float = 0.0

    @property
    def end_h(self) -> float:
        """When the administration ends (its start for anything but an infusion)."""
        return self.start_h + self.duration_h

    @property
    def rate_mg_per_h(self) -> float | None:
        """Infusion rate, None for a non-infusion."""
        return self.amount_mg / self.duration_h if self.duration_h > 0 else None


@dataclass(frozen=True, slots=True)
class Regimen:
    """Doses in time order."""

    doses: tuple[Dose, ...]

    @property
    def total_dose_mg(self) -> float:
        """Sum of every dose (administered, not bioavailable)."""
        return float(sum(d.amount_mg for d in self.doses))

    @property
    def end_h(self) -> float:
        """End of the last administration."""
        return max((d.end_h for d in self.doses), default=0.0)

    @property
    def routes(self) -> tuple[str, ...]:
        """Distinct routes used, in first-use order."""
        return tuple(dict.fromkeys(d.route for d in self.doses))


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number, got {value!r}")
    return float(value)


def _positive(value: Any, field: str, unit: str) -> float:
    number = _number(value, field)
    if number <= 0:
        raise OutOfRange(field, value, f"more than 0 {unit}")
    return number


def _parse_dose(i: int, raw: Any, weight_kg: float) -> Dose:
    label = f"dose {i + 1}"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{label} must be an object with route and start_h")
    route = raw.get("route")
    if route not in KNOWN_ROUTES:
        raise UnknownItem(f"route in {label}", route, list(KNOWN_ROUTES))
    if "start_h" not in raw:
        raise InvalidInput(f"{label} has no start_h")
    start = _number(raw["start_h"], f"{label} start_h")
    if not 0 <= start <= MAX_HORIZON_H:
        raise OutOfRange(f"{label} start_h", raw["start_h"], f"0 to {MAX_HORIZON_H:g} h")
    if route == "iv_infusion":
        allowed = {"route", "start_h", "duration_h"} | _INFUSION_KEYS
        _no_unknown_keys(label, raw, allowed)
        if "duration_h" not in raw:
            raise InvalidInput(f"{label} (iv_infusion) needs duration_h")
        duration = _positive(raw["duration_h"], f"{label} duration_h", "h")
        given = sorted(_INFUSION_KEYS & raw.keys())
        if len(given) != 1:
            raise InvalidInput(
                f"{label} (iv_infusion) needs exactly one of amount_mg, rate_mg_per_h, "
                f"rate_mg_per_kg_per_h; got {', '.join(given) or 'none'}"
            )
        key = given[0]
        if key == "amount_mg":
            amount = _positive(raw[key], f"{label} amount_mg", "mg")
        elif key == "rate_mg_per_h":
            amount = _positive(raw[key], f"{label} rate_mg_per_h", "mg/h") * duration
        else:
            rate = _positive(raw[key], f"{label} rate_mg_per_kg_per_h", "mg/kg/h")
            amount = rate * weight_kg * duration
        return Dose(route=route, start_h=start, amount_mg=amount, duration_h=duration)
    _no_unknown_keys(label, raw, {"route", "start_h", "amount_mg"})
    if "amount_mg" not in raw:
        raise InvalidInput(f"{label} ({route}) needs amount_mg")
    amount = _positive(raw["amount_mg"], f"{label} amount_mg", "mg")
    return Dose(route=route, start_h=start, amount_mg=amount)


def _no_unknown_keys(label: str, raw: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(raw.keys() - allowed)
    if extra:
        raise InvalidInput(
            f"{label} ({raw['route']}) has unknown field {', '.join(extra)}: "
            f"allowed are {', '.join(sorted(allowed))}"
        )


def parse_regimen(data: Any, *, weight_kg: float) -> Regimen:
    """Validate a regimen in its JSON form and resolve rates to amounts.

    Parameters
    ----------
    data
        ``{"doses": [...]}`` as in the design document.
    weight_kg
        Needed to resolve ``rate_mg_per_kg_per_h``.

    Raises
    ------
    InvalidInput
        (or its subclasses OutOfRange and UnknownItem) for a negative or missing dose, an
        unknown route or field, doses out of time order, or overlapping infusions.

    Examples
    --------
    >>> parse_regimen({"doses": [
    ...     {"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_h": 10},
    ...     {"route": "iv_infusion", "start_h": 2, "duration_h": 1, "rate_mg_per_h": 20}]},
    ...     weight_kg=70)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: dose 2 (iv_infusion 2-3 h) overlaps dose 1 ...
    """
    if not isinstance(data, dict) or not isinstance(data.get("doses"), list):
        raise InvalidInput('a regimen must be an object {"doses": [...]}')
    extra = sorted(data.keys() - {"doses"})
    if extra:
        raise InvalidInput(f"regimen has unknown field {', '.join(extra)}: only doses is allowed")
    if not data["doses"]:
        raise InvalidInput("a regimen needs at least one dose")
    doses = tuple(_parse_dose(i, raw, weight_kg) for i, raw in enumerate(data["doses"]))
    return make_regimen(doses)


def make_regimen(doses: tuple[Dose, ...]) -> Regimen:
    """Check time order and infusion overlap, and build the regimen.

    Examples
    --------
    >>> late, early = Dose("iv_bolus", 2.0, 10.0), Dose("iv_bolus", 1.0, 10.0)
    >>> make_regimen((late, early))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: doses must be in time order: dose 2 starts ...
    """
    last_infusion: tuple[int, Dose] | None = None
    for i, dose in enumerate(doses):
        if i and dose.start_h < doses[i - 1].start_h:
            raise InvalidInput(
                f"doses must be in time order: dose {i + 1} starts at {dose.start_h:g} h, "
                f"before dose {i} at {doses[i - 1].start_h:g} h"
            )
        if dose.route == "iv_infusion":
            if last_infusion is not None and dose.start_h < last_infusion[1].end_h - 1e-9:
                j, prev = last_infusion
                raise InvalidInput(
                    f"dose {i + 1} (iv_infusion {dose.start_h:g}-{dose.end_h:g} h) overlaps "
                    f"dose {j + 1} (iv_infusion {prev.start_h:g}-{prev.end_h:g} h) on the one "
                    "infusion line; give stepped rates as consecutive infusions"
                )
            last_infusion = (i, dose)
    return Regimen(doses=doses)
