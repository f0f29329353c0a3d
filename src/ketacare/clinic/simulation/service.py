"""Run the pharmacology engine for the simulation page: a model, a patient, a regimen."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from ketacare.core.errors import InvalidInput
from ketacare.core.pharmacology import (
    Patient,
    list_models,
    load_model,
    parse_regimen,
    simulate,
    simulate_population,
)
from ketacare.core.pharmacology.envelope import envelope_indices
from ketacare.core.protocols import protocol_regimen
from ketacare.core.protocols.limits import SitePolicy
from ketacare.core.protocols.regimen import refuse_other_treatment

MAX_POPULATION = 2000  # keeps one page request within a second or two
MAX_HOURS = 24 * 60
STEPS_MIN = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0)
#: Most points a drawn typical-patient curve carries (its min/max envelope)
DRAWN_POINTS = 3000
#: the routes a single dose on the page can take (the form lists these, in this order)
PAGE_ROUTES = ("iv_infusion", "iv_bolus", "intranasal", "oral")


@dataclass(frozen=True)
class SimulationRequest:
    model_id: str
    weight_kg: float
    age_years: float | None = None
    sex: str | None = None
    protocol_id: str | None = None
    route: str | None = None
    amount_mg: float | None = None
    rate_mg_per_h: float | None = None
    duration_h: float | None = None
    hours: float | None = None
    population: int = 0
    seed: int = 1
    site_policy: SitePolicy | None = None  # the clinic's protocol policy (hard ceilings)


#: page input bounds (typo guards, not clinical limits): mg, mg/h, hours
MAX_AMOUNT_MG = 10_000.0
MAX_RATE_MG_PER_H = 1_000.0
MAX_DURATION_H = 24 * 14


def regimen_document(request: SimulationRequest) -> dict[str, Any]:
    """The design-document regimen for a protocol, or for one dose entered on the page."""
    for name, value, top in (
        ("amount_mg", request.amount_mg, MAX_AMOUNT_MG),
        ("rate_mg_per_h", request.rate_mg_per_h, MAX_RATE_MG_PER_H),
        ("duration_h", request.duration_h, MAX_DURATION_H),
    ):
        if value is not None and not 0 < value <= top:
            raise InvalidInput(f"{name} {value:g} is out of range: allowed above 0 up to {top:g}")
    if request.protocol_id:
        return protocol_regimen(
            protocol_id=request.protocol_id,
            weight_kg=request.weight_kg,
            site_policy=request.site_policy,
        )
    if not request.route:
        raise InvalidInput(
            "route is missing: choose a protocol, or a route for a single dose "
            f"(allowed: {', '.join(PAGE_ROUTES)})"
        )
    if request.route not in PAGE_ROUTES:
        raise InvalidInput(
            f"route {request.route!r} is not offered on this page "
            f"(allowed: {', '.join(PAGE_ROUTES)})"
        )
    dose: dict[str, Any] = {"route": request.route, "start_h": 0}
    if request.route == "iv_infusion":
        if not request.duration_h:
            raise InvalidInput("an infusion needs duration_h")
        dose["duration_h"] = request.duration_h
        if request.rate_mg_per_h:
            dose["rate_mg_per_h"] = request.rate_mg_per_h
        elif request.amount_mg:
            dose["amount_mg"] = request.amount_mg
        else:
            raise InvalidInput("an infusion needs rate_mg_per_h or amount_mg")
    else:
        if not request.amount_mg:
            raise InvalidInput(f"a {request.route} dose needs amount_mg")
        dose["amount_mg"] = request.amount_mg
    return {"doses": [dose]}


def _round(values: Any) -> list[float] | None:
    if values is None:
        return None
    return [round(float(v), 4) for v in values]


def run(request: SimulationRequest) -> dict[str, Any]:
    """Curves, metrics and warnings for the page (population band when asked for)."""
    if not 0 <= request.population <= MAX_POPULATION:
        raise InvalidInput(
            f"population {request.population} is out of range: allowed 0 to "
            f"{MAX_POPULATION} on this page (use `ketacare simulate` for more)"
        )
    model = load_model(model_id=request.model_id)
    if request.protocol_id:
        refuse_other_treatment(model=model, protocol_id=request.protocol_id)
    patient = Patient(weight_kg=request.weight_kg, age_years=request.age_years, sex=request.sex)
    regimen = parse_regimen(regimen_document(request), weight_kg=request.weight_kg)
    hours = request.hours or regimen.end_h + 24.0
    if not 0 < hours <= MAX_HOURS:
        raise InvalidInput(f"hours {hours:g} is out of range: allowed up to {MAX_HOURS}")
    # the band's step: a round one (1, 2, 5 ... 60 min) so infusion ends fall on the grid,
    # <= 3000 points (2,000 patients at every minute of a long course would cost seconds)
    step = next((m for m in STEPS_MIN if hours * 60 / m <= 3000), STEPS_MIN[-1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the typical patient at every minute (a few milliseconds even for the longest
        # course): its metrics and its drawn curves keep every peak, which a coarse grid
        # would pass over (a nasal spray peaks within minutes)
        exact = simulate(model=model, patient=patient, regimen=regimen, hours=hours, step_min=1)
        band = None
        if request.population:
            pop = simulate_population(
                model=model,
                patient=patient,
                regimen=regimen,
                n=request.population,
                seed=request.seed,
                hours=hours,
                step_min=step,
            )
            band = {
                "n": pop.n,
                "time_h": _round(pop.time_h),
                "p05": _round(pop.plasma_ng_per_ml[0]),
                "p50": _round(pop.plasma_ng_per_ml[1]),
                "p95": _round(pop.plasma_ng_per_ml[2]),
            }
    metrics = asdict(exact.metrics) if is_dataclass(exact.metrics) else dict(exact.metrics)
    curves = [exact.plasma_ng_per_ml, *exact.effect_ng_per_ml.values()]
    if exact.metabolite_ng_per_ml is not None:
        curves.append(exact.metabolite_ng_per_ml)
    keep = envelope_indices(curves, max_points=DRAWN_POINTS)

    def drawn(values: Any) -> list[float] | None:
        return None if values is None else _round(values[keep])

    return {
        "available": True,
        "model": model.id,
        "model_name": model.name,
        "verified": model.verified,
        "molecule": model.molecule,
        "metabolite": model.metabolite,
        "time_h": drawn(exact.time_h),
        "drawn": {"step_min": 1, "points": int(keep.size), "of": int(exact.time_h.size)},
        "plasma_ng_per_ml": drawn(exact.plasma_ng_per_ml),
        "effect_ng_per_ml": {k: drawn(v) for k, v in exact.effect_ng_per_ml.items()},
        "effect_labels": {site.id: site.label for site in model.effect_sites},
        "metabolite_ng_per_ml": drawn(exact.metabolite_ng_per_ml),
        "population": band,
        "metrics": {k: v for k, v in metrics.items() if not isinstance(v, list | tuple)},
        "step_min": step,
        "warnings": sorted({str(w.message) for w in caught}),
    }


def models() -> list[Any]:
    return list(list_models())
