"""The compiled loops against independent computations: every row from the closed form
evaluated directly with numpy, every order statistic from a full sort."""

from __future__ import annotations

import numpy as np
import pytest

from ketacare.core.errors import InvalidInput
from ketacare.core.pharmacology import Patient, load_model, make_regimen, simulate_population
from ketacare.core.pharmacology.engine import Input, evaluate_grid, make_plan
from ketacare.core.pharmacology.kernel import REANCHOR, band_rows, fill_rows
from ketacare.core.pharmacology.regimen import Dose

PATIENT = Patient(weight_kg=70, age_years=45)


def crossing_family(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Curves ``c_s + sum_k a_sk exp(lam_k tau)`` over three segments, built to cross
    often (random signs and rates), with a flat zero segment where every value ties."""
    rng = np.random.default_rng(seed)
    k = 3
    lam = -rng.uniform(0.05, 3.0, size=(k, n))
    a = rng.normal(0.0, 5.0, size=(3, k, n))
    c = rng.uniform(0.0, 20.0, size=(3, n))
    a[1] = 0.0  # segment 1: every curve is its constant ...
    c[1] = 0.0  # ... zero: all values tie
    breaks = np.array([0.0, 2.0, 2.5])
    return lam, a, c, breaks


def direct_rows(lam, a, c, breaks, start_h, step_h, n_rows):
    """The same closed form evaluated with an exponential per point (no carrying)."""
    times = start_h + step_h * np.arange(n_rows)
    seg = np.searchsorted(breaks, times, side="right") - 1
    tau = times - breaks[seg]
    rows = c[seg] + np.einsum("tkn,tkn->tn", a[seg], np.exp(lam[None] * tau[:, None, None]))
    return np.maximum(rows, 0.0)


@pytest.mark.parametrize("n", [1, 5, 300, 2000])
def test_fill_rows_equals_the_closed_form_point_by_point(n: int) -> None:
    lam, a, c, breaks = crossing_family(n, seed=n)
    step = 1 / 60
    rows = 3 * REANCHOR + 17  # crosses re-anchoring and both segment breaks
    out = np.empty((rows, n))
    fill_rows(lam, a, c, breaks, 0.0, step, 0, out)
    expected = direct_rows(lam, a, c, breaks, 0.0, step, rows)
    scale = np.abs(a).sum(axis=1).max() + np.abs(c).max()
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("n", [1, 2, 33, 1000, 3001])
def test_band_rows_gives_the_exact_order_statistics_of_each_row(n: int) -> None:
    lam, a, c, breaks = crossing_family(n, seed=100 + n)
    step = 1 / 60
    rows = 400
    wanted = sorted({0, n // 20, n // 20 + 1, n // 2, n // 2 + 1, (19 * n) // 20, n - 1})
    wanted = [k for k in wanted if k < n]
    ranks = np.array(wanted, dtype=np.int64)
    groups = np.array([0, len(wanted) // 2, len(wanted)], dtype=np.int64)
    if groups[1] == 0:
        groups = np.array([0, len(wanted)], dtype=np.int64)
    stats = np.empty((len(wanted), rows))
    band_rows(lam, a, c, breaks, 0.0, step, 7, ranks, groups, stats)
    # the reference: the rows evaluated point by point, fully sorted
    expected = np.sort(direct_rows(lam, a, c, breaks, 7 * step, step, rows), axis=1)[:, ranks].T
    scale = np.abs(a).sum(axis=1).max() + np.abs(c).max()
    np.testing.assert_allclose(stats, expected, rtol=0, atol=1e-12 * scale)
    # the tied stretch (every value zero) comes out exactly zero
    tied = (7 + np.arange(rows)) * step
    zero = (tied >= 2.0) & (tied < 2.5)
    assert zero.any() and np.all(stats[:, zero] == 0.0)


def test_the_compiled_band_equals_numpy_percentiles_of_the_numpy_curves() -> None:
    # Perez-Ruixo: 11 states (parent, metabolite, effect sites), IV then oral, 2,500
    # patients: the compiled bands against numpy's percentiles of the reference curves
    model = load_model(model_id="perez-ruixo-2021")
    regimen = make_regimen((Dose("iv_infusion", 1.0, 40.0, 2.0), Dose("oral", 24.0, 100.0)))
    args = {
        "model": model,
        "patient": PATIENT,
        "regimen": regimen,
        "n": 2500,
        "seed": 3,
        "hours": 36,
        "step_min": 5,
    }
    qs = (0.0, 2.5, 5.0, 50.0, 95.0, 97.5, 100.0)
    reference = simulate_population(**args, keep_curves=True, kernel="numpy", percentiles=qs)
    expected = np.percentile(reference.curves, qs, axis=0)
    peak = float(expected.max())
    for workers in (1, 2):
        compiled = simulate_population(**args, kernel="compiled", percentiles=qs, workers=workers)
        np.testing.assert_allclose(compiled.plasma_ng_per_ml, expected, rtol=0, atol=1e-12 * peak)
        # before the first dose (1 h) every patient is at zero
        assert np.all(compiled.plasma_ng_per_ml[:, compiled.time_h < 1.0] == 0.0)


def test_auto_takes_the_compiled_loops_only_for_large_populations_without_curves() -> None:
    model = load_model(model_id="perez-ruixo-2021")
    regimen = make_regimen((Dose("intranasal", 0.0, 56.0),))
    args = {"model": model, "patient": PATIENT, "regimen": regimen, "seed": 1, "hours": 4}
    small = simulate_population(**args, n=999, step_min=30)
    assert small.curves is None
    kept = simulate_population(**args, n=1000, step_min=30, keep_curves=True)
    assert kept.curves is not None and kept.curves.shape == (1000, 9)
    with pytest.raises(InvalidInput, match="does not keep curves"):
        simulate_population(**args, n=1000, keep_curves=True, kernel="compiled")
    with pytest.raises(InvalidInput, match="allowed: auto, compiled, numpy"):
        simulate_population(**args, n=10, kernel="fast")  # type: ignore[arg-type]


def test_evaluate_grid_compiled_blocks_equal_the_numpy_blocks() -> None:
    rng = np.random.default_rng(5)
    n = 1200
    k12, k21, k10 = rng.uniform(0.2, 1.0, (3, n))
    a = np.zeros((n, 2, 2))
    a[:, 0, 0] = -(k10 + k12)
    a[:, 0, 1] = k21
    a[:, 1, 0] = k12
    a[:, 1, 1] = -k21
    c = np.zeros((n, 2, 2))
    c[:, 0, 0] = 1000 / rng.uniform(5, 20, n)
    c[:, 1, 1] = 1.0
    inputs = [Input(0.5, 3.0, 0, np.full(n, 50.0)), Input(6.0, 6.0, 0, np.full(n, 20.0))]
    plan = make_plan(a=a, c=c, inputs=inputs)
    kw = {"start_h": 0.0, "step_h": 0.05, "n_times": 500, "outputs": [0, 1], "block": 97}
    ref = np.concatenate([b for _, b in evaluate_grid(plan, **kw, compiled=False)], axis=1)
    got = np.concatenate([b for _, b in evaluate_grid(plan, **kw, compiled=True)], axis=1)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * float(ref.max()))
