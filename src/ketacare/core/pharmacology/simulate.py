"""Simulate a patient under a regimen: the engine's front door (populations: :mod:`.population`).

Examples
--------
A 70 kg patient on the Domino model, 0.5 mg/kg over 40 minutes:

>>> from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate
>>> model = load_model(model_id="domino")
>>> regimen = parse_regimen({"doses": [{"route": "iv_infusion", "start_h": 0,
...     "duration_h": 40 / 60, "amount_mg": 35}]}, weight_kg=70)
>>> result = simulate(model=model, patient=Patient(weight_kg=70), regimen=regimen, hours=24)
>>> round(result.metrics.cmax_ng_per_ml, 1), round(result.metrics.tmax_h, 3)
(240.3, 0.667)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ketacare.core.errors import ClinicalWarning, InvalidInput, OutOfRange
from ketacare.core.pharmacology.engine import (
    Input,
    Modes,
    Plan,
    evaluate_grid,
    evaluate_one_grid,
    integrate,
    integrate_one,
    make_one_plan,
    make_plan,
    modes_of,
)
from ketacare.core.pharmacology.models import Model
from ketacare.core.pharmacology.regimen import Regimen
from ketacare.core.pharmacology.system import (
    ParameterSet,
    System,
    build_matrices,
    typical_parameters,
)

__all__ = [
    "MAX_GRID_POINTS",
    "Metrics",
    "Patient",
    "Simulation",
    "check_patient",
    "device_doses",
    "dose_inputs",
    "simulate",
    "simulate_reference",
]

Array = npt.NDArray[np.float64]

#: Largest output grid a single call accepts (points per patient).
MAX_GRID_POINTS = 2_000_000


@dataclass(frozen=True, slots=True)
class Patient:
    """The covariates a model may use. ``sex`` is "F" or "M" (no shipped model uses it yet)."""

    weight_kg: float
    age_years: float | None = None
    sex: str | None = None


@dataclass(frozen=True, slots=True)
class Metrics:
    """Exposure summary of the plasma curve (grid-based peak, exact AUC)."""

    cmax_ng_per_ml: float
    tmax_h: float
    auc_ng_h_per_ml: float
    auc_by_day_ng_h_per_ml: tuple[float, ...]
    time_above_h: float | None
    threshold_ng_per_ml: float | None
    total_dose_mg: float


@dataclass(frozen=True, slots=True)
class Simulation:
    """Typical-patient curves on the output grid (ng/mL)."""

    model_id: str
    time_h: Array
    plasma_ng_per_ml: Array
    effect_ng_per_ml: Mapping[str, Array]
    metabolite_ng_per_ml: Array | None
    metrics: Metrics
    warnings: tuple[str, ...] = ()


def check_patient(*, model: Model, patient: Patient) -> tuple[str, ...]:
    """Refuse implausible covariates; warn (ClinicalWarning) outside the model's population.

    Returns the warning messages (also issued with :func:`warnings.warn`).

    Examples
    --------
    >>> from ketacare.core.pharmacology.models import load_model
    >>> import warnings
    >>> with warnings.catch_warnings(record=True):
    ...     weight, race = check_patient(model=load_model(model_id="perez-ruixo-2021"),
    ...                                  patient=Patient(weight_kg=30, age_years=40))
    >>> weight[:60]
    'weight 30 kg is outside the range of model perez-ruixo-2021 '
    >>> race[:68]
    'model perez-ruixo-2021 does not apply the race effects its source es'
    """
    messages = _patient_messages(model=model, patient=patient)
    for message in messages:
        warnings.warn(message, ClinicalWarning, stacklevel=2)
    return messages


def _patient_messages(*, model: Model, patient: Patient) -> tuple[str, ...]:
    """:func:`check_patient` without issuing the warnings: refuse, or return the messages."""
    if not (isinstance(patient.weight_kg, int | float) and 0.5 <= patient.weight_kg <= 350):
        raise OutOfRange("weight_kg", patient.weight_kg, "0.5 to 350 kg")
    if patient.age_years is not None and not 0 <= patient.age_years <= 120:
        raise OutOfRange("age_years", patient.age_years, "0 to 120 years")
    if patient.sex not in (None, "F", "M"):
        raise InvalidInput(f"sex must be F or M, got {patient.sex!r}")
    messages = []
    pop = model.population
    if pop.weight_kg is not None and not pop.weight_kg[0] <= patient.weight_kg <= pop.weight_kg[1]:
        messages.append(
            f"weight {patient.weight_kg:g} kg is outside the range of model {model.id} "
            f"({pop.weight_kg[0]:g}-{pop.weight_kg[1]:g} kg): results are extrapolated"
        )
    if pop.age_years is not None:
        if patient.age_years is None:
            if any(p.age_slope for p in model.parameters):
                messages.append(
                    f"age not given: model {model.id} assumes no age effect (age at most "
                    f"{min(p.age_slope[0] for p in model.parameters if p.age_slope):g} years)"
                )
        elif not pop.age_years[0] <= patient.age_years <= pop.age_years[1]:
            messages.append(
                f"age {patient.age_years:g} years is outside the range of model {model.id} "
                f"({pop.age_years[0]:g}-{pop.age_years[1]:g} years): results are extrapolated"
            )
    for effect in model.covariates_not_applied:
        messages.append(f"model {model.id} does not apply {effect}")
    if not model.verified:
        messages.append(f"model {model.id} comes from an unverified primary source: see its notes")
    return tuple(messages)


@dataclass(frozen=True, slots=True)
class _Typical:
    """A checked patient on a model: the warnings, parameters, matrices and modal form."""

    model: Model
    messages: tuple[str, ...]
    params: ParameterSet
    system: System
    modes: Modes


#: Checked patients by (model, covariates), oldest first; each entry holds its model, so the
#: model's id cannot be reused while the entry lives.
_TYPICAL: dict[tuple[int, object, object, object], _Typical] = {}
#: How many patients :data:`_TYPICAL` keeps (about 1 kB each, plus the grid tables).
_TYPICAL_KEPT = 256


def _typical(model: Model, patient: Patient) -> _Typical:
    """The patient checked and decomposed once per model and covariates, then reused."""
    key = (id(model), patient.weight_kg, patient.age_years, patient.sex)
    kept = _TYPICAL.get(key)
    if kept is not None and kept.model is model:
        return kept
    messages = _patient_messages(model=model, patient=patient)
    params = typical_parameters(model, weight_kg=patient.weight_kg, age_years=patient.age_years)
    system = build_matrices(model, params)
    for array in (system.a, system.c):
        array.flags.writeable = False
    made = _Typical(
        model=model,
        messages=messages,
        params=params,
        system=system,
        modes=modes_of(system.a[0], system.c[0]),
    )
    while len(_TYPICAL) >= _TYPICAL_KEPT:
        _TYPICAL.pop(next(iter(_TYPICAL)), None)
    _TYPICAL[key] = made
    return made


def _fraction(params: ParameterSet, factors: Sequence[str], spray: Mapping[str, Array]) -> Array:
    value = np.ones(params.n)
    for factor in factors:
        complement = factor.startswith("1-")
        name = factor[2:] if complement else factor
        v = spray.get(name, params[name])
        value = value * ((1.0 - v) if complement else v)
    return value


def device_doses(*, model: Model, regimen: Regimen) -> tuple[tuple[int, ...], ...]:
    """Which regimen entries make one dose on a device route (e.g. esketamine nasal spray).

    Returns, per regimen entry, the number of its first device within its dose (0 when the
    entry opens a new dose, 2 when its first device is the dose's third, ...), one number per
    device of the entry; entries on routes without devices get ``()``.

    The rule (the model file cites it): an entry of ``a`` mg is ``n = ceil(a / spray_mg)``
    devices given ``device_interval`` apart from its start; the next entry on the route
    belongs to the same dose when its start is at most ``dose_window`` after the previous
    device, otherwise it opens a new dose. Entries on other routes in between do not split
    a dose. So one 84-mg entry and three 28-mg entries 5 minutes apart are the same three
    devices, and a dose three days later starts again at the first device.

    Examples
    --------
    >>> from ketacare.core.pharmacology.models import load_model
    >>> from ketacare.core.pharmacology.regimen import Dose, make_regimen
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> r = make_regimen((Dose("intranasal", 0.0, 56.0), Dose("intranasal", 10 / 60, 28.0),
    ...                   Dose("intranasal", 72.0, 28.0)))
    >>> device_doses(model=m, regimen=r)
    ((0, 1), (2,), (0,))
    """
    out: list[tuple[int, ...]] = []
    state: dict[str, tuple[float, int]] = {}  # route -> (last device time, devices so far)
    for dose in regimen.doses:
        route = model.route(dose.route)
        if route.spray_mg is None:
            out.append(())
            continue
        assert route.device_interval is not None and route.dose_window is not None
        interval = model.parameter(route.device_interval)
        window = model.parameter(route.dose_window)
        interval_h = interval.value * interval.factor
        window_h = window.value * window.factor
        n_devices = max(1, math.ceil(dose.amount_mg / route.spray_mg - 1e-9))
        last = state.get(dose.route)
        before = 0 if last is None or dose.start_h - last[0] > window_h + 1e-9 else last[1]
        out.append(tuple(before + k for k in range(n_devices)))
        state[dose.route] = (dose.start_h + (n_devices - 1) * interval_h, before + n_devices)
    return tuple(out)


def dose_inputs(*, model: Model, regimen: Regimen, params: ParameterSet) -> list[Input]:
    """Translate a regimen into model inputs (amounts per patient, zero-order windows).

    A route with several parts (e.g. intranasal: absorbed through the nose, and swallowed
    then absorbed from the gut through the liver) splits each dose between them. On a device
    route each device is its own input at its own time, and the per-device fraction
    (Perez-Ruixo 2021: FRn for the first 28-mg device of a dose, FRn x 0.62 for each later
    one) follows the device's place in its dose however the dose was charted
    (:func:`device_doses`).
    """
    index = {c: i for i, c in enumerate(model.compartments)}
    inputs = []
    places = device_doses(model=model, regimen=regimen)
    for dose, devices in zip(regimen.doses, places, strict=True):
        route = model.route(dose.route)
        given: list[tuple[float, float, dict[str, Array]]]
        if not devices:
            given = [(dose.start_h, dose.amount_mg, {})]
        else:
            assert route.spray_fraction is not None and route.spray_factor is not None
            assert route.device_interval is not None
            interval_h = float(params[route.device_interval][0])
            base = params[route.spray_fraction]
            later = base * params[route.spray_factor]
            each = dose.amount_mg / len(devices)
            given = [
                (dose.start_h + k * interval_h, each, {route.spray_fraction: later if n else base})
                for k, n in enumerate(devices)
            ]
        for start_h, amount_mg, spray in given:
            for part in route.parts:
                amount = amount_mg * _fraction(params, part.fraction, spray)
                if dose.route == "iv_infusion":
                    end = dose.end_h
                elif part.duration is not None:
                    end = start_h + float(params[part.duration][0])
                else:
                    end = start_h
                inputs.append(Input(start_h, end, index[part.to], amount))
    return inputs


def _grid(hours: float, step_min: float) -> tuple[float, int]:
    if not (math.isfinite(hours) and hours > 0):
        raise OutOfRange("hours", hours, "more than 0 h")
    if not (math.isfinite(step_min) and step_min > 0):
        raise OutOfRange("step_min", step_min, "more than 0 min")
    step_h = step_min / 60.0
    n_times = int(math.floor(hours / step_h + 1e-9)) + 1
    if n_times > MAX_GRID_POINTS:
        raise OutOfRange(
            "grid points", n_times, f"at most {MAX_GRID_POINTS} (raise --step-min or lower --hours)"
        )
    return step_h, n_times


def _system_and_plan(model: Model, regimen: Regimen, params: ParameterSet) -> tuple[System, Plan]:
    for route in regimen.routes:
        model.route(route)  # unknown route for this model: UnknownItem
    system = build_matrices(model, params)
    inputs = dose_inputs(model=model, regimen=regimen, params=params)
    return system, make_plan(a=system.a, c=system.c, inputs=inputs)


def _metrics(
    integral: Callable[[list[float]], list[float]],
    time_h: Array,
    plasma: Array,
    regimen: Regimen,
    threshold: float | None,
) -> Metrics:
    i = int(plasma.argmax())
    end = float(time_h[-1])
    # 0, 24, 48, ... before the end, then the end (the last day may be partial)
    day_edges = [24.0 * d for d in range(math.ceil(end / 24.0))] + [end]
    cumulative = integral(day_edges)
    step = float(time_h[1] - time_h[0]) if time_h.size > 1 else 0.0
    above = None if threshold is None else float(np.count_nonzero(plasma > threshold) * step)
    return Metrics(
        cmax_ng_per_ml=float(plasma[i]),
        tmax_h=float(time_h[i]),
        auc_ng_h_per_ml=float(cumulative[-1]),
        auc_by_day_ng_h_per_ml=tuple(
            float(b - a) for a, b in zip(cumulative[:-1], cumulative[1:], strict=True)
        ),
        time_above_h=above,
        threshold_ng_per_ml=threshold,
        total_dose_mg=regimen.total_dose_mg,
    )


def _simulation(
    *,
    model: Model,
    outputs: Sequence[str],
    curves: Array,
    step_h: float,
    integral: Callable[[list[float]], list[float]],
    regimen: Regimen,
    threshold: float | None,
    warnings: tuple[str, ...],
) -> Simulation:
    """The simulation of the model's output curves (plasma first; effects; metabolite)."""
    time_h = step_h * np.arange(curves.shape[1], dtype=np.float64)
    effects = {
        name.split(":", 1)[1]: curves[i]
        for i, name in enumerate(outputs)
        if name.startswith("effect:")
    }
    metabolite = curves[list(outputs).index("metabolite")] if model.metabolite else None
    return Simulation(
        model_id=model.id,
        time_h=time_h,
        plasma_ng_per_ml=curves[0],
        effect_ng_per_ml=effects,
        metabolite_ng_per_ml=metabolite,
        metrics=_metrics(integral, time_h, curves[0], regimen, threshold),
        warnings=warnings,
    )


def simulate(
    *,
    model: Model,
    patient: Patient,
    regimen: Regimen,
    hours: float,
    step_min: float = 1.0,
    threshold_ng_per_ml: float | None = None,
) -> Simulation:
    """Typical-patient plasma, effect-site and metabolite curves, exact on a uniform grid.

    Parameters
    ----------
    model
        A library model (:func:`~ketacare.core.pharmacology.load_model`).
    patient
        Covariates; outside the model's population a ClinicalWarning is issued.
    regimen
        Doses (:func:`~ketacare.core.pharmacology.parse_regimen`).
    hours, step_min
        Output grid ``0, step, ..., hours``.
    threshold_ng_per_ml
        When given, :attr:`Metrics.time_above_h` counts grid time above it.

    Examples
    --------
    >>> from ketacare.core.pharmacology import load_model, parse_regimen
    >>> m = load_model(model_id="clements-250")
    >>> r = parse_regimen({"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 17.5}]},
    ...                   weight_kg=70)
    >>> s = simulate(model=m, patient=Patient(weight_kg=70), regimen=r, hours=2, step_min=30)
    >>> [round(float(x), 1) for x in s.plasma_ng_per_ml]
    [142.7, 67.0, 41.3, 31.2, 26.1]
    """
    typical = _typical(model, patient)
    for message in typical.messages:
        warnings.warn(message, ClinicalWarning, stacklevel=2)
    step_h, n_times = _grid(hours, step_min)
    for route in regimen.routes:
        model.route(route)  # unknown route for this model: UnknownItem
    system = typical.system
    inputs = dose_inputs(model=model, regimen=regimen, params=typical.params)
    plan = make_one_plan(typical.modes, inputs)
    return _simulation(
        model=model,
        outputs=system.outputs,
        curves=evaluate_one_grid(typical.modes, plan, step_h, n_times),  # (O, T)
        step_h=step_h,
        integral=lambda times: integrate_one(typical.modes, plan, times),
        regimen=regimen,
        threshold=threshold_ng_per_ml,
        warnings=typical.messages,
    )


def simulate_reference(
    *,
    model: Model,
    patient: Patient,
    regimen: Regimen,
    hours: float,
    step_min: float = 1.0,
    threshold_ng_per_ml: float | None = None,
) -> Simulation:
    """:func:`simulate` through the population engine (one patient, nothing kept).

    The reference the one-patient path is tested against: the same closed form, computed
    by :func:`~ketacare.core.pharmacology.engine.make_plan` and
    :func:`~ketacare.core.pharmacology.engine.evaluate_grid` with a patient axis.
    """
    messages = check_patient(model=model, patient=patient)
    step_h, n_times = _grid(hours, step_min)
    params = typical_parameters(model, weight_kg=patient.weight_kg, age_years=patient.age_years)
    system, plan = _system_and_plan(model, regimen, params)
    outputs = list(range(len(system.outputs)))
    (_, block), *rest = list(
        evaluate_grid(
            plan, start_h=0.0, step_h=step_h, n_times=n_times, outputs=outputs, block=n_times
        )
    )
    assert not rest and isinstance(block, np.ndarray)
    return _simulation(
        model=model,
        outputs=system.outputs,
        curves=block[:, :, 0],  # (O, T)
        step_h=step_h,
        integral=lambda times: integrate(plan, np.array(times), outputs=[0])[0, 0].tolist(),
        regimen=regimen,
        threshold=threshold_ng_per_ml,
        warnings=messages,
    )
