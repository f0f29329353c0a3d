"""A plan's sessions as a dosing regimen for the pharmacology engine.

The regimen is the JSON form of the design document (doses in time order, times in
hours from the start of the first session), so the exposure of a planned course can
be simulated with :func:`ketacare.core.pharmacology.parse_regimen`.

Examples
--------
>>> from ketacare.core.protocols.loading import load_library
>>> from ketacare.core.protocols.limits import SitePolicy
>>> # illustrative ceilings for this example only, not clinical advice
>>> policy = SitePolicy(limits={("crps-outpatient", "dose_mg_per_kg", "hard"): 2.0,
...                             ("crps-outpatient", "course_mg", "hard"): 1000.0})
>>> plan = build_plan(protocol=load_library().get(protocol_id="crps-outpatient"), weight_kg=70,
...                   site_policy=policy)
>>> doses = plan_regimen(plan=plan, route="iv_infusion")["doses"]
>>> len(doses), doses[1]
(10, {'route': 'iv_infusion', 'start_h': 24.0, 'duration_h': 4.0, 'rate_mg_per_h': 24.5})
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from ketacare.core.errors import InvalidInput
from ketacare.core.pharmacology.models import Model, list_models
from ketacare.core.protocols.limits import SitePolicy
from ketacare.core.protocols.loading import load_library
from ketacare.core.protocols.plan import Plan, build_plan
from ketacare.core.terminology.treatments import (
    engine_route,
    engine_treatment,
    molecule_label,
    route_label,
    treatment_vocabulary,
)

#: protocol route -> the pharmacology engine's route, read from the treatment vocabulary
#: (``core/terminology/treatments.toml``); :func:`engine_route` refuses an unknown route
ENGINE_ROUTE: Final[Mapping[str, str]] = MappingProxyType(
    {r.id: r.engine for r in treatment_vocabulary().routes.values()}
)


def plan_regimen(*, plan: Plan, route: str) -> dict[str, Any]:
    """The plan's sessions as ``{"doses": [...]}`` (day 1 starts at hour 0).

    An infusion runs for its planned minutes exactly (40 min, not the 0.667 h a
    session's ``duration_h`` shows: that would give 35.0175 mg at 52.5 mg/h, not 35 mg).
    """
    engine = engine_route(route)
    doses: list[dict[str, Any]] = []
    for session in plan.sessions:
        start_h = float((session.day - 1) * 24)
        hours = None if session.duration_min is None else session.duration_min / 60.0
        if engine == "iv_infusion" and hours and session.rate_mg_per_h:
            doses.append(
                {
                    "route": engine,
                    "start_h": start_h,
                    "duration_h": hours,
                    "rate_mg_per_h": session.rate_mg_per_h,
                }
            )
        elif engine == "iv_infusion" and hours:
            doses.append(
                {
                    "route": engine,
                    "start_h": start_h,
                    "duration_h": hours,
                    "amount_mg": session.dose_mg,
                }
            )
        else:
            doses.append({"route": engine, "start_h": start_h, "amount_mg": session.dose_mg})
    return {"doses": doses}


def protocol_regimen(
    *, protocol_id: str, weight_kg: float, site_policy: SitePolicy | None = None
) -> dict[str, Any]:
    """The regimen of a library protocol at its default dose for this weight.

    Built under the clinic's protocol policy: a protocol whose hard ceilings are unset
    is refused here as for a plan (fail closed).
    """
    protocol = load_library().get(protocol_id=protocol_id)
    plan = build_plan(protocol=protocol, weight_kg=weight_kg, site_policy=site_policy)
    return plan_regimen(plan=plan, route=protocol.route)


def refuse_other_treatment(*, model: Model, protocol_id: str) -> None:
    """Refuse to simulate a protocol with a model of another molecule or route.

    A racemic protocol's milligrams are not milligrams of esketamine (the racemate is
    half S-ketamine), nor the other way round: a model can only simulate the molecule and
    route it was fitted to.

    >>> from ketacare.core.pharmacology.models import load_model
    >>> refuse_other_treatment(model=load_model(model_id="domino"), protocol_id="depression-iv")
    >>> refuse_other_treatment(
    ...     model=load_model(model_id="perez-ruixo-2021"), protocol_id="depression-iv"
    ... )  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: model perez-ruixo-2021 simulates esketamine ...
    """
    protocol = load_library().get(protocol_id=protocol_id)
    molecule, route = engine_treatment(protocol.molecule, protocol.route)
    if model.molecule == molecule and route in model.routes:
        return
    fitting = [m.id for m in list_models() if m.molecule == molecule and route in m.routes]
    given = f"{molecule_label(protocol.molecule)} by {route_label(protocol.route)}"
    raise InvalidInput(
        f"model {model.id} simulates {model.molecule} "
        f"({', '.join(r.replace('_', ' ') for r in model.routes)}); "
        f"protocol {protocol_id} gives {given}: choose "
        + (f"one of {', '.join(fitting)}" if fitting else "another protocol (no model fits it)")
        + " (ketacare models)"
    )
