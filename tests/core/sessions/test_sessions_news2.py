"""NEWS2 in the session log: computed per complete set, alerting always, old entries load.

Points are read by hand from the RCP 2017 NEWS2 chart (SpO2 scale 1); see
tests/core/instruments/test_news2.py for the whole chart.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.sessions.session_helpers import at, chair
from ketacare.core.errors import InvalidInput
from ketacare.core.sessions import AcknowledgeAlert, Amendment, Vitals, event_from_dict
from ketacare.core.sessions.news2 import DISSOCIATION_NOTE, news2_for, news2_rules

# RR 16 (0), SpO2 97 (0), air (0), 37.0 (0), SBP 120 (0), HR 70 (0), alert (0): 0
NORMAL: dict[str, Any] = {
    "rr_per_min": 16, "spo2_pct": 97, "supplemental_oxygen": False, "temperature_c": 37.0,
    "sbp_mmhg": 120, "dbp_mmhg": 75, "hr_per_min": 70, "consciousness": "alert",
}  # fmt: skip


def v(minute: float, **changes: Any) -> Vitals:
    return Vitals(at=at(minute), by="nurse1", **{**NORMAL, **changes})


def test_every_complete_set_is_scored_and_a_red_score_alerts() -> None:
    c = chair().infusing()
    c.add(v(20))
    # HR 131 (3): a red score, total 3 -> alert "<seq>/news2"
    c.add(v(25, hr_per_min=131))
    state = c.state
    assert [n.total for n in state.news2] == [0, 3]
    assert state.latest_news2 is not None and state.latest_news2.subscores["pulse"] == 3
    [alert] = state.open_alerts
    assert alert.id == f"{c.log[-1].seq}/news2" and alert.threshold is None
    assert "NEWS2 3" in alert.describe() and "always on" in alert.describe()
    c.add(AcknowledgeAlert(at=at(26), by="nurse1", alert_id=alert.id, action="call_physician"))
    assert c.state.open_alerts == ()


@pytest.mark.parametrize(
    ("changes", "total", "alerts"),
    [
        # SpO2 94 (1) + oxygen (2) + temp 38.1 (1) = 4: low, no single 3 -> no alert
        ({"spo2_pct": 94, "supplemental_oxygen": True, "temperature_c": 38.1}, 4, False),
        # ... + SBP 110 (1) = 5: the urgent-response threshold -> alert
        (
            {"spo2_pct": 94, "supplemental_oxygen": True, "temperature_c": 38.1,
             "sbp_mmhg": 110, "dbp_mmhg": 70},
            5,
            True,
        ),
        # new confusion (3) alone: 3, low-medium -> alert
        ({"consciousness": "confusion"}, 3, True),
        # unresponsive is scored like voice and pain (3)
        ({"consciousness": "unresponsive"}, 3, True),
    ],
)  # fmt: skip
def test_urgent_thresholds(changes: dict[str, Any], total: int, alerts: bool) -> None:
    c = chair().infusing()
    c.add(v(20, **changes))
    assert c.state.latest_news2 is not None and c.state.latest_news2.total == total
    assert bool(c.state.open_alerts) is alerts


def test_an_incomplete_set_has_no_news2() -> None:
    c = chair().infusing()
    c.add(Vitals(at=at(20), by="nurse1", rr_per_min=8, spo2_pct=97, consciousness="alert"))
    assert c.state.news2 == () and c.state.open_alerts == ()


def test_a_reading_finer_than_the_chart_is_shown_unscored_not_rounded() -> None:
    result = news2_for(v(20, temperature_c=36.05), scale=1)
    assert result is not None and result.total is None
    assert result.not_scored is not None and "temperature_c" in result.not_scored
    assert "not scored" in result.describe()


def test_an_amendment_entered_in_error_removes_the_score_and_its_alert() -> None:
    c = chair().infusing()
    c.add(v(20, rr_per_min=25))  # RR 25 (3)
    seq = c.log[-1].seq
    assert c.state.open_alerts
    c.add(Amendment(at=at(21), by="nurse1", target_seq=seq, reason="wrong chair"))
    assert c.state.news2 == () and c.state.open_alerts == ()


def test_old_stored_vitals_without_the_new_fields_still_load() -> None:
    stored = {
        "kind": "vitals", "at": "2025-03-03T09:20:00+00:00", "by": "nurse1", "seq": 7,
        "sbp_mmhg": 120, "dbp_mmhg": 75, "hr_per_min": 70, "spo2_pct": 97,
        "rr_per_min": 16, "temperature_c": None,
    }  # fmt: skip
    event = event_from_dict(stored)
    assert isinstance(event, Vitals)
    assert event.consciousness is None and event.supplemental_oxygen is None
    assert news2_for(event, scale=1) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"consciousness": "drowsy"}, "alert, confusion, voice, pain, unresponsive"),
        ({"supplemental_oxygen": "yes"}, "true (yes) or false (no)"),
    ],
)
def test_bad_consciousness_or_oxygen_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        v(20, **changes)


def test_the_alert_rule_is_sourced_data() -> None:
    rules = news2_rules()
    assert set(rules.alert_flags) == {"news2_single_parameter_3", "news2_urgent_response"}
    assert "Royal College of Physicians" in rules.citation and "2017" in rules.citation
    assert "not validated" in DISSOCIATION_NOTE and "clinician" in DISSOCIATION_NOTE


# --- SpO2 scale 2, where the monitoring order prescribes it -----------------------------
#
# RCP 2017 Chart 1, scale 2 row: <=83: 3 | 84-85: 2 | 86-87: 1 | 88-92: 0 |
# >=93 on air: 0 | 93-94 on oxygen: 1 | 95-96 on oxygen: 2 | >=97 on oxygen: 3.


def scale2_chair() -> Any:
    import dataclasses

    from core.sessions.session_helpers import Chair, setup_for

    setup = dataclasses.replace(
        setup_for("crps-outpatient"),
        news2_spo2_scale=2,
        news2_spo2_scale_note="SpO2 scale 2 prescribed by dr_a: hypercapnic, target 88-92%",
    )
    return Chair(setup)


def test_on_scale_2_a_saturation_on_target_does_not_alert() -> None:
    c = scale2_chair().infusing()
    # SpO2 89 on air: 0 on scale 2 (3 on scale 1, which would alert)
    c.add(v(20, spo2_pct=89))
    n = c.state.latest_news2
    assert n is not None and n.total == 0 and n.scale == 2
    assert c.state.open_alerts == ()
    assert chair().infusing().add(v(20, spo2_pct=89)).state.open_alerts != ()


def test_on_scale_2_over_oxygenation_is_a_red_score_and_is_named() -> None:
    c = scale2_chair().infusing()
    # SpO2 97 on oxygen: 3, plus oxygen 2 = 5 (on scale 1: 0 + 2 = 2, no alert)
    c.add(v(20, spo2_pct=97, supplemental_oxygen=True))
    n = c.state.latest_news2
    assert n is not None and n.total == 5 and n.subscores["spo2_scale2"] == 3
    [alert] = c.state.open_alerts
    assert "SpO2 scale 2 scores 3" in alert.describe()
    assert (
        chair().infusing().add(v(20, spo2_pct=97, supplemental_oxygen=True)).state.open_alerts == ()
    )


def test_on_scale_2_an_incomplete_set_names_a_red_saturation_only_when_it_can() -> None:
    c = scale2_chair().infusing()
    c.add(Vitals(at=at(20), by="nurse1", spo2_pct=83, hr_per_min=70))  # 3 on air or oxygen
    assert c.state.news2_partial is not None and c.state.news2_partial.red == ("SpO2 83 %",)
    c.add(Vitals(at=at(21), by="nurse1", spo2_pct=97, hr_per_min=70))  # oxygen unknown
    assert c.state.news2_partial is not None and c.state.news2_partial.red == ()
    c.add(Vitals(at=at(22), by="nurse1", spo2_pct=97, supplemental_oxygen=True))
    assert c.state.news2_partial is not None and c.state.news2_partial.red == ("SpO2 97 %",)


def test_scale_2_continuous_monitoring_follows_the_scale_2_score() -> None:
    from ketacare.core.sessions.monitoring import monitoring_schedule

    c = scale2_chair().infusing()
    # SpO2 97 on oxygen (3) + oxygen (2) + HR 112 (2) = 7: continuous monitoring
    c.add(v(20, spo2_pct=97, supplemental_oxygen=True, hr_per_min=112))
    first = monitoring_schedule(c.state, now=at(21)).checks[0]
    assert first.continuous and "NEWS2 7" in first.what


def test_a_scale_2_setup_needs_its_order() -> None:
    import dataclasses

    from core.sessions.session_helpers import setup_for

    with pytest.raises(InvalidInput, match="scale 2 needs the order"):
        dataclasses.replace(setup_for("crps-outpatient"), news2_spo2_scale=2)
    with pytest.raises(InvalidInput, match="must be 1 or 2"):
        dataclasses.replace(setup_for("crps-outpatient"), news2_spo2_scale=3)  # type: ignore[arg-type]
