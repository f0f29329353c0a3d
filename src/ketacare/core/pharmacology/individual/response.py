"""Response: this patient's sensitivity (C50) from pain scores, and predicted pain (exploratory).

Everything the sources do not give is the caller's, in :class:`ResponseAssumptions`, and
every result says what is sourced and what is assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.pharmacology.engine import evaluate
from ketacare.core.pharmacology.individual.fit import IndividualFit
from ketacare.core.pharmacology.individual.predict import predict_individual
from ketacare.core.pharmacology.individual.problem import Array, Problem
from ketacare.core.pharmacology.models import Model
from ketacare.core.pharmacology.regimen import Regimen
from ketacare.core.pharmacology.system import build_matrices

__all__ = [
    "PainScore",
    "ResponseAssumptions",
    "ResponseFit",
    "ResponsePrediction",
    "fit_response",
    "predict_response",
]


@dataclass(frozen=True, slots=True)
class PainScore:
    """A pain score (NRS 0-10) at a time in hours from the first dose of the regimen."""

    time_h: float
    nrs: float


@dataclass(frozen=True, slots=True)
class ResponseAssumptions:
    """What a response fit needs and no source we could read gives (all caller-supplied).

    The Dahan 2011 abstract gives the population C50 (10.5 ng/mL) and the effect-site
    half-time (10.9 days) but not the concentration-effect form, its steepness, the maximal
    relief, the between-patient SD of C50 or the residual SD of pain scores. The caller
    states each of them here; results carry them and are labelled exploratory.

    ``relief = emax_fraction * Ce^gamma / (C50^gamma + Ce^gamma)``,
    ``NRS = baseline * (1 - relief) + normal(0, nrs_sd)``, prior ``log C50 ~ N(log 10.5,
    c50_log_sd^2)``.
    """

    emax_fraction: float
    gamma: float
    nrs_sd: float
    c50_log_sd: float
    note: str = "user-supplied"


@dataclass(frozen=True, slots=True)
class ResponseFit:
    """This patient's C50 (sensitivity) from pain scores, with what is sourced and assumed."""

    effect_site: str
    c50_population_ng_per_ml: float
    c50_ng_per_ml: float
    c50_p05: float
    c50_p95: float
    baseline_nrs: float
    assumptions: ResponseAssumptions
    effect_at_scores_ng_per_ml: Array
    observed_relief: Array
    sourced: tuple[str, ...]
    assumed: tuple[str, ...]
    fit: IndividualFit


@dataclass(frozen=True, slots=True)
class ResponsePrediction:
    """Predicted NRS under a regimen (median and 90% band over C50 and PK uncertainty)."""

    time_h: Array
    effect_ng_per_ml: Array
    nrs_median: Array
    nrs_p05: Array
    nrs_p95: Array


def _crps_site(model: Model, effect_site: str) -> tuple[str, float]:
    site = next((s for s in model.effect_sites if s.id == effect_site), None)
    if site is None or site.c50 is None:
        raise InvalidInput(
            f"model {model.id} has no sourced concentration-response model for "
            f"{effect_site!r}: no published C50 for this molecule and effect; a response fit "
            "is not possible (the racemic models have none for chronic pain)"
        )
    return site.c50, model.parameter(site.c50).value


def _relief(ce: Array, c50: Array | float, a: ResponseAssumptions) -> Array:
    ce = np.maximum(ce, 0.0)
    g = a.gamma
    return np.asarray(a.emax_fraction * ce**g / (np.asarray(c50) ** g + ce**g), dtype=np.float64)


def fit_response(
    *,
    fit: IndividualFit,
    scores: Sequence[PainScore],
    baseline_nrs: float,
    assumptions: ResponseAssumptions,
    effect_site: str = "crps_analgesia",
) -> ResponseFit:
    """Fit this patient's C50 from pain scores over sessions (exploratory; see assumptions).

    The effect-site concentration at each score comes from the individual PK (``fit``) and
    the sourced effect compartment (Dahan 2011: t1/2 10.9 days); the C50 prior median is
    Dahan's 10.5 ng/mL. The concentration-effect form, its steepness, maximal relief, the
    SD of C50 and of pain scores are the caller's (``assumptions``), as no source we read
    gives them. Posterior of log C50 by MAP (scipy ``minimize_scalar``) and Laplace.

    Examples
    --------
    >>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
    >>> from ketacare.core.pharmacology.individual.fit import fit_individual
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> doses = [{"route": "iv_infusion", "start_h": 24.0 * d, "duration_h": 4,
    ...           "rate_mg_per_h": 20} for d in range(5)]
    >>> r = parse_regimen({"doses": doses}, weight_kg=70)
    >>> fit = fit_individual(model=m, patient=Patient(weight_kg=70), regimen=r, samples=[],
    ...                      n_draws=0)
    >>> a = ResponseAssumptions(emax_fraction=1.0, gamma=1.0, nrs_sd=1.0, c50_log_sd=0.8)
    >>> scores = [PainScore(time_h=24.0 * d + 4, nrs=7.0) for d in range(5)]
    >>> rf = fit_response(fit=fit, scores=scores, baseline_nrs=8.0, assumptions=a)
    >>> rf.c50_ng_per_ml > 0, rf.c50_population_ng_per_ml
    (True, 10.5)
    """
    model = fit.model
    _, c50_pop = _crps_site(model, effect_site)
    for name, value in (
        ("emax_fraction", assumptions.emax_fraction),
        ("gamma", assumptions.gamma),
        ("nrs_sd", assumptions.nrs_sd),
        ("c50_log_sd", assumptions.c50_log_sd),
    ):
        if not (math.isfinite(value) and value > 0) or (name == "emax_fraction" and value > 1):
            raise OutOfRange(f"assumption {name}", value, "a positive number (emax at most 1)")
    if not 0 < baseline_nrs <= 10:
        raise OutOfRange("baseline_nrs", baseline_nrs, "more than 0 and at most 10")
    if not scores:
        raise InvalidInput("a response fit needs at least one pain score")
    times = np.array([s.time_h for s in scores], dtype=np.float64)
    nrs = np.array([s.nrs for s in scores], dtype=np.float64)
    if np.any(nrs < 0) or np.any(nrs > 10) or np.any(times < 0):
        raise InvalidInput("pain scores must be 0-10 at non-negative times")
    problem = Problem(model, fit.patient, fit.regimen, [], None)
    system = build_matrices(model, problem.parameters(fit.eta[None]))
    out = system.outputs.index(f"effect:{effect_site}")
    plan = problem.plan(fit.eta[None], fit.regimen, model)
    ce = evaluate(plan, times, outputs=[out])[0, 0]
    mu, sd = math.log(c50_pop), assumptions.c50_log_sd

    def nlp(log_c50: float) -> float:
        pred = baseline_nrs * (1.0 - _relief(ce, math.exp(log_c50), assumptions))
        like = 0.5 * np.sum(((nrs - pred) / assumptions.nrs_sd) ** 2)
        return float(like + 0.5 * ((log_c50 - mu) / sd) ** 2)

    res = optimize.minimize_scalar(nlp, bounds=(mu - 6 * sd, mu + 6 * sd), method="bounded")
    x = float(res.x)
    h = 1e-3
    curv = (nlp(x + h) - 2 * nlp(x) + nlp(x - h)) / h**2
    post_sd = 1.0 / math.sqrt(curv) if curv > 0 else sd
    z = 1.6448536269514722
    relief = 1.0 - nrs / baseline_nrs
    return ResponseFit(
        effect_site=effect_site,
        c50_population_ng_per_ml=c50_pop,
        c50_ng_per_ml=math.exp(x),
        c50_p05=math.exp(x - z * post_sd),
        c50_p95=math.exp(x + z * post_sd),
        baseline_nrs=baseline_nrs,
        assumptions=assumptions,
        effect_at_scores_ng_per_ml=ce,
        observed_relief=relief,
        sourced=(
            "effect-site half-time 10.9 days (Dahan 2011, abstract)",
            "population C50 10.5 ng/mL as the prior median (Dahan 2011, abstract)",
            "individual esketamine PK (Perez-Ruixo 2021 with this patient's fit)",
        ),
        assumed=(
            f"relief = Emax*Ce^g/(C50^g+Ce^g) with Emax {assumptions.emax_fraction:g}, "
            f"g {assumptions.gamma:g} ({assumptions.note})",
            f"SD of log C50 between patients {assumptions.c50_log_sd:g} ({assumptions.note})",
            f"pain-score residual SD {assumptions.nrs_sd:g} NRS points ({assumptions.note})",
            "no responder mixture (Dahan's 67% vs 23% placebo is not modelled), no placebo "
            "effect, no norketamine effect, constant baseline",
        ),
        fit=fit,
    )


def predict_response(
    *,
    response: ResponseFit,
    regimen: Regimen,
    hours: float,
    step_min: float = 60.0,
) -> ResponsePrediction:
    """Predicted NRS under ``regimen`` from the response fit (exploratory, see its assumptions).

    The band combines the C50 posterior with the PK posterior draws when the fit has them.

    Examples
    --------
    >>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
    >>> from ketacare.core.pharmacology.individual.fit import fit_individual
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> r = parse_regimen({"doses": [{"route": "iv_infusion", "start_h": 0, "duration_h": 100,
    ...                               "rate_mg_per_h": 20}]}, weight_kg=70)
    >>> fit = fit_individual(model=m, patient=Patient(weight_kg=70), regimen=r, samples=[],
    ...                      n_draws=50)
    >>> a = ResponseAssumptions(emax_fraction=1.0, gamma=1.0, nrs_sd=1.0, c50_log_sd=0.8)
    >>> rf = fit_response(fit=fit, scores=[PainScore(time_h=100, nrs=5.0)], baseline_nrs=8,
    ...                   assumptions=a)
    >>> p = predict_response(response=rf, regimen=r, hours=24 * 14, step_min=24 * 60)
    >>> bool(p.nrs_median[0] == 8.0), bool(p.nrs_median[5] < 8.0)
    (True, True)
    """
    fit = response.fit
    pred = predict_individual(fit=fit, hours=hours, step_min=step_min, regimen=regimen)
    ce = pred.effect_ng_per_ml[response.effect_site]
    a = response.assumptions
    z = 1.6448536269514722
    post_sd = (math.log(response.c50_p95) - math.log(response.c50_p05)) / (2 * z)
    rng = np.random.default_rng(0)
    n = 400
    c50 = np.exp(math.log(response.c50_ng_per_ml) + post_sd * rng.standard_normal(n))
    if fit.draws.shape[0]:
        rows = fit.draws[rng.integers(0, fit.draws.shape[0], size=n)]
        problem = Problem(fit.model, fit.patient, regimen, [], None)
        names = build_matrices(fit.model, problem.parameters(fit.eta[None])).outputs
        plan = problem.plan(rows, regimen, fit.model)
        out = names.index(f"effect:{response.effect_site}")
        ces = evaluate(plan, pred.time_h, outputs=[out])[0]
    else:
        ces = np.broadcast_to(ce, (n, ce.size))
    nrs = response.baseline_nrs * (1.0 - _relief(ces, c50[:, None], a))
    median = response.baseline_nrs * (1.0 - _relief(ce, response.c50_ng_per_ml, a))
    return ResponsePrediction(
        time_h=pred.time_h,
        effect_ng_per_ml=ce,
        nrs_median=median,
        nrs_p05=np.percentile(nrs, 5, axis=0),
        nrs_p95=np.percentile(nrs, 95, axis=0),
    )
