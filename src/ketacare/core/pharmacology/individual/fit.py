"""Fitting one patient: MAP random effects, their Laplace uncertainty and posterior draws.

The mode is found with BFGS on a gradient by central differences (one vectorised batch
through the engine); its uncertainty is the Laplace approximation; random effects the data
cannot inform keep their prior.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from ketacare.core.errors import ClinicalWarning, InvalidInput, OutOfRange
from ketacare.core.pharmacology.individual.inputs import (
    ResidualError,
    Sample,
    check_samples,
    published_residual_error,
)
from ketacare.core.pharmacology.individual.problem import (
    Array,
    Problem,
    full_etas,
    hessian,
    informed_effects,
    near_mode,
    nearest_pd,
)
from ketacare.core.pharmacology.models import Model
from ketacare.core.pharmacology.regimen import Regimen
from ketacare.core.pharmacology.simulate import Patient, check_patient

__all__ = ["IndividualFit", "IndividualParameter", "fit_individual"]
#: Random effects are kept within this many SDs of zero during the search.
_BOUND_SD = 6.0


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
    samples = check_samples(model, samples)
    problem = Problem(model, patient, regimen, samples, residual_error)
    n = len(problem.names)
    active = informed_effects(problem)
    m = int(active.sum())
    mode = np.zeros(n)
    cov = np.diag(problem.omega**2)
    converged, message, iterations = True, "no samples inform any parameter", 0
    objective = float(problem.nlp(np.zeros((1, n)))[0])
    if m:
        omega_a = problem.omega[active]

        def f(x: Array) -> Array:
            return problem.nlp(full_etas(x, active, n), prior_mask=active)

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
        hess = hessian(f, x_hat, 1e-3)
        # BFGS on a finite-difference gradient often stops with "precision loss" at the
        # mode. Accept the point when a Newton step from it would move less than
        # _MODE_TOLERANCE_SD posterior standard deviations (the Newton decrement): a
        # test in the posterior's own units, so it does not depend on how sharply
        # precise samples curve the objective, nor on the last bits of the arithmetic.
        converged = bool(result.success) or near_mode(fun(x_hat)[1], hess)
        try:
            cov_a: Array = np.asarray(np.linalg.inv(hess), dtype=np.float64)
        except np.linalg.LinAlgError:
            cov_a = np.diag(omega_a**2)
            messages.append("the Hessian at the mode is singular: prior used as uncertainty")
        cov_a, fixed = nearest_pd(cov_a)
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
    problem: Problem,
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
        log_p = -problem.nlp(full_etas(x, active, n), prior_mask=active)
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
    problem: Problem, mode: Array, cov: Array, active: npt.NDArray[np.bool_]
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
