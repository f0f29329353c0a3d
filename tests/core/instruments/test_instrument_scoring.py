"""Scoring of every instrument against its source.

Expected values are computed by hand from the rules in each source (cited per
test); never taken from the code's own output.
"""

from __future__ import annotations

import json

import pytest

from ketacare.core.errors import InvalidInput, OutOfRange, UnknownItem
from ketacare.core.instruments import get_instrument, list_instruments, score


def answers_for_total(instrument_id: str, target: int) -> list[object]:
    """Answers in item order adding up to ``target`` (greedy; 0-based items, plain yes/no)."""
    remaining = target
    answers: list[object] = []
    for item in get_instrument(instrument_id).items:
        if item.kind == "boolean":
            assert not item.reverse and not item.points_by_sex
            answers.append(remaining >= 1)
            remaining -= int(remaining >= 1)
        else:
            pick = max(o.value for o in item.options if o.value <= max(remaining, 0))
            answers.append(pick)
            remaining -= pick
    assert remaining == 0
    return answers


# --- library -----------------------------------------------------------------------------

EXPECTED_IDS = {
    "nrs_pain", "bpi_sf", "phq9", "gad7", "pcs", "pgic", "ort", "dast10", "auditc",
    "cssrs_screener", "cadss", "padss_ketamine", "budapest_crps", "acr2016_fm", "dn4", "news2",
    "news2_scale2",
}  # fmt: skip


def test_library_holds_every_instrument_of_the_issue() -> None:
    assert {i.id for i in list_instruments()} == EXPECTED_IDS


def test_unknown_instrument_raises_unknown_item_listing_known_ids() -> None:
    with pytest.raises(UnknownItem, match="unknown instrument 'phq10'.*phq9"):
        score("phq10", [])


# --- PHQ-9: bands from LOINC LL382-3; item 9 flag (calcipedia) --------------------------


def test_phq9_worked_example() -> None:
    # 1+1+2+1+0+1+1+0+1 = 8 -> 5-9 "mild" (LL382-3); item 9 = 1 > 0 -> flag
    result = score("phq9", [1, 1, 2, 1, 0, 1, 1, 0, 1])
    assert result.total == 8
    assert result.band == "mild"
    assert result.flags == ("phq9_item9_positive",)
    assert result.flag_details[0]["routes_to"] == "cssrs_screener"


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "none_minimal"), (4, "none_minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
     (14, "moderate"), (15, "moderately_severe"), (19, "moderately_severe"), (20, "severe"),
     (27, "severe")],
)  # fmt: skip
def test_phq9_every_band_edge(total: int, band: str) -> None:
    result = score("phq9", answers_for_total("phq9", total))
    assert (result.total, result.band) == (total, band)


def test_phq9_item9_zero_raises_no_flag() -> None:
    assert score("phq9", [3, 3, 3, 3, 3, 3, 3, 3, 0]).flags == ()


def test_phq9_incomplete_gets_no_total_but_item9_flag_still_fires() -> None:
    result = score("phq9", [None, 0, 0, 0, 0, 0, 0, 0, 2])
    assert result.total is None and result.band is None
    assert result.missing == ("q1",)
    assert result.flags == ("phq9_item9_positive",)
    assert "no missing-item rule" in result.notes[0]


def test_phq9_accepts_an_object_keyed_by_item_id() -> None:
    answers = {f"q{n}": 1 for n in range(1, 10)}
    assert score("phq9", answers).total == 9


@pytest.mark.parametrize("bad", [4, -1, 1.5, "2", True, [1]])
def test_phq9_out_of_range_names_item_and_allowed_values(bad: object) -> None:
    with pytest.raises(OutOfRange) as err:
        score("phq9", [bad, 0, 0, 0, 0, 0, 0, 0, 0])
    message = str(err.value)
    assert "phq9 item q1" in message
    assert "0 (Not at all)" in message and "3 (Nearly every day)" in message


def test_integral_float_is_accepted_as_its_integer() -> None:
    assert score("phq9", [2.0, 0, 0, 0, 0, 0, 0, 0, 0]).answers["q1"] == 2


def test_wrong_number_of_answers_is_refused() -> None:
    with pytest.raises(InvalidInput, match="phq9 expects 9 answers in item order"):
        score("phq9", [0] * 8)


def test_unknown_item_key_is_refused() -> None:
    with pytest.raises(UnknownItem, match="unknown phq9 item 'q10'"):
        score("phq9", {"q10": 1})


def test_answers_must_be_array_or_object() -> None:
    with pytest.raises(InvalidInput, match="array of responses"):
        score("phq9", "1,2,3")  # type: ignore[arg-type]


# --- GAD-7: Spitzer 2006 (5/10/15 cut points; >=10 further evaluation) -----------------


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
     (14, "moderate"), (15, "severe"), (21, "severe")],
)  # fmt: skip
def test_gad7_every_band_edge(total: int, band: str) -> None:
    result = score("gad7", answers_for_total("gad7", total))
    assert (result.total, result.band) == (total, band)
    assert ("gad7_further_evaluation" in result.flags) == (total >= 10)


def test_gad7_worked_example() -> None:
    # 2+2+1+1+1+2+1 = 10 -> moderate, further evaluation
    result = score("gad7", [2, 2, 1, 1, 1, 2, 1])
    assert (result.total, result.band, result.flags) == (
        10,
        "moderate",
        ("gad7_further_evaluation",),
    )


def test_gad7_missing_item_gives_no_total() -> None:
    result = score("gad7", [1, 1, 1, None, 1, 1, 1])
    assert result.total is None and result.missing == ("q4",)


# --- Pain NRS: LOINC 72514-3; HL7 scores table bands ----------------------------------


@pytest.mark.parametrize(
    ("value", "band"),
    [(0, "none"), (1, "mild"), (3, "mild"), (4, "moderate"), (6, "moderate"), (7, "severe"),
     (9, "severe"), (10, "excruciating")],
)  # fmt: skip
def test_nrs_every_band_edge(value: int, band: str) -> None:
    result = score("nrs_pain", [value])
    assert (result.total, result.band) == (value, band)


@pytest.mark.parametrize("bad", [11, -1, 5.5])
def test_nrs_out_of_range(bad: object) -> None:
    with pytest.raises(OutOfRange, match="nrs_pain item pain"):
        score("nrs_pain", [bad])


# --- BPI-SF: User Guide 2009 / LOINC 77565-0 (interference mean, >= 4 of 7) -----------


def test_bpi_complete_example() -> None:
    # severity (8+2+5+4)/4 = 4.75; interference (6+4+7+5+3+8+2)/7 = 35/7 = 5.0
    result = score("bpi_sf", [8, 2, 5, 4, 6, 4, 7, 5, 3, 8, 2])
    assert result.subscores["severity"] == pytest.approx(4.75)
    assert result.subscores["interference"] == pytest.approx(5.0)
    assert result.total is None and result.band is None


def test_bpi_interference_valid_with_four_of_seven() -> None:
    answers = {"worst": 8, "least": 2, "average": 5, "now": 5,
               "general_activity": 6, "mood": 5, "walking": 4, "work": 7}  # fmt: skip
    result = score("bpi_sf", answers)
    assert result.subscores["interference"] == pytest.approx((6 + 5 + 4 + 7) / 4)
    assert result.missing == ("relations", "sleep", "enjoyment")


def test_bpi_interference_not_computed_with_three_of_seven() -> None:
    answers = {"worst": 8, "least": 2, "average": 5, "now": 5,
               "general_activity": 6, "mood": 5, "walking": 4}  # fmt: skip
    result = score("bpi_sf", answers)
    assert result.subscores["interference"] is None
    assert any("at least 4 of 7" in note and "3 answered" in note for note in result.notes)


def test_bpi_severity_needs_all_four_items() -> None:
    result = score("bpi_sf", {"worst": 8, "least": 2, "average": 5})
    assert result.subscores["severity"] is None


def test_bpi_out_of_range() -> None:
    with pytest.raises(OutOfRange, match="bpi_sf item sleep"):
        score("bpi_sf", {"sleep": 11})


# --- PCS: Sullivan 1995; subscale items from the SRALab rehabilitation measures page --


def test_pcs_total_and_three_subscales() -> None:
    answers = [4, 3, 2, 1, 0, 1, 2, 3, 4, 0, 1, 2, 3]
    result = score("pcs", answers)
    # rumination 8-11: 3+4+0+1 = 8; magnification 6,7,13: 1+2+3 = 6;
    # helplessness 1-5,12: 4+3+2+1+0+2 = 12; total 26
    assert result.total == 26
    assert dict(result.subscores) == {"rumination": 8, "magnification": 6, "helplessness": 12}
    assert result.band is None  # cut-off not shipped (sources disagree)


def test_pcs_maximum() -> None:
    result = score("pcs", [4] * 13)
    assert result.total == 52
    assert dict(result.subscores) == {"rumination": 16, "magnification": 12, "helplessness": 24}


def test_pcs_out_of_range() -> None:
    with pytest.raises(OutOfRange, match="pcs item q13"):
        score("pcs", [0] * 12 + [5])


# --- PGIC: NINDS CDE 1 = very much improved ... 7 = very much worse -------------------


@pytest.mark.parametrize("value", [1, 4, 7])
def test_pgic_rating_is_the_total(value: int) -> None:
    result = score("pgic", [value])
    assert result.total == value and result.band is None


@pytest.mark.parametrize("bad", [0, 8])
def test_pgic_out_of_range(bad: int) -> None:
    with pytest.raises(OutOfRange, match="pgic item change"):
        score("pgic", [bad])


# --- ORT: Webster & Webster 2005 (CFP Table 1) -----------------------------------------

ORT_ORDER = [i.id for i in get_instrument("ort").items]


def ort(sex: str, *present: str) -> tuple[int | float | None, str | None]:
    result = score("ort", {i: i in present for i in ORT_ORDER}, sex=sex)
    return result.total, result.band


def test_ort_sex_specific_weights() -> None:
    # family alcohol F1/M3, personal illegal drugs 4, age 16-45 1
    trio = ("family_alcohol", "personal_illegal_drugs", "age_16_45")
    assert ort("F", *trio) == (6, "moderate")
    assert ort("M", *trio) == (8, "high")
    # preadolescent sexual abuse F3 / M0; family illegal drugs F2 / M3
    assert ort("F", "preadolescent_sexual_abuse") == (3, "low")
    assert ort("M", "preadolescent_sexual_abuse") == (0, "low")
    assert ort("F", "family_illegal_drugs") == (2, "low")
    assert ort("M", "family_illegal_drugs") == (3, "low")


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        (("family_illegal_drugs", "age_16_45"), (3, "low")),  # 2+1
        (("family_illegal_drugs", "age_16_45", "psych_depression"), (4, "moderate")),  # 2+1+1
        (("personal_prescription_drugs", "psych_add_ocd_bipolar_schizophrenia"), (7, "moderate")),
        (("personal_prescription_drugs", "preadolescent_sexual_abuse"), (8, "high")),  # 5+3
    ],
)
def test_ort_every_band_edge_female(present: tuple[str, ...], expected: tuple[int, str]) -> None:
    assert ort("F", *present) == expected


def test_ort_everything_present_is_26_for_both_sexes() -> None:
    # F: 1+2+4+3+4+5+1+3+2+1 = 26; M: 3+3+4+3+4+5+1+0+2+1 = 26
    assert ort("F", *ORT_ORDER) == (26, "high")
    assert ort("M", *ORT_ORDER) == (26, "high")


def test_ort_flags() -> None:
    assert "ort_high_risk" in score("ort", [True] * 10, sex="M").flags
    assert score("ort", [False] * 10, sex="F").flags == ()


def test_ort_refuses_without_sex() -> None:
    with pytest.raises(InvalidInput, match="ort needs the patient's sex .F or M.: its weights"):
        score("ort", [False] * 10)


@pytest.mark.parametrize("bad", ["X", "female", ""])
def test_ort_refuses_unknown_sex(bad: str) -> None:
    with pytest.raises(InvalidInput, match="use F or M"):
        score("ort", [False] * 10, sex=bad)


def test_sex_is_case_insensitive() -> None:
    assert score("ort", [True] + [False] * 9, sex="m").sex == "M"


def test_ort_boolean_items_refuse_numbers() -> None:
    with pytest.raises(OutOfRange, match="ort item family_alcohol .* allowed true or false"):
        score("ort", [1] + [False] * 9, sex="F")


# --- DAST-10: Skinner 1982; scoring and bands (comorbidity guidelines, NIDA CDE) -------


def dast(yes: set[int], q3: bool) -> list[object]:
    return [q3 if n == 3 else (n in yes) for n in range(1, 11)]


def test_dast10_item3_is_reverse_scored() -> None:
    assert score("dast10", dast(set(), q3=True)).total == 0
    assert score("dast10", dast(set(), q3=False)).total == 1
    # every problem answer: 9 yes + item 3 "no" = 10
    assert score("dast10", dast({1, 2, 4, 5, 6, 7, 8, 9, 10}, q3=False)).total == 10


@pytest.mark.parametrize(
    ("yes", "band"),
    [(set(), "none"), ({1}, "low"), ({1, 2}, "low"), ({1, 2, 4}, "moderate"),
     ({1, 2, 4, 5, 6}, "moderate"), ({1, 2, 4, 5, 6, 7}, "substantial"),
     ({1, 2, 4, 5, 6, 7, 8, 9}, "substantial"), ({1, 2, 4, 5, 6, 7, 8, 9, 10}, "severe")],
)  # fmt: skip
def test_dast10_every_band_edge(yes: set[int], band: str) -> None:
    result = score("dast10", dast(yes, q3=True))
    assert (result.total, result.band) == (len(yes), band)
    assert ("dast10_further_assessment" in result.flags) == (len(yes) >= 3)


def test_dast10_band_10_via_reverse_item() -> None:
    assert score("dast10", dast({1, 2, 4, 5, 6, 7, 8, 9, 10}, q3=False)).band == "severe"


# --- AUDIT-C: LOINC 75626-2 (>= 4 men, >= 3 women; points from Q1 only) ---------------


@pytest.mark.parametrize(
    ("answers", "sex", "band"),
    [([2, 1, 0], "M", "negative"), ([2, 1, 1], "M", "positive"),
     ([1, 1, 0], "F", "negative"), ([2, 1, 0], "F", "positive"),
     ([0, 0, 0], "F", "negative"), ([4, 4, 4], "M", "positive")],
)  # fmt: skip
def test_auditc_sex_specific_cut_offs(answers: list[int], sex: str, band: str) -> None:
    result = score("auditc", answers, sex=sex)
    assert result.total == sum(answers)
    assert result.band == band
    assert ("auditc_positive" in result.flags) == (band == "positive")


def test_auditc_points_from_question_1_only() -> None:
    result = score("auditc", [3, 0, 0], sex="F")
    assert result.band == "positive"
    assert "auditc_points_from_q1_only" in result.flags
    assert "auditc_points_from_q1_only" not in score("auditc", [0, 0, 0], sex="F").flags
    assert "auditc_points_from_q1_only" not in score("auditc", [3, 1, 0], sex="F").flags


def test_auditc_refuses_without_sex() -> None:
    with pytest.raises(InvalidInput, match="auditc needs the patient's sex.*cut-offs"):
        score("auditc", [1, 1, 1])


def test_auditc_out_of_range() -> None:
    with pytest.raises(OutOfRange, match="auditc item q2 .*4 .10 or more."):
        score("auditc", [1, 5, 1], sex="M")


# --- C-SSRS screener: Columbia triage (4, 5, behaviour <= 3 months = high) -------------

N = None


@pytest.mark.parametrize(
    ("answers", "band", "flags"),
    [
        ([False, False, N, N, N, False, N], "none", ()),
        ([True, False, N, N, N, False, N], "low", ("cssrs_low_risk",)),
        ([True, True, False, False, False, False, N], "low", ("cssrs_low_risk",)),
        ([True, True, True, False, False, False, N], "moderate", ("cssrs_moderate_risk",)),
        ([False, False, N, N, N, True, False], "moderate", ("cssrs_moderate_risk",)),
        ([True, True, True, True, False, False, N], "high", ("cssrs_high_risk",)),
        ([True, True, False, False, True, False, N], "high", ("cssrs_high_risk",)),
        ([False, False, N, N, N, True, True], "high", ("cssrs_high_risk",)),
    ],
)
def test_cssrs_risk_levels(answers: list[object], band: str, flags: tuple[str, ...]) -> None:
    result = score("cssrs_screener", answers)
    assert result.band == band
    assert result.flags == flags
    assert result.total is None


@pytest.mark.parametrize(
    ("answers", "flags"),
    [
        # behaviour ever = yes, "within the past 3 months?" blank: the blank decides "high"
        ([False, False, N, N, N, True, N], ("cssrs_recency_unanswered",)),
        # thoughts = yes, 3 to 5 blank: a yes to 4 or 5 would be "high"
        (
            [True, True, N, N, N, False, N],
            ("cssrs_method_unanswered", "cssrs_intent_unanswered", "cssrs_plan_unanswered"),
        ),
        ([True, True, False, N, False, False, N], ("cssrs_intent_unanswered",)),
        # a "yes" that already decides "high" still raises it, blanks or not
        (
            [True, True, N, True, N, False, N],
            ("cssrs_high_risk", "cssrs_method_unanswered", "cssrs_plan_unanswered"),
        ),
        # the gates themselves: a blank 2 or 6 hides what would decide "high"
        (
            [True, N, N, N, N, N, N],
            ("cssrs_thoughts_unanswered", "cssrs_behaviour_unanswered"),
        ),
    ],
)
def test_cssrs_a_gate_answered_yes_with_its_follow_up_blank_is_unknown_and_flagged(
    answers: list[object], flags: tuple[str, ...]
) -> None:
    # Columbia triage: a past-month yes to 4 or 5, or behaviour in the past 3 months, is high
    # risk; the blank follow-up is exactly that answer, so no level is given and the
    # clinician is told to ask it (an unanswered item is unknown, never "no")
    result = score("cssrs_screener", answers)
    assert result.flags == flags
    assert result.band is None  # an incomplete screener gives no level, high included


def test_cssrs_skip_logic_records_skipped_items() -> None:
    result = score("cssrs_screener", {"q1": False, "q2": False, "q6": False})
    assert result.band == "none"
    assert result.skipped == ("q3", "q4", "q5", "q6_recent")
    assert result.missing == ()


def test_cssrs_refuses_answers_to_skipped_questions() -> None:
    with pytest.raises(InvalidInput, match="q3 is asked only when q2 is true"):
        score("cssrs_screener", [True, False, True, N, N, False, N])
    with pytest.raises(InvalidInput, match="q6_recent is asked only when q6 is true"):
        score("cssrs_screener", [False, False, N, N, N, False, False])


def test_cssrs_high_risk_flag_fires_even_when_incomplete() -> None:
    result = score("cssrs_screener", [True, True, N, True, N, N, N])
    assert result.band is None
    assert result.missing == ("q3", "q5", "q6")
    assert result.flags == (
        "cssrs_high_risk",
        "cssrs_method_unanswered",
        "cssrs_plan_unanswered",
        "cssrs_behaviour_unanswered",
    )


def test_cssrs_incomplete_low_answers_raise_no_level() -> None:
    result = score("cssrs_screener", [True, N, N, N, N, N, N])
    assert result.band is None  # no level; the blank gates are flagged to be asked
    assert result.flags == ("cssrs_thoughts_unanswered", "cssrs_behaviour_unanswered")
    assert result.missing == ("q2", "q6")


def test_cssrs_yes_no_only() -> None:
    with pytest.raises(OutOfRange, match="cssrs_screener item q1"):
        score("cssrs_screener", ["yes", False, N, N, N, False, N])


# --- Budapest clinical criteria: Harden 2010; Marinus 2011 Table 1 --------------------

BUDAPEST = [i.id for i in get_instrument("budapest_crps").items]


def budapest(*true: str) -> object:
    return score("budapest_crps", {i: i in true for i in BUDAPEST})


MET = ("pain_disproportionate", "symptom_sensory", "symptom_vasomotor", "symptom_motor_trophic",
       "sign_sensory", "sign_vasomotor", "no_better_explanation")  # fmt: skip


def test_budapest_clinical_criteria_met() -> None:
    result = budapest(*MET)
    assert result.band == "criteria_met"  # type: ignore[attr-defined]
    assert dict(result.subscores) == {"symptom_categories": 3, "sign_categories": 2}  # type: ignore[attr-defined]
    assert result.flags == ("budapest_clinical_criteria_met",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "dropped",
    ["pain_disproportionate", "symptom_vasomotor", "sign_vasomotor", "no_better_explanation"],
)
def test_budapest_each_condition_is_needed(dropped: str) -> None:
    result = budapest(*(i for i in MET if i != dropped))
    assert result.band == "criteria_not_met"  # type: ignore[attr-defined]
    assert result.flags == ()  # type: ignore[attr-defined]


def test_budapest_research_criteria_need_all_four_symptom_categories() -> None:
    result = budapest(*MET, "symptom_sudomotor_oedema")
    assert result.flags == ("budapest_clinical_criteria_met", "budapest_research_criteria_met")  # type: ignore[attr-defined]


# --- ACR 2016 fibromyalgia: Wolfe 2016 (J Rheum Dis Table 4) ---------------------------

ACR = get_instrument("acr2016_fm")
AREAS = [i.id for i in ACR.items if i.group and i.group.startswith("Region")]
ONE_PER_REGION = ["shoulder_girdle_left", "upper_arm_right", "hip_left", "hip_right", "neck"]
MORE = ["upper_back", "lower_back", "lower_arm_left", "lower_arm_right", "upper_leg_left"]


def acr(painful: list[str], fatigue: int, waking: int, cognitive: int, somatic: int,
        three_months: bool = True) -> object:  # fmt: skip
    answers: dict[str, object] = {a: a in painful for a in AREAS}
    answers.update(fatigue=fatigue, waking_unrefreshed=waking, cognitive=cognitive)
    for n, item in enumerate(["headaches", "lower_abdominal_pain", "depression"]):
        answers[item] = n < somatic
    answers["symptoms_3_months"] = three_months
    return score("acr2016_fm", answers)


@pytest.mark.parametrize(
    ("painful", "sss_parts", "met"),
    [
        (ONE_PER_REGION + MORE[:2], (2, 2, 1, 0), True),  # WPI 7, SSS 5
        (ONE_PER_REGION + MORE[:2], (2, 1, 1, 0), False),  # WPI 7, SSS 4
        (ONE_PER_REGION + MORE[:1], (3, 3, 2, 1), True),  # WPI 6, SSS 9
        (ONE_PER_REGION + MORE[:1], (3, 3, 1, 1), False),  # WPI 6, SSS 8
        (ONE_PER_REGION[:4], (3, 3, 3, 0), True),  # WPI 4 in 4 regions, SSS 9
        (ONE_PER_REGION[:3], (3, 3, 3, 3), False),  # WPI 3, SSS 12: 2016 needs WPI >= 4
    ],
)
def test_acr2016_wpi_sss_thresholds(
    painful: list[str], sss_parts: tuple[int, int, int, int], met: bool
) -> None:
    result = acr(painful, *sss_parts)
    assert result.subscores["wpi"] == len(painful)  # type: ignore[attr-defined]
    assert result.subscores["sss"] == sum(sss_parts)  # type: ignore[attr-defined]
    assert (result.band == "criteria_met") == met  # type: ignore[attr-defined]


def test_acr2016_jaw_chest_abdomen_do_not_count_for_generalised_pain() -> None:
    painful = ["jaw_left", "jaw_right", "hip_left", "hip_right", "neck", "chest", "abdomen"]
    result = acr(painful, 3, 3, 3, 3)
    assert result.subscores["wpi"] == 7  # type: ignore[attr-defined]
    assert result.subscores["generalized_pain_regions"] == 3  # type: ignore[attr-defined]
    assert result.band == "criteria_not_met"  # type: ignore[attr-defined]


def test_acr2016_needs_three_months() -> None:
    result = acr(ONE_PER_REGION + MORE, 3, 3, 3, 3, three_months=False)
    assert result.band == "criteria_not_met"  # type: ignore[attr-defined]


def test_acr2016_sss_maximum_is_12() -> None:
    assert acr(AREAS, 3, 3, 3, 3).subscores["sss"] == 12  # type: ignore[attr-defined]
    assert acr(AREAS, 3, 3, 3, 3).subscores["wpi"] == 19  # type: ignore[attr-defined]


def test_acr2016_severity_out_of_range() -> None:
    with pytest.raises(OutOfRange, match="acr2016_fm item fatigue"):
        acr(AREAS, 4, 0, 0, 0)


# --- Modified PADSS: Chung (clinician.com table); >= 9 discharge -----------------------


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [([2, 2, 2, 2, 2, True], 10, "discharge_criteria_met"),
     ([2, 2, 2, 2, 1, True], 9, "discharge_criteria_met"),
     ([2, 2, 2, 1, 1, True], 8, "not_met"),
     ([0, 0, 0, 0, 0, True], 0, "not_met")],
)  # fmt: skip
def test_padss_band_edges(answers: list[object], total: int, band: str) -> None:
    result = score("padss_ketamine", answers)
    assert (result.total, result.band, result.flags) == (total, band, ())


def test_padss_escort_absent_raises_flag_and_is_not_scored() -> None:
    result = score("padss_ketamine", [2, 2, 2, 2, 2, False])
    assert result.total == 10
    assert result.flags == ("padss_escort_absent",)


def test_padss_missing_item_gives_no_total() -> None:
    result = score("padss_ketamine", [2, 2, 2, 2, None, True])
    assert result.total is None and result.missing == ("bleeding",)


def test_padss_out_of_range() -> None:
    with pytest.raises(OutOfRange, match="padss_ketamine item pain"):
        score("padss_ketamine", [2, 2, 2, 3, 2, True])


# --- DN4: Bouhassira 2005; cut-off >= 4 (Perez 2007) -----------------------------------


@pytest.mark.parametrize(("yes", "band"), [(0, "negative"), (3, "negative"), (4, "positive"),
                                           (10, "positive")])  # fmt: skip
def test_dn4_band_edges(yes: int, band: str) -> None:
    result = score("dn4", [n < yes for n in range(10)])
    assert (result.total, result.band) == (yes, band)
    assert ("dn4_positive" in result.flags) == (yes >= 4)


def test_dn4_interview_subscore_counts_first_seven_items() -> None:
    answers = [True] * 2 + [False] * 5 + [True] * 3
    result = score("dn4", answers)
    assert result.total == 5 and result.subscores["interview"] == 2


# --- CADSS: scoring not sourced -------------------------------------------------------


def test_cadss_refuses_to_score_and_says_why() -> None:
    assert len(get_instrument("cadss").items) == 23
    with pytest.raises(InvalidInput, match="cadss cannot be scored: .*not sourced"):
        score("cadss", [0] * 23)


# --- result shape -----------------------------------------------------------------------


def test_to_dict_is_json_and_has_the_contract_keys() -> None:
    data = score("bpi_sf", [8, 2, 5, 4, 6, 4, 7, 5, 3, 8, 2]).to_dict()
    assert {"instrument", "total", "band", "flags", "subscores"} <= set(data)
    assert json.loads(json.dumps(data)) == data


def test_score_result_is_frozen() -> None:
    result = score("nrs_pain", [3])
    with pytest.raises(AttributeError):
        result.total = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.answers["pain"] = 4  # type: ignore[index]
