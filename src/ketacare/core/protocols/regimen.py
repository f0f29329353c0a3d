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

from ketacare.core.protocols.limits import SitePolicy
from ketacare.core.protocols.loading import load_library
from ketacare.core.protocols.plan import Plan, build_plan
from ketacare.core.terminology.treatments import engine_route, treatment_vocabulary

#: protocol route -> the pharmacology engine's route, read from the treatment vocabulary
#: (``core/terminology/treatments.toml``); :func:`engine_route` refuses an unknown route
ENGINE_ROUTE: Final[Mapping[str, str]] = MappingProxyType(
    {r.id: r.engine for r in treatment_vocabulary().routes.values()}
)


def plan_regimen(*, plan: Plan, route: str) -> dict[str, Any]:
    """The plan's sessions as ``{"doses": [...]}`` (day 1 starts at hour 0)."""
    engine = engine_route(route)
    doses: list[dict[str, Any]] = []
    for session in plan.sessions:
        start_h = float((session.day - 1) * 24)
        if engine == "iv_infusion" and session.duration_h and session.rate_mg_per_h:
            doses.append(
                {
                    "route": engine,
                    "start_h": start_h,
                    "duration_h": session.duration_h,
                    "rate_mg_per_h": session.rate_mg_per_h,
                }
            )
        elif engine == "iv_infusion" and session.duration_h:
            doses.append(
                {
                    "route": engine,
                    "start_h": start_h,
                    "duration_h": session.duration_h,
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
