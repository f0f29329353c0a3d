"""Route conversion: a dose on one route to the dose on another with the same parent exposure.

:func:`convert_route` converts a dose between routes by matched parent exposure: with the
model (this patient's posterior) where the model has both routes, and with the published
bioavailability distributions (:mod:`~ketacare.core.pharmacology.bioavailability`) always,
reporting how the metabolite exposure changes (first pass) where the model has a metabolite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from ketacare.core.errors import InvalidInput, OutOfRange, UnknownItem
from ketacare.core.pharmacology.bioavailability import bioavailability
from ketacare.core.pharmacology.engine import integrate
from ketacare.core.pharmacology.individual.fit import IndividualFit
from ketacare.core.pharmacology.individual.problem import Problem
from ketacare.core.pharmacology.recommend import AUC_TAIL_H
from ketacare.core.pharmacology.regimen import Dose, make_regimen

__all__ = ["RouteConversion", "convert_route"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RouteConversion:
    """A dose converted between routes by matched parent (plasma) AUC.

    ``model_dose_*``: from the model and this patient's posterior (None when the model lacks
    a route). ``literature_dose_*``: dose x F_from / F_to with F from the published
    distributions (None when no entry exists); percentiles are over F's uncertainty.
    Metabolite AUC ratios (to / from, at the model dose) show the first-pass change.
    """

    from_route: str
    to_route: str
    from_dose_mg: float
    model_dose_p05: float | None
    model_dose_p50: float | None
    model_dose_p95: float | None
    literature_dose_p05: float | None
    literature_dose_p50: float | None
    literature_dose_p95: float | None
    literature_sources: tuple[str, ...]
    parent_auc_from_ng_h_per_ml: float | None
    parent_auc_to_ng_h_per_ml: float | None
    metabolite_auc_ratio_p05: float | None
    metabolite_auc_ratio_p50: float | None
    metabolite_auc_ratio_p95: float | None
    notes: tuple[str, ...]


def _auc_per_draw(fit: IndividualFit, dose: Dose) -> Array:
    """(2, N) parent and metabolite AUC to infinity of one dose, per posterior draw."""
    etas = fit.draws if fit.draws.shape[0] else fit.eta[None]
    regimen = make_regimen((Dose(dose.route, 0.0, dose.amount_mg, dose.duration_h),))
    problem = Problem(fit.model, fit.patient, regimen, [], None)
    plan = problem.plan(etas, regimen, problem.fit_model)
    outputs = [0] if problem.met_output is None else [0, problem.met_output]
    auc = integrate(plan, np.array([regimen.end_h + AUC_TAIL_H]), outputs=outputs)[:, :, 0]
    if problem.met_output is None:
        auc = np.vstack([auc, np.full_like(auc, np.nan)])
    return np.asarray(auc, dtype=np.float64)


def _f_samples(route: str, molecule: str, rng: np.random.Generator, n: int) -> Array | None:
    if route in ("iv_bolus", "iv_infusion"):
        return np.ones(n)
    try:
        return bioavailability(route=route, molecule=molecule).sample(rng=rng, n=n)
    except UnknownItem:
        return None


def convert_route(
    *,
    from_dose: Dose,
    to_route: str,
    fit: IndividualFit | None = None,
    molecule: str | None = None,
    to_duration_h: float = 0.0,
    seed: int = 0,
) -> RouteConversion:
    """Convert ``from_dose`` to ``to_route`` by matched parent AUC (model and literature F).

    With ``fit`` (a patient's posterior, or a no-sample fit for the population) the model
    gives a patient-specific dose and the metabolite change; without it only the published
    bioavailabilities of ``molecule`` are used (e.g. racemic ketamine, whose shipped models
    are IV-only and have no variability).

    Examples
    --------
    >>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
    >>> from ketacare.core.pharmacology.individual.fit import fit_individual
    >>> from ketacare.core.pharmacology.regimen import Dose
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> r = parse_regimen({"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 20}]},
    ...                   weight_kg=70)
    >>> fit = fit_individual(model=m, patient=Patient(weight_kg=70), regimen=r, samples=[],
    ...                      n_draws=0)
    >>> c = convert_route(fit=fit, from_dose=Dose("iv_infusion", 0.0, 20.0, 0.5),
    ...                   to_route="oral")
    >>> round(c.model_dose_p50), round(c.literature_dose_p50)  # model F 18%, published 12%
    (112, 162)
    >>> c.metabolite_auc_ratio_p50 > 3  # first pass makes much more noresketamine
    True
    >>> s = convert_route(from_dose=Dose("iv_bolus", 0.0, 10.0), to_route="sublingual",
    ...                   molecule="racemic ketamine")
    >>> round(s.literature_dose_p05), round(s.literature_dose_p95), s.model_dose_p50
    (20, 52, None)
    """
    if fit is None and molecule is None:
        raise InvalidInput("convert_route needs a fit (model-based) or a molecule (literature)")
    mol = fit.model.molecule if fit is not None else str(molecule)
    notes: list[str] = []
    if not (math.isfinite(from_dose.amount_mg) and from_dose.amount_mg > 0):
        raise OutOfRange("from_dose amount_mg", from_dose.amount_mg, "more than 0 mg")
    if to_route == "iv_infusion" and not to_duration_h > 0:
        raise InvalidInput("converting to an IV infusion needs to_duration_h > 0")
    rng = np.random.default_rng(seed)
    n = 20_000
    f_from = _f_samples(from_dose.route, mol, rng, n)
    f_to = _f_samples(to_route, mol, rng, n)
    lit: tuple[float | None, float | None, float | None] = (None, None, None)
    sources: list[str] = []
    if f_from is not None and f_to is not None:
        doses = from_dose.amount_mg * f_from / f_to
        lit = tuple(float(v) for v in np.percentile(doses, [5, 50, 95]))  # type: ignore[assignment]
        for route in (from_dose.route, to_route):
            if route not in ("iv_bolus", "iv_infusion"):
                entry = bioavailability(route=route, molecule=mol)
                sources += sorted({e.citation for e in entry.estimates if e.in_distribution})
    else:
        notes.append(
            f"no published bioavailability distribution for {mol} by "
            f"{from_dose.route if f_from is None else to_route}"
        )
    model_dose: tuple[float | None, float | None, float | None] = (None, None, None)
    ratio: tuple[float | None, float | None, float | None] = (None, None, None)
    auc_from_map = auc_to_map = None
    if fit is None:
        notes.append("no patient fit given: conversion by published bioavailability only")
    elif from_dose.route in fit.model.routes and to_route in fit.model.routes:
        model = fit.model
        from_auc = _auc_per_draw(fit, from_dose)
        unit = Dose(to_route, 0.0, 1.0, to_duration_h)
        per_mg = _auc_per_draw(fit, unit)
        need = from_auc[0] / per_mg[0]
        spray = model.route(to_route).spray_mg
        if spray is not None:
            # the nasal fraction changes with the number of sprays: iterate on the count
            for _ in range(3):
                n_spray = max(1, math.ceil(float(np.median(need)) / spray - 1e-9))
                dose_n = n_spray * spray
                per_mg = _auc_per_draw(fit, Dose(to_route, 0.0, dose_n, to_duration_h)) / dose_n
                need = from_auc[0] / per_mg[0]
            notes.append(
                f"{to_route} doses come in {spray:g}-mg sprays: the model dose is the exact "
                "match, round it to whole sprays"
            )
        model_dose = tuple(float(v) for v in np.percentile(need, [5, 50, 95]))  # type: ignore[assignment]
        if np.all(np.isfinite(from_auc[1])):
            met_ratio = need * per_mg[1] / from_auc[1]
            ratio = tuple(float(v) for v in np.percentile(met_ratio, [5, 50, 95]))  # type: ignore[assignment]
        else:
            notes.append(f"model {model.id} has no metabolite: metabolite exposure not reported")
        map_from = _auc_per_draw(_map_only(fit), from_dose)
        map_unit = _auc_per_draw(_map_only(fit), unit)
        auc_from_map = float(map_from[0, 0])
        auc_to_map = float(map_unit[0, 0] * float(np.median(need)))
        if spray is not None:
            auc_to_map = None
    else:
        missing = [r for r in (from_dose.route, to_route) if r not in fit.model.routes]
        notes.append(
            f"model {fit.model.id} has no {', '.join(missing)} route: conversion by published "
            "bioavailability only, and no metabolite estimate"
        )
    return RouteConversion(
        from_route=from_dose.route,
        to_route=to_route,
        from_dose_mg=from_dose.amount_mg,
        model_dose_p05=model_dose[0],
        model_dose_p50=model_dose[1],
        model_dose_p95=model_dose[2],
        literature_dose_p05=lit[0],
        literature_dose_p50=lit[1],
        literature_dose_p95=lit[2],
        literature_sources=tuple(dict.fromkeys(sources)),
        parent_auc_from_ng_h_per_ml=auc_from_map,
        parent_auc_to_ng_h_per_ml=auc_to_map,
        metabolite_auc_ratio_p05=ratio[0],
        metabolite_auc_ratio_p50=ratio[1],
        metabolite_auc_ratio_p95=ratio[2],
        notes=tuple(notes),
    )


def _map_only(fit: IndividualFit) -> IndividualFit:
    return replace(fit, draws=np.zeros((0, fit.eta.size)))
