"""Instruments checked against the tables and criteria of their published sources.

Every expected value below is copied from (or worked by hand from) the source named
in the test, never from the code's own output. Citations are in the data files.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ketacare.cli import app
from ketacare.core.errors import InvalidInput
from ketacare.core.instruments import get_instrument, score

runner = CliRunner()

# --- ORT: Webster & Webster 2005, Table 1 (as reproduced in Can Fam Physician) --------
# (item, female weight, male weight), in the order of the published form.
ORT_TABLE = [
    ("family_alcohol", 1, 3),
    ("family_illegal_drugs", 2, 3),
    ("family_prescription_drugs", 4, 4),
    ("personal_alcohol", 3, 3),
    ("personal_illegal_drugs", 4, 4),
    ("personal_prescription_drugs", 5, 5),
    ("age_16_45", 1, 1),
    ("preadolescent_sexual_abuse", 3, 0),
    ("psych_add_ocd_bipolar_schizophrenia", 2, 2),
    ("psych_depression", 1, 1),
]


def test_ort_item_order_is_the_published_order() -> None:
    assert get_instrument("ort").item_ids == tuple(row[0] for row in ORT_TABLE)


@pytest.mark.parametrize(("item", "female", "male"), ORT_TABLE)
def test_ort_each_weight_matches_table_1(item: str, female: int, male: int) -> None:
    answers = {row[0]: row[0] == item for row in ORT_TABLE}
    assert score("ort", answers, sex="F").total == female
    assert score("ort", answers, sex="M").total == male


@pytest.mark.parametrize(
    ("present", "sex", "total", "band"),
    [
        # 0-3 low, 4-7 moderate, 8 or more high (Webster 2005)
        (["family_illegal_drugs", "age_16_45"], "F", 3, "low"),  # 2 + 1
        (["family_illegal_drugs", "age_16_45"], "M", 4, "moderate"),  # 3 + 1
        (["family_alcohol", "personal_illegal_drugs"], "M", 7, "moderate"),  # 3 + 4
        (["family_alcohol", "personal_illegal_drugs", "psych_depression"], "M", 8, "high"),
        (["preadolescent_sexual_abuse", "personal_illegal_drugs"], "F", 7, "moderate"),  # 3 + 4
        (["preadolescent_sexual_abuse", "personal_illegal_drugs"], "M", 4, "moderate"),  # 0 + 4
    ],
)
def test_ort_band_edges_for_both_sexes(present: list[str], sex: str, total: int, band: str) -> None:
    result = score("ort", {row[0]: row[0] in present for row in ORT_TABLE}, sex=sex)
    assert (result.total, result.band) == (total, band)


# --- AUDIT-C: LOINC 75626-2 / US Core AUDIT-C (>= 4 men, >= 3 women) -------------------


@pytest.mark.parametrize(
    ("answers", "sex", "band"),
    [
        ([1, 1, 1], "M", "negative"),  # 3 < 4
        ([2, 1, 1], "M", "positive"),  # 4
        ([1, 1, 0], "F", "negative"),  # 2 < 3
        ([1, 1, 1], "F", "positive"),  # 3
        ([4, 4, 4], "F", "positive"),  # 12
    ],
)
def test_auditc_cut_off_edges(answers: list[int], sex: str, band: str) -> None:
    result = score("auditc", answers, sex=sex)
    assert (result.total, result.band) == (sum(answers), band)


def test_auditc_answer_values_follow_the_who_manual() -> None:
    # WHO AUDIT manual: Q2 "10 or more" scores 4; Q3 "Daily or almost daily" scores 4
    q2 = {o.label: o.value for o in get_instrument("auditc").item("q2").options}
    assert q2 == {"1 or 2": 0, "3 or 4": 1, "5 or 6": 2, "7 to 9": 3, "10 or more": 4}
    q3 = {o.label: o.value for o in get_instrument("auditc").item("q3").options}
    assert q3["Never"] == 0 and q3["Daily or almost daily"] == 4


# --- DAST-10: comorbidity guidelines Appendix W (item 3 "no" scores 1) --------------------


def test_dast10_worked_example() -> None:
    # yes to 1, 2 and 5; item 3 answered "no" (not always able to stop) -> 3 + 1 = 4, moderate
    answers = [True, True, False, False, True, False, False, False, False, False]
    result = score("dast10", answers)
    assert (result.total, result.band) == (4, "moderate")
    assert result.flags == ("dast10_further_assessment",)


# --- PCS: SRALab (rumination 8-11, magnification 6, 7, 13, helplessness 1-5, 12) ----------


@pytest.mark.parametrize(
    ("item", "subscale"),
    [(8, "rumination"), (9, "rumination"), (10, "rumination"), (11, "rumination"),
     (6, "magnification"), (7, "magnification"), (13, "magnification"),
     (1, "helplessness"), (2, "helplessness"), (3, "helplessness"), (4, "helplessness"),
     (5, "helplessness"), (12, "helplessness")],
)  # fmt: skip
def test_pcs_each_item_belongs_to_its_published_subscale(item: int, subscale: str) -> None:
    answers = [4 if n == item else 0 for n in range(1, 14)]
    result = score("pcs", answers)
    assert result.total == 4
    assert {k: v for k, v in result.subscores.items() if v} == {subscale: 4}


# --- BPI-SF: User Guide (interference mean usable when 4 of 7 are answered) --------------


def test_bpi_item_order_follows_the_short_form() -> None:
    # questions 3-6 (worst, least, average, now) and 9A-9G
    assert get_instrument("bpi_sf").item_ids == (
        "worst", "least", "average", "now", "general_activity", "mood", "walking",
        "work", "relations", "sleep", "enjoyment",
    )  # fmt: skip


# --- Budapest criteria: Harden 2010; research criteria need all 4 symptom categories -----

BUDAPEST = get_instrument("budapest_crps").item_ids
SYMPTOMS = ["symptom_sensory", "symptom_vasomotor", "symptom_sudomotor_oedema",
            "symptom_motor_trophic"]  # fmt: skip
SIGNS = ["sign_sensory", "sign_vasomotor", "sign_sudomotor_oedema", "sign_motor_trophic"]


@pytest.mark.parametrize(
    ("n_symptoms", "n_signs", "clinical", "research"),
    [(2, 4, False, False), (3, 1, False, False), (3, 2, True, False), (4, 1, False, False),
     (4, 2, True, True), (4, 4, True, True)],
)  # fmt: skip
def test_budapest_category_counts(
    n_symptoms: int, n_signs: int, clinical: bool, research: bool
) -> None:
    true = {"pain_disproportionate", "no_better_explanation", *SYMPTOMS[:n_symptoms],
            *SIGNS[:n_signs]}  # fmt: skip
    result = score("budapest_crps", {i: i in true for i in BUDAPEST})
    assert result.subscores == {"symptom_categories": n_symptoms, "sign_categories": n_signs}
    assert (result.band == "criteria_met") is clinical
    assert ("budapest_research_criteria_met" in result.flags) is research


# --- ACR 2016: Wolfe 2016 (WPI 4-6 needs SSS >= 9; generalised pain in 4 of 5 regions) ---

ACR = get_instrument("acr2016_fm")


def acr(painful: set[str], severity: tuple[int, int, int], somatic: int) -> object:
    answers: dict[str, object] = {
        i.id: i.id in painful for i in ACR.items if i.group and i.group.startswith("Region")
    }
    answers.update(zip(["fatigue", "waking_unrefreshed", "cognitive"], severity, strict=True))
    for n, item in enumerate(["headaches", "lower_abdominal_pain", "depression"]):
        answers[item] = n < somatic
    answers["symptoms_3_months"] = True
    return score("acr2016_fm", answers)


def test_acr2016_wpi_4_in_only_3_regions_is_not_generalised() -> None:
    # 4 painful areas, but two in the same region: 3 regions < 4, so not met even with SSS 12
    result = acr({"shoulder_girdle_left", "upper_arm_left", "hip_left", "neck"}, (3, 3, 3), 3)
    assert result.subscores["wpi"] == 4  # type: ignore[attr-defined]
    assert result.subscores["generalized_pain_regions"] == 3  # type: ignore[attr-defined]
    assert result.band == "criteria_not_met"  # type: ignore[attr-defined]


def test_acr2016_wpi_7_with_sss_5_across_4_regions_is_met() -> None:
    painful = {"shoulder_girdle_left", "upper_arm_left", "lower_arm_left", "shoulder_girdle_right",
               "hip_left", "hip_right", "chest"}  # fmt: skip
    result = acr(painful, (2, 2, 0), 1)  # SSS 2 + 2 + 0 + 1 = 5
    assert result.subscores == {"wpi": 7, "sss": 5, "generalized_pain_regions": 4}  # type: ignore[attr-defined]
    assert result.band == "criteria_met"  # type: ignore[attr-defined]


# --- C-SSRS screener: the six published questions (recency is part of question 6) --------


def test_cssrs_six_answers_leave_out_the_recency_follow_up() -> None:
    result = score("cssrs_screener", [True, False, None, None, None, False])
    assert result.band == "low" and result.skipped == ("q3", "q4", "q5", "q6_recent")
    # behaviour reported but recency not given: no level, the follow-up is listed as missing
    result = score("cssrs_screener", [False, False, None, None, None, True])
    assert result.band is None and result.missing == ("q6_recent",)


def test_cssrs_array_shorter_than_the_six_questions_is_refused() -> None:
    with pytest.raises(InvalidInput, match="expects 7 answers .* or 6 leaving out .*q6_recent"):
        score("cssrs_screener", [True, False, None, None, None])


# --- command line: bad input exits 2 with one line naming what is wrong and what is allowed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["dast10", "--answers", json.dumps([1] + [False] * 9)],
         "dast10 item q1 (Drug use other than for medical reasons) 1 is out of range: "
         "allowed true or false"),
        (["gad7", "--answers", "[0,0,0,0,0,0]"], "gad7 expects 7 answers in item order"),
        (["pgic", "--answers", "[8]"], "allowed one of 1 (Very much improved)"),
        (["pcs", "--answers", '{"q14": 1}'], "unknown pcs item 'q14': known are"),
        (["nrs_pain", "--answers", "[10.5]"], "nrs_pain item pain"),
        (["auditc", "--answers", "[1,1,1]"], "auditc needs the patient's sex (F or M)"),
    ],
)  # fmt: skip
def test_cli_bad_answers_exit_2_naming_the_problem(args: list[str], expected: str) -> None:
    result = runner.invoke(app, ["score", *args, "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and expected in result.stderr


@pytest.mark.parametrize(
    ("total", "band"),
    [(4, "none_minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
     (15, "moderately_severe"), (19, "moderately_severe"), (20, "severe")],
)  # fmt: skip
def test_cli_phq9_band_edges_with_answers_keyed_by_item(total: int, band: str) -> None:
    # LOINC LL382-3: 0-4, 5-9, 10-14, 15-19, 20-27 (inclusive)
    values, left = [], total
    for _ in range(9):
        values.append(min(3, left))
        left -= values[-1]
    answers = {f"q{n}": v for n, v in enumerate(reversed(values), start=1)}
    result = runner.invoke(app, ["score", "phq9", "--answers", json.dumps(answers), "--json"])
    data = json.loads(result.stdout)
    assert (data["total"], data["band"]) == (total, band)
    assert data["flags"] == (["phq9_item9_positive"] if answers["q9"] > 0 else [])
