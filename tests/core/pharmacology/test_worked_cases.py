"""Worked cases through the CLI against an independent ODE solution.

The right-hand sides are written here from the published constants (opentiva 1.1.2's
``Domino`` and ``Clements250`` classes; Perez-Ruixo 2021 Table 3 as traced by nlmixr2lib),
with an extra state that integrates the plasma concentration, so that Cmax, Tmax (hours, on
the output grid), AUC (the exact integral from 0 to the last grid time, not a trapezoid over
the grid) and total_dose_mg of ``ketacare simulate --json`` are each checked end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from typer.testing import CliRunner

from ketacare.cli import app


@pytest.fixture
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always separates stderr
        return CliRunner()


def solve(rhs, n_states, doses, hours, step_min):
    """Integrate; ``doses`` are (start_h, state, mg, duration_h), duration 0 for a bolus.

    Returns the grid, the state on it, and the final state (whose last entry is the AUC).
    """
    grid = np.arange(int(round(hours * 60 / step_min)) + 1) * step_min / 60.0
    breaks = sorted({0.0, hours, *(d[0] for d in doses), *(d[0] + d[3] for d in doses)})
    x = np.zeros(n_states)
    states = np.zeros((grid.size, n_states))
    for b0, b1 in zip(breaks[:-1], breaks[1:], strict=True):
        for start, state, mg, duration in doses:
            if duration == 0 and start == b0:
                x[state] += mg
        rate = np.zeros(n_states)
        for start, state, mg, duration in doses:
            if duration > 0 and start <= b0 < start + duration:
                rate[state] += mg / duration
        inside = (grid >= b0) & (grid < b1)
        sol = solve_ivp(
            lambda _t, y, r=rate: rhs(y) + r,
            (b0, b1),
            x,
            method="LSODA",
            rtol=1e-11,
            atol=1e-13,
            t_eval=np.append(grid[inside], b1),
        )
        assert sol.success
        states[inside] = sol.y[:, :-1].T
        x = sol.y[:, -1].copy()
    states[-1] = x
    return grid, states, x


def domino(weight):
    v1 = 0.063 * weight  # L; rate constants per minute -> per hour
    k10, k12, k13, k21, k31 = (k * 60 for k in (0.4381, 0.5921, 0.5900, 0.2470, 0.0146))

    def rhs(y):
        a1, a2, a3, _ = y
        return np.array(
            [
                -(k10 + k12 + k13) * a1 + k21 * a2 + k31 * a3,
                k12 * a1 - k21 * a2,
                k13 * a1 - k31 * a3,
                a1 / v1,
            ]
        )

    return rhs, 4, 0, v1


def clements(weight):
    v1 = 1.7522 * weight
    k10, k12, k21 = (k * 60 for k in (0.0109, 0.0186, 0.0137))

    def rhs(y):
        a1, a2, _ = y
        return np.array([-(k10 + k12) * a1 + k21 * a2, k12 * a1 - k21 * a2, a1 / v1])

    return rhs, 3, 0, v1


def perez_ruixo(age):
    qh = 151.0 - 2.19 * max(0.0, age - 60.0)
    vc, q1, vp1, q2, vp2, vh, kel, kmet = 192.0, 84.3, 143.0, 37.6, 417.0, 101.0, 1.11, 2.77
    ka_n, ka_sw, ka_po = 2.93, 1.45, 0.97
    vcn, cln, vpn, q3 = 70.0, 38.0, 115.0, 26.1

    def rhs(y):
        nasal, swallowed, oral, c, p1, p2, liver, n1, n2, _ = y
        return np.array(
            [
                -ka_n * nasal,
                -ka_sw * swallowed,
                -ka_po * oral,
                ka_n * nasal
                + q1 / vp1 * p1
                + q2 / vp2 * p2
                + qh / vh * liver
                - (q1 + q2 + qh) / vc * c,
                q1 / vc * c - q1 / vp1 * p1,
                q2 / vc * c - q2 / vp2 * p2,
                ka_sw * swallowed + ka_po * oral + qh / vc * c - (qh / vh + kel + kmet) * liver,
                kmet * liver + q3 / vpn * n2 - (cln + q3) / vcn * n1,
                q3 / vcn * n1 - q3 / vpn * n2,
                c / vc,
            ]
        )

    return rhs, 10, 3, vc


# intranasal 56 mg = two 28-mg devices 5 minutes apart (label): FRn 0.54 for the first,
# 0.54 x 0.62 = 0.3348 for the second (Table 3); the rest of each device is swallowed
# (zero-order over Dsw 0.53 h, Fgut 0.64). Oral: Fgut, over Dpo 0.32 h.
FIVE_MIN = 5 / 60
NASAL_56 = [
    (0.0, 0, 28 * 0.54, 0.0),
    (0.0, 1, 28 * (1 - 0.54) * 0.64, 0.53),
    (FIVE_MIN, 0, 28 * 0.3348, 0.0),
    (FIVE_MIN, 1, 28 * (1 - 0.3348) * 0.64, 0.53),
]
CASES = {
    "domino_0.35_mg_per_kg_per_h_4h": (
        "domino",
        domino(70.0),
        [{"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_kg_per_h": 0.35}],
        [(0.0, 0, 0.35 * 70 * 4, 4.0)],
        98.0,
    ),
    "domino_10_mg_bolus": (
        "domino",
        domino(70.0),
        [{"route": "iv_bolus", "start_h": 0, "amount_mg": 10}],
        [(0.0, 0, 10.0, 0.0)],
        10.0,
    ),
    "clements_10_mg_bolus": (
        "clements-250",
        clements(70.0),
        [{"route": "iv_bolus", "start_h": 0, "amount_mg": 10}],
        [(0.0, 0, 10.0, 0.0)],
        10.0,
    ),
    "esketamine_56_mg_intranasal": (
        "perez-ruixo-2021",
        perez_ruixo(45.0),
        [{"route": "intranasal", "start_h": 0, "amount_mg": 56}],
        NASAL_56,
        56.0,
    ),
    # the same dose charted device by device, as it is given: the same curve
    "esketamine_56_mg_as_two_devices": (
        "perez-ruixo-2021",
        perez_ruixo(45.0),
        [
            {"route": "intranasal", "start_h": 0, "amount_mg": 28},
            {"route": "intranasal", "start_h": FIVE_MIN, "amount_mg": 28},
        ],
        NASAL_56,
        56.0,
    ),
    "esketamine_84_mg_oral_age_70": (
        "perez-ruixo-2021",
        perez_ruixo(70.0),
        [{"route": "oral", "start_h": 0, "amount_mg": 84}],
        [(0.0, 2, 84 * 0.64, 0.32)],
        84.0,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_metrics_match_independent_ode(runner, tmp_path, case):
    model_id, (rhs, n_states, plasma, volume), doses, ode_doses, total = CASES[case]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"doses": doses}))
    args = ["simulate", "--model", model_id, "--weight", "70", "--regimen", str(path)]
    if model_id == "perez-ruixo-2021":
        args += ["--age", "70" if "age_70" in case else "45"]
    result = runner.invoke(app, [*args, "--hours", "24", "--step-min", "1", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    grid, states, final = solve(rhs, n_states, ode_doses, 24.0, 1.0)
    cp = states[:, plasma] / volume * 1000.0  # mg/L -> ng/mL
    assert np.allclose(doc["time_h"], grid, rtol=0, atol=1e-12)
    assert np.allclose(doc["plasma_ng_per_ml"], cp, rtol=1e-7, atol=1e-9 * cp.max())
    m = doc["metrics"]
    i = int(np.argmax(cp))
    assert m["cmax_ng_per_ml"] == pytest.approx(cp[i], rel=1e-7)
    assert m["tmax_h"] == pytest.approx(grid[i], abs=1e-12)  # hours, a grid time
    assert m["auc_ng_h_per_ml"] == pytest.approx(final[-1] * 1000.0, rel=1e-7)
    assert m["total_dose_mg"] == pytest.approx(total)  # administered, not bioavailable
    if model_id == "perez-ruixo-2021":
        nesk = states[:, 7] / 70.0 * 1000.0
        assert np.allclose(doc["norketamine_ng_per_ml"], nesk, rtol=1e-7, atol=1e-9 * nesk.max())


def test_bolus_auc_is_the_exact_integral_not_the_grid_trapezoid(runner, tmp_path):
    """After a Domino bolus the plasma curve falls by a factor 4 in the first minute, so a
    trapezoid over a 1-minute grid overstates AUC by about 6%; the CLI reports the integral."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 10}]}))
    args = ["simulate", "--model", "domino", "--weight", "70", "--regimen", str(path)]
    result = runner.invoke(app, [*args, "--hours", "24", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    trapezoid = float(np.trapezoid(doc["plasma_ng_per_ml"], doc["time_h"]))
    rhs, n_states, _, _ = domino(70.0)
    _, _, final = solve(rhs, n_states, [(0.0, 0, 10.0, 0.0)], 24.0, 1.0)
    assert doc["metrics"]["auc_ng_h_per_ml"] == pytest.approx(final[-1] * 1000.0, rel=1e-7)
    assert trapezoid > 1.04 * doc["metrics"]["auc_ng_h_per_ml"]
