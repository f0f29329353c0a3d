"""Racemic models against opentiva 1.1.2 on the same regimens (1-second grid).

opentiva's plasma solution is analytic, so plasma must agree within 1e-9 of the peak. Its
effect site is a per-second recursion that lags while plasma rises, so it gets 0.5% of peak.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

opentiva = pytest.importorskip("opentiva")
from opentiva import ketamine as ot_ketamine  # noqa: E402
from opentiva.pump import Pump  # noqa: E402

from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate  # noqa: E402

CLASSES = {"domino": ot_ketamine.Domino, "clements-250": ot_ketamine.Clements250}


def run_opentiva(model_id, weight, infusions, end_s):
    model = CLASSES[model_id](sex=0, age=45, weight=weight, height=175)
    pump = Pump(model=model, drug_concentration=10, end_time=end_s)
    for start_s, mg, duration_s in infusions:
        pump.add_infusion(start=start_s, dose=mg / duration_s, duration=duration_s)
    out = pump.run()
    return out[:, 1] * 1000.0, out[:, 2] * 1000.0  # mg/L -> ng/mL


CASES = {
    "single_40min": (
        [{"route": "iv_infusion", "start_h": 0, "duration_h": 40 / 60, "amount_mg": 35}],
        [(0, 35.0, 2400)],
        6 * 3600,
    ),
    "crps_3_days": (
        [
            {
                "route": "iv_infusion",
                "start_h": 24 * d,
                "duration_h": 4,
                "rate_mg_per_kg_per_h": 0.35,
            }
            for d in range(3)
        ],
        [(24 * 3600 * d, 0.35 * 70 * 4, 4 * 3600) for d in range(3)],
        72 * 3600,
    ),
    "stepped": (
        [
            {"route": "iv_infusion", "start_h": 0, "duration_h": 1, "rate_mg_per_h": 10},
            {"route": "iv_infusion", "start_h": 1, "duration_h": 1, "rate_mg_per_h": 20},
            {"route": "iv_infusion", "start_h": 2, "duration_h": 2, "rate_mg_per_h": 5},
        ],
        [(0, 10.0, 3600), (3600, 20.0, 3600), (7200, 10.0, 7200)],
        8 * 3600,
    ),
}


@pytest.mark.parametrize("model_id", list(CLASSES))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_opentiva(model_id, case):
    doses, infusions, end_s = CASES[case]
    ot_cp, ot_ce = run_opentiva(model_id, 70.0, infusions, end_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate(
            model=load_model(model_id=model_id),
            patient=Patient(weight_kg=70.0),
            regimen=parse_regimen({"doses": doses}, weight_kg=70.0),
            hours=(end_s - 1) / 3600,
            step_min=1 / 60,
        )
    assert sim.time_h.size == ot_cp.size
    peak = ot_cp.max()
    assert np.max(np.abs(sim.plasma_ng_per_ml - ot_cp)) < 1e-9 * peak
    ce = sim.effect_ng_per_ml["tpeak_1min"]
    assert np.max(np.abs(ce - ot_ce)) < 0.005 * ot_ce.max()
