"""Implausible vitals are refused; alert thresholds at their edges; no duplicate open alerts."""

from __future__ import annotations

import math
from typing import Any

import pytest

from core.sessions.session_helpers import BASELINE, at, chair
from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.sessions import (
    PLAUSIBILITY,
    AcknowledgeAlert,
    CheckIn,
    IllegalTransition,
    SelfAdministration,
    SideEffects,
    StartInfusion,
    Vitals,
    parse_session_policy,
)

IMPLAUSIBLE: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"spo2_pct": 101}, OutOfRange, "SpO2 101 % is out of range: allowed 0 to 100 %"),
    ({"spo2_pct": -1}, OutOfRange, "SpO2 -1 %"),
    (
        {"sbp_mmhg": 120, "dbp_mmhg": 130},
        InvalidInput,
        "diastolic blood pressure 130 mmHg must be below systolic 120",
    ),
    ({"sbp_mmhg": 90, "dbp_mmhg": 90}, InvalidInput, "must be below systolic"),
    ({"sbp_mmhg": 1200, "dbp_mmhg": 80}, OutOfRange, "systolic blood pressure 1200 mmHg"),
    ({"sbp_mmhg": 10, "dbp_mmhg": 5}, OutOfRange, "systolic blood pressure 10 mmHg"),
    ({"sbp_mmhg": 120}, InvalidInput, "systolic and diastolic blood pressure together"),
    ({"hr_per_min": 400}, OutOfRange, "heart rate 400 /min"),
    ({"hr_per_min": -5}, OutOfRange, "heart rate -5 /min"),
    ({"rr_per_min": 140}, OutOfRange, "respiratory rate 140 /min"),
    ({"temperature_c": 50}, OutOfRange, "temperature 50 degC"),
    ({"hr_per_min": math.nan}, InvalidInput, "finite"),
    ({"hr_per_min": True}, InvalidInput, "must be a number"),
    ({}, InvalidInput, "at least one value"),
]


@pytest.mark.parametrize(("values", "error", "message"), IMPLAUSIBLE, ids=repr)
def test_implausible_vitals_are_refused_and_nothing_is_stored(
    values: dict[str, Any], error: type[Exception], message: str
) -> None:
    c = chair().infusing()
    before = c.log
    with pytest.raises(error, match=message.replace("(", r"\(")):
        c.add(Vitals(at=at(20), by="nurse1", **values))
    assert c.log == before


def test_the_message_says_the_bound_is_for_data_entry_not_clinical() -> None:
    with pytest.raises(OutOfRange, match="a data-entry bound, not a clinical threshold"):
        Vitals(at=at(0), by="n", spo2_pct=101)


def test_plausibility_bounds_are_data() -> None:
    assert PLAUSIBILITY["spo2_pct"].min == 0 and PLAUSIBILITY["spo2_pct"].max == 100
    Vitals(at=at(0), by="n", spo2_pct=100, sbp_mmhg=350, dbp_mmhg=250, hr_per_min=0, rr_per_min=0)


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"sedation_moaas": 6}, OutOfRange),
        ({"sedation_moaas": -1}, OutOfRange),
        ({"pain_nrs": 11}, OutOfRange),
        ({"pain_nrs": 2.5}, InvalidInput),
        ({"nausea": "yes"}, InvalidInput),
        ({}, InvalidInput),
    ],
    ids=repr,
)
def test_side_effect_ratings_are_checked(values: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        SideEffects(at=at(0), by="n", **values)


# --------------------------------------------------------------------------- sourced edges


@pytest.mark.parametrize(
    ("sbp", "dbp", "alerts"),
    [
        (140, 90, []),  # the label's guide is ">140/90": equal values do not alert
        (141, 90, ["esketamine-predose-sbp"]),
        (140, 91, ["esketamine-predose-dbp"]),
        (160, 100, ["esketamine-predose-sbp", "esketamine-predose-dbp"]),
    ],
    ids=repr,
)
def test_esketamine_pre_dose_blood_pressure_guide_at_its_edges(
    sbp: float, dbp: float, alerts: list[str]
) -> None:
    c = chair("esketamine-trd")
    c.add(CheckIn(at=at(1), by="nurse1"))
    c.add(Vitals(at=at(2), by="nurse1", **{**BASELINE, "sbp_mmhg": sbp, "dbp_mmhg": dbp}))
    state = c.state
    assert [a.threshold.id for a in state.open_alerts] == alerts
    for alert in state.open_alerts:
        assert alert.threshold.basis == "sourced"
        assert alert.threshold.source == "Spravato label, blood pressure"
        assert "consider the risks" in alert.threshold.action


def test_pre_dose_alert_must_be_acknowledged_before_dosing_and_only_applies_pre_dose() -> None:
    c = chair("esketamine-trd").ready(sbp_mmhg=150)
    (alert,) = c.state.open_alerts
    with pytest.raises(IllegalTransition, match=f"open alerts must be acknowledged.*{alert.id}"):
        c.add(SelfAdministration(at=at(10), by="nurse1", devices=1))
    with pytest.raises(InvalidInput, match="acknowledgement action is required"):
        AcknowledgeAlert(at=at(9), by="dr_a", alert_id=alert.id, action=" ")
    c.add(
        AcknowledgeAlert(
            at=at(9), by="dr_a", alert_id=alert.id, action="continue", note="benefit outweighs risk"
        )
    )
    c.add(SelfAdministration(at=at(10), by="nurse1", devices=2))
    c.add(Vitals(at=at(50), by="nurse1", sbp_mmhg=165, dbp_mmhg=95))  # after the start
    assert c.state.open_alerts == ()  # the pre-dose guide is not a stop rule


# --------------------------------------------------------------------------- site policy edges

POLICY = parse_session_policy(
    {"thresholds": {"sbp_mmhg": {"high": 180, "low": 90}, "spo2_pct": {"low": 92}}}
)


@pytest.mark.parametrize(
    ("values", "alert"),
    [
        ({"sbp_mmhg": 180, "dbp_mmhg": 80}, None),
        ({"sbp_mmhg": 181, "dbp_mmhg": 80}, "site-sbp_mmhg-high"),
        ({"sbp_mmhg": 90, "dbp_mmhg": 60}, None),
        ({"sbp_mmhg": 89, "dbp_mmhg": 60}, "site-sbp_mmhg-low"),
        ({"spo2_pct": 92}, None),
        ({"spo2_pct": 91}, "site-spo2_pct-low"),
        ({"hr_per_min": 180}, None),  # no heart-rate threshold set: no automatic alert
    ],
    ids=repr,
)
def test_site_thresholds_at_their_edges(values: dict[str, float], alert: str | None) -> None:
    c = chair(policy=POLICY).infusing()
    c.add(Vitals(at=at(20), by="nurse1", **values))
    assert [a.threshold.id for a in c.state.open_alerts] == ([alert] if alert else [])


def test_unset_thresholds_are_reported_not_hidden() -> None:
    setup = chair(policy=POLICY).setup
    unset = setup.unset()
    assert "heart rate high: not configured (site policy): no automatic alert" in unset
    assert not any("systolic blood pressure high" in line for line in unset)
    basis = {(t.vital, t.direction): t.basis for t in setup.thresholds if t.phase == "session"}
    assert basis[("sbp_mmhg", "high")] == "site_policy"
    assert basis[("hr_per_min", "high")] == "not_configured"
    # off-label protocols ship no sourced thresholds at all
    assert [t for t in chair().setup.thresholds if t.basis == "sourced"] == []


def test_repeated_breaches_do_not_duplicate_an_open_alert() -> None:
    c = chair(policy=POLICY).infusing()
    c.add(Vitals(at=at(20), by="nurse1", sbp_mmhg=185, dbp_mmhg=95))
    c.add(Vitals(at=at(25), by="nurse1", sbp_mmhg=190, dbp_mmhg=96))
    c.add(Vitals(at=at(30), by="nurse1", sbp_mmhg=182, dbp_mmhg=90, spo2_pct=90))
    state = c.state
    assert [(a.threshold.id, a.breaches, a.value, a.last_value) for a in state.open_alerts] == [
        ("site-sbp_mmhg-high", 3, 185.0, 182.0),
        ("site-spo2_pct-low", 1, 90.0, 90.0),
    ]
    first = state.open_alerts[0]
    assert first.id == "13/site-sbp_mmhg-high"  # the vitals entry that opened it
    assert "breached 3 times, latest 182 mmHg" in first.describe()
    c.add(AcknowledgeAlert(at=at(31), by="dr_a", alert_id=first.id, action="reduce_rate"))
    c.add(Vitals(at=at(40), by="nurse1", sbp_mmhg=186, dbp_mmhg=90))
    alerts = [a for a in c.state.alerts if a.threshold.id == "site-sbp_mmhg-high"]
    assert [a.is_open for a in alerts] == [False, True]  # a new breach after the ack is new
    assert alerts[0].acknowledgement is not None
    assert alerts[0].acknowledgement.action == "reduce_rate"


def test_acknowledging_unknown_or_closed_alerts_is_refused() -> None:
    c = chair(policy=POLICY).infusing()
    c.add(Vitals(at=at(20), by="nurse1", spo2_pct=88))
    (alert,) = c.state.open_alerts
    with pytest.raises(IllegalTransition, match="no alert 99/x"):
        c.add(
            AcknowledgeAlert(
                at=at(21), by="dr_a", alert_id="99/x", action="continue", note="rechecked"
            )
        )
    c.add(
        AcknowledgeAlert(
            at=at(21), by="dr_a", alert_id=alert.id, action="continue", note="oxygen given"
        )
    )
    with pytest.raises(IllegalTransition, match="already acknowledged"):
        c.add(
            AcknowledgeAlert(
                at=at(22), by="dr_a", alert_id=alert.id, action="continue", note="rechecked"
            )
        )


def test_late_vitals_may_not_predate_the_current_state() -> None:
    c = chair().infusing(minute=10)
    c.add(Vitals(at=at(30), by="nurse1", spo2_pct=97))
    c.add(Vitals(at=at(20), by="nurse2", spo2_pct=96))  # entered late, still during dosing
    assert [v.at for v in c.state.vitals][-2:] == [at(20), at(30)]
    assert c.state.last_vitals is not None and c.state.last_vitals.at == at(30)
    with pytest.raises(InvalidInput, match="may not be dated before the session entered state"):
        c.add(Vitals(at=at(9), by="nurse2", spo2_pct=96))


def test_baseline_is_the_last_complete_set_before_dosing() -> None:
    c = chair().ready()
    assert c.state.baseline is not None and c.state.baseline.sbp_mmhg == 128
    c.add(StartInfusion(at=at(10), by="nurse1", rate_mg_per_h=20))
    c.add(Vitals(at=at(20), by="nurse1", **BASELINE))
    assert c.state.baseline is not None and c.state.baseline.at == at(2)


@pytest.mark.parametrize("note", ["", "   "])
def test_going_on_despite_an_alert_needs_the_reason_and_stores_nothing_without_it(
    note: str,
) -> None:
    """ "continue" is a judgement against a crossed threshold: the record says what it
    rested on. Every other action is what was done, and needs no note."""
    c = chair(policy=POLICY).infusing()
    c.add(Vitals(at=at(20), by="nurse1", spo2_pct=88))
    (alert,) = c.state.open_alerts
    before = c.log
    with pytest.raises(InvalidInput, match="continuing despite the alert needs a note saying why"):
        c.add(
            AcknowledgeAlert(
                at=at(21), by="nurse1", alert_id=alert.id, action="continue", note=note
            )
        )
    assert c.log == before and c.state.open_alerts == (alert,)
    c.add(AcknowledgeAlert(at=at(21), by="nurse1", alert_id=alert.id, action="call_physician"))
    assert c.state.open_alerts == ()


def test_a_stored_continue_without_a_note_still_replays() -> None:
    """The rule is for entries written from now on: a log stored before it reads as it was."""
    from ketacare.core.sessions.replay import replay

    c = chair(policy=POLICY).infusing()
    c.add(Vitals(at=at(20), by="nurse1", spo2_pct=88))
    (alert,) = c.state.open_alerts
    old = AcknowledgeAlert(
        at=at(21), by="nurse1", seq=len(c.log) + 1, alert_id=alert.id, action="continue"
    )
    state = replay((*c.log, old))
    assert state.open_alerts == () and state.alerts[0].acknowledgement == old
