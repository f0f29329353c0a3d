"""Regimen recommendations for an individual patient.

Given a patient's posterior (:func:`~ketacare.core.pharmacology.individual.fit.fit_individual`,
which with no samples is the population prior), propose regimens that reach an exposure
target: an AUC per session, an average concentration, or a concentration window. Every
model shipped is linear in dose (except the intranasal spray count, evaluated spray by
spray), so a regimen shape (IV infusion of a given duration; intranasal or oral doses at a
given interval) is simulated once per posterior draw at a unit dose and scaled until the
posterior median reaches the target. Each proposal is checked against a caller-supplied
limit function (the protocols core's limits, or :class:`SimpleLimits`), capped at the hard
limit when the target lies beyond it, and carries its predicted plasma, effect-site and
metabolite curves with credible bands and the posterior probability that the plasma peak
exceeds a ceiling the clinician sets.

Converting a dose between routes is :func:`~ketacare.core.pharmacology.convert.convert_route`.

Examples
--------
>>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
>>> from ketacare.core.pharmacology.individual.fit import fit_individual
>>> m = load_model(model_id="perez-ruixo-2021")
>>> r = parse_regimen({"doses": [{"route": "iv_infusion", "start_h": 0, "duration_h": 4,
...                               "rate_mg_per_h": 10}]}, weight_kg=70)
>>> fit = fit_individual(model=m, patient=Patient(weight_kg=70), regimen=r, samples=[],
...                      n_draws=200)
>>> (rec,) = recommend(fit=fit, target=AucTarget(auc_ng_h_per_ml=400.0),
...                    options=[IvOption(duration_h=4.0)],
...                    limits=SimpleLimits(max_mg_per_h=25.0), ceiling_ng_per_ml=150.0)
>>> rec.status, round(rec.predicted_p50 / 400.0, 3)
('ok', 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.pharmacology.engine import evaluate, evaluate_grid, integrate
from ketacare.core.pharmacology.individual.fit import IndividualFit
from ketacare.core.pharmacology.individual.predict import IndividualPrediction, predict_individual
from ketacare.core.pharmacology.individual.problem import Problem
from ketacare.core.pharmacology.regimen import Dose, Regimen, make_regimen

__all__ = [
    "AUC_TAIL_H",
    "AucTarget",
    "AverageConcentrationTarget",
    "IvOption",
    "LimitCheck",
    "LimitFinding",
    "Recommendation",
    "RepeatedOption",
    "SimpleLimits",
    "Target",
    "WindowTarget",
    "recommend",
]
Array = npt.NDArray[np.float64]

#: AUC "to infinity" is integrated exactly to this long after the last dose (30 days).
AUC_TAIL_H = 24.0 * 30


# --------------------------------------------------------------------------------------
# targets, options, limits
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AucTarget:
    """Plasma AUC per session (one infusion or one dose, integrated to infinity), ng*h/mL."""

    auc_ng_h_per_ml: float
    tolerance: float = 0.10


@dataclass(frozen=True, slots=True)
class AverageConcentrationTarget:
    """Average plasma concentration: over the infusion (IV), or over a dosing interval at
    steady state (repeated doses: AUC of one dose / interval), ng/mL."""

    concentration_ng_per_ml: float
    tolerance: float = 0.10


@dataclass(frozen=True, slots=True)
class WindowTarget:
    """A concentration window: IV, the concentration at the end of the infusion; repeated
    doses, peak and trough of the last interval; aimed at the window's geometric middle."""

    low_ng_per_ml: float
    high_ng_per_ml: float


Target = AucTarget | AverageConcentrationTarget | WindowTarget


@dataclass(frozen=True, slots=True)
class IvOption:
    """One IV infusion session of ``duration_h`` starting at ``start_h``."""

    duration_h: float
    start_h: float = 0.0


@dataclass(frozen=True, slots=True)
class RepeatedOption:
    """``n_doses`` doses by ``route`` (intranasal, oral, ...) every ``interval_h``."""

    route: str
    interval_h: float
    n_doses: int = 1
    start_h: float = 0.0


@dataclass(frozen=True, slots=True)
class LimitFinding:
    """A limit a regimen breaks: ``level`` is "hard" (refused) or "soft" (needs review)."""

    level: str
    message: str


#: A limit function: the findings for a regimen (empty when it is within every limit).
LimitCheck = Callable[[Regimen], Sequence[LimitFinding]]


@dataclass(frozen=True, slots=True)
class SimpleLimits:
    """Hard limits on the infusion rate and on any single dose (a stand-in for a protocol).

    Examples
    --------
    >>> from ketacare.core.pharmacology.regimen import Dose, make_regimen
    >>> SimpleLimits(max_mg_per_dose=50)(make_regimen((Dose("oral", 0.0, 60.0),)))[0].message
    'dose 1 (oral) 60 mg exceeds the maximum 50 mg per dose'
    """

    max_mg_per_h: float | None = None
    max_mg_per_dose: float | None = None

    def __call__(self, regimen: Regimen) -> tuple[LimitFinding, ...]:
        findings = []
        for i, d in enumerate(regimen.doses):
            rate = d.rate_mg_per_h
            if self.max_mg_per_h is not None and rate is not None and rate > self.max_mg_per_h:
                findings.append(
                    LimitFinding(
                        "hard",
                        f"dose {i + 1} ({d.route}) {rate:.3g} mg/h exceeds the maximum "
                        f"{self.max_mg_per_h:g} mg/h",
                    )
                )
            if self.max_mg_per_dose is not None and d.amount_mg > self.max_mg_per_dose:
                findings.append(
                    LimitFinding(
                        "hard",
                        f"dose {i + 1} ({d.route}) {d.amount_mg:.3g} mg exceeds the maximum "
                        f"{self.max_mg_per_dose:g} mg per dose",
                    )
                )
        return tuple(findings)


# --------------------------------------------------------------------------------------
# recommendations
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One proposed regimen with its predicted exposure for this patient.

    ``predicted_p05/p50/p95`` are posterior percentiles of the target's metric (``metric``);
    ``status`` is "ok", "soft_limit" (within hard limits, needs review) or
    "capped_at_hard_limit" (the target lies beyond a hard limit: the largest allowed dose).
    """

    label: str
    route: str
    regimen: Regimen
    dose_mg: float
    rate_mg_per_h: float | None
    duration_h: float | None
    interval_h: float | None
    n_doses: int
    metric: str
    target: Target
    predicted_p05: float
    predicted_p50: float
    predicted_p95: float
    reached: bool
    status: str
    findings: tuple[LimitFinding, ...]
    ceiling_ng_per_ml: float | None
    probability_above_ceiling: float | None
    prediction: IndividualPrediction


def _shape(option: IvOption | RepeatedOption, dose_mg: float) -> Regimen:
    if isinstance(option, IvOption):
        if not (math.isfinite(option.duration_h) and option.duration_h > 0):
            raise OutOfRange("duration_h", option.duration_h, "more than 0 h")
        return make_regimen((Dose("iv_infusion", option.start_h, dose_mg, option.duration_h),))
    if not (isinstance(option.n_doses, int) and 1 <= option.n_doses <= 366):
        raise OutOfRange("n_doses", option.n_doses, "1 to 366")
    if not (math.isfinite(option.interval_h) and option.interval_h > 0):
        raise OutOfRange("interval_h", option.interval_h, "more than 0 h")
    if option.route in ("iv_infusion",):
        raise InvalidInput("use IvOption for IV infusions")
    doses = tuple(
        Dose(option.route, option.start_h + k * option.interval_h, dose_mg)
        for k in range(option.n_doses)
    )
    return make_regimen(doses)


def _metrics(
    fit: IndividualFit, regimen: Regimen, option: IvOption | RepeatedOption, target: Target
) -> tuple[str, Array, Array]:
    """Per posterior draw (the MAP when there are none): the target's metric and the peak."""
    etas = fit.draws if fit.draws.shape[0] else fit.eta[None]
    problem = Problem(fit.model, fit.patient, regimen, [], None)
    plan = problem.plan(etas, regimen, problem.fit_model)
    if isinstance(option, IvOption):
        start, end = option.start_h, option.start_h + option.duration_h
        horizon_end = end + 24.0
    else:
        start = option.start_h + (option.n_doses - 1) * option.interval_h
        end = start + option.interval_h
        horizon_end = end
    step = min(1.0 / 12.0, (horizon_end - option.start_h) / 400.0)
    n_times = int(math.ceil((horizon_end - option.start_h) / step)) + 1
    peak = np.zeros(etas.shape[0])
    trough = np.full(etas.shape[0], np.inf)

    def reduce(j0: int, block: Array) -> None:
        times = option.start_h + step * np.arange(j0, j0 + block.shape[1])
        np.maximum(peak, block[0].max(axis=0), out=peak)
        inside = (times >= start) & (times <= end)
        if np.any(inside):
            np.minimum(trough, block[0][inside].min(axis=0), out=trough)

    for _ in evaluate_grid(
        plan,
        start_h=option.start_h,
        step_h=step,
        n_times=n_times,
        outputs=[0],
        reduce=reduce,
    ):
        pass
    if isinstance(target, AucTarget):
        first = option.start_h
        auc = integrate(plan, np.array([first, regimen.end_h + AUC_TAIL_H]), outputs=[0])[0]
        per_session = (auc[:, 1] - auc[:, 0]) / len(regimen.doses)
        return "auc_per_session_ng_h_per_ml", per_session, peak
    if isinstance(target, AverageConcentrationTarget):
        if isinstance(option, IvOption):
            auc = integrate(plan, np.array([start, end]), outputs=[0])[0]
            return (
                "average_during_infusion_ng_per_ml",
                (auc[:, 1] - auc[:, 0]) / (end - start),
                peak,
            )
        # steady state of a linear system: AUC of one dose to infinity over the interval
        to_infinity = np.array([option.start_h, regimen.end_h + AUC_TAIL_H])
        auc = integrate(plan, to_infinity, outputs=[0])[0]
        per_dose = (auc[:, 1] - auc[:, 0]) / option.n_doses
        return "average_at_steady_state_ng_per_ml", per_dose / option.interval_h, peak
    if isinstance(option, IvOption):
        at_end = evaluate(plan, np.array([end]), outputs=[0])[0, :, 0]
        return "end_of_infusion_ng_per_ml", at_end, peak
    return "geometric_mean_peak_trough_ng_per_ml", np.sqrt(peak * trough), peak


def _check_target(target: Target) -> None:
    if isinstance(target, AucTarget):
        values = [target.auc_ng_h_per_ml]
    elif isinstance(target, AverageConcentrationTarget):
        values = [target.concentration_ng_per_ml]
    else:
        values = [target.low_ng_per_ml, target.high_ng_per_ml]
        if not target.low_ng_per_ml < target.high_ng_per_ml:
            raise InvalidInput("a window target needs low_ng_per_ml below high_ng_per_ml")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise InvalidInput("target values must be positive numbers")


def _goal(target: Target) -> tuple[float, float, float]:
    """(aim, low, high) for the metric."""
    if isinstance(target, AucTarget):
        v = target.auc_ng_h_per_ml
        return v, v * (1 - target.tolerance), v * (1 + target.tolerance)
    if isinstance(target, AverageConcentrationTarget):
        v = target.concentration_ng_per_ml
        return v, v * (1 - target.tolerance), v * (1 + target.tolerance)
    return (
        math.sqrt(target.low_ng_per_ml * target.high_ng_per_ml),
        target.low_ng_per_ml,
        target.high_ng_per_ml,
    )


def _hard(findings: Sequence[LimitFinding]) -> bool:
    return any(f.level == "hard" for f in findings)


def _dose_for(
    fit: IndividualFit, option: IvOption | RepeatedOption, target: Target
) -> tuple[float, str]:
    """The dose whose posterior median metric is the aim (spray devices: whole sprays)."""
    aim = _goal(target)[0]
    route = fit.model.route("iv_infusion" if isinstance(option, IvOption) else option.route)
    if route.spray_mg is None:
        regimen = _shape(option, 1.0)
        metric, values, _ = _metrics(fit, regimen, option, target)
        return aim / float(np.median(values)), metric
    best: tuple[float, float, str] | None = None
    for n_spray in range(1, 9):
        dose = n_spray * route.spray_mg
        metric, values, _ = _metrics(fit, _shape(option, dose), option, target)
        miss = abs(math.log(float(np.median(values)) / aim))
        if best is None or miss < best[0]:
            best = (miss, dose, metric)
    assert best is not None
    return best[1], best[2]


def recommend(
    *,
    fit: IndividualFit,
    target: Target,
    options: Sequence[IvOption | RepeatedOption],
    limits: LimitCheck | None = None,
    ceiling_ng_per_ml: float | None = None,
    hours: float | None = None,
    step_min: float = 5.0,
) -> tuple[Recommendation, ...]:
    """Regimens reaching ``target`` for this patient, one per option, checked against limits.

    Parameters
    ----------
    fit
        The patient's posterior (a fit with no samples is the population prior).
    target
        :class:`AucTarget`, :class:`AverageConcentrationTarget` or :class:`WindowTarget`.
    options
        Regimen shapes to dose: :class:`IvOption` (infusion duration) and
        :class:`RepeatedOption` (route, interval, number of doses).
    limits
        A limit function (hard findings are refused: the dose is capped at the largest
        allowed; soft findings are reported); :class:`SimpleLimits` for plain maxima.
    ceiling_ng_per_ml
        A plasma concentration the clinician does not want exceeded: each proposal carries
        the posterior probability that its peak does.
    hours, step_min
        Grid of the predicted curves (default: to 24 h after the last dose).

    Examples
    --------
    >>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
    >>> from ketacare.core.pharmacology.individual.fit import fit_individual
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> r = parse_regimen({"doses": [{"route": "oral", "start_h": 0, "amount_mg": 50}]},
    ...                   weight_kg=70)
    >>> fit = fit_individual(model=m, patient=Patient(weight_kg=70), regimen=r, samples=[],
    ...                      n_draws=100)
    >>> (rec,) = recommend(fit=fit, target=AverageConcentrationTarget(
    ...     concentration_ng_per_ml=20.0), options=[RepeatedOption(route="oral",
    ...     interval_h=24.0, n_doses=3)], limits=SimpleLimits(max_mg_per_dose=100.0))
    >>> rec.status, rec.reached, rec.findings[0].level
    ('capped_at_hard_limit', False, 'hard')
    """
    _check_target(target)
    if not options:
        raise InvalidInput("give at least one regimen option (IvOption or RepeatedOption)")
    if ceiling_ng_per_ml is not None and not ceiling_ng_per_ml > 0:
        raise OutOfRange("ceiling_ng_per_ml", ceiling_ng_per_ml, "more than 0 ng/mL")
    out = []
    aim, low, high = _goal(target)
    for option in options:
        route = "iv_infusion" if isinstance(option, IvOption) else option.route
        fit.model.route(route)  # UnknownItem for a route the model does not have
        dose, metric = _dose_for(fit, option, target)
        regimen = _shape(option, dose)
        findings = tuple(limits(regimen)) if limits is not None else ()
        status = "soft_limit" if findings else "ok"
        if _hard(findings):
            lo_s, hi_s = 0.0, 1.0
            for _ in range(40):
                mid = (lo_s + hi_s) / 2
                if _hard(tuple(limits(_shape(option, dose * mid)))):  # type: ignore[misc]
                    hi_s = mid
                else:
                    lo_s = mid
            if lo_s == 0.0:
                raise InvalidInput(f"no dose of option {option} is within the hard limits")
            regimen = _shape(option, dose * lo_s)
            dose = dose * lo_s
            status = "capped_at_hard_limit"
        _, values, peak = _metrics(fit, regimen, option, target)
        p05, p50, p95 = (float(v) for v in np.percentile(values, [5, 50, 95]))
        horizon = hours if hours is not None else regimen.end_h + 24.0
        prediction = predict_individual(fit=fit, hours=horizon, step_min=step_min, regimen=regimen)
        prob = None if ceiling_ng_per_ml is None else float(np.mean(peak > ceiling_ng_per_ml))
        first = regimen.doses[0]
        label = (
            f"IV {first.rate_mg_per_h:.3g} mg/h for {first.duration_h:g} h"
            if isinstance(option, IvOption)
            else f"{option.route} {dose:.3g} mg every {option.interval_h:g} h x{option.n_doses}"
        )
        out.append(
            Recommendation(
                label=label,
                route=route,
                regimen=regimen,
                dose_mg=float(dose),
                rate_mg_per_h=first.rate_mg_per_h,
                duration_h=first.duration_h if isinstance(option, IvOption) else None,
                interval_h=None if isinstance(option, IvOption) else option.interval_h,
                n_doses=len(regimen.doses),
                metric=metric,
                target=target,
                predicted_p05=p05,
                predicted_p50=p50,
                predicted_p95=p95,
                reached=bool(low <= p50 <= high) and status != "capped_at_hard_limit",
                status=status,
                findings=findings,
                ceiling_ng_per_ml=ceiling_ng_per_ml,
                probability_above_ceiling=prob,
                prediction=prediction,
            )
        )
    return tuple(out)
