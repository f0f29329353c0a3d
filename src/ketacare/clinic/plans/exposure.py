"""The exposure preview of a plan, from the pharmacology engine.

The planned course is simulated with the library's PK models for the protocol's
molecule and route (verified models first): plasma, effect-site and metabolite
curves, with the model's warnings for a patient outside its validated range.
"""

from __future__ import annotations

from typing import Any

from ketacare.clinic.plans.dosing import library, rebuild_undated
from ketacare.clinic.plans.orm import Plan
from ketacare.core.pharmacology.envelope import envelope_indices
from ketacare.core.terminology.treatments import molecule_label, route_label, treatment_vocabulary
from ketacare.infra.settings import Settings

#: Most points a drawn exposure curve carries (the chart is narrower than that).
DRAWN_POINTS = 2000

ENGINE_MOLECULE = {m.id: m.engine for m in treatment_vocabulary().molecules.values()}


def exposure_models(*, settings: Settings, protocol_id: str) -> list[Any]:
    """Models that can simulate this protocol's molecule and route (verified first)."""
    from ketacare.core.pharmacology import list_models
    from ketacare.core.protocols.regimen import ENGINE_ROUTE

    protocol = library(settings).get(protocol_id=protocol_id)
    molecule = ENGINE_MOLECULE.get(protocol.molecule)
    route = ENGINE_ROUTE.get(protocol.route)
    found = [m for m in list_models() if m.molecule == molecule and route in m.routes]
    return sorted(found, key=lambda m: (not m.verified, m.id))


def exposure(
    *,
    settings: Settings,
    plan: Plan,
    patient_age: int | None,
    patient_sex: str | None,
    model_id: str | None = None,
) -> dict[str, Any]:
    """Predicted plasma, effect-site and metabolite curves of the planned course.

    Simulated at 1-minute output, so the metrics and the drawn peaks are the curve's own
    (an intranasal peak lasts minutes), and drawn as the curves' min/max envelope of at
    most :data:`DRAWN_POINTS` points (a 51-day course is 73,441 minutes).
    """
    import warnings

    from ketacare.core.pharmacology import Patient as PkPatient
    from ketacare.core.pharmacology import load_model, parse_regimen, simulate
    from ketacare.core.protocols.regimen import plan_regimen

    candidates = exposure_models(settings=settings, protocol_id=plan.protocol_id)
    if model_id:
        chosen = [m for m in candidates if m.id == model_id]
        candidates = chosen + [m for m in candidates if m.id != model_id]
    if not candidates:
        protocol = library(settings).get(protocol_id=plan.protocol_id)
        return {
            "available": False,
            "message": "no sourced PK model in the library for "
            f"{molecule_label(protocol.molecule)} ({route_label(protocol.route)}): "
            "no exposure preview",
        }
    model = load_model(model_id=candidates[0].id)
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    preview_plan = rebuild_undated(settings=settings, plan=plan, protocol=protocol)
    regimen = parse_regimen(
        plan_regimen(plan=preview_plan, route=protocol.route), weight_kg=plan.weight_kg
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = simulate(
            model=model,
            patient=PkPatient(
                weight_kg=plan.weight_kg,
                age_years=patient_age,
                sex={"female": "F", "male": "M"}.get(patient_sex or ""),
            ),
            regimen=regimen,
            hours=regimen.end_h + 48.0,
            step_min=1.0,
        )
    curves = [sim.plasma_ng_per_ml, *sim.effect_ng_per_ml.values()]
    if sim.metabolite_ng_per_ml is not None:
        curves.append(sim.metabolite_ng_per_ml)
    keep = envelope_indices(curves, max_points=DRAWN_POINTS)

    def drawn(values: Any) -> list[float]:
        return [round(float(x), 4) for x in values[keep]]

    effect = {k: drawn(v) for k, v in sim.effect_ng_per_ml.items()}
    return {
        "available": True,
        "model": model.id,
        "model_name": getattr(model, "name", model.id),
        "verified": model.verified,
        "time_h": drawn(sim.time_h),
        "drawn": {"step_min": 1.0, "points": int(keep.size), "of": int(sim.time_h.size)},
        "plasma_ng_per_ml": drawn(sim.plasma_ng_per_ml),
        "effect_ng_per_ml": effect,
        "effect_labels": {site.id: site.label for site in model.effect_sites},
        "metabolite_ng_per_ml": None
        if sim.metabolite_ng_per_ml is None
        else drawn(sim.metabolite_ng_per_ml),
        "metabolite": model.metabolite,
        "metrics": _metrics(sim.metrics),
        "warnings": sorted({str(w.message) for w in caught}),
        "others": [m.id for m in candidates[1:]],
    }


def _metrics(metrics: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(metrics) and not isinstance(metrics, type):
        return {k: v for k, v in asdict(metrics).items() if not isinstance(v, list | tuple)}
    return dict(metrics)
