"""The personalisation itself: fit, predict, fit the response, recommend and convert.

One function, :func:`compute`, does what a checked request asks, in the order each
step needs the last: the individual fit (MAP and posterior draws) from the measured
levels; the predicted curves with credible bands; the fit at each sample; optionally
the exploratory pain-response fit; the protocol's limits; the recommendations for the
target; the route conversions. The command and the Personalise page both call it, so
the same request gives the same numbers in both.

Clinical warnings raised on the way (a sample far from the curve, a fit that did not
converge, recommendations outside the protocol's route) are collected into the outcome
instead of being printed, so each caller shows them in its own way.

Examples
--------
>>> from ketacare.core.pharmacology.personalise.request import parse_request
>>> request = parse_request(doc={
...     "model": "perez-ruixo-2021",
...     "patient": {"weight_kg": 72},
...     "doses": [{"route": "iv_infusion", "start_h": 0, "duration_h": 4,
...                "rate_mg_per_h": 20}],
...     "samples": [{"time_h": 2, "value_ng_per_ml": 62.0}],
...     "settings": {"n_draws": 0, "hours": 12, "step_min": 30},
... })
>>> outcome = compute(request=request)
>>> outcome.fit.converged, outcome.sample_band is None
(True, True)
>>> outcome.prediction.time_h[-1]  # the grid asked for: 0 to 12 h every 30 min
np.float64(12.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ketacare.core.errors import ClinicalWarning
from ketacare.core.pharmacology.convert import RouteConversion, convert_route
from ketacare.core.pharmacology.individual.fit import IndividualFit, fit_individual
from ketacare.core.pharmacology.individual.inputs import Sample
from ketacare.core.pharmacology.individual.predict import (
    IndividualPrediction,
    predict_at,
    predict_individual,
)
from ketacare.core.pharmacology.individual.response import (
    ResponseFit,
    ResponsePrediction,
    fit_response,
    predict_response,
)
from ketacare.core.pharmacology.personalise.limits import protocol_limit_check, protocol_route
from ketacare.core.pharmacology.personalise.request import PersonaliseRequest
from ketacare.core.pharmacology.recommend import IvOption, Recommendation, recommend
from ketacare.core.protocols import ResolvedLimit, SitePolicy, resolve_limits

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PersonaliseOutcome:
    """Everything computed, for the JSON document, the table and the plot.

    It keeps the request beside the results so that each output (document, table,
    plot) can show what was asked next to what was found from one value.
    """

    request: PersonaliseRequest
    fit: IndividualFit
    prediction: IndividualPrediction
    sample_pred: Array  # (n_samples,) MAP prediction at each sample
    sample_band: Array | None  # (3, n_samples): 5th, 50th and 95th percentiles
    response: ResponseFit | None
    response_prediction: ResponsePrediction | None
    recommendations: tuple[Recommendation, ...]
    recommendation_responses: tuple[ResponsePrediction | None, ...]
    conversions: tuple[RouteConversion, ...]
    limits: tuple[ResolvedLimit, ...]
    warnings: tuple[str, ...]


def default_step(hours: float) -> float:
    """The grid step in minutes for a horizon: fine for a day, coarser for weeks.

    Peaks of an infusion or a nasal dose need a few minutes' resolution; a course of
    weeks needs the whole span at a cost the page can afford.

    Examples
    --------
    >>> default_step(24), default_step(7 * 24), default_step(28 * 24)
    (5.0, 15.0, 60.0)
    """
    if hours <= 48:
        return 5.0
    if hours <= 168:
        return 15.0
    return 60.0


def compute(
    *, request: PersonaliseRequest, site_policy: SitePolicy | None = None
) -> PersonaliseOutcome:
    """Fit, predict, fit the response, recommend and convert, as the request asks.

    ``site_policy`` fills the protocol's limits that no source gives; without it they
    stay not configured (and check nothing), as the outcome's ``limits`` say.

    Raises
    ------
    KetacareError
        When a step refuses (for example a conversion to a route the model lacks).
    """
    r, s = request, request.settings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClinicalWarning)
        fit = fit_individual(
            model=r.model,
            patient=r.patient,
            regimen=r.regimen,
            samples=r.samples,
            n_draws=s.n_draws,
            sampling=s.sampling,
            seed=s.seed,
        )
        hours = s.hours if s.hours is not None else _last_time(r) + 24.0
        step = s.step_min if s.step_min is not None else default_step(hours)
        prediction = predict_individual(fit=fit, hours=hours, step_min=step)
        sample_pred, sample_band = _at_samples(fit, r.samples)
        response = response_prediction = None
        if r.response is not None:
            response = fit_response(
                fit=fit,
                scores=r.response.scores,
                baseline_nrs=r.response.baseline_nrs,
                assumptions=r.response.assumptions,
                effect_site=r.response.effect_site,
            )
            response_prediction = predict_response(
                response=response, regimen=r.regimen, hours=hours, step_min=60.0
            )
        limits: tuple[ResolvedLimit, ...] = ()
        if r.protocol is not None:
            limits = resolve_limits(protocol=r.protocol, site_policy=site_policy)
        recommendations = _recommendations(fit, r, limits)
        rec_responses = tuple(
            None
            if response is None
            else predict_response(
                response=response,
                regimen=rec.regimen,
                hours=float(rec.prediction.time_h[-1]),
                step_min=60.0,
            )
            for rec in recommendations
        )
        conversions = tuple(
            convert_route(
                fit=fit,
                from_dose=c.from_dose,
                to_route=c.to_route,
                to_duration_h=c.to_duration_h,
                seed=s.seed,
            )
            for c in r.conversions
        )
    caught_messages = [str(w.message) for w in caught if issubclass(w.category, ClinicalWarning)]
    return PersonaliseOutcome(
        request=r,
        fit=fit,
        prediction=prediction,
        sample_pred=sample_pred,
        sample_band=sample_band,
        response=response,
        response_prediction=response_prediction,
        recommendations=recommendations,
        recommendation_responses=rec_responses,
        conversions=conversions,
        limits=limits,
        warnings=_warnings(r, fit, caught_messages, recommendations),
    )


def _last_time(r: PersonaliseRequest) -> float:
    """The last time the request speaks of: the regimen's end, a sample or a pain score."""
    return max(
        [r.regimen.end_h]
        + [x.time_h for x in r.samples]
        + ([x.time_h for x in r.response.scores] if r.response else [])
    )


def _at_samples(fit: IndividualFit, samples: Sequence[Sample]) -> tuple[Array, Array | None]:
    """The MAP prediction at each sample and, with posterior draws, its 90% band."""
    times = np.array([x.time_h for x in samples], dtype=np.float64)
    sample_pred = np.zeros(len(samples))
    sample_band = None
    for analyte in ("plasma", "metabolite"):
        idx = [i for i, x in enumerate(samples) if x.analyte == analyte]
        if not idx:
            continue
        sample_pred[idx] = predict_at(fit=fit, times_h=times[idx], analyte=analyte)
        if fit.draws.shape[0]:
            if sample_band is None:
                sample_band = np.zeros((3, len(samples)))
            per_draw = predict_at(fit=fit, times_h=times[idx], analyte=analyte, etas=fit.draws)
            sample_band[:, idx] = np.percentile(per_draw, [5, 50, 95], axis=0)
    return sample_pred, sample_band


def _recommendations(
    fit: IndividualFit, r: PersonaliseRequest, limits: Sequence[ResolvedLimit]
) -> tuple[Recommendation, ...]:
    """Regimens reaching the target, checked against the protocol's limits (none: ())."""
    if r.target is None:
        return ()
    check = None
    if r.protocol is not None:
        check = protocol_limit_check(
            protocol=r.protocol, limits=limits, weight_kg=r.patient.weight_kg
        )
    span = max(
        o.duration_h if isinstance(o, IvOption) else (o.n_doses - 1) * o.interval_h
        for o in r.options
    )
    span += 24.0
    return recommend(
        fit=fit,
        target=r.target,
        options=r.options,
        limits=check,
        ceiling_ng_per_ml=r.ceiling_ng_per_ml,
        step_min=r.settings.step_min if r.settings.step_min is not None else default_step(span),
    )


def _warnings(
    r: PersonaliseRequest,
    fit: IndividualFit,
    caught: Sequence[str],
    recommendations: Sequence[Recommendation],
) -> tuple[str, ...]:
    """The fit's warnings, those raised on the way and what the caller must know, once each."""
    messages = list(fit.warnings) + list(caught)
    if not fit.converged:
        messages.append(f"the fit did not converge: {fit.message}")
    if r.protocol is not None:
        route = protocol_route(r.protocol)
        outside = sorted({rec.route for rec in recommendations if rec.route != route})
        if outside:
            messages.append(
                f"protocol {r.protocol.id} is {route}: its limits were not checked for "
                f"{', '.join(outside)} recommendations"
            )
    if r.response is not None:
        messages.append("the response fit rests on the caller's stated assumptions: exploratory")
    return tuple(dict.fromkeys(messages))


__all__ = ["PersonaliseOutcome", "compute", "default_step"]
