"""Individualisation: this patient's PK from measured levels, and their response from pain scores.

Maximum a posteriori (MAP) Bayesian estimation with the model's published between-patient
variability as the prior and its published residual error as the likelihood:

    -log p(eta | y) = sum_j (log y_j - log f_j(eta))^2 / (2 sigma^2)      measured samples
                    - sum_j log Phi((log LLOQ_j - log f_j(eta)) / sigma)  below the LLOQ (M3)
                    + sum_k eta_k^2 / (2 omega_k^2)                       prior
                    + constant

``f`` is the exact prediction of the engine (no time stepping), ``eta`` the log-scale (logit
for fractions) random effects, ``sigma`` the SD of the log-transformed residual (Perez-Ruixo
2021 Table 3). The mode is found with :func:`scipy.optimize.minimize` (L-BFGS-B, gradient by
central differences computed as one vectorised batch through the engine); its uncertainty is
the Laplace approximation (inverse of the numerical Hessian at the mode). Random effects the
data cannot inform (the nasal absorption rate of a patient who only had infusions) keep their
prior. Posterior draws come from the Laplace normal, optionally corrected by importance
resampling, and give the credible bands.

A model without a published residual error cannot be individualised unless the caller gives
one explicitly (it is then labelled user-supplied); a model without published variability
has no prior and is refused.

Examples
--------
>>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
>>> model = load_model(model_id="perez-ruixo-2021")
>>> regimen = parse_regimen({"doses": [{"route": "iv_infusion", "start_h": 0,
...     "duration_h": 2, "amount_mg": 40}]}, weight_kg=70)
>>> fit = fit_individual(model=model, patient=Patient(weight_kg=70, age_years=45),
...                      regimen=regimen, samples=[Sample(time_h=1.9, value_ng_per_ml=60.0),
...                                                Sample(time_h=6.0, value_ng_per_ml=12.0)])
>>> fit.converged, fit.residual_error.user_supplied
(True, False)
>>> round(fit.parameter("Vc").typical, 1)
192.0
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from ketacare.core.errors import ClinicalWarning, InvalidInput, OutOfRange
from ketacare.core.pharmacology.engine import Plan, evaluate, evaluate_grid, integrate, make_plan
from ketacare.core.pharmacology.models import Model
from ketacare.core.pharmacology.regimen import Regimen
from ketacare.core.pharmacology.simulate import Patient, check_patient, dose_inputs
from ketacare.core.pharmacology.system import (
    ParameterSet,
    build_matrices,
    typical_parameters,
)

__all__ = [
    "ANALYTES",
    "IndividualFit",
    "IndividualParameter",
    "IndividualPrediction",
    "PainScore",
    "ResidualError",
    "ResponseAssumptions",
    "ResponseFit",
    "ResponsePrediction",
    "Sample",
    "fit_individual",
    "fit_response",
    "predict_individual",
    "predict_response",
    "predict_at",
    "published_residual_error",
]

Array = npt.NDArray[np.float64]

#: What a sample can measure: the parent drug in plasma, or the model's metabolite.
ANALYTES = ("plasma", "metabolite")
#: Names of the residual-error parameters in a model file (SD of log concentration).
RESIDUAL_PARAMETERS = {
    "plasma": "residual_log_sd_plasma",
    "metabolite": "residual_log_sd_metabolite",
}
#: Floor for a prediction inside a logarithm (ng/mL): a sample before any drug arrives.
_FLOOR = 1e-6
#: Random effects are kept within this many SDs of zero during the search.
_BOUND_SD = 6.0


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured level. ``value_ng_per_ml=None`` means below the LLOQ (which is then required).

    Examples
    --------
    >>> Sample(time_h=4.0, value_ng_per_ml=None, lloq_ng_per_ml=1.0).below_lloq
    True
    """

    time_h: float
    value_ng_per_ml: float | None
    analyte: str = "plasma"
    lloq_ng_per_ml: float | None = None

    @property
    def below_lloq(self) -> bool:
        """True for a result reported as below the lower limit of quantification."""
        return self.value_ng_per_ml is None


@dataclass(frozen=True, slots=True)
class ResidualError:
    """Residual error: SD of log(observed) around log(predicted), per analyte.

    ``user_supplied`` is True when the caller gave it (no published value for the model).
    """

    plasma_log_sd: float | None
    metabolite_log_sd: float | None
    source: str
    user_supplied: bool

    def sd(self, analyte: str) -> float:
        """The SD for ``analyte``; InvalidInput when there is none."""
        value = self.plasma_log_sd if analyte == "plasma" else self.metabolite_log_sd
        if value is None:
            raise InvalidInput(f"no residual error for {analyte} samples ({self.source})")
        return value


def published_residual_error(*, model: Model) -> ResidualError:
    """The model's published residual error (parameters ``residual_log_sd_*`` of its file).

    Raises
    ------
    InvalidInput
        When the model has no published residual error.

    Examples
    --------
    >>> from ketacare.core.pharmacology import load_model
    >>> published_residual_error(model=load_model(model_id="perez-ruixo-2021")).plasma_log_sd
    0.276
    >>> published_residual_error(model=load_model(model_id="domino"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: model domino has no published residual error model...
    """
    names = {p.name for p in model.parameters}
    values: dict[str, float | None] = {}
    sources = []
    for analyte, name in RESIDUAL_PARAMETERS.items():
        if name in names:
            p = model.parameter(name)
            values[analyte] = p.value
            trace = model.source(p.source)
            primary = model.primary_source
            via = "" if trace.key == primary.key else f", as traced in {trace.citation}"
            sources.append(f"{primary.citation}{via} ({p.where})")
        else:
            values[analyte] = None
    if values["plasma"] is None and values["metabolite"] is None:
        raise InvalidInput(
            f"model {model.id} has no published residual error model, which Bayesian "
            "individualisation needs; give residual_error=ResidualError(..., "
            "user_supplied=True) explicitly, or use a model that publishes one"
        )
    return ResidualError(
        plasma_log_sd=values["plasma"],
        metabolite_log_sd=values["metabolite"],
        source="; ".join(sources),
        user_supplied=False,
    )


# --------------------------------------------------------------------------------------
# the estimation problem
# --------------------------------------------------------------------------------------


class _Problem:
    """Vectorised predictions and negative log posterior for one patient's data."""

    def __init__(
        self,
        model: Model,
        patient: Patient,
        regimen: Regimen,
        samples: Sequence[Sample],
        residual: ResidualError | None,
    ) -> None:
        for route in regimen.routes:
            model.route(route)
        self.model = model
        self.fit_model = replace(model, effect_sites=())
        self.patient = patient
        self.regimen = regimen
        self.names = tuple(p.name for p in model.parameters if p.omega is not None)
        self.omega = np.array([model.parameter(n).omega for n in self.names], dtype=np.float64)
        self.logit = np.array([model.parameter(n).logit for n in self.names])
        self.typical = typical_parameters(
            model, weight_kg=patient.weight_kg, age_years=patient.age_years
        )
        times = np.array([s.time_h for s in samples], dtype=np.float64)
        self.times, self.time_index = np.unique(times, return_inverse=True)
        self.is_met = np.array([s.analyte == "metabolite" for s in samples], dtype=bool)
        blq = np.array([s.below_lloq for s in samples], dtype=bool)
        value = np.array(
            [s.lloq_ng_per_ml if s.below_lloq else s.value_ng_per_ml for s in samples],
            dtype=np.float64,
        )
        self.log_y = np.log(value) if value.size else value
        self.blq = blq
        if residual is not None and samples:
            self.sigma = np.array([residual.sd(s.analyte) for s in samples], dtype=np.float64)
        else:
            self.sigma = np.ones(len(samples))
        self.met_output = 1 if model.metabolite_compartment is not None else None

    @property
    def n_obs(self) -> int:
        return int(self.log_y.size)

    def parameters(self, etas: Array, model: Model | None = None) -> ParameterSet:
        """Parameter sets for each row of ``etas`` (N, n_eta)."""
        n = etas.shape[0]
        values: dict[str, Array] = {}
        for p in (model or self.model).parameters:
            values[p.name] = np.full(n, float(self.typical[p.name][0]))
        for k, name in enumerate(self.names):
            base = values[name]
            if self.logit[k]:
                values[name] = special.expit(special.logit(base) + etas[:, k])
            else:
                values[name] = base * np.exp(etas[:, k])
        return ParameterSet(values=values, n=n)

    def plan(self, etas: Array, regimen: Regimen, model: Model) -> Plan:
        params = self.parameters(etas, model)
        system = build_matrices(model, params)
        inputs = dose_inputs(model=model, regimen=regimen, params=params)
        return make_plan(a=system.a, c=system.c, inputs=inputs)

    def predict(self, etas: Array) -> Array:
        """Predictions (N, n_obs) in ng/mL at the sample times."""
        if self.n_obs == 0:
            return np.zeros((etas.shape[0], 0))
        plan = self.plan(etas, self.regimen, self.fit_model)
        outputs = [0] if self.met_output is None else [0, self.met_output]
        values = evaluate(plan, self.times, outputs=outputs)  # (O, N, T)
        pred: Array = values[0][:, self.time_index]
        if self.met_output is not None and np.any(self.is_met):
            pred[:, self.is_met] = values[1][:, self.time_index[self.is_met]]
        return pred

    def nlp(self, etas: Array, *, prior_mask: npt.NDArray[np.bool_] | None = None) -> Array:
        """Negative log posterior (up to a constant) for each row of ``etas``."""
        mask = np.ones(self.names.__len__(), dtype=bool) if prior_mask is None else prior_mask
        prior = 0.5 * np.sum((etas[:, mask] / self.omega[mask]) ** 2, axis=1)
        if self.n_obs == 0:
            return np.asarray(prior, dtype=np.float64)
        log_f = np.log(np.maximum(self.predict(etas), _FLOOR))
        z = (self.log_y[None, :] - log_f) / self.sigma[None, :]
        measured = 0.5 * z**2
        censored = -special.log_ndtr(z)
        like = np.where(self.blq[None, :], censored, measured).sum(axis=1)
        return np.asarray(prior + like, dtype=np.float64)


def _informed(problem: _Problem) -> npt.NDArray[np.bool_]:
    """Which random effects change any prediction (the others keep their prior)."""
    n = len(problem.names)
    if problem.n_obs == 0 or n == 0:
        return np.zeros(n, dtype=bool)
    etas = np.vstack([np.zeros(n), np.diag(problem.omega)])
    pred = problem.predict(etas)
    base = pred[0]
    scale = float(np.max(np.abs(base))) + 1e-12
    change = np.max(np.abs(pred[1:] - base[None, :]), axis=1)
    return np.asarray(change > 1e-7 * scale, dtype=bool)


def _full(x: Array, active: npt.NDArray[np.bool_], n: int) -> Array:
    etas = np.zeros((x.shape[0], n))
    etas[:, active] = x
    return etas


_MODE_TOLERANCE_SD = 0.01


def _near_mode(grad: Array, hess: Array) -> bool:
    """Whether a Newton step from here moves less than ``_MODE_TOLERANCE_SD`` SDs.

    The step ``H^-1 g`` measured in the metric of ``H`` (whose inverse is the Laplace
    covariance) is ``sqrt(g' H^-1 g)``; it is meaningful only where ``H`` is positive
    definite.

    >>> import numpy as np
    >>> h = np.diag([1e8, 4.0])  # a sharp and a flat direction
    >>> _near_mode(np.array([5e4, 0.0]), h)  # 5e4/1e8 = 5e-4 away, SD 1e-4: 5 SD off
    False
    >>> _near_mode(np.array([5e2, 0.01]), h)  # 0.05 and 0.005 SD off
    False
    >>> _near_mode(np.array([50.0, 0.01]), h)  # 0.005 and 0.005 SD off
    True
    >>> _near_mode(np.array([0.0, 0.0]), -h)  # a saddle or maximum is no mode
    False
    """
    try:
        chol = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return False
    z = np.linalg.solve(chol, grad)
    return bool(np.sqrt(float(z @ z)) < _MODE_TOLERANCE_SD)


def _hessian(f: Callable[[Array], Array], x0: Array, h: float) -> Array:
    """Central-difference Hessian of ``f`` at ``x0``, every stencil point in one batch."""
    m = x0.size
    e = np.eye(m) * h
    points = [x0]
    for i in range(m):
        points += [x0 + e[i], x0 - e[i]]
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    for i, j in pairs:
        points += [x0 + e[i] + e[j], x0 + e[i] - e[j], x0 - e[i] + e[j], x0 - e[i] - e[j]]
    values = f(np.array(points))
    f0 = values[0]
    hess = np.empty((m, m))
    for i in range(m):
        hess[i, i] = (values[1 + 2 * i] - 2 * f0 + values[2 + 2 * i]) / h**2
    base = 1 + 2 * m
    for k, (i, j) in enumerate(pairs):
        pp, pm, mp, mm = values[base + 4 * k : base + 4 * k + 4]
        hess[i, j] = hess[j, i] = (pp - pm - mp + mm) / (4 * h**2)
    return hess


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndividualParameter:
    """One parameter: typical (population) value, this patient's estimate and 90% interval.

    Values are in the model file's unit. ``sd_ratio`` is posterior SD / prior SD of the random
    effect: 1 means the data taught nothing about it (full shrinkage), 0 certainty.
    """

    name: str
    unit: str
    typical: float
    estimate: float
    p05: float
    p95: float
    sd_ratio: float
    informed: bool


@dataclass(frozen=True, slots=True)
class IndividualFit:
    """A patient's posterior: MAP random effects, Laplace covariance, draws, diagnostics."""

    model: Model
    patient: Patient
    regimen: Regimen
    samples: tuple[Sample, ...]
    residual_error: ResidualError
    eta_names: tuple[str, ...]
    omega: Array
    eta: Array
    eta_cov: Array
    informed: tuple[bool, ...]
    parameters: tuple[IndividualParameter, ...]
    draws: Array  # (n_draws, n_eta)
    sampling: str
    effective_sample_size: float | None
    objective: float
    converged: bool
    message: str
    iterations: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def model_id(self) -> str:
        """The model's id."""
        return self.model.id

    def parameter(self, name: str) -> IndividualParameter:
        """The individual parameter called ``name``."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise InvalidInput(
            f"{name} has no variability in model {self.model.id}: it is not individualised"
        )


def _check_samples(model: Model, samples: Sequence[Sample]) -> tuple[Sample, ...]:
    out = []
    for i, s in enumerate(samples):
        label = f"sample {i + 1}"
        if s.analyte not in ANALYTES:
            raise InvalidInput(f"{label} analyte must be one of {', '.join(ANALYTES)}")
        if s.analyte == "metabolite" and model.metabolite is None:
            raise InvalidInput(f"{label}: model {model.id} has no metabolite")
        if not (math.isfinite(s.time_h) and 0 <= s.time_h <= 24 * 366):
            raise OutOfRange(f"{label} time_h", s.time_h, "0 to 8784 h")
        if s.value_ng_per_ml is None:
            if s.lloq_ng_per_ml is None:
                raise InvalidInput(
                    f"{label} is below the LLOQ (no value) but gives no lloq_ng_per_ml"
                )
        elif not (math.isfinite(s.value_ng_per_ml) and s.value_ng_per_ml > 0):
            raise OutOfRange(f"{label} value_ng_per_ml", s.value_ng_per_ml, "more than 0 ng/mL")
        if s.lloq_ng_per_ml is not None and not s.lloq_ng_per_ml > 0:
            raise OutOfRange(f"{label} lloq_ng_per_ml", s.lloq_ng_per_ml, "more than 0 ng/mL")
        out.append(s)
    return tuple(out)


def _nearest_pd(cov: Array) -> tuple[Array, bool]:
    sym = (cov + cov.T) / 2
    vals, vecs = np.linalg.eigh(sym)
    if np.all(vals > 0):
        return sym, False
    vals = np.maximum(vals, 1e-10)
    return np.asarray((vecs * vals) @ vecs.T, dtype=np.float64), True


def fit_individual(
    *,
    model: Model,
    patient: Patient,
    regimen: Regimen,
    samples: Sequence[Sample],
    residual_error: ResidualError | None = None,
    n_draws: int = 1000,
    sampling: str = "importance",
    seed: int = 0,
) -> IndividualFit:
    """MAP individual parameters from measured levels, with Laplace uncertainty and draws.

    Parameters
    ----------
    model
        A library model with published between-patient variability.
    patient
        Covariates (weight, age) as for :func:`~ketacare.core.pharmacology.simulate`.
    regimen
        The doses actually given, times in hours from the first.
    samples
        Measured plasma (parent) and/or metabolite levels; a level below the LLOQ has
        ``value_ng_per_ml=None`` and its ``lloq_ng_per_ml`` (M3 likelihood: the probability
        of being below the LLOQ). No samples: the population typical values.
    residual_error
        Only for a model without a published one; must be ``user_supplied=True``.
    n_draws, sampling, seed
        Posterior draws for the bands: ``"laplace"`` (the Laplace normal) or ``"importance"``
        (Laplace proposal, inflated 1.2x in SD, importance-resampled against the exact
        posterior). ``n_draws=0`` skips them.

    Raises
    ------
    InvalidInput
        No variability (no prior), no residual error, a sample of an unknown analyte, a
        route the model does not have.

    Examples
    --------
    No samples: the typical patient (every random effect 0).

    >>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> r = parse_regimen({"doses": [{"route": "oral", "start_h": 0, "amount_mg": 50}]},
    ...                   weight_kg=80)
    >>> fit = fit_individual(model=m, patient=Patient(weight_kg=80), regimen=r, samples=[],
    ...                      n_draws=0)
    >>> float(np.abs(fit.eta).max()), fit.parameter("Qh").estimate
    (0.0, 151.0)
    """
    if not model.has_variability:
        raise InvalidInput(
            f"model {model.id} has no published inter-individual variability, so it has no "
            "prior for Bayesian individualisation; use a model with published variability"
        )
    if residual_error is None:
        residual_error = published_residual_error(model=model)
    elif not residual_error.user_supplied:
        raise InvalidInput(
            "a residual error given by the caller must be labelled user_supplied=True; "
            "leave it out to use the model's published one"
        )
    if sampling not in ("laplace", "importance"):
        raise InvalidInput(f"sampling must be 'laplace' or 'importance', got {sampling!r}")
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or not 0 <= n_draws <= 100_000:
        raise OutOfRange("n_draws", n_draws, "0 to 100000")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClinicalWarning)
        check_patient(model=model, patient=patient)
    messages = [str(w.message) for w in caught]
    if residual_error.user_supplied:
        messages.append(f"residual error is user-supplied, not published: {residual_error.source}")
    samples = _check_samples(model, samples)
    problem = _Problem(model, patient, regimen, samples, residual_error)
    n = len(problem.names)
    active = _informed(problem)
    m = int(active.sum())
    mode = np.zeros(n)
    cov = np.diag(problem.omega**2)
    converged, message, iterations = True, "no samples inform any parameter", 0
    objective = float(problem.nlp(np.zeros((1, n)))[0])
    if m:
        omega_a = problem.omega[active]

        def f(x: Array) -> Array:
            return problem.nlp(_full(x, active, n), prior_mask=active)

        h = 1e-5

        def fun(x: Array) -> tuple[float, Array]:
            step = np.eye(m) * h
            values = f(np.vstack([x[None], x + step, x - step]))
            grad = (values[1 : m + 1] - values[m + 1 :]) / (2 * h)
            return float(values[0]), grad

        result = optimize.minimize(
            fun, np.zeros(m), jac=True, method="BFGS", options={"maxiter": 200, "gtol": 1e-6}
        )
        x_hat = np.clip(result.x, -_BOUND_SD * omega_a, _BOUND_SD * omega_a)
        message, iterations = str(result.message), result.nit
        mode[active] = x_hat
        objective = float(problem.nlp(mode[None])[0])
        hess = _hessian(f, x_hat, 1e-3)
        # BFGS on a finite-difference gradient often stops with "precision loss" at the
        # mode. Accept the point when a Newton step from it would move less than
        # _MODE_TOLERANCE_SD posterior standard deviations (the Newton decrement): a
        # test in the posterior's own units, so it does not depend on how sharply
        # precise samples curve the objective, nor on the last bits of the arithmetic.
        converged = bool(result.success) or _near_mode(fun(x_hat)[1], hess)
        try:
            cov_a: Array = np.asarray(np.linalg.inv(hess), dtype=np.float64)
        except np.linalg.LinAlgError:
            cov_a = np.diag(omega_a**2)
            messages.append("the Hessian at the mode is singular: prior used as uncertainty")
        cov_a, fixed = _nearest_pd(cov_a)
        if fixed:
            messages.append("the Hessian at the mode is not positive definite: it was repaired")
        cov[np.ix_(active, active)] = cov_a
        if np.any(np.abs(x_hat) >= _BOUND_SD * omega_a * 0.999):
            messages.append(
                f"a random effect reached {_BOUND_SD:g} SD: the data disagree with the model"
            )
    draws, ess = _draw(problem, mode, cov, active, n_draws, sampling, seed)
    parameters = _summaries(problem, mode, cov, active)
    return IndividualFit(
        model=model,
        patient=patient,
        regimen=regimen,
        samples=samples,
        residual_error=residual_error,
        eta_names=problem.names,
        omega=problem.omega,
        eta=mode,
        eta_cov=cov,
        informed=tuple(bool(a) for a in active),
        parameters=parameters,
        draws=draws,
        sampling=sampling,
        effective_sample_size=ess,
        objective=objective,
        converged=converged,
        message=message,
        iterations=int(iterations),
        warnings=tuple(messages),
    )


def _draw(
    problem: _Problem,
    mode: Array,
    cov: Array,
    active: npt.NDArray[np.bool_],
    n_draws: int,
    sampling: str,
    seed: int,
) -> tuple[Array, float | None]:
    n = mode.size
    if n_draws == 0:
        return np.zeros((0, n)), None
    rng = np.random.default_rng(seed)
    inactive = ~active
    m = int(active.sum())
    if sampling == "laplace" or m == 0:
        draws = rng.multivariate_normal(mode, cov, size=n_draws, method="cholesky")
        return np.asarray(draws, dtype=np.float64), None
    # importance resampling: proposal = Laplace normal with SD inflated 1.2x
    n_prop = 4 * n_draws
    cov_a = cov[np.ix_(active, active)] * 1.44
    chol = np.linalg.cholesky(cov_a)
    z = rng.standard_normal((n_prop, m))
    x = mode[active][None] + z @ chol.T
    log_q = -0.5 * np.sum(z**2, axis=1)
    try:
        log_p = -problem.nlp(_full(x, active, n), prior_mask=active)
    except InvalidInput:
        draws = rng.multivariate_normal(mode, cov, size=n_draws, method="cholesky")
        return np.asarray(draws, dtype=np.float64), None
    log_w = log_p - log_q
    log_w[~np.isfinite(log_w)] = -np.inf
    w = np.exp(log_w - np.max(log_w))
    w /= w.sum()
    ess = float(1.0 / np.sum(w**2))
    pick = rng.choice(n_prop, size=n_draws, replace=True, p=w)
    draws = np.zeros((n_draws, n))
    draws[:, active] = x[pick]
    if np.any(inactive):
        sd = problem.omega[inactive]
        draws[:, inactive] = rng.standard_normal((n_draws, int(inactive.sum()))) * sd
    return draws, ess


def _summaries(
    problem: _Problem, mode: Array, cov: Array, active: npt.NDArray[np.bool_]
) -> tuple[IndividualParameter, ...]:
    z = 1.6448536269514722
    out = []
    for k, name in enumerate(problem.names):
        p = problem.model.parameter(name)
        typical = float(problem.typical[name][0]) / p.factor
        sd = math.sqrt(max(cov[k, k], 0.0))
        values = []
        for eta in (mode[k], mode[k] - z * sd, mode[k] + z * sd):
            if p.logit:
                values.append(float(special.expit(special.logit(typical) + eta)))
            else:
                values.append(typical * math.exp(eta))
        out.append(
            IndividualParameter(
                name=name,
                unit=p.unit,
                typical=typical,
                estimate=values[0],
                p05=values[1],
                p95=values[2],
                sd_ratio=sd / float(problem.omega[k]),
                informed=bool(active[k]),
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------------------
# predictions
# --------------------------------------------------------------------------------------


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
    problem = _Problem(fit.model, fit.patient, fit.regimen, [], None)
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
    problem = _Problem(model, fit.patient, regimen, [], None)
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


# --------------------------------------------------------------------------------------
# response (pain scores)
# --------------------------------------------------------------------------------------


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
    problem = _Problem(model, fit.patient, fit.regimen, [], None)
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
        problem = _Problem(fit.model, fit.patient, regimen, [], None)
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
