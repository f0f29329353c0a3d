"""Field checks for a personalisation request: each names the field and what is allowed.

A request arrives as JSON (a file for ``ketacare personalise``, a document built from
the record for the Personalise page). Every check here raises
:class:`~ketacare.core.errors.InvalidInput` with one line that starts with where the
problem is (``sample 2 time_h``, ``patient.weight_kg``) and says what would be allowed,
so the command can print it and exit 2 and the page can show it beside the form.

Examples
--------
>>> number(72, "patient.weight_kg", low=20, high=350, unit="kg")
72.0
>>> try:
...     number(400, "patient.weight_kg", low=20, high=350, unit="kg")
... except InvalidInput as exc:
...     print(exc)
patient.weight_kg: 400 is out of range: allowed at least 20 and at most 350 kg
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NoReturn

from ketacare.core.errors import InvalidInput
from ketacare.core.pharmacology.models import KNOWN_ROUTES


def bad(where: str, problem: str) -> NoReturn:
    """Refuse the request: ``where: problem`` as an :class:`InvalidInput`.

    An error, not an exit, because the page reads requests too.

    Examples
    --------
    >>> bad("patient.sex", "must be F or M, got 'X'")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: patient.sex: must be F or M, got 'X'
    """
    raise InvalidInput(f"{where}: {problem}")


def fields_of(
    value: object, where: str, allowed: Sequence[str], required: Sequence[str] = ()
) -> dict[str, Any]:
    """``value`` as an object with only ``allowed`` fields and every ``required`` one.

    An unknown field is refused rather than ignored: a misspelt ``lloq_ng_per_ml`` would
    otherwise turn a censored level into a missing limit without a word.

    Examples
    --------
    >>> fields_of({"weight_kg": 70}, "patient", ("weight_kg", "sex"), ("weight_kg",))
    {'weight_kg': 70}
    >>> fields_of({"weight": 70}, "patient", ("weight_kg", "sex"), ("weight_kg",))
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: patient: unknown field weight: allowed are weight_kg, sex
    """
    if not isinstance(value, dict):
        bad(where, f"must be an object with {', '.join(required or allowed)}")
    extra = sorted(set(value) - set(allowed))
    if extra:
        bad(where, f"unknown field {', '.join(extra)}: allowed are {', '.join(allowed)}")
    missing = [k for k in required if k not in value]
    if missing:
        bad(where, f"needs {', '.join(missing)}")
    return value


def list_of(value: object, where: str, what: str) -> list[Any]:
    """``value`` as a list (of ``what``, named in the refusal).

    Examples
    --------
    >>> list_of({}, "samples", "measured levels")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: samples: must be a list of measured levels
    """
    if not isinstance(value, list):
        bad(where, f"must be a list of {what}")
    return value


def number(
    value: object,
    where: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    unit: str = "",
) -> float:
    """A finite number within [low, high] (``open_low``: strictly above ``low``).

    Booleans are refused although Python counts them as numbers: ``true`` in a dose
    field is a mistake, not 1 mg.

    Examples
    --------
    >>> number(0.5, "target.tolerance", low=0, high=0.5, open_low=True)
    0.5
    >>> try:
    ...     number(0, "target.tolerance", low=0, high=0.5, open_low=True)
    ... except InvalidInput as exc:
    ...     print(exc)
    target.tolerance: 0 is out of range: allowed more than 0 and at most 0.5
    >>> number(True, "ceiling_ng_per_ml")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: ceiling_ng_per_ml: must be a finite number, got True
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        bad(where, f"must be a finite number, got {value!r}")
    result = float(value)
    too_low = low is not None and (result <= low if open_low else result < low)
    too_high = high is not None and result > high
    if too_low or too_high:
        parts = []
        if low is not None:
            parts.append(f"{'more than' if open_low else 'at least'} {low:g}")
        if high is not None:
            parts.append(f"at most {high:g}")
        bad(where, f"{result:g} is out of range: allowed {' and '.join(parts)} {unit}".rstrip())
    return result


def integer(value: object, where: str, *, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (a float such as 2.0 is refused).

    Examples
    --------
    >>> integer(4, "option 1 n_doses", low=1, high=366)
    4
    >>> try:
    ...     integer(2.0, "option 1 n_doses", low=1, high=366)
    ... except InvalidInput as exc:
    ...     print(exc)
    option 1 n_doses: must be a whole number from 1 to 366, got 2.0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        bad(where, f"must be a whole number from {low} to {high}, got {value!r}")
    if not low <= value <= high:
        bad(where, f"{value} is out of range: allowed {low} to {high}")
    return int(value)


def route(value: object, where: str) -> str:
    """A route the engine knows (``KNOWN_ROUTES``).

    Examples
    --------
    >>> route("oral", "option 1 route")
    'oral'
    >>> route("rectal", "option 1 route")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: option 1 route: unknown route 'rectal': known are ...
    """
    if value not in KNOWN_ROUTES:
        bad(where, f"unknown route {value!r}: known are {', '.join(KNOWN_ROUTES)}")
    return str(value)


__all__ = ["bad", "fields_of", "integer", "list_of", "number", "route"]
