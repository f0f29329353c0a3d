"""Hypothesis properties: linearity, superposition, non-negativity, mass balance, steady state."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.core.pharmacology import Patient, load_model, make_regimen, simulate
from ketacare.core.pharmacology.engine import integrate, make_plan
from ketacare.core.pharmacology.regimen import Dose
from ketacare.core.pharmacology.simulate import dose_inputs
from ketacare.core.pharmacology.system import build_matrices, typical_parameters

pytestmark = pytest.mark.filterwarnings("ignore:model .* unverified")

MODELS = ["domino", "clements-250", "perez-ruixo-2021"]
ROUTES = {
    "domino": ["iv_bolus", "iv_infusion"],
    "clements-250": ["iv_bolus", "iv_infusion"],
    "perez-ruixo-2021": ["iv_bolus", "iv_infusion", "oral"],  # intranasal F depends on dose
}


@st.composite
def regimens(draw, model_id):
    n = draw(st.integers(1, 4))
    starts = sorted(draw(st.lists(st.floats(0, 48), min_size=n, max_size=n)))
    doses = []
    line_free = 0.0
    for start in starts:
        route = draw(st.sampled_from(ROUTES[model_id]))
        amount = draw(st.floats(0.5, 200))
        if route == "iv_infusion":
            start = max(start, line_free)
            duration = draw(st.floats(0.05, 6))
            line_free = start + duration
            doses.append(Dose(route, start, amount, duration))
        else:
            doses.append(Dose(route, start, amount))
    doses.sort(key=lambda d: d.start_h)
    return make_regimen(tuple(doses))


def run(model_id, regimen, hours=72.0):
    return simulate(
        model=load_model(model_id=model_id),
        patient=Patient(weight_kg=70, age_years=50),
        regimen=regimen,
        hours=hours,
        step_min=15,
    )


@settings(max_examples=25, deadline=None)
@given(data=st.data(), model_id=st.sampled_from(MODELS), factor=st.floats(0.1, 10))
def test_linear_in_dose_and_never_negative(data, model_id, factor):
    regimen = data.draw(regimens(model_id))
    scaled = make_regimen(
        tuple(Dose(d.route, d.start_h, d.amount_mg * factor, d.duration_h) for d in regimen.doses)
    )
    base, big = run(model_id, regimen), run(model_id, scaled)
    assert np.all(base.plasma_ng_per_ml >= 0)
    assert np.all(base.metrics.cmax_ng_per_ml >= 0)
    scale = base.plasma_ng_per_ml.max()
    np.testing.assert_allclose(
        big.plasma_ng_per_ml, factor * base.plasma_ng_per_ml, rtol=1e-9, atol=1e-9 * scale * factor
    )


@settings(max_examples=25, deadline=None)
@given(data=st.data(), model_id=st.sampled_from(MODELS))
def test_superposition(data, model_id):
    a = data.draw(regimens(model_id))
    b = data.draw(regimens(model_id))
    # keep the infusions of b off a's line by moving b two days later
    b = make_regimen(
        tuple(Dose(d.route, d.start_h + 60, d.amount_mg, d.duration_h) for d in b.doses)
    )
    both = make_regimen(a.doses + b.doses)
    sa, sb, sab = run(model_id, a, 150), run(model_id, b, 150), run(model_id, both, 150)
    scale = sab.plasma_ng_per_ml.max()
    np.testing.assert_allclose(
        sab.plasma_ng_per_ml,
        sa.plasma_ng_per_ml + sb.plasma_ng_per_ml,
        rtol=1e-9,
        atol=1e-10 * scale,
    )
    if sab.metabolite_ng_per_ml is not None:
        np.testing.assert_allclose(
            sab.metabolite_ng_per_ml,
            sa.metabolite_ng_per_ml + sb.metabolite_ng_per_ml,
            rtol=1e-9,
            atol=1e-10 * sab.metabolite_ng_per_ml.max(),
        )
    assert (
        abs(sab.metrics.auc_ng_h_per_ml - sa.metrics.auc_ng_h_per_ml - sb.metrics.auc_ng_h_per_ml)
        < 1e-8 * sab.metrics.auc_ng_h_per_ml
    )


@settings(max_examples=20, deadline=None)
@given(data=st.data(), model_id=st.sampled_from(MODELS), t_end=st.floats(0.1, 200))
def test_mass_balance(data, model_id, t_end):
    """Amount that entered = amount in the body + amount eliminated (all in mg)."""
    model = load_model(model_id=model_id)
    regimen = data.draw(regimens(model_id))
    params = typical_parameters(model, weight_kg=70.0, age_years=50.0)
    system = build_matrices(model, params)
    n_comp = len(model.compartments)
    a = system.a[:, :n_comp, :n_comp]
    inputs = dose_inputs(model=model, regimen=regimen, params=params)
    c = np.eye(n_comp)[None]  # outputs: the amount in every compartment
    plan = make_plan(a=a, c=c, inputs=inputs)
    from ketacare.core.pharmacology.engine import evaluate

    amounts = evaluate(plan, np.array([t_end]))[:, 0, 0]
    integrals = integrate(plan, np.array([t_end]))[:, 0, 0]
    elimination = -a[0].sum(axis=0)  # per-compartment rate of leaving the system
    eliminated = float(elimination @ integrals)
    entered = 0.0
    for item in inputs:
        if item.end_h == item.start_h:
            entered += float(item.amount_mg[0]) if item.start_h <= t_end else 0.0
        else:
            frac = np.clip((t_end - item.start_h) / (item.end_h - item.start_h), 0, 1)
            entered += float(item.amount_mg[0]) * frac
    assert abs(amounts.sum() + eliminated - entered) < 1e-9 * max(entered, 1e-12) + 1e-12


def test_steady_state_is_rate_over_clearance():
    """A long constant infusion reaches Css = rate / CL (CL = k10 * V1 for Domino/Clements;
    for Perez-Ruixo, well-stirred hepatic CL = Qh * CLint / (Qh + CLint), CLint = Vh (kel+kmet))."""
    rate = 20.0  # mg/h
    cls = {
        "domino": 0.4381 * 60 * 0.063 * 70,
        "clements-250": 0.0109 * 60 * 1.7522 * 70,
        "perez-ruixo-2021": 151.0 * (101.0 * 3.88) / (151.0 + 101.0 * 3.88),
    }
    for model_id, cl in cls.items():
        regimen = make_regimen((Dose("iv_infusion", 0.0, rate * 5000, 5000.0),))
        sim = simulate(
            model=load_model(model_id=model_id),
            patient=Patient(weight_kg=70, age_years=50),
            regimen=regimen,
            hours=4999,
            step_min=600,
        )
        css = rate / cl * 1000
        assert abs(sim.plasma_ng_per_ml[-1] - css) < 1e-6 * css, model_id
        # AUC to (practically) infinity after an IV bolus equals dose / CL
        bolus = make_regimen((Dose("iv_bolus", 0.0, 100.0),))
        sim = simulate(
            model=load_model(model_id=model_id),
            patient=Patient(weight_kg=70, age_years=50),
            regimen=bolus,
            hours=5000,
            step_min=600,
        )
        auc = 100.0 / cl * 1000
        assert abs(sim.metrics.auc_ng_h_per_ml - auc) < 1e-9 * auc, model_id
