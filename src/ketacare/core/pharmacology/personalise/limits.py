"""A protocol's soft and hard limits as the limit check of :func:`recommend`.

:func:`~ketacare.core.pharmacology.recommend` proposes regimens for this patient and
asks a ``Regimen -> findings`` function whether each one is allowed; the protocol named
in the request supplies that function here, with its limits resolved against the
clinic's site policy. A limit the clinic has not configured checks nothing (the output
lists it as not configured), so an unset value never passes for a permissive one.

Examples
--------
>>> from ketacare.core.pharmacology.regimen import parse_regimen
>>> from ketacare.core.protocols import load_library, resolve_limits
>>> protocol = load_library().get(protocol_id="esketamine-trd")
>>> check = protocol_limit_check(
...     protocol=protocol, limits=resolve_limits(protocol=protocol), weight_kg=70)
>>> doses = [{"route": "intranasal", "start_h": 0, "amount_mg": 112}]
>>> [f.level for f in check(parse_regimen({"doses": doses}, weight_kg=70))]
['hard']
>>> check(parse_regimen({"doses": [{**doses[0], "amount_mg": 56}]}, weight_kg=70))
()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ketacare.core.errors import UnknownItem
from ketacare.core.pharmacology.recommend import LimitFinding
from ketacare.core.pharmacology.regimen import Regimen
from ketacare.core.protocols import Protocol, ResolvedLimit
from ketacare.core.protocols.regimen import ENGINE_ROUTE


def protocol_route(protocol: Protocol) -> str:
    """The engine's route for a protocol's route (``intranasal_esketamine`` is ``intranasal``).

    A route the table does not know is refused rather than passed through as it is: a
    protocol whose route matched no dose would have its limits silently checked against
    nothing.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from ketacare.core.protocols import load_library
    >>> protocol = load_library().get(protocol_id="esketamine-trd")
    >>> protocol_route(protocol)
    'intranasal'
    >>> protocol_route(replace(protocol, route="nasal"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.UnknownItem: unknown protocol route 'nasal': known are im, ...
    """
    if protocol.route not in ENGINE_ROUTE:
        raise UnknownItem("protocol route", protocol.route, tuple(ENGINE_ROUTE))
    return ENGINE_ROUTE[protocol.route]


def protocol_limit_check(
    *, protocol: Protocol, limits: Sequence[ResolvedLimit], weight_kg: float
) -> Callable[[Regimen], tuple[LimitFinding, ...]]:
    """The protocol's resolved soft/hard limits as ``Regimen -> findings`` for ``recommend``.

    Each dose on the protocol's route is checked for every configured limit kind (dose in
    mg and mg/kg, rate in mg/h and mg/kg/h); doses on other routes are outside the
    protocol and are not checked (the recommendation says so).
    """
    route = protocol_route(protocol)
    configured = [b for b in limits if b.value is not None]

    def check(regimen: Regimen) -> tuple[LimitFinding, ...]:
        messages: dict[tuple[str, str], None] = {}
        for dose in regimen.doses:
            if dose.route != route:
                continue
            values = {"dose_mg": dose.amount_mg, "dose_mg_per_kg": dose.amount_mg / weight_kg}
            rate = dose.rate_mg_per_h
            if rate is not None:
                values["rate_mg_per_h"] = rate
                values["rate_mg_per_kg_per_h"] = rate / weight_kg
            for bound in configured:
                value = values.get(bound.key)
                if value is None or bound.value is None or not value > bound.value:
                    continue
                where = f"source: {bound.source}" if bound.source else "site policy"
                tail = "" if bound.level == "hard" else ": needs a reason and a co-signature"
                text = (
                    f"{dose.route} {value:.4g} {bound.unit} exceeds the {bound.level} limit "
                    f"{bound.value:g} {bound.unit} of protocol {protocol.id} ({where}){tail}"
                )
                messages[(bound.level, text)] = None
        return tuple(LimitFinding(level, text) for level, text in messages)

    return check


__all__ = ["protocol_limit_check", "protocol_route"]
