"""Live concentration against the pharmacology engine; monitoring schedule and timers."""

from __future__ import annotations

import warnings
from datetime import timedelta

import numpy as np
import pytest

from core.sessions.session_helpers import at, chair
from ketacare.core.errors import ClinicalWarning, DataFileError, InvalidInput
from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate
from ketacare.core.protocols import load_library
from ketacare.core.sessions import (
    Pause,
    RateChange,
    Resume,
    SelfAdministration,
    Stop,
    Vitals,
    live_concentration,
    monitoring_schedule,
    parse_session_policy,
    session_setup,
    timers,
)

PATIENT = Patient(weight_kg=70, age_years=45)


def test_live_concentration_matches_simulate_on_the_same_regimen() -> None:
    c = chair().infusing(rate=24.5, minute=10)
    c.add(Pause(at=at(70), by="nurse1"))
    c.add(RateChange(at=at(75), by="nurse1", rate_mg_per_h=20, reason="titration"))
    c.add(Resume(at=at(80), by="nurse1"))
    model = load_model(model_id="domino")
    with pytest.warns(ClinicalWarning, match="unverified primary source"):
        live = live_concentration(c.log, model=model, patient=PATIENT, at=at(130), forecast_h=0.5)
    assert any("unverified" in w for w in live.warnings)  # passed on to the chair view
    # Independent construction, times in hours from the start of dosing (0:10):
    # 24.5 mg/h for 1 h, paused 10 min, 20 mg/h from 1 h 10 min to 2 h (running at 2:10).
    regimen = parse_regimen(
        {
            "doses": [
                {"route": "iv_infusion", "start_h": 0, "duration_h": 1, "rate_mg_per_h": 24.5},
                {
                    "route": "iv_infusion",
                    "start_h": 70 / 60,
                    "duration_h": 50 / 60,
                    "rate_mg_per_h": 20,
                },
            ]
        },
        weight_kg=70,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClinicalWarning)
        sim = simulate(model=model, patient=PATIENT, regimen=regimen, hours=2.0, step_min=60)
        later = simulate(model=model, patient=PATIENT, regimen=regimen, hours=2.5, step_min=30)
    assert live.elapsed_h == pytest.approx(2.0)
    assert live.plasma_ng_per_ml == pytest.approx(float(sim.plasma_ng_per_ml[-1]), rel=1e-9)
    for name, value in live.effect_ng_per_ml.items():
        assert value == pytest.approx(float(sim.effect_ng_per_ml[name][-1]), rel=1e-9)
    # If stopped now: the same regimen, 30 min later.
    assert live.forecast_h[-1] == pytest.approx(0.5)
    assert live.if_stopped_ng_per_ml[-1] == pytest.approx(float(later.plasma_ng_per_ml[-1]))
    # If continued: 20 mg/h runs on for the forecast.
    on = parse_regimen(
        {
            "doses": [
                {"route": "iv_infusion", "start_h": 0, "duration_h": 1, "rate_mg_per_h": 24.5},
                {
                    "route": "iv_infusion",
                    "start_h": 70 / 60,
                    "duration_h": 80 / 60,
                    "rate_mg_per_h": 20,
                },
            ]
        },
        weight_kg=70,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClinicalWarning)
        cont = simulate(model=model, patient=PATIENT, regimen=on, hours=2.5, step_min=30)
    assert live.if_continued_ng_per_ml[-1] == pytest.approx(float(cont.plasma_ng_per_ml[-1]))
    assert live.if_continued_ng_per_ml[-1] > live.if_stopped_ng_per_ml[-1]


def test_live_concentration_for_esketamine_devices() -> None:
    c = chair("esketamine-trd").ready()
    c.add(SelfAdministration(at=at(10), by="nurse1", devices=1))
    c.add(SelfAdministration(at=at(15), by="nurse1", devices=1))
    model = load_model(model_id="perez-ruixo-2021")
    live = live_concentration(c.log, model=model, patient=PATIENT, at=at(50))
    regimen = parse_regimen(
        {
            "doses": [
                {"route": "intranasal", "start_h": 0, "amount_mg": 28},
                {"route": "intranasal", "start_h": 5 / 60, "amount_mg": 28},
            ]
        },
        weight_kg=70,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClinicalWarning)
        sim = simulate(model=model, patient=PATIENT, regimen=regimen, hours=40 / 60, step_min=5)
    assert live.plasma_ng_per_ml == pytest.approx(float(sim.plasma_ng_per_ml[-1]), rel=1e-9)
    assert live.if_continued_ng_per_ml == live.if_stopped_ng_per_ml  # nothing is running
    assert np.all(np.asarray(live.if_stopped_ng_per_ml) > 0)


def test_live_concentration_refusals_and_no_dose() -> None:
    c = chair().ready()
    live = live_concentration(
        c.log, model=load_model(model_id="domino"), patient=PATIENT, at=at(30)
    )  # no dose given: nothing is simulated
    assert live.plasma_ng_per_ml == 0.0 and set(live.if_stopped_ng_per_ml) == {0.0}
    with pytest.raises(InvalidInput, match="model perez-ruixo-2021 describes esketamine"):
        live_concentration(
            c.log, model=load_model(model_id="perez-ruixo-2021"), patient=PATIENT, at=at(30)
        )


# --------------------------------------------------------------------------- schedule


def test_sourced_interval_due_and_overdue() -> None:
    # depression-iv: BP every 10 min during the infusion (Riva-Posse 2018), no grace set.
    c = chair("depression-iv").infusing(rate=52.5, minute=10)
    s = monitoring_schedule(c.state, now=at(15))
    assert s.next is not None and s.next.due_at == at(20) and s.next.status == "not_due"
    assert "sourced: Riva-Posse" in s.next.basis
    assert monitoring_schedule(c.state, now=at(20)).next.status == "due"  # type: ignore[union-attr]
    assert monitoring_schedule(c.state, now=at(21)).overdue  # no grace: overdue once past
    assert (
        "overdue after: not set (site policy)" in monitoring_schedule(c.state, now=at(21)).notes[0]
    )
    c.add(Vitals(at=at(22), by="nurse1", sbp_mmhg=130, dbp_mmhg=80))
    assert monitoring_schedule(c.state, now=at(25)).next.due_at == at(32)  # type: ignore[union-attr]


def test_site_interval_grace_and_recovery_interval() -> None:
    policy = parse_session_policy(
        {
            "monitoring": {
                "vitals_interval_min": 15,
                "recovery_vitals_interval_min": 30,
                "overdue_after_min": 5,
            }
        }
    )
    c = chair(policy=policy).infusing(minute=10)
    assert monitoring_schedule(c.state, now=at(30)).next.status == "due"  # type: ignore[union-attr]
    assert monitoring_schedule(c.state, now=at(31)).next.status == "overdue"  # type: ignore[union-attr]
    c.add(Vitals(at=at(40), by="nurse1", spo2_pct=97))
    c.add(Stop(at=at(50), by="nurse1", reason="completed"))
    s = monitoring_schedule(c.state, now=at(60))
    assert s.next is not None and s.next.due_at == at(70) and "recovery" in s.next.basis


def test_no_interval_means_no_schedule_reported() -> None:
    c = chair("crps-continuous").infusing(rate=20)  # its vitals interval is site policy
    s = monitoring_schedule(c.state, now=at(60))
    assert s.checks == ()
    assert "vitals interval: not set (site policy): no vitals schedule" in s.notes


def test_esketamine_blood_pressure_at_40_min_is_scheduled() -> None:
    c = chair("esketamine-trd").ready()
    c.add(SelfAdministration(at=at(10), by="nurse1", devices=2))
    (check,) = monitoring_schedule(c.state, now=at(20)).checks
    assert check.due_at == at(50) and check.basis == "sourced: Spravato label, blood pressure"
    c.add(Vitals(at=at(45), by="nurse1", sbp_mmhg=135, dbp_mmhg=85))  # too early: still due
    assert monitoring_schedule(c.state, now=at(50)).checks[0].status == "due"
    c.add(Vitals(at=at(51), by="nurse1", sbp_mmhg=135, dbp_mmhg=85))
    assert monitoring_schedule(c.state, now=at(52)).checks == ()


def _full_set(minute: float, *, rr: int, spo2: int, hr: int) -> Vitals:
    return Vitals(
        at=at(minute),
        by="nurse1",
        rr_per_min=rr,
        spo2_pct=spo2,
        supplemental_oxygen=False,
        temperature_c=37.0,
        sbp_mmhg=120,
        dbp_mmhg=80,
        hr_per_min=hr,
        consciousness="alert",
    )


def test_a_news2_of_7_or_more_asks_for_continuous_monitoring_until_a_lower_score() -> None:
    # RCP 2017 Chart 1, scored by hand: respiration 25/min 3, SpO2 91 % (scale 1) 3, air 0,
    # 37.0 degC 0, systolic 120 mmHg 0, consciousness alert 0; pulse 111/min 2 -> 8,
    # pulse 70/min 0 -> 6. Chart 3: 7 or more -> continuous monitoring of vital signs;
    # 5-6 -> urgent response (no change to the 15-min interval, already under hourly).
    c = chair().infusing(minute=10)
    c.add(_full_set(20, rr=25, spo2=91, hr=70))  # NEWS2 6
    assert all("continuous" not in k.what for k in monitoring_schedule(c.state, now=at(21)).checks)
    c.add(_full_set(25, rr=25, spo2=91, hr=111))  # NEWS2 8
    first = monitoring_schedule(c.state, now=at(26)).next
    assert first is not None
    assert (first.what, first.due_at, first.status) == (
        "continuous monitoring of vital signs (NEWS2 8)",
        at(25),
        "due",
    )
    assert "continuous monitoring of vital signs (RCP 2017, Chart 3)" in first.basis
    assert first.continuous and monitoring_schedule(c.state, now=at(26)).behind == (first,)
    # a blood pressure alone is not a NEWS2: the call stands
    c.add(Vitals(at=at(30), by="nurse1", sbp_mmhg=125, dbp_mmhg=80))
    assert monitoring_schedule(c.state, now=at(31)).next.what.startswith("continuous")  # type: ignore[union-attr]
    # a later complete set scoring 6 ends it; the 15-min vitals check leads again
    c.add(_full_set(35, rr=25, spo2=91, hr=70))
    after = monitoring_schedule(c.state, now=at(36))
    assert [k.what for k in after.checks] == ["vitals"] and after.checks[0].due_at == at(50)
    assert after.behind == ()


def test_timers() -> None:
    c = chair().infusing(minute=10)
    c.add(Pause(at=at(40), by="nurse1"))
    t = timers(c.state, now=at(50))
    assert t.since_dosing_start == timedelta(minutes=40)
    assert t.infusion_running == timedelta(minutes=30)
    assert t.paused_for == timedelta(minutes=10)
    assert t.since_dosing_end is None and t.observation_left is None


# --------------------------------------------------------------------------- policy


def test_a_site_cannot_loosen_a_sourced_number() -> None:
    protocol = load_library().get(protocol_id="esketamine-trd")
    looser = parse_session_policy(
        {"protocols": {"esketamine-trd": {"monitoring": {"observation_min": 60}}}}
    )
    with pytest.raises(DataFileError, match="60 would loosen the sourced 120 min"):
        session_setup(protocol=protocol, weight_kg=70, policy=looser)
    site_wide = parse_session_policy({"monitoring": {"observation_min": 60}})
    setup = session_setup(protocol=protocol, weight_kg=70, policy=site_wide)
    assert setup.observation.value == 120 and setup.observation.basis == "sourced"
    assert "ignored" in setup.observation.note


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"monitoring": {"vitals_interval_min": 0}}, "must be positive"),
        ({"monitoring": {"vitals_interval": 5}}, "unknown field"),
        ({"thresholds": {"pulse": {"high": 100}}}, "unknown vital"),
        ({"thresholds": {"sbp_mmhg": {"low": 120, "high": 100}}}, "low must be below high"),
        ({"thresholds": {"hr_per_min": {"high": 500}}}, "outside the data-entry bounds"),
        ({"monitoring": {"discharge_scores_required": 1.5}}, "whole number"),
    ],
    ids=repr,
)
def test_bad_site_policy_is_refused(data: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(DataFileError, match=message):
        parse_session_policy(data)


def test_sourced_numbers_are_audited() -> None:
    # Every sourced session number across the shipped protocols. A data change that adds,
    # removes or changes one must change this table on purpose.
    found = {}
    for protocol in load_library().protocols:
        s = session_setup(protocol=protocol, weight_kg=70)
        for setting in (s.vitals_interval, s.observation, s.discharge_score_min):
            if setting.basis == "sourced":
                found[(protocol.id, setting.name)] = setting.value
        for t in s.thresholds:
            if t.basis == "sourced":
                found[(protocol.id, t.id)] = t.value
        for check in s.timed_checks:
            found[(protocol.id, check.id)] = check.minutes_after_dosing_start
    ids = [p.id for p in load_library().protocols]
    expected = {(pid, "Modified PADSS total"): 9.0 for pid in ids}
    expected |= {
        ("depression-iv", "vitals interval"): 10.0,
        ("crps-outpatient", "vitals interval"): 15.0,
        ("esketamine-trd", "minimum observation after dosing"): 120.0,
        ("esketamine-mdd-si", "minimum observation after dosing"): 120.0,
    }
    for pid in ("esketamine-trd", "esketamine-mdd-si"):  # the nasal spray only
        expected |= {
            (pid, "esketamine-predose-sbp"): 140.0,
            (pid, "esketamine-predose-dbp"): 90.0,
            (pid, "esketamine-bp-40min"): 40.0,
        }
    # crps-continuous gives S(+)-ketamine by IV infusion: the Spravato label's rules for the
    # nasal spray do not carry over to it.
    assert found == expected


def test_session_rules_file_is_validated() -> None:
    import tomllib
    from importlib import resources

    from ketacare.core.sessions.rules import parse_session_rules

    text = resources.files("ketacare.core.sessions").joinpath("data", "sessions.toml")
    data = tomllib.loads(text.read_text(encoding="utf-8"))
    parse_session_rules(data)
    broken_rule = {**data, "rules": [{**data["rules"][0], "source": "nowhere"}]}
    with pytest.raises(DataFileError, match="unknown source 'nowhere'"):
        parse_session_rules(broken_rule)
    outside = {**data, "rules": [{**data["rules"][0], "value": 400}]}
    with pytest.raises(DataFileError, match="outside the data-entry bounds"):
        parse_session_rules(outside)
    typo = {**data, "plausibility": {**data["plausibility"], "spo2": {}}}
    with pytest.raises(DataFileError, match="unknown field"):
        parse_session_rules(typo)
    inverted = {
        **data,
        "plausibility": {
            **data["plausibility"],
            "spo2_pct": {**data["plausibility"]["spo2_pct"], "min": 100, "max": 0},
        },
    }
    with pytest.raises(DataFileError, match="min 100 must be below max 0"):
        parse_session_rules(inverted)
