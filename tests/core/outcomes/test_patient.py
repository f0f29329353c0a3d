"""Per-patient rules at their edges, with answers worked out by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.outcomes import (
    BoosterRule,
    MeasureSeries,
    Sessions,
    booster,
    format_day,
    futility,
    load_definitions,
    patient_status,
    response_course,
    select_baseline,
    trajectory,
)

FUTILITY = load_definitions().futility_rules[0]


def pain(*points):
    return MeasureSeries.from_pairs(measure="nrs_pain", points=points)


def phq(*points):
    return MeasureSeries.from_pairs(measure="phq9", points=points)


def sessions(*days, doses=None):
    return Sessions.build(time=list(days), dose_mg=doses)


def day(seconds):
    return None if seconds is None else format_day(seconds)


# --- baseline ---------------------------------------------------------------


def test_baseline_is_the_last_value_at_or_before_the_first_session():
    s = pain(("2026-01-01", 9), ("2026-01-04", 7), ("2026-01-06", 3))
    b = select_baseline(series=s, sessions=sessions("2026-01-05", "2026-01-02"))
    # sessions are sorted: the first is 01-02, so the baseline is 01-01 (9)
    assert (b.day, b.value) == ("2026-01-01", 9.0)


def test_a_value_at_the_session_time_is_baseline_not_follow_up():
    s = pain(("2026-01-05T09:00", 8), ("2026-01-05T14:00", 4))
    b = select_baseline(series=s, sessions=sessions("2026-01-05T09:00"))
    assert b.value == 8.0
    tr = trajectory(series=s, sessions=sessions("2026-01-05T09:00"))
    assert tr.phase == ("baseline", "follow_up")


def test_no_baseline_without_sessions_or_earlier_values():
    s = pain(("2026-01-06", 3))
    assert select_baseline(series=s, sessions=sessions()) is None
    assert select_baseline(series=s, sessions=sessions("2026-01-05")) is None


def test_baseline_window_excludes_old_values():
    s = pain(("2025-06-01", 9))
    week = np.timedelta64(7, "D")
    assert select_baseline(series=s, sessions=sessions("2026-01-05"), baseline_window=week) is None
    assert select_baseline(series=s, sessions=sessions("2026-01-05")).value == 9.0


def test_missing_values_are_dropped():
    s = pain(("2026-01-01", 8), ("2026-01-03", None))
    assert s.value.tolist() == [8.0]


# --- trajectory -------------------------------------------------------------


def test_trajectory_change_and_sessions_before():
    s = pain(("2025-12-20", 9), ("2026-01-01", 8), ("2026-01-03", 6), ("2026-01-10", 2))
    ses = sessions("2026-01-02", "2026-01-09", doses=[35, 40])
    tr = trajectory(series=s, sessions=ses)
    assert tr.phase == ("before", "baseline", "follow_up", "follow_up")
    assert tr.change.tolist() == [1.0, 0.0, -2.0, -6.0]
    assert tr.change_percent.tolist() == [12.5, 0.0, -25.0, -75.0]
    assert tr.sessions_before.tolist() == [0, 0, 1, 2]
    assert tr.met["pain-30"].tolist() == [False, False, False, True]
    assert tr.session_dose_mg.tolist() == [35.0, 40.0]


def test_trajectory_percent_is_nan_for_zero_baseline():
    tr = trajectory(
        series=pain(("2026-01-01", 0), ("2026-01-03", 2)), sessions=sessions("2026-01-02")
    )
    assert np.isnan(tr.change_percent).all() and tr.change.tolist() == [0.0, 2.0]


def test_out_of_scale_values_are_refused():
    with pytest.raises(OutOfRange, match="0 to 10"):
        trajectory(series=pain(("2026-01-01", 12)), sessions=sessions("2026-01-02"))


def test_definition_for_another_measure_is_refused():
    with pytest.raises(InvalidInput, match="phq9"):
        response_course(
            series=pain(("2026-01-01", 8)),
            sessions=sessions("2026-01-02"),
            definition_id="phq9-response",
            loss_confirmations=1,
        )


# --- response episodes, responder since, durability ----------------------------


def course(series, ses, definition_id="pain-30", k=2):
    return response_course(
        series=series, sessions=ses, definition_id=definition_id, loss_confirmations=k
    )


def test_never_responded():
    c = course(
        pain(("2026-01-01", 8), ("2026-01-03", 7), ("2026-01-05", 6)), sessions("2026-01-02")
    )
    # 8 -> 6 is 25%: below 30%
    assert c.state == "never" and c.first_response is None and c.durability_days is None


def test_one_miss_does_not_lose_response_with_two_confirmations():
    s = pain(("2026-01-01", 10), ("2026-01-03", 7), ("2026-01-10", 8), ("2026-01-17", 6))
    c = course(s, sessions("2026-01-02"))
    assert c.state == "responding"
    assert day(c.responder_since) == "2026-01-03"
    assert c.durability_event is False and c.durability_days == 14.0  # 01-03 -> 01-17


def test_loss_is_dated_at_the_first_of_the_confirming_values():
    s = pain(("2026-01-01", 10), ("2026-01-03", 7), ("2026-01-10", 8), ("2026-01-17", 8))
    c = course(s, sessions("2026-01-02"))
    assert c.state == "lost"
    assert [(day(e.start), day(e.end)) for e in c.episodes] == [("2026-01-03", "2026-01-10")]
    assert c.durability_days == 7.0 and c.durability_event is True


def test_one_confirmation_loses_at_the_first_miss():
    s = pain(("2026-01-01", 10), ("2026-01-03", 7), ("2026-01-10", 8))
    c = course(s, sessions("2026-01-02"), k=1)
    assert c.state == "lost" and day(c.episodes[0].end) == "2026-01-10"


def test_regained_response_starts_a_new_episode():
    s = pain(
        ("2026-01-01", 10),
        ("2026-01-03", 5),
        ("2026-01-10", 9),
        ("2026-01-17", 9),
        ("2026-02-01", 6),
    )
    c = course(s, sessions("2026-01-02"))
    assert c.state == "responding"
    assert day(c.responder_since) == "2026-02-01"
    assert day(c.first_response) == "2026-01-03"
    assert c.durability_days == 7.0  # first episode only


@pytest.mark.parametrize("k", [0, -1, True, 1.5])
def test_loss_confirmations_must_be_set(k):
    with pytest.raises(OutOfRange, match="clinic-set"):
        course(pain(("2026-01-01", 8)), sessions("2026-01-02"), k=k)


def test_phq9_baseline_not_above_9_is_not_assessable():
    c = course(phq(("2026-01-01", 9), ("2026-01-03", 0)), sessions("2026-01-02"), "phq9-remission")
    assert c.state == "not_assessable" and "not above 9" in c.reason


def test_no_follow_up():
    c = course(phq(("2026-01-01", 20)), sessions("2026-01-02"), "phq9-response")
    assert c.state == "no_follow_up"


# --- futility (Sanacora 2017: no response after 3 infusions) ---------------------

THREE = ("2026-01-02", "2026-01-05", "2026-01-08")


def test_futility_flags_after_three_sessions_without_response():
    s = phq(("2026-01-01", 20), ("2026-01-03", 18), ("2026-01-06", 15), ("2026-01-09", 11))
    # 20 -> 11 is a 45% reduction: no response
    f = futility(series=s, sessions=sessions(*THREE), rule=FUTILITY)
    assert f.state == "flag" and f.sessions_given == 3
    assert f.sources[0].key == "sanacora-2017"


def test_futility_edge_exactly_fifty_percent_after_session_three_clears():
    s = phq(("2026-01-01", 20), ("2026-01-09", 10))
    assert futility(series=s, sessions=sessions(*THREE), rule=FUTILITY).state == "clear"


def test_futility_waits_for_the_third_session():
    s = phq(("2026-01-01", 20), ("2026-01-03", 18), ("2026-01-06", 18))
    f = futility(series=s, sessions=sessions(*THREE[:2]), rule=FUTILITY)
    assert f.state == "pending" and "2 of 3" in f.message


def test_futility_waits_for_a_score_after_the_third_session():
    # a score taken at the third session's start is not after it
    s = phq(("2026-01-01", 20), ("2026-01-06", 18), ("2026-01-08", 18))
    f = futility(series=s, sessions=sessions(*THREE), rule=FUTILITY)
    assert f.state == "pending" and "after session 3" in f.message


def test_futility_cleared_by_an_earlier_response():
    s = phq(("2026-01-01", 20), ("2026-01-03", 9), ("2026-01-06", 18), ("2026-01-09", 18))
    assert futility(series=s, sessions=sessions(*THREE), rule=FUTILITY).state == "clear"


def test_futility_cleared_by_a_late_response_after_session_four():
    s = phq(("2026-01-01", 20), ("2026-01-09", 18), ("2026-01-12", 8))
    ses = sessions(*THREE, "2026-01-11")
    assert futility(series=s, sessions=ses, rule=FUTILITY).state == "clear"


def test_futility_not_assessable_with_low_baseline():
    s = phq(("2026-01-01", 8), ("2026-01-09", 8))
    assert futility(series=s, sessions=sessions(*THREE), rule=FUTILITY).state == "not_assessable"


# --- booster (clinic-set rule, no default) ----------------------------------------

RESPONDER = (("2026-01-01", 8), ("2026-01-03", 3))
RULE6 = BoosterRule(
    definition_id="pain-30", kind="score_at_or_above", threshold=6, set_by="policy B-1"
)


@pytest.mark.parametrize(
    ("latest", "state"), [(6, "suggested"), (5, "not_suggested"), (7, "suggested")], ids=repr
)
def test_booster_score_threshold_edge(latest, state):
    s = pain(*RESPONDER, ("2026-02-01", latest))
    assert booster(series=s, sessions=sessions("2026-01-02"), rule=RULE6).state == state


def test_booster_not_suggested_when_a_session_followed_the_rise():
    s = pain(*RESPONDER, ("2026-02-01", 7))
    ses = sessions("2026-01-02", "2026-02-02")
    b = booster(series=s, sessions=ses, rule=RULE6)
    assert b.state == "not_suggested" and "session" in b.message


def test_booster_not_applicable_to_a_non_responder():
    s = pain(("2026-01-01", 8), ("2026-01-03", 7), ("2026-02-01", 8))
    assert booster(series=s, sessions=sessions("2026-01-02"), rule=RULE6).state == "not_applicable"


def test_booster_unset_is_flagged_not_assumed():
    s = pain(*RESPONDER, ("2026-02-01", 9))
    b = booster(series=s, sessions=sessions("2026-01-02"), rule=None)
    assert b.state == "not_configured" and "not set" in b.message


@pytest.mark.parametrize(
    ("latest", "state"),
    # baseline 8; threshold 25%: 6 is a 25% reduction (not below) -> not suggested;
    # 7 is 12.5% -> suggested
    [(6, "not_suggested"), (7, "suggested")],
    ids=repr,
)
def test_booster_reduction_threshold_edge(latest, state):
    rule = BoosterRule(
        definition_id="pain-30", kind="reduction_below_percent", threshold=25, set_by="p"
    )
    s = pain(*RESPONDER, ("2026-02-01", latest))
    assert booster(series=s, sessions=sessions("2026-01-02"), rule=rule).state == state


def test_booster_threshold_outside_the_scale_is_refused():
    rule = BoosterRule(definition_id="pain-30", kind="score_at_or_above", threshold=11, set_by="p")
    with pytest.raises(OutOfRange):
        booster(series=pain(*RESPONDER), sessions=sessions("2026-01-02"), rule=rule)


def test_booster_needs_a_response_definition():
    rule = BoosterRule(
        definition_id="phq9-remission", kind="score_at_or_above", threshold=10, set_by="p"
    )
    with pytest.raises(InvalidInput):
        booster(series=phq(("2026-01-01", 20)), sessions=sessions("2026-01-02"), rule=rule)


# --- status line -------------------------------------------------------------------


def test_status_line_responder_remission_and_booster():
    p = pain(("2026-03-01", 8), ("2026-03-03", 5), ("2026-04-01", 6))
    d = phq(("2026-03-01", 16), ("2026-03-03", 9), ("2026-03-10", 4), ("2026-04-01", 4))
    status = patient_status(
        series=[p, d],
        sessions=Sessions.build(time=[dt.datetime(2026, 3, 2, 10)]),
        loss_confirmations=2,
        booster_rules=[RULE6],
    )
    # pain: 8 -> 5 (37.5%) responds on 03-03; 6 (25%) is one miss, not a loss (k = 2)
    # PHQ-9: 16 -> 9 (43.75%) no; 4 (75%) response and remission from 03-10
    # booster: latest pain 6 >= 6 after the last session
    # no PHQ-9 booster rule was given: flagged, not assumed
    # the latest pain score misses 30%: still a responder (one miss of two), and said so
    assert status.parts == (
        "responder since 2026-03-03 (pain >=30%), but the latest score does not meet it "
        "(loss not confirmed yet)",
        "responder since 2026-03-10 (PHQ-9 response)",
        "PHQ-9 remission since 2026-03-10",
        "booster suggested",
        "booster threshold not set for phq9",
    )
    assert status.text == "; ".join(status.parts)


def test_status_line_lost_and_unset_booster():
    p = pain(("2026-01-01", 10), ("2026-01-03", 7), ("2026-01-10", 8))
    status = patient_status(
        series=[p], sessions=sessions("2026-01-02"), loss_confirmations=1, booster_rules=[]
    )
    assert status.parts == (
        "response lost on 2026-01-10 (pain >=30%)",
        "booster threshold not set for nrs_pain",
    )


def test_status_with_nothing_assessable():
    status = patient_status(
        series=[pain(("2026-01-01", 8))],
        sessions=sessions(),
        loss_confirmations=1,
        booster_rules=[],
    )
    assert status.text == "no assessable outcome yet"


def test_status_refuses_two_series_of_one_measure():
    with pytest.raises(InvalidInput):
        patient_status(
            series=[pain(("2026-01-01", 8)), pain(("2026-01-02", 8))],
            sessions=sessions(),
            loss_confirmations=1,
            booster_rules=[],
        )
