"""The chair's live estimate groups esketamine devices into one dose however they are charted.

Perez-Ruixo 2021 (Table 3): the second and later 28-mg devices of one dose absorb 0.62 x the
first device's nasal fraction. Charted one device at a time 5 minutes apart (the label's
interval) or as three devices at once (one 84-mg entry), the estimate is the same; its peak is
Table 4's 101.0 ng/mL (84 mg, 18-60 years, non-Asian; age and weight do not change it).
"""

from __future__ import annotations

import warnings

import pytest

from core.sessions.session_helpers import at, chair
from ketacare.core.errors import ClinicalWarning
from ketacare.core.pharmacology import Patient, load_model
from ketacare.core.sessions import SelfAdministration, live_concentration, session_regimen
from ketacare.core.sessions.replay import replay

PATIENT = Patient(weight_kg=74, age_years=45)
MODEL = load_model(model_id="perez-ruixo-2021")


def _live(*events: SelfAdministration, minute: float):
    c = chair("esketamine-trd").ready()
    for event in events:
        c.add(event)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClinicalWarning)
        return live_concentration(c.log, model=MODEL, patient=PATIENT, at=at(minute), step_min=5)


@pytest.mark.parametrize("minute", [12, 30, 55, 120])
def test_devices_one_at_a_time_equal_three_at_once_and_84_mg(minute):
    one_by_one = _live(
        *(SelfAdministration(at=at(10 + 5 * k), by="nurse1", devices=1) for k in range(3)),
        minute=minute,
    )
    together = _live(SelfAdministration(at=at(10), by="nurse1", devices=3), minute=minute)
    if minute >= 20:  # all three devices are given by then in every form
        assert one_by_one.plasma_ng_per_ml == pytest.approx(together.plasma_ng_per_ml, rel=1e-9)
        assert one_by_one.if_stopped_ng_per_ml == pytest.approx(
            together.if_stopped_ng_per_ml, rel=1e-9
        )
    # three devices at once reach the engine as one 84-mg entry (this session refuses amount_mg:
    # it charts devices)
    assert [d["amount_mg"] for d in together.regimen["doses"]] == [84.0]
    if minute == 55:  # 45 min after the first device, the peak (tmax about 0.74 h)
        assert together.plasma_ng_per_ml == pytest.approx(101.0, rel=0.01)


def test_session_regimen_keeps_each_device_time():
    c = chair("esketamine-trd").ready()
    for k in range(3):
        c.add(SelfAdministration(at=at(10 + 5 * k), by="nurse1", devices=1))
    doses = session_regimen(replay(tuple(c.log)), at=at(60))["doses"]
    assert [(d["route"], round(d["start_h"] * 60, 9), d["amount_mg"]) for d in doses] == [
        ("intranasal", 0.0, 28.0),
        ("intranasal", 5.0, 28.0),
        ("intranasal", 10.0, 28.0),
    ]
