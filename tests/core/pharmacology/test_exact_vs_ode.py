"""Every model and route against an independent high-accuracy ODE solution (scipy solve_ivp).

The right-hand sides below are written out by hand from the published constants (opentiva's
source for Domino and Clements, the nlmixr2lib trace of Perez-Ruixo 2021 Table 3), not built
from ketacare's TOML files or matrices, so they check the data files, the matrix assembly,
the dosing translation and the exact solver at once.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate

LN2 = math.log(2.0)


def ode_solution(rhs, n_states, events, times, *, rtol=1e-10):
    """Integrate dx/dt = rhs(t, x, rates) segment by segment.

    ``events`` is a list of (t, kind, state, amount_or_rate, end) with kind 'bolus' (jump)
    or 'rate' (constant input into ``state`` from t to end).
    """
    # the systems are linear: the Jacobian is the constant matrix of the hand-written rhs
    zero = rhs(0.0, np.zeros(n_states))
    jacobian = np.column_stack([rhs(0.0, e) - zero for e in np.eye(n_states)])
    breaks = sorted({0.0, *(e[0] for e in events), *(e[4] for e in events if e[1] == "rate")})
    breaks.append(times[-1] + 1.0)
    x = np.zeros(n_states)
    out = np.zeros((times.size, n_states))
    for b0, b1 in zip(breaks[:-1], breaks[1:], strict=True):
        for t0, kind, state, amount, _ in events:
            if kind == "bolus" and t0 == b0:
                x[state] += amount
        rates = np.zeros(n_states)
        for t0, kind, state, rate, end in events:
            if kind == "rate" and t0 <= b0 < end:
                rates[state] += rate
        mask = (times >= b0) & (times < b1)
        t_eval = np.append(times[mask], b1)
        sol = solve_ivp(
            lambda t, y, r=rates: rhs(t, y) + r,
            (b0, b1),
            x,
            method="Radau",
            jac=jacobian,
            rtol=rtol,
            atol=1e-14,
            t_eval=t_eval,
        )
        assert sol.success
        out[mask] = sol.y[:, :-1].T
        x = sol.y[:, -1].copy()
    return out


def assert_close(ours, reference, label):
    peak = reference.max()
    mask = reference > 0.01 * peak
    rel = np.abs(ours[mask] - reference[mask]) / reference[mask]
    worst = int(np.argmax(rel))
    assert rel.max() < 1e-6, (
        f"{label}: max rel err {rel.max():.2e} at index {np.flatnonzero(mask)[worst]}"
    )


# ---------------------------------------------------------------- Domino (3 cmt + effect site)


def domino_rhs(weight):
    v1 = 0.063 * weight
    k10, k12, k13, k21, k31, ke0 = (x * 60 for x in (0.4381, 0.5921, 0.5900, 0.2470, 0.0146, 0.652))

    def rhs(_t, y):
        a1, a2, a3, ce = y
        return np.array(
            [
                -(k10 + k12 + k13) * a1 + k21 * a2 + k31 * a3,
                k12 * a1 - k21 * a2,
                k13 * a1 - k31 * a3,
                ke0 * (a1 / v1 - ce),
            ]
        )

    return rhs, v1


def clements_rhs(weight):
    v1 = 1.7522 * weight
    k10, k12, k21, ke0 = (x * 60 for x in (0.0109, 0.0186, 0.0137, 5.2))

    def rhs(_t, y):
        a1, a2, ce = y
        return np.array([-(k10 + k12) * a1 + k21 * a2, k12 * a1 - k21 * a2, ke0 * (a1 / v1 - ce)])

    return rhs, v1


IV_REGIMEN = {
    "doses": [
        {"route": "iv_bolus", "start_h": 0, "amount_mg": 10},
        {"route": "iv_infusion", "start_h": 0.5, "duration_h": 4, "rate_mg_per_kg_per_h": 0.35},
        {"route": "iv_infusion", "start_h": 4.5, "duration_h": 1, "rate_mg_per_h": 10},
        {"route": "iv_infusion", "start_h": 24, "duration_h": 0.667, "amount_mg": 35},
    ]
}


@pytest.mark.parametrize("model_id", ["domino", "clements-250"])
@pytest.mark.parametrize("weight", [55.0, 92.0])
def test_racemic_iv_models_match_ode(model_id, weight):
    rhs, v1 = (domino_rhs if model_id == "domino" else clements_rhs)(weight)
    n = 4 if model_id == "domino" else 3
    events = [
        (0.0, "bolus", 0, 10.0, 0.0),
        (0.5, "rate", 0, 0.35 * weight, 4.5),
        (4.5, "rate", 0, 10.0, 5.5),
        (24.0, "rate", 0, 35 / 0.667, 24.667),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate(
            model=load_model(model_id=model_id),
            patient=Patient(weight_kg=weight),
            regimen=parse_regimen(IV_REGIMEN, weight_kg=weight),
            hours=36,
            step_min=2,
        )
    ref = ode_solution(rhs, n, events, sim.time_h)
    assert_close(sim.plasma_ng_per_ml, ref[:, 0] / v1 * 1000, f"{model_id} plasma")
    assert_close(sim.effect_ng_per_ml["tpeak_1min"], ref[:, -1] * 1000, f"{model_id} effect")


# ------------------------------------------- Perez-Ruixo 2021 (esketamine + noresketamine)

PR = {
    "FRn": 0.54,
    "FRn_next": 0.62,
    "ka_n": 2.93,
    "Dsw": 0.53,
    "ka_sw": 1.45,
    "Dpo": 0.32,
    "ka_po": 0.97,
    "Fgut": 0.64,
    "Vc": 192.0,
    "Q1": 84.3,
    "Vp": 143.0,
    "Q2": 37.6,
    "Vp2": 417.0,
    "Qh": 151.0,
    "Vh": 101.0,
    "kel": 1.11,
    "kmet": 2.77,
    "Vcn": 70.0,
    "CLn": 38.0,
    "Vpn": 115.0,
    "Q3": 26.1,
}
# states: 0 nasal, 1 swallowed, 2 oral, 3 central, 4 p1, 5 p2, 6 liver, 7 nesk c, 8 nesk p,
#         9 Ce CRPS (t1/2 10.9 d), 10 Ce acute (t1/2 11.8 min)


def perez_ruixo_rhs(age=None):
    p = dict(PR)
    if age is not None and age > 60:
        p["Qh"] = 151.0 - 2.19 * (age - 60)
    ke_crps = LN2 / (10.9 * 24)
    ke_acute = LN2 / (11.8 / 60)

    def rhs(_t, y):
        nasal, sw, oral, c, p1, p2, liv, nc, np_, e1, e2 = y
        cp = c / p["Vc"]
        return np.array(
            [
                -p["ka_n"] * nasal,
                -p["ka_sw"] * sw,
                -p["ka_po"] * oral,
                p["ka_n"] * nasal
                + p["Q1"] / p["Vp"] * p1
                + p["Q2"] / p["Vp2"] * p2
                + p["Qh"] / p["Vh"] * liv
                - (p["Q1"] + p["Q2"] + p["Qh"]) / p["Vc"] * c,
                p["Q1"] / p["Vc"] * c - p["Q1"] / p["Vp"] * p1,
                p["Q2"] / p["Vc"] * c - p["Q2"] / p["Vp2"] * p2,
                p["ka_sw"] * sw
                + p["ka_po"] * oral
                + p["Qh"] / p["Vc"] * c
                - (p["Qh"] / p["Vh"] + p["kel"] + p["kmet"]) * liv,
                p["kmet"] * liv + p["Q3"] / p["Vpn"] * np_ - (p["CLn"] + p["Q3"]) / p["Vcn"] * nc,
                p["Q3"] / p["Vcn"] * nc - p["Q3"] / p["Vpn"] * np_,
                ke_crps * (cp - e1),
                ke_acute * (cp - e2),
            ]
        )

    return rhs


def nasal_events(t, mg, first=True):
    """One intranasal dose as the label gives it: 28-mg devices 5 minutes apart; the first
    device of a dose absorbs FRn through the nose, each later one FRn x 0.62 (Table 3)."""
    events = []
    for k in range(math.ceil(mg / 28)):
        frn = PR["FRn"] * (1.0 if first and k == 0 else PR["FRn_next"])
        at = t + k * 5 / 60
        swallowed = 28 * (1 - frn) * PR["Fgut"]
        events += [
            (at, "bolus", 0, 28 * frn, at),
            (at, "rate", 1, swallowed / PR["Dsw"], at + PR["Dsw"]),
        ]
    return events


def oral_events(t, mg):
    return [(t, "rate", 2, mg * PR["Fgut"] / PR["Dpo"], t + PR["Dpo"])]


ROUTE_CASES = {
    "iv_bolus": (
        [{"route": "iv_bolus", "start_h": 1, "amount_mg": 20}],
        [(1.0, "bolus", 3, 20.0, 1.0)],
    ),
    "iv_infusion": (
        [{"route": "iv_infusion", "start_h": 0, "duration_h": 100, "rate_mg_per_h": 15}],
        [(0.0, "rate", 3, 15.0, 100.0)],
    ),
    "intranasal_28": (
        [{"route": "intranasal", "start_h": 0, "amount_mg": 28}],
        nasal_events(0.0, 28),
    ),
    "intranasal_84": (
        [{"route": "intranasal", "start_h": 2, "amount_mg": 84}],
        nasal_events(2.0, 84),
    ),
    # the same 84 mg charted as three devices 5 minutes apart: the same three inputs
    "intranasal_3_devices": (
        [{"route": "intranasal", "start_h": 2 + k * 5 / 60, "amount_mg": 28} for k in range(3)],
        nasal_events(2.0, 84),
    ),
    # a second dose 72 h later starts again at the first-device fraction
    "intranasal_two_days": (
        [
            {"route": "intranasal", "start_h": 0, "amount_mg": 56},
            {"route": "intranasal", "start_h": 72, "amount_mg": 28},
        ],
        [*nasal_events(0.0, 56), *nasal_events(72.0, 28)],
    ),
    "oral": ([{"route": "oral", "start_h": 0.25, "amount_mg": 50}], oral_events(0.25, 50)),
    "mixed": (
        [
            {"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_h": 20},
            {"route": "intranasal", "start_h": 24, "amount_mg": 56},
            {"route": "oral", "start_h": 48, "amount_mg": 100},
        ],
        [(0.0, "rate", 3, 20.0, 4.0), *nasal_events(24.0, 56), *oral_events(48.0, 100)],
    ),
}


@pytest.mark.parametrize("case", list(ROUTE_CASES))
@pytest.mark.parametrize("age", [40.0, 75.0])
def test_perez_ruixo_every_route_matches_ode(case, age):
    doses, events = ROUTE_CASES[case]
    hours = 150.0 if case in ("iv_infusion", "intranasal_two_days") else 72.0
    sim = simulate(
        model=load_model(model_id="perez-ruixo-2021"),
        patient=Patient(weight_kg=70, age_years=age),
        regimen=parse_regimen({"doses": doses}, weight_kg=70),
        hours=hours,
        step_min=10,
    )
    ref = ode_solution(perez_ruixo_rhs(age), 11, events, sim.time_h)
    assert_close(sim.plasma_ng_per_ml, ref[:, 3] / PR["Vc"] * 1000, f"{case} plasma")
    assert_close(sim.metabolite_ng_per_ml, ref[:, 7] / PR["Vcn"] * 1000, f"{case} metabolite")
    assert_close(sim.effect_ng_per_ml["crps_analgesia"], ref[:, 9] * 1000, f"{case} CRPS effect")
    assert_close(sim.effect_ng_per_ml["acute_pain"], ref[:, 10] * 1000, f"{case} acute effect")


def test_exact_at_off_grid_breakpoints():
    """An infusion ending between grid points (40.02 min) is still exact at every grid point."""
    weight = 70.0
    rhs, v1 = domino_rhs(weight)
    events = [(0.0, "rate", 0, 35 / 0.667, 0.667)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate(
            model=load_model(model_id="domino"),
            patient=Patient(weight_kg=weight),
            regimen=parse_regimen(
                {
                    "doses": [
                        {"route": "iv_infusion", "start_h": 0, "duration_h": 0.667, "amount_mg": 35}
                    ]
                },
                weight_kg=weight,
            ),
            hours=6,
            step_min=0.7,
        )
    ref = ode_solution(rhs, 4, events, sim.time_h)
    assert_close(sim.plasma_ng_per_ml, ref[:, 0] / v1 * 1000, "off-grid plasma")
