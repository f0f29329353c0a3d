"""From a model and patients to linear systems: parameters, covariates, variability, matrices.

Internal units are hours, litres and milligrams; concentrations come out in ng/mL
(mg/L x 1000). The state vector holds the amount (mg) in every compartment followed by
the concentration (mg/L) in every effect site, so that for piecewise-constant dosing

    dx/dt = A x + u(t),    y = C x

with ``A`` of shape (N, n, n) for N patients.

Examples
--------
>>> from ketacare.core.pharmacology.models import load_model
>>> model = load_model(model_id="domino")
>>> p = typical_parameters(model, weight_kg=70.0, age_years=None)
>>> round(float(p["V1"][0]), 3)  # L
4.41
>>> build_matrices(model, p).a.shape
(1, 4, 4)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ketacare.core.errors import InvalidInput
from ketacare.core.pharmacology.models import Model

__all__ = [
    "ParameterSet",
    "System",
    "build_matrices",
    "sample_parameters",
    "typical_parameters",
]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """Parameter values in internal units for N patients (each value an array of shape (N,))."""

    values: Mapping[str, Array]
    n: int

    def __getitem__(self, name: str) -> Array:
        return self.values[name]


@dataclass(frozen=True, slots=True)
class System:
    """Linear system matrices for N patients."""

    a: Array  # (N, n, n) per hour
    c: Array  # (N, O, n) ng/mL per state unit
    outputs: tuple[str, ...]  # "plasma", "effect:<id>", "metabolite"
    states: tuple[str, ...]


def _covariate_value(model: Model, name: str, weight_kg: Array, age_years: Array | None) -> Array:
    p = model.parameter(name)
    value = np.full(weight_kg.shape, p.value * p.factor)
    if p.per_kg:
        value = value * weight_kg
    if p.age_slope is not None and age_years is not None:
        above, per_year = p.age_slope
        value = value + per_year * p.factor * np.maximum(0.0, age_years - above)
        if np.any(value <= 0):
            raise InvalidInput(
                f"{name} of model {model.id} is not positive at this age: the age covariate "
                "extrapolates beyond its data"
            )
    return value


def _as_array(value: float | Array, n: int) -> Array:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()


def typical_parameters(
    model: Model, *, weight_kg: float | Array, age_years: float | Array | None
) -> ParameterSet:
    """Typical (population-median) parameters for one or more patients' covariates.

    Examples
    --------
    >>> from ketacare.core.pharmacology.models import load_model
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> float(typical_parameters(m, weight_kg=70.0, age_years=70.0)["Qh"][0])  # 151 - 2.19 * 10
    129.1
    """
    n = int(np.size(weight_kg))
    weights = _as_array(weight_kg, n)
    ages = None if age_years is None else _as_array(age_years, n)
    values = {p.name: _covariate_value(model, p.name, weights, ages) for p in model.parameters}
    return ParameterSet(values=values, n=n)


def sample_parameters(
    model: Model,
    *,
    weight_kg: float | Array,
    age_years: float | Array | None,
    n: int,
    rng: np.random.Generator,
    omega_override: Mapping[str, float] | None = None,
) -> ParameterSet:
    """Parameters of ``n`` virtual patients with log-normal (or logit-normal) variability.

    ``omega_override`` maps parameter names to a log-scale SD that replaces (or adds) the
    model's own variability; it exists for benchmarks and sensitivity analyses and is never
    used by the clinical commands.

    Examples
    --------
    >>> from ketacare.core.pharmacology.models import load_model
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> s = sample_parameters(m, weight_kg=70.0, age_years=40.0, n=4000,
    ...                       rng=np.random.default_rng(1))
    >>> bool(0.9 < np.median(s["Vc"]) / 192.0 < 1.1)
    True
    """
    weights = _as_array(weight_kg, n)
    ages = None if age_years is None else _as_array(age_years, n)
    override = dict(omega_override or {})
    for name in override:
        model.parameter(name)  # raises UnknownItem for a name the model does not have
    values: dict[str, Array] = {}
    for p in model.parameters:
        value = _covariate_value(model, p.name, weights, ages)
        omega = override.get(p.name, p.omega)
        if omega is not None and omega > 0:
            eta = rng.standard_normal(n) * omega
            if p.logit:
                logit = np.log(value / (1.0 - value)) + eta
                value = 1.0 / (1.0 + np.exp(-logit))
            else:
                value = value * np.exp(eta)
        values[p.name] = value
    return ParameterSet(values=values, n=n)


def build_matrices(model: Model, params: ParameterSet) -> System:
    """The matrices A (rates) and C (outputs) for every patient in ``params``."""
    comps = model.compartments
    sites = model.effect_sites
    index = {c: i for i, c in enumerate(comps)}
    n_states = len(comps) + len(sites)
    a = np.zeros((params.n, n_states, n_states))
    for flow in model.flows:
        if flow.rate is not None:
            k = params[flow.rate]
        else:
            assert flow.clearance is not None
            volume = model.volume_of(flow.source)
            assert volume is not None
            k = params[flow.clearance] / params[volume]
        i = index[flow.source]
        a[:, i, i] -= k
        if flow.target is not None:
            a[:, index[flow.target], i] += k
    outputs = ["plasma"]
    rows = [_concentration_row(model, params, index, model.plasma, n_states)]
    for j, site in enumerate(sites):
        e = len(comps) + j
        if site.ke0 is not None:
            ke0 = params[site.ke0]
        else:
            assert site.t_half is not None
            ke0 = math.log(2.0) / params[site.t_half]
        volume = model.volume_of(site.driver)
        assert volume is not None
        a[:, e, index[site.driver]] += ke0 / params[volume]
        a[:, e, e] -= ke0
        outputs.append(f"effect:{site.id}")
        row = np.zeros((params.n, n_states))
        row[:, e] = 1000.0
        rows.append(row)
    if model.metabolite_compartment is not None:
        outputs.append("metabolite")
        rows.append(
            _concentration_row(model, params, index, model.metabolite_compartment, n_states)
        )
    states = comps + tuple(f"effect:{s.id}" for s in sites)
    return System(a=a, c=np.stack(rows, axis=1), outputs=tuple(outputs), states=states)


def _concentration_row(
    model: Model, params: ParameterSet, index: dict[str, int], comp: str, n_states: int
) -> Array:
    volume = model.volume_of(comp)
    assert volume is not None
    row = np.zeros((params.n, n_states))
    row[:, index[comp]] = 1000.0 / params[volume]
    return row
