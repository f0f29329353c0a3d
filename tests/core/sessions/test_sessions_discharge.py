"""Discharge rules: each unmet condition is listed; discharge only when all are met."""

from __future__ import annotations

from typing import Any

import pytest

from core.sessions.session_helpers import at, chair
from ketacare.core.errors import InvalidInput
from ketacare.core.sessions import (
    AcknowledgeAlert,
    Discharge,
    DischargeScore,
    EscortConfirmed,
    IllegalTransition,
    SelfAdministration,
    Stop,
    Vitals,
    can_discharge,
    discharge_status,
    parse_session_policy,
)

GOOD: dict[str, Any] = {
    "vital_signs": 2,
    "ambulation": 2,
    "nausea_vomiting": 2,
    "pain": 1,
    "bleeding": 2,
    "escort": True,
}  # total 9


def esketamine_in_recovery(**kwargs: Any):  # type: ignore[no-untyped-def]
    c = chair("esketamine-trd", **kwargs).ready()
    c.add(SelfAdministration(at=at(10), by="nurse1", devices=2))
    c.add(Stop(at=at(15), by="nurse1", reason="completed"))
    # label: blood pressure again at about 40 min after dosing (first device at 0:10)
    c.add(Vitals(at=at(50), by="nurse1", sbp_mmhg=132, dbp_mmhg=80))
    # REMS Patient Monitoring Form: and before completion of monitoring
    c.add(Vitals(at=at(125), by="nurse1", sbp_mmhg=126, dbp_mmhg=78))
    return c


def test_esketamine_blood_pressure_at_40_min_and_before_discharge() -> None:
    c = chair("esketamine-trd").ready()
    c.add(SelfAdministration(at=at(10), by="nurse1", devices=2))
    c.add(Stop(at=at(15), by="nurse1", reason="completed"))
    c.add(DischargeScore(at=at(130), by="nurse1", answers=GOOD))
    c.add(EscortConfirmed(at=at(131), by="nurse1", name="J. Doe", relation="partner"))
    _, reasons = can_discharge(c.state, now=at(140))
    assert reasons == (
        "Reassess blood pressure at about 40 minutes after dosing. Not recorded yet "
        "(Spravato label, blood pressure)",
    )
    c.add(Vitals(at=at(48), by="nurse1", sbp_mmhg=138, dbp_mmhg=84))  # before 0:50: too early
    c.add(Vitals(at=at(52), by="nurse1", sbp_mmhg=136, dbp_mmhg=82))
    _, reasons = can_discharge(c.state, now=at(140))
    assert reasons == (
        "systolic blood pressure and diastolic blood pressure must be taken again before "
        "discharge, after the reading at 2025-03-03T09:52+00:00 "
        "(SPRAVATO REMS Patient Monitoring Form)",
    )
    from ketacare.core.sessions import monitoring_schedule

    due = [c.what for c in monitoring_schedule(c.state, now=at(140)).checks]
    assert "systolic blood pressure and diastolic blood pressure again before discharge" in due
    c.add(Vitals(at=at(138), by="nurse1", sbp_mmhg=124, dbp_mmhg=76))
    assert can_discharge(c.state, now=at(140)) == (True, ())


def test_esketamine_needs_continuous_pulse_oximetry_before_dosing() -> None:
    # FDA SPRAVATO REMS (updated 12/31/2024): a pulse oximeter to monitor patients onsite
    assert "pulse_oximetry" in chair("esketamine-trd").setup.required_checks
    assert "pulse_oximetry" not in chair("crps-outpatient").setup.required_checks


def ready_for_discharge(**kwargs: Any):  # type: ignore[no-untyped-def]
    c = esketamine_in_recovery(**kwargs)
    c.add(DischargeScore(at=at(130), by="nurse1", answers=GOOD))
    c.add(EscortConfirmed(at=at(131), by="nurse1", name="J. Doe", relation="partner"))
    return c


def test_all_conditions_met_at_the_end_of_the_sourced_observation() -> None:
    c = ready_for_discharge()
    # esketamine: at least 2 h after dosing (Spravato label): dosing ended at 0:15 -> 2:15
    assert can_discharge(c.state, now=at(135)) == (True, ())
    status = discharge_status(c.state, now=at(135))
    assert status.earliest_at == at(135) and status.notes == ()
    c.add(Discharge(at=at(140), by="nurse1", instructions="no driving until tomorrow"))
    assert c.state.state == "discharged" and c.state.finished_at == at(140)


def test_observation_not_reached() -> None:
    ok, reasons = can_discharge(ready_for_discharge().state, now=at(134))
    assert not ok
    assert reasons == (
        "minimum observation of 120 min after dosing ended (sourced: Spravato label (Janssen)) not "
        "reached: earliest discharge at 2025-03-03T11:15+00:00, in 1 min",
    )


def test_not_in_recovery() -> None:
    c = chair("esketamine-trd").ready()
    c.add(SelfAdministration(at=at(10), by="nurse1", devices=2))
    ok, reasons = can_discharge(c.state, now=at(300))
    assert not ok
    assert reasons[0] == "the session is in state dosing: discharge is only possible from recovery"


def test_no_score_and_low_score() -> None:
    c = esketamine_in_recovery()
    c.add(EscortConfirmed(at=at(131), by="nurse1"))
    _, reasons = can_discharge(c.state, now=at(200))
    assert reasons == (
        "Modified PADSS must be 9 or more (Chung F. Are discharge criteria changing? J Clin "
        "Anesth 1993): none recorded since dosing ended",
    )
    c.add(DischargeScore(at=at(132), by="nurse1", answers={**GOOD, "pain": 0}))  # total 8
    _, reasons = can_discharge(c.state, now=at(200))
    assert len(reasons) == 1 and reasons[0].endswith(": latest 8")
    c.add(DischargeScore(at=at(140), by="nurse1", answers=GOOD))  # 9
    assert can_discharge(c.state, now=at(200)) == (True, ())
    c.add(DischargeScore(at=at(150), by="nurse1", answers={**GOOD, "ambulation": 0}))  # 7
    assert not can_discharge(c.state, now=at(200))[0]  # the latest score counts


def test_score_before_dosing_ended_does_not_count() -> None:
    c = chair("esketamine-trd").ready()
    c.add(SelfAdministration(at=at(10), by="nurse1", devices=2))
    with pytest.raises(IllegalTransition, match="cannot discharge_score in state dosing"):
        c.add(DischargeScore(at=at(12), by="nurse1", answers=GOOD))


def test_padss_escort_flag_and_escort_confirmation() -> None:
    c = esketamine_in_recovery()
    c.add(DischargeScore(at=at(130), by="nurse1", answers={**GOOD, "escort": False}))
    _, reasons = can_discharge(c.state, now=at(200))
    assert reasons == (
        "Modified PADSS: No responsible adult to accompany the patient home: do not release "
        "(PADSS qualification; ketamine labelling).",
        "no responsible adult confirmed to accompany the patient home",
    )


def test_open_alert_blocks_discharge() -> None:
    policy = parse_session_policy({"thresholds": {"hr_per_min": {"high": 120}}})
    c = ready_for_discharge(policy=policy)
    c.add(Vitals(at=at(132), by="nurse1", hr_per_min=125))
    ok, reasons = can_discharge(c.state, now=at(200))
    assert not ok and len(reasons) == 1
    assert reasons[0].startswith("open alert 18/site-hr_per_min-high: heart rate > 120 /min")
    with pytest.raises(IllegalTransition, match="discharge not allowed: open alert"):
        c.add(Discharge(at=at(200), by="nurse1", instructions="x"))
    c.add(
        AcknowledgeAlert(
            at=at(201), by="dr_a", alert_id=c.state.alerts[0].id, action="continue", note="rest"
        )
    )
    c.add(Discharge(at=at(202), by="nurse1", instructions="x"))


def test_every_unmet_condition_is_listed_at_once() -> None:
    _, reasons = can_discharge(esketamine_in_recovery().state, now=at(20))
    assert len(reasons) == 3
    assert reasons[0].startswith("minimum observation")
    assert reasons[1].startswith("Modified PADSS must be 9 or more")
    assert reasons[2] == "no responsible adult confirmed to accompany the patient home"


def test_unset_observation_refuses_discharge_rather_than_waiving_the_wait() -> None:
    from ketacare.core.sessions import StartInfusion

    c = chair("crps-outpatient").ready()
    c.add(StartInfusion(at=at(10), by="nurse1", rate_mg_per_h=24.5))
    c.add(Stop(at=at(250), by="nurse1", reason="completed"))
    c.add(DischargeScore(at=at(251), by="nurse1", answers=GOOD))
    c.add(EscortConfirmed(at=at(251), by="nurse1"))
    status = discharge_status(c.state, now=at(600))
    assert not status.allowed and status.earliest_at is None
    assert len(status.reasons) == 1
    assert status.reasons[0].startswith(
        "no minimum observation after dosing is set for protocol crps-outpatient"
    )
    assert "discharge cannot be checked until a physician sets it" in status.reasons[0]


def test_a_monitoring_order_sets_the_observation_the_protocol_leaves_open() -> None:
    from ketacare.core.protocols import load_library
    from ketacare.core.sessions import StartInfusion
    from ketacare.core.sessions.orders import apply_order, monitoring_order

    order = monitoring_order(
        protocol=load_library().get(protocol_id="crps-outpatient"),
        entered={
            "sbp_high": 180,
            "sbp_low": 90,
            "dbp_high": 110,
            "dbp_low": 50,
            "hr_high": 120,
            "hr_low": 50,
            "spo2_low": 92,
            "rr_low": 10,
            "moaas_at_or_below": 2,
            "vitals_interval_min": 15,
            "recovery_vitals_interval_min": 15,
            "observation_min": 45,
        },
        policy=None,
        set_by="dr_a",
    )
    from core.sessions.session_helpers import Chair, setup_for

    c = Chair(apply_order(setup_for("crps-outpatient"), order)).ready()
    assert c.setup.observation.value == 45 and c.setup.observation.basis == "order"
    c.add(StartInfusion(at=at(10), by="nurse1", rate_mg_per_h=24.5))
    c.add(Stop(at=at(250), by="nurse1", reason="completed"))
    c.add(DischargeScore(at=at(251), by="nurse1", answers=GOOD))
    c.add(EscortConfirmed(at=at(251), by="nurse1"))
    # 250 + 45 = 295: one minute before, refused with the time; at 295, allowed
    allowed, reasons = can_discharge(c.state, now=at(294))
    assert not allowed and reasons[0].startswith("minimum observation of 45 min after dosing")
    assert can_discharge(c.state, now=at(295)) == (True, ())


def test_site_may_require_two_consecutive_scores_and_a_longer_observation() -> None:
    policy = parse_session_policy(
        {"monitoring": {"discharge_scores_required": 2, "observation_min": 180}}
    )
    c = ready_for_discharge(policy=policy)
    assert c.setup.observation.value == 180 and c.setup.observation.basis == "site_policy"
    _, reasons = can_discharge(c.state, now=at(195))
    assert len(reasons) == 1
    assert reasons[0].startswith("Modified PADSS must be 9 or more on 2 consecutive scores (Chung")
    assert reasons[0].endswith(": latest 9")
    c.add(DischargeScore(at=at(150), by="nurse1", answers=GOOD))
    assert can_discharge(c.state, now=at(195)) == (True, ())
    assert not can_discharge(c.state, now=at(194))[0]


def test_naive_time_refused() -> None:
    from datetime import datetime

    with pytest.raises(InvalidInput):
        can_discharge(ready_for_discharge().state, now=datetime(2025, 3, 3, 12, 0))
