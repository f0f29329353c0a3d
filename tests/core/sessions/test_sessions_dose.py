"""Delivered dose from rate histories, checked against hand calculations; limits on changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.sessions.session_helpers import T0, at, chair
from ketacare.core.errors import DoseLimitExceeded, InvalidInput, SoftLimitNeedsReview
from ketacare.core.sessions import (
    Bolus,
    EndSession,
    LimitOverride,
    Pause,
    RateChange,
    Resume,
    SelfAdministration,
    Stop,
    delivered_mg,
    delivered_mg_per_kg,
    infusion_time,
    session_regimen,
)


def worked_example():  # type: ignore[no-untyped-def]
    """24.5 mg/h from 0:10 for 2 h, paused 15 min, 20 mg/h for 1 h 45 min, stop at 4:10."""
    c = chair().infusing(rate=24.5, minute=10)
    c.add(Pause(at=at(130), by="nurse1", reason="nausea"))
    c.add(
        RateChange(at=at(140), by="nurse1", rate_mg_per_h=20, reason="titration")
    )  # reprogrammed while paused
    c.add(Resume(at=at(145), by="nurse1"))
    c.add(Stop(at=at(250), by="nurse1", reason="completed"))
    return c


def test_worked_example_84_mg() -> None:
    # Hand calculation: 24.5 mg/h x 2 h = 49 mg; paused 15 min = 0 mg;
    # 20 mg/h x 1.75 h (1 h 45 min) = 35 mg; total 49 + 35 = 84 mg.
    state = worked_example().state
    assert delivered_mg(state, at=at(250)) == 84.0
    assert delivered_mg(state, at=at(600)) == 84.0  # nothing after the stop
    assert delivered_mg_per_kg(state, at=at(250)) == pytest.approx(84.0 / 70)  # 1.2 mg/kg
    assert infusion_time(state, at=at(250)) == timedelta(hours=3, minutes=45)
    assert state.state == "recovery" and not state.infusing and not state.paused


@pytest.mark.parametrize(
    ("minute", "expected_mg"),
    [
        (0, 0.0),  # before the start
        (10, 0.0),  # at the start
        (40, 12.25),  # 24.5 mg/h x 0.5 h
        (130, 49.0),  # at the pause: 24.5 x 2
        (140, 49.0),  # during the pause
        (145, 49.0),  # at the resume
        (175, 59.0),  # 49 + 20 x 0.5
        (250, 84.0),  # 49 + 20 x 1.75
    ],
    ids=repr,
)
def test_delivered_as_of_any_instant(minute: float, expected_mg: float) -> None:
    assert delivered_mg(worked_example().state, at=at(minute)) == pytest.approx(expected_mg)


def test_running_infusion_counts_up_to_the_instant_asked() -> None:
    state = chair().infusing(rate=20, minute=10).state
    assert state.infusing
    # 20 mg/h x 1 h 30 min = 30 mg
    assert delivered_mg(state, at=at(100)) == pytest.approx(30.0)


def test_bolus_adds_to_the_infusion() -> None:
    c = chair().infusing(rate=20, minute=10)
    c.add(Bolus(at=at(40), by="nurse1", amount_mg=5, reason="breakthrough pain"))
    c.add(Stop(at=at(70), by="nurse1", reason="completed"))
    # 20 mg/h x 1 h = 20 mg, plus a 5 mg bolus = 25 mg
    state = c.state
    assert delivered_mg(state, at=at(39)) == pytest.approx(29 / 60 * 20)
    assert delivered_mg(state, at=at(40)) == pytest.approx(10.0 + 5.0)
    assert delivered_mg(state, at=at(70)) == pytest.approx(25.0)


def test_end_session_during_dosing_stops_the_count() -> None:
    c = chair().infusing(rate=24, minute=10)
    c.add(EndSession(at=at(40), by="nurse1", reason="transferred to emergency department"))
    state = c.state
    assert state.state == "stopped_early"
    assert delivered_mg(state, at=at(300)) == pytest.approx(12.0)  # 24 mg/h x 0.5 h


def test_esketamine_devices_are_28_mg_each() -> None:
    c = chair("esketamine-trd").ready()
    c.add(SelfAdministration(at=at(10), by="nurse1", devices=1))
    c.add(SelfAdministration(at=at(15), by="nurse1", devices=1))
    c.add(SelfAdministration(at=at(20), by="nurse1", devices=1))
    state = c.state
    assert state.state == "dosing"
    assert delivered_mg(state, at=at(12)) == 28.0
    assert delivered_mg(state, at=at(20)) == 84.0  # 3 devices x 28 mg
    with pytest.raises(DoseLimitExceeded, match="112 mg exceeds the hard limit 84 mg"):
        c.add(SelfAdministration(at=at(25), by="nurse1", devices=1))
    with pytest.raises(Exception, match="give the number of devices"):
        chair("esketamine-trd").ready().add(
            SelfAdministration(at=at(10), by="nurse1", amount_mg=28)
        )


def test_rate_limits_hard_and_soft() -> None:
    # crps-outpatient: hard 25 mg/h (Schwartzman 2009); soft 0.35 mg/kg/h = 24.5 mg/h at 70 kg.
    with pytest.raises(DoseLimitExceeded, match="25.5 mg/h exceeds the hard limit 25 mg/h"):
        chair().infusing(rate=25.5)
    with pytest.raises(SoftLimitNeedsReview, match="above the soft limit 0.35 mg/kg/h"):
        chair().infusing(rate=24.6)
    c = chair().infusing(rate=24.5)  # exactly at the soft limit: allowed
    with pytest.raises(SoftLimitNeedsReview, match="second clinician"):
        c.add(
            RateChange(
                at=at(20),
                by="nurse1",
                rate_mg_per_h=25,
                override=LimitOverride(reason="pain 8/10", cosigned_by="nurse1"),
                reason="pain 8/10",
            )
        )
    c.add(
        RateChange(
            at=at(20),
            by="nurse1",
            rate_mg_per_h=25,
            override=LimitOverride(reason="pain 8/10", cosigned_by="dr_a"),
            reason="pain 8/10",
        )
    )
    assert c.state.rate_mg_per_h == 25


def test_rate_above_plan_is_flagged() -> None:
    from core.sessions.session_helpers import Chair, setup_for
    from ketacare.core.protocols import load_library
    from protocol_policy import build_plan  # under the test policy (hard ceilings set)

    plan = build_plan(protocol=load_library().get(protocol_id="crps-outpatient"), weight_kg=60)
    setup = setup_for("crps-outpatient", weight_kg=60, planned=plan.sessions[0])
    assert setup.planned_rate_mg_per_h == 21.0  # 0.35 x 60
    c = Chair(setup).infusing(rate=21)
    assert not c.state.rate_above_plan
    # slowed for an hour (60 min at 21 = 21 mg, then 60 min at 15 = 15 mg), a faster rate
    # for the 120 min left (22 x 2 = 44 mg) stays within the plan's 84 mg: 80 mg
    c.add(RateChange(at=at(70), by="nurse1", rate_mg_per_h=15, reason="titration"))
    c.add(
        RateChange(
            at=at(130),
            by="nurse1",
            rate_mg_per_h=22,
            override=LimitOverride(reason="pain", cosigned_by="dr_a"),
            reason="pain",
        )
    )
    assert c.state.rate_above_plan


def test_pause_resume_guards() -> None:
    c = chair().infusing()
    with pytest.raises(Exception, match="the infusion is not paused"):
        c.add(Resume(at=at(20), by="nurse1"))
    c.add(Pause(at=at(20), by="nurse1"))
    with pytest.raises(Exception, match="no infusion is running to pause"):
        c.add(Pause(at=at(21), by="nurse1"))


def test_dosing_entries_must_be_in_time_order() -> None:
    c = chair().infusing(minute=10)
    with pytest.raises(InvalidInput, match="dated before the previous entry"):
        c.add(RateChange(at=at(9), by="nurse1", rate_mg_per_h=20, reason="titration"))


def test_regimen_is_the_rate_history() -> None:
    regimen = session_regimen(worked_example().state, at=at(600))
    assert regimen == {
        "doses": [
            {"route": "iv_infusion", "start_h": 0.0, "duration_h": 2.0, "rate_mg_per_h": 24.5},
            {"route": "iv_infusion", "start_h": 2.25, "duration_h": 1.75, "rate_mg_per_h": 20.0},
        ]
    }


# A random rate history: (minutes to wait, action, value) steps.
STEP = st.tuples(
    st.integers(min_value=1, max_value=90),
    st.sampled_from(["rate", "pause", "resume", "bolus"]),
    st.floats(min_value=1, max_value=24, allow_nan=False).map(lambda x: round(x, 2)),
)


@settings(max_examples=60, deadline=None)
@given(
    first=st.floats(min_value=1, max_value=24).map(lambda x: round(x, 2)),
    steps=st.lists(STEP, max_size=8),
    probes=st.lists(st.integers(0, 900), max_size=6),
)
def test_delivered_equals_sum_of_segments_and_is_monotone(
    first: float, steps: list[tuple[int, str, float]], probes: list[int]
) -> None:
    c = chair().infusing(rate=first, minute=10)
    # Independent model: list of (start_min, end_min, rate) and boluses.
    segments: list[list[float]] = [[10, -1, first]]
    boluses: list[tuple[float, float]] = []
    minute, rate, paused = 10.0, first, False
    for wait, action, value in steps:
        minute += wait
        if action == "rate":
            c.add(RateChange(at=at(minute), by="nurse1", rate_mg_per_h=value, reason="titration"))
            rate = value
            if not paused:
                segments[-1][1] = minute
                segments.append([minute, -1, value])
        elif action == "pause" and not paused:
            c.add(Pause(at=at(minute), by="nurse1"))
            segments[-1][1] = minute
            paused = True
        elif action == "resume" and paused:
            c.add(Resume(at=at(minute), by="nurse1"))
            segments.append([minute, -1, rate])
            paused = False
        elif action == "bolus" and delivered_mg(c.state, at=at(minute)) + value <= 100:
            c.add(Bolus(at=at(minute), by="nurse1", amount_mg=value))
            boluses.append((minute, value))
    state = c.state

    def expected(t: float) -> float:
        total = sum(mg for m, mg in boluses if m <= t)
        for start, end, r in segments:
            stop = t if end < 0 else min(end, t)
            total += r * max(0.0, stop - start) / 60
        return total

    times = sorted({*probes, int(minute), int(minute) + 30})
    values = [delivered_mg(state, at=at(t)) for t in times]
    for t, v in zip(times, values, strict=True):
        assert v == pytest.approx(expected(t), rel=1e-12, abs=1e-9)
    assert all(a <= b + 1e-12 for a, b in zip(values, values[1:], strict=False))
    assert delivered_mg(state, at=T0) == 0.0
