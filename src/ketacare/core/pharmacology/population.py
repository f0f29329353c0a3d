"""Simulate a virtual population: percentile bands of plasma concentration.

Patients share the given covariates and differ by the model's published
inter-individual variability; percentiles are reduced block by block in time so that
memory stays bounded for large populations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.pharmacology.engine import (
    Input,
    Plan,
    _active_modes,
    evaluate_grid,
    make_plan,
)
from ketacare.core.pharmacology.models import Model
from ketacare.core.pharmacology.regimen import Regimen
from ketacare.core.pharmacology.simulate import (
    Array,
    Patient,
    _grid,
    check_patient,
    dose_inputs,
)
from ketacare.core.pharmacology.system import ParameterSet, build_matrices, sample_parameters

__all__ = ["MAX_POPULATION", "PopulationResult", "simulate_population"]

#: Largest population a single call accepts.
MAX_POPULATION = 100_000
#: from this many patients a row's percentiles come from one multi-k partition
#: (measured with numpy 2.4: 25-30% faster at 2,000 and 10,000 patients, slower at 200)
_MULTI_K_FROM = 1000
#: from this many patients (and without ``keep_curves``) the bands come from the compiled
#: loops of :mod:`ketacare.core.pharmacology.kernel`; below it numpy is as fast
_COMPILED_FROM = 1000
#: rows per piece of work handed to a thread by the compiled path
_ROWS_PER_PIECE = 1024

Kernel = Literal["auto", "compiled", "numpy"]


@dataclass(frozen=True, slots=True)
class PopulationResult:
    """Percentile bands of plasma concentration across ``n`` virtual patients."""

    n: int
    seed: int
    time_h: Array
    percentiles: tuple[float, ...]
    plasma_ng_per_ml: Array  # (P, T)
    curves: Array | None = field(default=None)  # (N, T) when requested


def _positions(n: int, qs: Sequence[float]) -> list[tuple[int, float]]:
    """Each percentile's order statistic (0-based) and interpolation weight, numpy's
    default (linear) definition: position ``(n - 1) * q / 100``."""
    out = []
    for q in qs:
        pos = (n - 1) * q / 100.0
        lo = int(math.floor(pos))
        out.append((lo, pos - lo))
    return out


def _interpolated(
    positions: list[tuple[int, float]], n: int, order_stat: Callable[[int], Array]
) -> Array:
    """Each percentile from the order statistics at and after its position (numpy's
    linear definition), ``order_stat(k)`` giving the values of rank ``k``."""
    rows = []
    for lo, frac in positions:
        low = order_stat(lo)
        rows.append(low + frac * (order_stat(lo + 1) - low) if frac > 0 and lo + 1 < n else low)
    return np.stack(rows)


def _row_percentiles(block: Array, qs: Sequence[float], *, overwrite: bool = False) -> Array:
    """Percentiles along the last axis, numpy's default (linear) definition.

    From :data:`_MULTI_K_FROM` patients on, one multi-k partition places every order
    statistic needed (each position's floor and its neighbour). Below that, nested
    single-k partitions (median first, then each half) are faster; the neighbour order
    statistic needed for interpolation is then the minimum of the range up to the next
    partitioned index. With ``overwrite`` the
    rows of ``block`` are reordered in place instead of copied.
    """
    n = block.shape[-1]
    work = block if overwrite else block.copy()
    positions = _positions(n, qs)
    if n >= _MULTI_K_FROM:
        # one multi-k partition placing each needed order statistic and its neighbour
        # (with numpy 2 it is faster than the nested partitions for a thousand or more)
        needed = {k for lo, _ in positions for k in (lo, min(lo + 1, n - 1))}
        work.partition(sorted(needed), axis=-1)
        return _interpolated(positions, n, lambda k: work[..., k])
    ks = sorted({lo for lo, _ in positions})

    def split(a: int, b: int, wanted: list[int]) -> None:
        if not wanted:
            return
        mid = wanted[len(wanted) // 2]
        work[..., a:b].partition(mid - a, axis=-1)
        split(a, mid, [k for k in wanted if k < mid])
        split(mid + 1, b, [k for k in wanted if k > mid])

    split(0, n, ks)

    def order_stat(k: int) -> Array:
        if k in ks:
            return work[..., k]
        # rank k just after a partitioned index: the least of the range up to the next
        nxt = min([j for j in ks if j > k], default=n - 1)
        least: Array = work[..., k : nxt + 1].min(axis=-1)
        return least

    return _interpolated(positions, n, order_stat)


def upstream_states(a: Array, c_row: Array) -> list[int]:
    """States an output depends on: those it reads and every state flowing into them.

    ``a`` is (N, n, n) with ``a[:, i, j] != 0`` for a flow from state j into state i;
    ``c_row`` is (N, n). The set is closed under inflow, so the sub-system on it evolves
    exactly as it does inside the whole system (a metabolite never flows back into the
    parent drug, so the parent's plasma does not depend on the metabolite's states).
    """
    flows = np.any(a != 0, axis=0)  # (n, n): into i from j
    found = {int(i) for i in np.flatnonzero(np.any(c_row != 0, axis=0))}
    frontier = list(found)
    while frontier:
        into = frontier.pop()
        for source in np.flatnonzero(flows[into]):
            if int(source) not in found:
                found.add(int(source))
                frontier.append(int(source))
    return sorted(found)


def _plasma_plan(model: Model, regimen: Regimen, params: ParameterSet) -> Plan:
    """The modal plan of plasma alone, on the states plasma depends on.

    The decomposition of the whole system (metabolite and effect-site states included)
    costs about twice as much for a model such as Perez-Ruixo's (7 of 11 states).
    """
    for route in regimen.routes:
        model.route(route)  # unknown route for this model: UnknownItem
    system = build_matrices(model, params)
    keep = upstream_states(system.a, system.c[:, 0, :])
    where = {state: i for i, state in enumerate(keep)}
    a = system.a[:, keep][:, :, keep]
    c = system.c[:, :1][:, :, keep]
    inputs = [
        Input(item.start_h, item.end_h, where[item.state], item.amount_mg)
        for item in dose_inputs(model=model, regimen=regimen, params=params)
        if item.state in where
    ]
    return make_plan(a=a, c=c, inputs=inputs)


def _compiled_bands(
    plan: Plan,
    *,
    step_h: float,
    n_times: int,
    percentiles: Sequence[float],
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> Array:
    """Percentile bands of plasma (output 0) from the compiled loops, exactly as numpy's
    percentiles of the same curves (see :mod:`ketacare.core.pharmacology.kernel`)."""
    from ketacare.core.pharmacology import kernel  # numba: imported when first needed

    n = plan.n_patients
    modes = _active_modes(plan, [0])
    lam = np.ascontiguousarray(plan.lam[:, modes].T)  # (K, N)
    a = np.ascontiguousarray(plan.a[:, :, 0, :][:, :, modes].transpose(0, 2, 1))  # (S, K, N)
    c = np.ascontiguousarray(plan.c[:, :, 0])  # (S, N)
    positions = _positions(n, percentiles)
    needed = sorted({k for lo, frac in positions for k in (lo, min(lo + 1, n - 1))})
    # ranks close together share one band of candidates
    groups = [0]
    for i in range(1, len(needed)):
        if needed[i] - needed[i - 1] > 4 * kernel.MARGIN:
            groups.append(i)
    groups.append(len(needed))
    ranks = np.array(needed, dtype=np.int64)
    bounds = np.array(groups, dtype=np.int64)
    stats = np.empty((len(needed), n_times))
    pieces = list(range(0, n_times, _ROWS_PER_PIECE))

    def piece(j0: int) -> None:
        j1 = min(n_times, j0 + _ROWS_PER_PIECE)
        # a contiguous block: the loops are compiled (and cached) for contiguous arrays
        block = np.empty((len(needed), j1 - j0))
        kernel.band_rows(lam, a, c, plan.breaks, 0.0, step_h, j0, ranks, bounds, block)
        stats[:, j0:j1] = block

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for _ in pool.map(piece, pieces):
            done += 1
            if progress is not None:
                progress(done, len(pieces))
    row_of = {k: i for i, k in enumerate(needed)}
    return _interpolated(positions, n, lambda k: stats[row_of[k]])


def simulate_population(
    *,
    model: Model,
    patient: Patient,
    regimen: Regimen,
    n: int,
    seed: int,
    hours: float,
    step_min: float = 1.0,
    percentiles: Sequence[float] = (5.0, 50.0, 95.0),
    keep_curves: bool = False,
    workers: int = 1,
    omega_override: Mapping[str, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    kernel: Kernel = "auto",
) -> PopulationResult:
    """Plasma percentile bands over ``n`` virtual patients with the model's published IIV.

    Patients share the given covariates and differ by log-normal (logit-normal for
    fractions) random effects drawn with ``numpy.random.default_rng(seed)``. Percentiles
    are computed block by block in time, so memory stays bounded (about 50 MB per worker
    for 10,000 patients) unless ``keep_curves`` asks for every curve.

    ``kernel`` chooses how: ``"numpy"`` computes the curves block by block and partitions
    each row (the reference); ``"compiled"`` uses the loops of
    :mod:`~ketacare.core.pharmacology.kernel`, which never store the curves and find each
    row's order statistics from the row before (the same bands, to the last few bits of
    the carried exponentials); ``"auto"`` takes the compiled loops from
    :data:`_COMPILED_FROM` patients on, when curves are not kept.

    Raises
    ------
    InvalidInput
        When the model has no published variability and no ``omega_override`` is given.

    Examples
    --------
    >>> from ketacare.core.pharmacology import load_model, parse_regimen
    >>> m = load_model(model_id="perez-ruixo-2021")
    >>> r = parse_regimen({"doses": [{"route": "intranasal", "start_h": 0, "amount_mg": 56}]},
    ...                   weight_kg=70)
    >>> pop = simulate_population(model=m, patient=Patient(weight_kg=70, age_years=40),
    ...                           regimen=r, n=200, seed=1, hours=4, step_min=60)
    >>> pop.plasma_ng_per_ml.shape
    (3, 5)
    >>> bool(np.all(pop.plasma_ng_per_ml[0] <= pop.plasma_ng_per_ml[2]))
    True
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_POPULATION:
        raise OutOfRange("population", n, f"1 to {MAX_POPULATION} patients")
    if not model.has_variability and not omega_override:
        raise InvalidInput(
            f"model {model.id} has no published inter-individual variability, so a population "
            "cannot be simulated; use a model with variability"
        )
    for q in percentiles:
        if not 0 <= q <= 100:
            raise OutOfRange("percentile", q, "0 to 100")
    check_patient(model=model, patient=patient)
    step_h, n_times = _grid(hours, step_min)
    rng = np.random.default_rng(seed)
    params = sample_parameters(
        model,
        weight_kg=patient.weight_kg,
        age_years=patient.age_years,
        n=n,
        rng=rng,
        omega_override=omega_override,
    )
    plan = _plasma_plan(model, regimen, params)
    if kernel not in ("auto", "compiled", "numpy"):
        raise InvalidInput(f"unknown kernel {kernel!r}; allowed: auto, compiled, numpy")
    compiled = kernel == "compiled" or (
        kernel == "auto" and not keep_curves and n >= _COMPILED_FROM
    )
    if compiled and keep_curves:
        raise InvalidInput("the compiled kernel does not keep curves; use kernel='numpy'")
    if compiled:
        return PopulationResult(
            n=n,
            seed=seed,
            time_h=step_h * np.arange(n_times, dtype=np.float64),
            percentiles=tuple(float(q) for q in percentiles),
            plasma_ng_per_ml=_compiled_bands(
                plan,
                step_h=step_h,
                n_times=n_times,
                percentiles=percentiles,
                workers=workers,
                progress=progress,
            ),
        )
    bands = np.empty((len(percentiles), n_times))
    curves = np.empty((n, n_times)) if keep_curves else None

    def reduce(j0: int, block: Array) -> Array:
        if curves is not None:
            curves[:, j0 : j0 + block.shape[1]] = block[0].T
        return _row_percentiles(block[0], percentiles, overwrite=True)

    for j0, band in evaluate_grid(
        plan,
        start_h=0.0,
        step_h=step_h,
        n_times=n_times,
        outputs=[0],
        reduce=reduce,
        workers=workers,
        progress=progress,
    ):
        assert isinstance(band, np.ndarray)
        bands[:, j0 : j0 + band.shape[1]] = band
    return PopulationResult(
        n=n,
        seed=seed,
        time_h=step_h * np.arange(n_times, dtype=np.float64),
        percentiles=tuple(float(q) for q in percentiles),
        plasma_ng_per_ml=bands,
        curves=curves,
    )
