"""Every shipped protocol's dose arithmetic against hand-worked examples.

Each case writes the hand calculation in a comment; the expected values are
typed in, never computed by the code under test.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest

from ketacare.core.errors import DoseLimitExceeded, InvalidInput, OutOfRange
from ketacare.core.protocols import (
    load_library,
    round_to_step,
)
from ketacare.core.protocols.model import Protocol, RoundingStep
from protocol_policy import build_plan  # under the test policy (hard ceilings set)

LIB = load_library()


def proto(protocol_id: str) -> Protocol:
    return LIB.get(protocol_id=protocol_id)


# --- crps-outpatient (Schwartzman 2009): 0.35 mg/kg/h, max 25 mg/h, 4 h daily x 10 days ---


def test_crps_outpatient_60_kg_100_mg_in_100_ml() -> None:
    # 0.35 mg/kg/h x 60 kg = 21.0 mg/h (below the 25 mg/h cap)
    # bag 100 mg / 100 mL = 1 mg/mL -> 21.0 mL/h
    # dose per session 21.0 mg/h x 4 h = 84.0 mg; 10 daily sessions -> 840.0 mg
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=60, bag_mg=100, bag_ml=100)
    assert [s.day for s in plan.sessions] == list(range(1, 11))
    first = plan.sessions[0]
    assert (first.rate_mg_per_h, first.rate_ml_per_h, first.duration_h, first.dose_mg) == (
        21.0,
        21.0,
        4.0,
        84.0,
    )
    assert first.rate_mg_per_kg_per_h == 0.35
    assert first.capped_by_rule is False
    assert plan.total_dose_mg == 840.0
    assert plan.soft_findings == ()


def test_crps_outpatient_80_kg_is_capped_at_25_mg_per_h() -> None:
    # 0.35 x 80 = 28 mg/h > 25 mg/h "not to exceed" -> 25.0 mg/h (25/80 = 0.3125 mg/kg/h)
    # bag 500 mg / 250 mL = 2 mg/mL -> 25 / 2 = 12.5 mL/h
    # dose 25 x 4 = 100.0 mg (equal to the 100 mg hard limit, not above it); total 1000.0 mg
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=80, bag_mg=500, bag_ml=250)
    first = plan.sessions[0]
    assert (first.rate_mg_per_h, first.rate_ml_per_h, first.dose_mg) == (25.0, 12.5, 100.0)
    assert first.rate_mg_per_kg_per_h == 0.313
    assert first.capped_by_rule is True
    assert plan.total_dose_mg == 1000.0
    assert plan.concentration_mg_per_ml == 2.0
    assert any("capped at 25 mg/h" in note for note in plan.notes)


def test_crps_outpatient_65_kg_rounding_half_up_but_not_across_a_limit() -> None:
    # 0.35 x 65 = 22.75 mg/h; half up to 0.1 would give 22.8 mg/h = 0.3508 mg/kg/h, above
    # the 0.35 soft limit the order sits on, so it rounds down: 22.7 mg/h
    # bag 100 mg / 60 mL: 22.75 x 60 / 100 = 13.65 mL/h exactly; half up 13.7 mL/h would
    # deliver 22.83 mg/h (above 22.75), so 13.6 mL/h
    # dose 22.75 x 4 = 91.0 mg (no dose limit at 91.0); total 910.0 mg
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=65, bag_mg=100, bag_ml=60)
    first = plan.sessions[0]
    assert (first.rate_mg_per_h, first.rate_ml_per_h, first.dose_mg) == (22.7, 13.6, 91.0)
    assert plan.total_dose_mg == 910.0
    assert plan.concentration_mg_per_ml == 1.6667


def test_crps_outpatient_without_bag_has_no_ml_rate() -> None:
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=70)
    # 0.35 x 70 = 24.5 mg/h; no bag -> mL/h not computed
    assert plan.sessions[0].rate_mg_per_h == 24.5
    assert plan.sessions[0].rate_ml_per_h is None
    assert plan.concentration_mg_per_ml is None


def test_crps_outpatient_dates_follow_start() -> None:
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=70, start=dt.date(2025, 3, 3))
    # daily: day 1 = 2025-03-03 ... day 10 = 2025-03-12
    assert plan.sessions[0].date == dt.date(2025, 3, 3)
    assert plan.sessions[-1].date == dt.date(2025, 3, 12)


# --- crps-continuous (ASRA 2018 / Sigtermans 2009): 22 mg/h for 4 days ---


def test_crps_continuous_one_96_hour_infusion() -> None:
    # 22 mg/h x 96 h = 2112.0 mg; 100 mg / 100 mL -> 22.0 mL/h; 22/70 = 0.3143 -> 0.314 mg/kg/h
    plan = build_plan(protocol=proto("crps-continuous"), weight_kg=70, bag_mg=100, bag_ml=100)
    assert len(plan.sessions) == 1
    session = plan.sessions[0]
    assert (session.rate_mg_per_h, session.rate_ml_per_h, session.duration_h) == (22.0, 22.0, 96.0)
    assert session.dose_mg == 2112.0
    assert session.rate_mg_per_kg_per_h == 0.314
    assert plan.total_dose_mg == 2112.0


# --- depression-iv: 0.5 mg/kg over 40 min, twice weekly up to 6 weeks ---


def test_depression_iv_70_kg() -> None:
    # 0.5 mg/kg x 70 kg = 35.0 mg over 40 min = 2/3 h -> 35 / (2/3) = 52.5 mg/h (0.75 mg/kg/h)
    # 1 mg/mL -> 52.5 mL/h; 12 sessions (twice weekly x 6 weeks) -> 12 x 35 = 420.0 mg
    plan = build_plan(protocol=proto("depression-iv"), weight_kg=70, bag_mg=50, bag_ml=50)
    first = plan.sessions[0]
    assert (first.dose_mg, first.rate_mg_per_h, first.rate_ml_per_h) == (35.0, 52.5, 52.5)
    assert first.rate_mg_per_kg_per_h == 0.75
    assert first.duration_min == 40.0
    assert first.duration_h == 0.667
    assert [s.day for s in plan.sessions] == [1, 4, 8, 11, 15, 18, 22, 25, 29, 32, 36, 39]
    assert plan.total_dose_mg == 420.0
    assert plan.soft_findings == ()


def test_depression_iv_83_kg_rounds_rate() -> None:
    # 0.5 x 83 = 41.5 mg; 41.5 / (2/3) = 62.25 mg/h -> 62.3 mg/h; 2 mg/mL -> 31.125 -> 31.1 mL/h
    # total 12 x 41.5 = 498.0 mg
    plan = build_plan(protocol=proto("depression-iv"), weight_kg=83, bag_mg=200, bag_ml=100)
    first = plan.sessions[0]
    assert (first.dose_mg, first.rate_mg_per_h, first.rate_ml_per_h) == (41.5, 62.3, 31.1)
    assert plan.total_dose_mg == 498.0


def test_depression_iv_review_point_after_three_infusions() -> None:
    plan = build_plan(protocol=proto("depression-iv"), weight_kg=70)
    assert any(n.startswith("after session 3: futility review") for n in plan.notes)


def test_depression_iv_dose_mg_override_spreads_over_40_min() -> None:
    # 42 mg over 40 min -> 42 x 1.5 = 63.0 mg/h; 42 / 70 = 0.6 mg/kg (> soft 0.5 -> finding)
    plan = build_plan(protocol=proto("depression-iv"), weight_kg=70, dose_mg=42)
    first = plan.sessions[0]
    assert (first.dose_mg, first.rate_mg_per_h, first.dose_mg_per_kg) == (42.0, 63.0, 0.6)
    assert plan.order == "override: 42.0 mg per session"


# --- esketamine-trd (Spravato label) ---


def test_esketamine_trd_default_schedule() -> None:
    # induction twice weekly weeks 1-4 (8), maintenance weekly weeks 5-8 (4): 12 x 56 = 672 mg
    plan = build_plan(protocol=proto("esketamine-trd"), weight_kg=70)
    assert [s.day for s in plan.sessions] == [1, 4, 8, 11, 15, 18, 22, 25, 29, 36, 43, 50]
    assert [s.phase for s in plan.sessions].count("induction") == 8
    assert all(s.dose_mg == 56.0 for s in plan.sessions)
    assert all(s.rate_mg_per_h is None and s.duration_h is None for s in plan.sessions)
    assert plan.total_dose_mg == 672.0
    assert any("continuation" in note for note in plan.notes)


def test_esketamine_trd_84_mg_keeps_56_mg_first_dose() -> None:
    # label: 84 mg only after an initial 56 mg -> 56 + 11 x 84 = 56 + 924 = 980 mg
    plan = build_plan(protocol=proto("esketamine-trd"), weight_kg=70, dose_mg=84)
    assert plan.sessions[0].dose_mg == 56.0
    assert {s.dose_mg for s in plan.sessions[1:]} == {84.0}
    assert plan.total_dose_mg == 980.0


def test_esketamine_trd_refuses_unlabelled_dose() -> None:
    with pytest.raises(InvalidInput, match="allows 56 or 84 mg per session"):
        build_plan(protocol=proto("esketamine-trd"), weight_kg=70, dose_mg=70)


def test_esketamine_trd_refuses_rate_override_and_bag() -> None:
    with pytest.raises(InvalidInput, match="not an infusion"):
        build_plan(protocol=proto("esketamine-trd"), weight_kg=70, dose_mg_per_kg_per_h=0.5)
    with pytest.raises(InvalidInput, match="a bag applies only to infusions"):
        build_plan(protocol=proto("esketamine-trd"), weight_kg=70, bag_mg=100, bag_ml=100)


# --- esketamine-mdd-si ---


def test_esketamine_mdd_si() -> None:
    # 84 mg twice weekly x 4 weeks = 8 x 84 = 672 mg; reduced to 56 mg -> 8 x 56 = 448 mg
    plan = build_plan(protocol=proto("esketamine-mdd-si"), weight_kg=70)
    assert [s.day for s in plan.sessions] == [1, 4, 8, 11, 15, 18, 22, 25]
    assert plan.total_dose_mg == 672.0
    reduced = build_plan(protocol=proto("esketamine-mdd-si"), weight_kg=70, dose_mg=56)
    assert reduced.total_dose_mg == 448.0


# --- oral-followon (clinic-set dose) ---


def test_oral_followon_needs_an_ordered_dose() -> None:
    with pytest.raises(InvalidInput, match="no published dose"):
        build_plan(protocol=proto("oral-followon"), weight_kg=70)


def test_oral_followon_single_session_all_limits_site_policy() -> None:
    # 50 mg / 70 kg = 0.714 mg/kg; no schedule -> one session on day 1
    # (the hard ceilings come from the test policy; the soft slots stay unset)
    plan = build_plan(protocol=proto("oral-followon"), weight_kg=70, dose_mg=50)
    assert len(plan.sessions) == 1
    assert (plan.sessions[0].dose_mg, plan.sessions[0].dose_mg_per_kg) == (50.0, 0.714)
    assert set(plan.not_configured) == {"dose_mg soft", "dose_mg_per_kg soft", "course_mg soft"}
    assert plan.requires_review


# --- rounding rule ---


@pytest.mark.parametrize(
    ("value", "step", "mode", "expected"),
    [
        ("22.75", 0.1, "half_up", "22.8"),
        ("22.65", 0.1, "half_up", "22.7"),  # binary floats would give 22.6
        ("22.74", 0.1, "half_up", "22.7"),
        ("22.75", 0.1, "down", "22.7"),
        ("22.79", 0.1, "down", "22.7"),
        ("83.9", 28, "down", "56"),
        ("84", 28, "down", "84"),
        ("0.125", 0.25, "half_up", "0.25"),
    ],
    ids=repr,
)
def test_round_to_step(value: str, step: float, mode: str, expected: str) -> None:
    result = round_to_step(Decimal(value), RoundingStep(step, mode))
    assert result == Decimal(expected)


def test_rounding_rule_is_stated() -> None:
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=70)
    assert plan.rounding.startswith(
        "doses to 0.1 mg (half up); rates to 0.1 mg/h (half up); pump rates to 0.1 mL/h (half up)"
    )
    assert "limits are checked on the exact values before rounding" in plan.rounding


# --- input validation ---


@pytest.mark.parametrize("weight", [19.9, 350.1, 0, -70, float("nan"), float("inf")], ids=repr)
def test_weight_out_of_range(weight: float) -> None:
    with pytest.raises(OutOfRange, match="weight_kg .* is out of range: allowed 20 to 350 kg"):
        build_plan(protocol=proto("crps-outpatient"), weight_kg=weight)


@pytest.mark.parametrize("weight", [20, 350], ids=repr)
def test_weight_bounds_are_inclusive(weight: float) -> None:
    assert build_plan(protocol=proto("esketamine-trd"), weight_kg=weight).weight_kg == weight


def test_both_overrides_refused() -> None:
    with pytest.raises(InvalidInput, match="not both"):
        build_plan(
            protocol=proto("crps-outpatient"), weight_kg=70, dose_mg=50, dose_mg_per_kg_per_h=0.2
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bag_mg": 100}, "give both bag_mg and bag_ml"),
        ({"bag_ml": 100}, "give both bag_mg and bag_ml"),
        ({"bag_mg": 0, "bag_ml": 100}, "bag_mg must be a positive number"),
        ({"bag_mg": 100, "bag_ml": -1}, "bag_ml must be a positive number"),
        ({"dose_mg": 0}, "dose_mg must be a positive number"),
        ({"dose_mg_per_kg_per_h": float("nan")}, "dose_mg_per_kg_per_h must be a positive"),
    ],
    ids=repr,
)
def test_bad_inputs(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        build_plan(protocol=proto("crps-outpatient"), weight_kg=70, **kwargs)


# --- the published formulas over the whole weight range, in exact fractions ---


def _half_up_tenth(value: Fraction) -> float:
    """Round to 0.1 half up, in exact rational arithmetic (independent of the code's Decimal)."""
    tenths = value * 10
    whole = int(tenths)  # values are positive: int() floors
    if tenths - whole >= Fraction(1, 2):
        whole += 1
    return whole / 10


def _tenth_within(value: Fraction, *bounds: Fraction) -> float:
    """Half up to 0.1, but down when half up would cross a bound ``value`` respects."""
    up = _half_up_tenth(value)
    if any(value <= bound < Fraction(up).limit_denominator(10) for bound in bounds):
        return int(value * 10) / 10
    return up


@pytest.mark.parametrize("bag", [(100, 100), (100, 250), (500, 500), (200, 30)])
def test_published_formulas_hold_for_every_weight(bag: tuple[int, int]) -> None:
    # Schwartzman 2009: min(0.35 mg/kg/h x W, 25 mg/h) for 4 h; Sanacora 2017: 0.5 mg/kg over
    # 40 min (rate = dose / (2/3 h)); mL/h = mg/h x bag mL / bag mg
    bag_mg, bag_ml = bag
    for tenth_kg in range(200, 3501, 7):
        weight = tenth_kg / 10
        w = Fraction(tenth_kg, 10)
        crps = build_plan(
            protocol=proto("crps-outpatient"), weight_kg=weight, bag_mg=bag_mg, bag_ml=bag_ml
        ).sessions[0]
        rate = min(Fraction(35, 100) * w, Fraction(25))
        # rate bounds: soft 0.35 mg/kg/h, hard 1.0 mg/kg/h and 25 mg/h; dose: hard 100 mg
        # and (test policy) 2.0 mg/kg; rounding never crosses one the exact value respects
        rate_bounds = (Fraction(35, 100) * w, w, Fraction(25))
        ml = Fraction(bag_ml, bag_mg)
        assert crps.rate_mg_per_h == _tenth_within(rate, *rate_bounds), weight
        assert crps.dose_mg == _tenth_within(rate * 4, Fraction(100), 2 * w), weight
        assert crps.rate_ml_per_h == _tenth_within(rate * ml, *(b * ml for b in rate_bounds))
        assert crps.capped_by_rule is (Fraction(35, 100) * w > 25), weight
        dep = build_plan(
            protocol=proto("depression-iv"), weight_kg=weight, bag_mg=bag_mg, bag_ml=bag_ml
        ).sessions[0]
        dose = Fraction(1, 2) * w
        # dose bounds: soft 0.5 mg/kg, hard 0.75 mg/kg and (test policy) 300 mg
        assert dep.dose_mg == _tenth_within(dose, w / 2, w * 3 / 4, Fraction(300)), weight
        assert dep.rate_mg_per_h == _half_up_tenth(dose * Fraction(3, 2)), weight
        assert dep.rate_ml_per_h == _half_up_tenth(dose * Fraction(3, 2) * bag_ml / bag_mg), weight


def test_heavy_patient_protocol_rate_override_hits_the_25_mg_per_h_limit() -> None:
    # 100 kg x 0.35 mg/kg/h = 35 mg/h > 25 mg/h (Schwartzman 2009: "not to exceed 25 mg/h");
    # the protocol dose caps at 25 mg/h, an explicit 0.35 mg/kg/h order is refused
    assert build_plan(protocol=proto("crps-outpatient"), weight_kg=100).sessions[0].dose_mg == 100.0
    with pytest.raises(DoseLimitExceeded, match=r"^dose 35\.0 mg/h exceeds the hard limit 25\.0"):
        build_plan(protocol=proto("crps-outpatient"), weight_kg=100, dose_mg_per_kg_per_h=0.35)


def test_rounding_never_lifts_the_planned_rate_above_the_soft_per_kg_limit() -> None:
    # 0.35 mg/kg/h x 50.5 kg = 17.675 mg/h; half up to 0.1 would give 17.7 mg/h, and the
    # chair would then see 17.7 / 50.5 = 0.35050 mg/kg/h: above the 0.35 soft limit the
    # plan never breached. The plan rounds down instead: 17.6 mg/h (0.34851 mg/kg/h),
    # and the pump rate at 1 mg/mL likewise 17.6 mL/h. The dose stays exact: 17.675 x 4 h
    # = 70.7 mg.
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=50.5, bag_mg=100, bag_ml=100)
    first = plan.sessions[0]
    assert (first.rate_mg_per_h, first.rate_ml_per_h, first.dose_mg) == (17.6, 17.6, 70.7)
    assert plan.soft_findings == ()
    # a weight whose rate rounds down anyway is unchanged: 0.35 x 50.3 = 17.605 -> 17.6
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=50.3, bag_mg=100, bag_ml=100)
    assert plan.sessions[0].rate_mg_per_h == 17.6


@pytest.mark.parametrize("tenths", range(200, 715))
def test_no_weight_gets_a_planned_rate_the_chair_would_call_above_the_soft_limit(
    tenths: int,
) -> None:
    # every weight from 20.0 to 71.4 kg (above it the 25 mg/h cap governs): the rounded
    # planned rate per kg is at most 0.35 mg/kg/h, as the chair computes it (float)
    weight = tenths / 10
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=weight, bag_mg=100, bag_ml=100)
    rate = plan.sessions[0].rate_mg_per_h
    assert rate is not None and rate / weight <= 0.35 * (1 + 1e-9)
    assert rate >= 0.35 * weight - 0.1  # and never more than one step below the order
