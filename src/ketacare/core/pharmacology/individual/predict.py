"""This patient's predicted curves: the MAP curve, credible bands, peaks and exposures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.pharmacology.engine import Plan, evaluate, evaluate_grid, integrate
from ketacare.core.pharmacology.individual.fit import IndividualFit
from ketacare.core.pharmacology.individual.inputs import ANALYTES
from ketacare.core.pharmacology.individual.problem import Array, Problem
from ketacare.core.pharmacology.regimen import Regimen
from ketacare.core.pharmacology.system import build_matrices

__all__ = ["IndividualPrediction", "predict_at", "predict_individual"]


def predict_at(
    *,
    fit: IndividualFit,
    times_h: Sequence[float] | Array,
    analyte: str = "plasma",
    regimen: Regimen | None = None,
    etas: Array | None = None,
) -> Array:
    """Exact concentrations (ng/mL) at ``times_h`` for the MAP patient (or rows of ``etas``).

    Returns shape (T,) for the MAP, (N, T) when ``etas`` (N, n_eta) is given.

    Examples
    --------
    >>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
    >>> from ketacare.core.pharmacology.individual.fit import fit_individual
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> r = parse_regimen({"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 20}]},
    ...                   weight_kg=70)
    >>> fit = fit_individual(model=m, patient=Patient(weight_kg=70), regimen=r, samples=[],
    ...                      n_draws=0)
    >>> round(float(predict_at(fit=fit, times_h=[0.0])[0]), 1)  # 20 mg into Vc = 192 L
    104.2
    """
    if analyte not in ANALYTES or (analyte == "metabolite" and fit.model.metabolite is None):
        raise InvalidInput(f"analyte {analyte!r} is not available for model {fit.model.id}")
    problem = Problem(fit.model, fit.patient, fit.regimen, [], None)
    rows = fit.eta[None] if etas is None else np.atleast_2d(etas)
    plan = problem.plan(rows, regimen or fit.regimen, problem.fit_model)
    output = 0 if analyte == "plasma" else problem.met_output
    assert output is not None
    values: Array = evaluate(plan, np.asarray(times_h, dtype=np.float64), outputs=[output])[0]
    return values[0] if etas is None else values


@dataclass(frozen=True, slots=True)
class IndividualPrediction:
    """Curves for this patient under a regimen: MAP curve, credible band, population typical.

    Bands are (P, T) at ``percentiles`` over the posterior draws; ``draw_cmax_ng_per_ml`` and
    ``draw_auc_ng_h_per_ml`` hold each draw's plasma peak (on the grid) and exact AUC over
    the horizon, for probabilities such as P(peak above a ceiling).
    """

    model_id: str
    time_h: Array
    percentiles: tuple[float, ...]
    plasma_ng_per_ml: Array
    plasma_band: Array | None
    typical_plasma_ng_per_ml: Array
    effect_ng_per_ml: Mapping[str, Array]
    effect_band: Mapping[str, Array]
    metabolite_ng_per_ml: Array | None
    metabolite_band: Array | None
    auc_ng_h_per_ml: float
    metabolite_auc_ng_h_per_ml: float | None
    draw_cmax_ng_per_ml: Array
    draw_auc_ng_h_per_ml: Array
    draw_metabolite_auc_ng_h_per_ml: Array | None

    def probability_above(self, ceiling_ng_per_ml: float) -> float | None:
        """Posterior probability that the plasma peak exceeds ``ceiling_ng_per_ml``."""
        if self.draw_cmax_ng_per_ml.size == 0:
            return None
        return float(np.mean(self.draw_cmax_ng_per_ml > ceiling_ng_per_ml))


def _grid(hours: float, step_min: float) -> tuple[float, int]:
    if not (math.isfinite(hours) and 0 < hours <= 24 * 366):
        raise OutOfRange("hours", hours, "more than 0 and at most 8784 h")
    if not (math.isfinite(step_min) and step_min > 0):
        raise OutOfRange("step_min", step_min, "more than 0 min")
    step_h = step_min / 60.0
    n_times = int(math.floor(hours / step_h + 1e-9)) + 1
    if n_times > 200_000:
        raise OutOfRange("grid points", n_times, "at most 200000 (raise step_min)")
    return step_h, n_times


def _curves(plan: Plan, step_h: float, n_times: int, n_out: int) -> Array:
    ((_, block),) = list(
        evaluate_grid(
            plan,
            start_h=0.0,
            step_h=step_h,
            n_times=n_times,
            outputs=list(range(n_out)),
            block=n_times,
        )
    )
    assert isinstance(block, np.ndarray)
    return np.asarray(block[:, :, 0], dtype=np.float64)  # (O, T)


def predict_individual(
    *,
    fit: IndividualFit,
    hours: float,
    step_min: float = 5.0,
    regimen: Regimen | None = None,
    percentiles: Sequence[float] = (5.0, 50.0, 95.0),
) -> IndividualPrediction:
    """This patient's predicted curves under ``regimen`` (default: the doses fitted).

    The MAP curve, the credible band over the posterior draws (plasma, effect sites,
    metabolite), the population typical curve, and each draw's peak and AUC.

    Examples
    --------
    >>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
    >>> from ketacare.core.pharmacology.individual.fit import fit_individual
    >>> from ketacare.core.pharmacology.individual.inputs import Sample
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> r = parse_regimen({"doses": [{"route": "intranasal", "start_h": 0, "amount_mg": 56}]},
    ...                   weight_kg=70)
    >>> fit = fit_individual(model=m, patient=Patient(weight_kg=70, age_years=40), regimen=r,
    ...                      samples=[Sample(time_h=0.7, value_ng_per_ml=90.0)], n_draws=200)
    >>> p = predict_individual(fit=fit, hours=6, step_min=30)
    >>> p.plasma_band.shape, bool(np.all(p.plasma_band[0] <= p.plasma_band[2]))
    ((3, 13), True)
    """
    regimen = regimen or fit.regimen
    step_h, n_times = _grid(hours, step_min)
    model = fit.model
    problem = Problem(model, fit.patient, regimen, [], None)
    system = build_matrices(model, problem.parameters(fit.eta[None]))
    n_out = len(system.outputs)
    mode_plan = problem.plan(fit.eta[None], regimen, model)
    mode = _curves(mode_plan, step_h, n_times, n_out)
    typical = _curves(problem.plan(np.zeros((1, fit.eta.size)), regimen, model), step_h, n_times, 1)
    time_h = step_h * np.arange(n_times, dtype=np.float64)
    met = system.outputs.index("metabolite") if "metabolite" in system.outputs else None
    effect_index = {
        name.split(":", 1)[1]: i
        for i, name in enumerate(system.outputs)
        if name.startswith("effect:")
    }
    qs = tuple(float(q) for q in percentiles)
    horizon = np.array([time_h[-1]])
    auc_outs = [0] if met is None else [0, met]
    auc = integrate(mode_plan, horizon, outputs=auc_outs)[:, 0, 0]
    bands: Array | None = None
    cmax = np.zeros(0)
    draw_auc = np.zeros(0)
    draw_met_auc: Array | None = None
    if fit.draws.shape[0]:
        plan = problem.plan(fit.draws, regimen, model)
        n_draws = fit.draws.shape[0]
        bands = np.empty((len(qs), n_out, n_times))
        running = np.zeros(n_draws)

        def reduce(_j0: int, block: Array) -> Array:
            np.maximum(running, block[0].max(axis=0), out=running)
            return np.asarray(np.percentile(block, qs, axis=-1), dtype=np.float64)

        for j0, band in evaluate_grid(
            plan,
            start_h=0.0,
            step_h=step_h,
            n_times=n_times,
            outputs=list(range(n_out)),
            reduce=reduce,
        ):
            assert isinstance(band, np.ndarray)
            bands[:, :, j0 : j0 + band.shape[2]] = band
        cmax = running
        draw_aucs = integrate(plan, horizon, outputs=auc_outs)[:, :, 0]
        draw_auc = draw_aucs[0]
        draw_met_auc = draw_aucs[1] if met is not None else None
    return IndividualPrediction(
        model_id=model.id,
        time_h=time_h,
        percentiles=qs,
        plasma_ng_per_ml=mode[0],
        plasma_band=None if bands is None else bands[:, 0],
        typical_plasma_ng_per_ml=typical[0],
        effect_ng_per_ml={k: mode[i] for k, i in effect_index.items()},
        effect_band={} if bands is None else {k: bands[:, i] for k, i in effect_index.items()},
        metabolite_ng_per_ml=None if met is None else mode[met],
        metabolite_band=None if bands is None or met is None else bands[:, met],
        auc_ng_h_per_ml=float(auc[0]),
        metabolite_auc_ng_h_per_ml=None if met is None else float(auc[1]),
        draw_cmax_ng_per_ml=cmax,
        draw_auc_ng_h_per_ml=draw_auc,
        draw_metabolite_auc_ng_h_per_ml=draw_met_auc,
    )
