"""The estimation problem: one patient's data as a vectorised negative log posterior.

:class:`Problem` predicts the samples for many sets of random effects at once and scores
them (see the package documentation for the posterior); the functions below are the
numerics :func:`~ketacare.core.pharmacology.individual.fit.fit_individual` builds on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt
from scipy import special

from ketacare.core.pharmacology.engine import Plan, evaluate, make_plan
from ketacare.core.pharmacology.individual.inputs import ResidualError, Sample
from ketacare.core.pharmacology.models import Model
from ketacare.core.pharmacology.regimen import Regimen
from ketacare.core.pharmacology.simulate import Patient, dose_inputs
from ketacare.core.pharmacology.system import (
    ParameterSet,
    build_matrices,
    typical_parameters,
)

__all__ = [
    "Array",
    "Problem",
    "full_etas",
    "hessian",
    "informed_effects",
    "near_mode",
    "nearest_pd",
]

Array = npt.NDArray[np.float64]
#: Floor for a prediction inside a logarithm (ng/mL): a sample before any drug arrives.
_FLOOR = 1e-6


class Problem:
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


def informed_effects(problem: Problem) -> npt.NDArray[np.bool_]:
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


def full_etas(x: Array, active: npt.NDArray[np.bool_], n: int) -> Array:
    """Rows of ``n`` random effects from the ``active`` ones (the others 0)."""
    etas = np.zeros((x.shape[0], n))
    etas[:, active] = x
    return etas


_MODE_TOLERANCE_SD = 0.01


def near_mode(grad: Array, hess: Array) -> bool:
    """Whether a Newton step from here moves less than ``_MODE_TOLERANCE_SD`` SDs.

    The step ``H^-1 g`` measured in the metric of ``H`` (whose inverse is the Laplace
    covariance) is ``sqrt(g' H^-1 g)``; it is meaningful only where ``H`` is positive
    definite.

    >>> import numpy as np
    >>> h = np.diag([1e8, 4.0])  # a sharp and a flat direction
    >>> near_mode(np.array([5e4, 0.0]), h)  # 5e4/1e8 = 5e-4 away, SD 1e-4: 5 SD off
    False
    >>> near_mode(np.array([5e2, 0.01]), h)  # 0.05 and 0.005 SD off
    False
    >>> near_mode(np.array([50.0, 0.01]), h)  # 0.005 and 0.005 SD off
    True
    >>> near_mode(np.array([0.0, 0.0]), -h)  # a saddle or maximum is no mode
    False
    """
    try:
        chol = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return False
    z = np.linalg.solve(chol, grad)
    return bool(np.sqrt(float(z @ z)) < _MODE_TOLERANCE_SD)


def hessian(f: Callable[[Array], Array], x0: Array, h: float) -> Array:
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


def nearest_pd(cov: Array) -> tuple[Array, bool]:
    """The symmetric part of ``cov``, eigenvalues floored when needed, and whether they were."""
    sym = (cov + cov.T) / 2
    vals, vecs = np.linalg.eigh(sym)
    if np.all(vals > 0):
        return sym, False
    vals = np.maximum(vals, 1e-10)
    return np.asarray((vecs * vals) @ vecs.T, dtype=np.float64), True
