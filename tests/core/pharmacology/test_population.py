"""Populations: seeded sampling, log-normal variability, exact per-patient curves, percentiles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from ketacare.core.pharmacology import Patient, load_model, make_regimen, simulate_population
from ketacare.core.pharmacology.regimen import Dose
from ketacare.core.pharmacology.system import build_matrices, sample_parameters

MODEL = load_model(model_id="perez-ruixo-2021")
PATIENT = Patient(weight_kg=70, age_years=45)
REGIMEN = make_regimen((Dose("iv_infusion", 0.0, 40.0, 2.0), Dose("oral", 24.0, 100.0)))


def run(**kw):
    args = {
        "model": MODEL,
        "patient": PATIENT,
        "regimen": REGIMEN,
        "n": 400,
        "seed": 7,
        "hours": 48,
        "step_min": 10,
        "keep_curves": True,
    }
    args.update(kw)
    return simulate_population(**args)


def test_percentiles_equal_numpy_percentiles_of_the_curves():
    pop = run(workers=2)
    expected = np.percentile(pop.curves, [5, 50, 95], axis=0)
    np.testing.assert_allclose(pop.plasma_ng_per_ml, expected, rtol=1e-12, atol=1e-12)


def test_a_page_sized_band_equals_numpy_percentiles_of_the_curves():
    # 2,000 patients: the simulation page's largest band, computed by the multi-k path
    pop = run(n=2000, hours=12, step_min=30)
    expected = np.percentile(pop.curves, [5, 50, 95], axis=0)
    np.testing.assert_allclose(pop.plasma_ng_per_ml, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 199, 999, 1000, 1001, 2000, 4321])
def test_row_percentiles_equal_numpy_on_both_paths(n: int) -> None:
    from ketacare.core.pharmacology.population import _MULTI_K_FROM, _row_percentiles

    assert 999 < _MULTI_K_FROM <= 1000  # the sizes above cover both paths and the edge
    rng = np.random.default_rng(n)
    block = rng.lognormal(size=(7, n))
    block[1] = 3.0  # every value tied
    block[2] = np.round(block[2], 1)  # many ties
    qs = (0.0, 2.5, 5.0, 50.0, 95.0, 99.9, 100.0)
    expected = np.percentile(block, qs, axis=-1)
    np.testing.assert_allclose(_row_percentiles(block, qs), expected, rtol=1e-13, atol=0)


def test_seeded_and_block_independent():
    a = run(seed=3)
    b = run(seed=3, workers=2)
    c = run(seed=4)
    np.testing.assert_array_equal(a.plasma_ng_per_ml, b.plasma_ng_per_ml)
    assert not np.allclose(a.plasma_ng_per_ml, c.plasma_ng_per_ml)


def test_each_virtual_patient_is_exact():
    """Patient 0 of the population against its own ODE solution (stiff solver, tight rtol)."""
    pop = run(n=50, seed=11)
    params = sample_parameters(
        MODEL, weight_kg=70.0, age_years=45.0, n=50, rng=np.random.default_rng(11)
    )
    for i in (0, 17):
        a = build_matrices(
            MODEL, type(params)(values={k: v[i : i + 1] for k, v in params.values.items()}, n=1)
        ).a[0]
        idx = {c: j for j, c in enumerate(MODEL.compartments)}
        fgut = params["Fgut"][i]
        dpo = params["Dpo"][i]
        x = np.zeros(a.shape[0])
        times = pop.time_h
        out = np.zeros(times.size)
        vc = params["Vc"][i]
        pieces = [
            (0.0, 2.0, idx["central"], 20.0),
            (2.0, 24.0, None, 0.0),
            (24.0, 24.0 + dpo, idx["oral_depot"], 100 * fgut / dpo),
            (24.0 + dpo, 49.0, None, 0.0),
        ]
        for t0, t1, state, rate in pieces:
            u = np.zeros(a.shape[0])
            if state is not None:
                u[state] = rate
            mask = (times >= t0) & (times < t1)
            sol = solve_ivp(
                lambda t, y, u=u, a=a: a @ y + u,
                (t0, t1),
                x,
                method="Radau",
                jac=a,
                rtol=1e-10,
                atol=1e-14,
                t_eval=np.append(times[mask], t1),
            )
            out[mask] = sol.y[idx["central"], :-1] / vc * 1000
            x = sol.y[:, -1]
        ref_peak = out.max()
        keep = out > 0.01 * ref_peak
        rel = np.abs(pop.curves[i][keep] - out[keep]) / out[keep]
        assert rel.max() < 1e-6


def test_variability_is_log_normal_with_published_cv():
    params = sample_parameters(
        MODEL, weight_kg=70.0, age_years=45.0, n=20000, rng=np.random.default_rng(0)
    )
    log_vc = np.log(params["Vc"])
    assert abs(np.std(log_vc) - np.sqrt(np.log1p(0.275**2))) < 0.01
    assert abs(np.median(params["Vc"]) - 192.0) < 3.0
    assert np.all((params["FRn"] > 0) & (params["FRn"] < 1))
    assert np.all(params["Q1"] == 84.3)  # no published variability: fixed


def test_upstream_states_follow_the_flows_into_the_output() -> None:
    from ketacare.core.pharmacology.population import upstream_states

    # depot 0 -> central 1 -> metabolite 2; 1 <-> peripheral 3; 4 is fed by the metabolite
    a = np.zeros((2, 5, 5))
    a[:, 0, 0] = -1.0
    a[:, 1, 0] = 1.0
    a[:, 1, 1] = -2.0
    a[:, 2, 1] = 0.5
    a[:, 3, 1] = 0.5
    a[:, 1, 3] = 0.3
    a[:, 3, 3] = -0.3
    a[:, 2, 2] = -0.1
    a[1, 4, 2] = 0.1  # only the second patient has this flow
    plasma = np.zeros((2, 5))
    plasma[:, 1] = 1.0
    assert upstream_states(a, plasma) == [0, 1, 3]
    downstream = np.zeros((2, 5))
    downstream[1, 4] = 1.0
    assert upstream_states(a, downstream) == [0, 1, 2, 3, 4]


def test_the_band_on_plasma_states_alone_matches_every_curve_of_the_whole_system() -> None:
    # Perez-Ruixo has 11 states, plasma depends on 7; each patient's plasma from the whole
    # system (the engine's exact modal solution, metabolite states included)
    from ketacare.core.pharmacology.engine import evaluate, make_plan
    from ketacare.core.pharmacology.simulate import dose_inputs

    pop = run(n=50, hours=30, step_min=30)
    rng = np.random.default_rng(7)
    params = sample_parameters(MODEL, weight_kg=70.0, age_years=45.0, n=50, rng=rng)
    system = build_matrices(MODEL, params)
    assert system.a.shape[1] == 11
    plan = make_plan(
        a=system.a, c=system.c, inputs=dose_inputs(model=MODEL, regimen=REGIMEN, params=params)
    )
    whole = evaluate(plan, pop.time_h, outputs=[0])[0]
    np.testing.assert_allclose(pop.curves, whole, rtol=1e-9, atol=1e-9 * whole.max())
