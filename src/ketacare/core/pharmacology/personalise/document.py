"""The personalisation outcome as one JSON-ready document.

``ketacare personalise --json`` prints this document and the Personalise page renders
it (its chart reads the prediction and the samples from it), so the fields are the
command's contract (docs/personalisation.md, "Command line"). Curves stay numpy arrays
here; whoever writes JSON turns them into lists and non-finite numbers into null.

Examples
--------
>>> from ketacare.core.pharmacology.personalise.compute import compute
>>> from ketacare.core.pharmacology.personalise.request import parse_request
>>> request = parse_request(doc={
...     "model": "perez-ruixo-2021",
...     "patient": {"weight_kg": 72},
...     "doses": [{"route": "iv_infusion", "start_h": 0, "duration_h": 4,
...                "rate_mg_per_h": 20}],
...     "samples": [{"time_h": 12, "value_ng_per_ml": None, "lloq_ng_per_ml": 5}],
...     "settings": {"n_draws": 0, "hours": 12, "step_min": 30},
... })
>>> document = to_document(outcome=compute(request=request))
>>> document["doses"]
[{'route': 'iv_infusion', 'start_h': 0.0, 'duration_h': 4.0, 'rate_mg_per_h': 20.0}]
>>> document["fit"]["n_below_lloq"], document["samples"][0]["predicted_band"]
(1, None)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ketacare.core.pharmacology.convert import RouteConversion
from ketacare.core.pharmacology.individual.predict import IndividualPrediction
from ketacare.core.pharmacology.individual.response import ResponsePrediction
from ketacare.core.pharmacology.personalise.compute import Array, PersonaliseOutcome
from ketacare.core.pharmacology.personalise.limits import protocol_route
from ketacare.core.pharmacology.personalise.request import Conversion, Target
from ketacare.core.pharmacology.recommend import (
    AucTarget,
    AverageConcentrationTarget,
    Recommendation,
)
from ketacare.core.pharmacology.regimen import Dose
from ketacare.core.protocols import Protocol


def to_document(*, outcome: PersonaliseOutcome) -> dict[str, Any]:
    """The ``--json`` document of an outcome (the page renders the same one)."""
    out = outcome
    r, fit = out.request, out.fit
    model = r.model
    return {
        "model": model.id,
        "molecule": model.molecule,
        "metabolite": model.metabolite,
        "patient": {
            "weight_kg": r.patient.weight_kg,
            "age_years": r.patient.age_years,
            "sex": r.patient.sex,
        },
        "doses": [_dose_json(d) for d in r.regimen.doses],
        "residual_error": {
            "plasma_log_sd": fit.residual_error.plasma_log_sd,
            "metabolite_log_sd": fit.residual_error.metabolite_log_sd,
            "source": fit.residual_error.source,
            "user_supplied": fit.residual_error.user_supplied,
        },
        "fit": {
            "converged": fit.converged,
            "message": fit.message,
            "iterations": fit.iterations,
            "objective": fit.objective,
            "n_samples": len(r.samples),
            "n_below_lloq": sum(1 for s in r.samples if s.below_lloq),
            "sampling": fit.sampling,
            "n_draws": int(fit.draws.shape[0]),
            "seed": r.settings.seed,
            "effective_sample_size": fit.effective_sample_size,
        },
        "parameters": [
            {
                "name": p.name,
                "unit": p.unit,
                "typical": p.typical,
                "estimate": p.estimate,
                "p05": p.p05,
                "p95": p.p95,
                "sd_ratio": p.sd_ratio,
                "informed": p.informed,
            }
            for p in fit.parameters
        ],
        "samples": _samples_json(out),
        "prediction": _curves(out.prediction, r.ceiling_ng_per_ml),
        "response": _response_json(out),
        "target": _target_json(r.target),
        "ceiling_ng_per_ml": r.ceiling_ng_per_ml,
        "protocol": _protocol_json(out),
        "recommendations": [
            _recommendation_json(rec, nrs, r.protocol)
            for rec, nrs in zip(out.recommendations, out.recommendation_responses, strict=True)
        ],
        "conversions": [
            _conversion_json(c, req) for c, req in zip(out.conversions, r.conversions, strict=True)
        ],
        "warnings": list(out.warnings),
    }


def _samples_json(out: PersonaliseOutcome) -> list[dict[str, Any]]:
    samples = []
    for i, s in enumerate(out.request.samples):
        samples.append(
            {
                "time_h": s.time_h,
                "analyte": s.analyte,
                "value_ng_per_ml": s.value_ng_per_ml,
                "lloq_ng_per_ml": s.lloq_ng_per_ml,
                "below_lloq": s.below_lloq,
                "predicted_ng_per_ml": float(out.sample_pred[i]),
                "predicted_band": None
                if out.sample_band is None
                else {
                    "p05": float(out.sample_band[0, i]),
                    "p50": float(out.sample_band[1, i]),
                    "p95": float(out.sample_band[2, i]),
                },
            }
        )
    return samples


def _response_json(out: PersonaliseOutcome) -> dict[str, Any] | None:
    r = out.request
    if out.response is None or r.response is None:
        return None
    rf = out.response
    return {
        "label": "exploratory",
        "effect_site": rf.effect_site,
        "c50_population_ng_per_ml": rf.c50_population_ng_per_ml,
        "c50_ng_per_ml": {"p05": rf.c50_p05, "p50": rf.c50_ng_per_ml, "p95": rf.c50_p95},
        "baseline_nrs": rf.baseline_nrs,
        "assumptions": {
            "emax_fraction": rf.assumptions.emax_fraction,
            "gamma": rf.assumptions.gamma,
            "nrs_sd": rf.assumptions.nrs_sd,
            "c50_log_sd": rf.assumptions.c50_log_sd,
            "note": rf.assumptions.note,
        },
        "scores": [
            {
                "time_h": s.time_h,
                "nrs": s.nrs,
                "effect_ng_per_ml": float(ce),
                "observed_relief": float(rel),
            }
            for s, ce, rel in zip(
                r.response.scores,
                rf.effect_at_scores_ng_per_ml,
                rf.observed_relief,
                strict=True,
            )
        ],
        "sourced": list(rf.sourced),
        "assumed": list(rf.assumed),
        "prediction": _nrs(out.response_prediction),
    }


def _protocol_json(out: PersonaliseOutcome) -> dict[str, Any] | None:
    protocol = out.request.protocol
    if protocol is None:
        return None
    return {
        "id": protocol.id,
        "title": protocol.title,
        "molecule": protocol.molecule,
        "route": protocol.route,
        "limits": [{"limit_kind": b.key, "level": b.level, **b.to_dict()} for b in out.limits],
        "not_configured": [f"{b.key} {b.level}" for b in out.limits if b.value is None],
    }


def _band(band: Array | None) -> dict[str, Any] | None:
    if band is None:
        return None
    return {"p05": band[0], "p50": band[1], "p95": band[2]}


def _pct(p05: float | None, p50: float | None, p95: float | None) -> dict[str, Any] | None:
    if p50 is None:
        return None
    return {"p05": p05, "p50": p50, "p95": p95}


def _curves(pred: IndividualPrediction, ceiling: float | None) -> dict[str, Any]:
    return {
        "time_h": pred.time_h,
        "percentiles": list(pred.percentiles),
        "plasma_ng_per_ml": pred.plasma_ng_per_ml,
        "plasma_band": _band(pred.plasma_band),
        "typical_plasma_ng_per_ml": pred.typical_plasma_ng_per_ml,
        "effect_ng_per_ml": dict(pred.effect_ng_per_ml),
        "effect_band": {k: _band(v) for k, v in pred.effect_band.items()},
        "metabolite_ng_per_ml": pred.metabolite_ng_per_ml,
        "metabolite_band": _band(pred.metabolite_band),
        "auc_ng_h_per_ml": pred.auc_ng_h_per_ml,
        "metabolite_auc_ng_h_per_ml": pred.metabolite_auc_ng_h_per_ml,
        "cmax_ng_per_ml": float(np.max(pred.plasma_ng_per_ml)),
        "probability_above_ceiling": None if ceiling is None else pred.probability_above(ceiling),
    }


def _nrs(pred: ResponsePrediction | None) -> dict[str, Any] | None:
    if pred is None:
        return None
    return {
        "time_h": pred.time_h,
        "effect_ng_per_ml": pred.effect_ng_per_ml,
        "nrs_median": pred.nrs_median,
        "nrs_p05": pred.nrs_p05,
        "nrs_p95": pred.nrs_p95,
    }


def _dose_json(dose: Dose) -> dict[str, Any]:
    if dose.route == "iv_infusion":
        return {
            "route": dose.route,
            "start_h": dose.start_h,
            "duration_h": dose.duration_h,
            "rate_mg_per_h": dose.rate_mg_per_h,
        }
    return {"route": dose.route, "start_h": dose.start_h, "amount_mg": dose.amount_mg}


def _target_json(target: Target | None) -> dict[str, Any] | None:
    if target is None:
        return None
    if isinstance(target, AucTarget):
        return {
            "kind": "auc",
            "auc_ng_h_per_ml": target.auc_ng_h_per_ml,
            "tolerance": target.tolerance,
        }
    if isinstance(target, AverageConcentrationTarget):
        return {
            "kind": "average_concentration",
            "concentration_ng_per_ml": target.concentration_ng_per_ml,
            "tolerance": target.tolerance,
        }
    return {
        "kind": "window",
        "low_ng_per_ml": target.low_ng_per_ml,
        "high_ng_per_ml": target.high_ng_per_ml,
    }


def _recommendation_json(
    rec: Recommendation, nrs: ResponsePrediction | None, protocol: Protocol | None
) -> dict[str, Any]:
    checked = None
    if protocol is not None:
        checked = rec.route == protocol_route(protocol)
    return {
        "label": rec.label,
        "route": rec.route,
        "dose_mg": rec.dose_mg,
        "rate_mg_per_h": rec.rate_mg_per_h,
        "duration_h": rec.duration_h,
        "interval_h": rec.interval_h,
        "n_doses": rec.n_doses,
        "regimen": {"doses": [_dose_json(d) for d in rec.regimen.doses]},
        "metric": rec.metric,
        "predicted": {"p05": rec.predicted_p05, "p50": rec.predicted_p50, "p95": rec.predicted_p95},
        "reached": rec.reached,
        "status": rec.status,
        "findings": [{"level": f.level, "message": f.message} for f in rec.findings],
        "protocol_limits_checked": checked,
        "ceiling_ng_per_ml": rec.ceiling_ng_per_ml,
        "probability_above_ceiling": rec.probability_above_ceiling,
        "prediction": _curves(rec.prediction, None),
        "response_prediction": _nrs(nrs),
    }


def _conversion_json(c: RouteConversion, request: Conversion) -> dict[str, Any]:
    d = request.from_dose
    return {
        "from": {
            "dose": request.from_index,
            "route": d.route,
            "amount_mg": d.amount_mg,
            "duration_h": d.duration_h if d.route == "iv_infusion" else None,
        },
        "to_route": c.to_route,
        "to_duration_h": request.to_duration_h if c.to_route == "iv_infusion" else None,
        "model_dose_mg": _pct(c.model_dose_p05, c.model_dose_p50, c.model_dose_p95),
        "literature_dose_mg": _pct(
            c.literature_dose_p05, c.literature_dose_p50, c.literature_dose_p95
        ),
        "literature_sources": list(c.literature_sources),
        "parent_auc_from_ng_h_per_ml": c.parent_auc_from_ng_h_per_ml,
        "parent_auc_to_ng_h_per_ml": c.parent_auc_to_ng_h_per_ml,
        "metabolite_auc_ratio": _pct(
            c.metabolite_auc_ratio_p05, c.metabolite_auc_ratio_p50, c.metabolite_auc_ratio_p95
        ),
        "notes": list(c.notes),
    }


__all__ = ["to_document"]
