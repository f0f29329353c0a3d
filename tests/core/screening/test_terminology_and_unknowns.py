"""Screening that cannot be fooled by how the data was entered.

Each expected answer comes from a source, named at the case:
- Ketalar label and Spravato label: known hypersensitivity to ketamine / esketamine (or an
  excipient) is a contraindication for both molecules.
- Spravato label section 5.6: arteriovenous malformation (any site) is a contraindication.
- ICD-10-CM tabular (icd10coded.com/cm/Q28.0; diseasedb.com/icd10/Q27.3; medicalcodecenter.com
  F20-F29): Q27.3 peripheral AVM, Q28.0 AVM of precerebral vessels, Q28.2 AVM of cerebral vessels,
  I60.8 where a ruptured cerebral AVM is coded (Q28 Excludes1); Q28.1 / Q28.3 "other
  malformations" include a congenital (nonruptured) aneurysm; F20-F29 non-mood psychotic
  disorders; I67.1 cerebral aneurysm, nonruptured.
- ASRA/AAPM/ASA 2018 (Cohen et al.): active psychosis is a relative contraindication.
- PHQ-9 (Kroenke 2001; calcipedia): any answer above 0 on item 9 needs follow-up whatever the
  total, so a total alone leaves item 9 unknown.
- openFDA NDC 0187-0064: Ativan is lorazepam; the ketamine and esketamine labels: benzodiazepines
  add CNS depression (ix-cns-depressants).
- Spravato PI section 8.6: severe hepatic impairment (Child-Pugh C) not studied, use not
  recommended.
"""

from __future__ import annotations

from typing import Any

import pytest

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.screening import load_knowledge, screen_document
from ketacare.core.screening.knowledge import build_knowledge, parse_toml
from ketacare.core.terminology import icd10cm_in_range, normalise_icd10cm
from ketacare.core.terminology.drugs import clean_drug_text, find_ingredients

from .conftest import TEST_POLICY, clean_doc


def _screen(doc: dict[str, Any]) -> Any:
    return screen_document(doc, policy=TEST_POLICY, scorer=None)


def _rules(decision: Any) -> set[str]:
    return {r.rule for r in decision.reasons}


def _missing(decision: Any) -> set[str]:
    return {m.item for m in decision.missing}


# --------------------------------------------------------------------------------------------
# Hypersensitivity read from the allergy list, the question left unanswered
# --------------------------------------------------------------------------------------------

ALLERGY_SPELLINGS = [
    "Ketalar (anaphylaxis)",
    "Ketanest",
    "Spravato (angioedema)",
    "esketamine",
    "ketamine HCl",
    "KETAMINE hydrochloride 50 mg/mL injection",
    "Ketanest S",
    "S(+)-Ketamin",
    "esketamin",
]


@pytest.mark.parametrize("molecule", ["ketamine", "esketamine"])
@pytest.mark.parametrize("entry", ALLERGY_SPELLINGS)
def test_allergy_by_any_name_is_a_contraindication_with_the_question_unanswered(
    molecule: str, entry: str
) -> None:
    doc = clean_doc(molecule)
    del doc["history"]["ketamine_hypersensitivity"]  # the question was not answered
    doc["allergies"] = ["penicillin (rash)", entry]
    decision = _screen(doc)
    assert decision.decision == "not_eligible"  # labels: hypersensitivity is contraindicated
    reason = next(r for r in decision.reasons if r.rule == "hypersensitivity")
    assert reason.severity == "contraindication" and entry in reason.message
    assert "penicillin" not in reason.message


def test_allergies_not_recorded_and_question_unanswered_is_missing_not_no() -> None:
    doc = clean_doc("esketamine")
    del doc["history"]["ketamine_hypersensitivity"]
    del doc["allergies"]
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    assert "history.ketamine_hypersensitivity" in _missing(decision)


def test_an_allergy_nobody_can_read_leaves_the_question_open_and_is_listed() -> None:
    doc = clean_doc("ketamine")
    del doc["history"]["ketamine_hypersensitivity"]
    doc["allergies"] = ["Zorblamine drops"]
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    assert "history.ketamine_hypersensitivity" in _missing(decision)
    reason = next(r for r in decision.reasons if r.rule == "not-recognised")
    assert "not recognised: checked by a clinician" in reason.message
    assert "Zorblamine drops" in reason.message


@pytest.mark.parametrize("entry", ["NKDA", "No known allergies", "penicillin"])
def test_a_readable_allergy_list_without_ketamine_answers_no(entry: str) -> None:
    doc = clean_doc("esketamine")
    del doc["history"]["ketamine_hypersensitivity"]
    doc["allergies"] = [entry]
    decision = _screen(doc)
    assert decision.decision == "eligible", decision.reasons


# --------------------------------------------------------------------------------------------
# Unknown is not "no": every contraindication that asks about the patient
# --------------------------------------------------------------------------------------------

ASKING_CONTRAINDICATIONS = [
    (r.id, r.applies_to[0], str(r.when["finding"]))
    for r in load_knowledge().rules
    if r.severity == "contraindication" and "finding" in r.when
]


@pytest.mark.parametrize(("rule_id", "molecule", "finding"), ASKING_CONTRAINDICATIONS)
def test_unanswered_contraindication_item_is_missing_and_named(
    rule_id: str, molecule: str, finding: str
) -> None:
    doc = clean_doc(molecule)
    del doc["history"][finding]
    if finding == "ketamine_hypersensitivity":
        del doc["allergies"]
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    needed = {m.item: m.needed_by for m in decision.missing}
    assert rule_id in needed[f"history.{finding}"]


def test_bp_serious_hazard_unanswered_is_no_longer_read_as_no() -> None:
    # The physician's judgement that a rise in blood pressure is a serious hazard is a
    # contraindication for both molecules (Ketalar label; Spravato label 5.6): unknown -> review.
    for molecule in ("ketamine", "esketamine"):
        doc = clean_doc(molecule)
        del doc["history"]["bp_elevation_serious_hazard"]
        decision = _screen(doc)
        assert "history.bp_elevation_serious_hazard" in _missing(decision)


def test_loader_refuses_a_contraindication_that_is_not_required() -> None:
    from importlib import resources

    def read(name: str) -> dict[str, Any]:
        text = resources.files("ketacare.core.screening").joinpath("data", name).read_text()
        return parse_toml(text, name)

    rules = read("rules.toml")
    for rule in rules["rule"]:
        if rule["id"] == "hypersensitivity":
            rule["required"] = False
    with pytest.raises(DataFileError, match="must be required"):
        build_knowledge(
            rules, read("interactions.toml"), read("medications.toml"), read("codes.toml")
        )


def test_breastfeeding_and_age_unknown_for_esketamine_are_missing() -> None:
    doc = clean_doc("esketamine")
    del doc["breastfeeding"]
    doc["patient"] = {"sex": "female"}
    decision = _screen(doc)
    assert {"breastfeeding", "patient.age_years"} <= _missing(decision)
    doc["patient"] = {"age_years": 40, "sex": "male"}  # not applicable, as for pregnancy
    assert "breastfeeding" not in _missing(_screen(doc))


# --------------------------------------------------------------------------------------------
# PHQ-9 item 9: a total alone does not say it was answered
# --------------------------------------------------------------------------------------------


def _with_phq9(entry: dict[str, Any]) -> dict[str, Any]:
    doc = clean_doc("ketamine")
    doc["instruments"].append(entry)
    return doc


@pytest.mark.parametrize(
    "entry",
    [
        {"instrument": "phq9", "total": 21, "band": "severe", "flags": []},
        {"instrument": "phq9", "total": 21, "flags": [], "items": {"q9": None}},
        {"instrument": "phq9", "total": 21, "flags": [], "items": {"q1": 3}},
    ],
)
def test_phq9_total_without_item9_is_missing_and_must_be_asked(entry: dict[str, Any]) -> None:
    decision = _screen(_with_phq9(entry))
    assert decision.decision == "physician_review"
    item = next(m for m in decision.missing if m.item == "instrument:phq9 item q9")
    assert "phq9-item9-positive" in item.needed_by
    assert "item 9" in item.message and "ask" in item.message


@pytest.mark.parametrize("answers", [[3, 3, 3, 3, 3, 3, 3, 0, None], {"q1": 3, "q2": 3}])
def test_phq9_raw_answers_without_item9_are_missing(answers: Any) -> None:
    from ketacare.core.instruments import score

    doc = _with_phq9({"instrument": "phq9", "answers": answers})
    decision = screen_document(doc, policy=TEST_POLICY, scorer=score)
    assert "instrument:phq9 item q9" in _missing(decision)


def test_phq9_item9_answered_zero_with_a_high_total_needs_no_follow_up() -> None:
    # 21 = 3 x 7 items + 0 on item 9: severe band, but item 9 is "not at all".
    decision = _screen(
        _with_phq9({"instrument": "phq9", "total": 21, "flags": [], "items": {"q9": 0}})
    )
    assert decision.decision == "eligible"


def test_phq9_item9_answer_above_zero_fires_even_without_the_flag() -> None:
    decision = _screen(
        _with_phq9({"instrument": "phq9", "total": 4, "flags": [], "items": {"q9": 1}})
    )
    assert "phq9-item9-positive" in _rules(decision)
    assert "instrument:cssrs_screener" in _missing(decision)


def test_phq9_raw_answers_with_item9_zero_are_read() -> None:
    from ketacare.core.instruments import score

    doc = _with_phq9({"instrument": "phq9", "answers": [3, 3, 3, 3, 3, 3, 3, 0, 0]})
    decision = screen_document(doc, policy=TEST_POLICY, scorer=score)
    assert "instrument:phq9 item q9" not in _missing(decision)
    assert decision.decision == "eligible"


# --------------------------------------------------------------------------------------------
# Arteriovenous malformation at any site; other cerebral vessel malformations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["Q27.3", "Q27.31", "q273", "Q28.0", "Q28.2", "q282", "I60.8"])
def test_avm_at_any_site_contraindicates_esketamine(code: str) -> None:
    doc = clean_doc("esketamine")
    doc["conditions"] = [code]
    decision = _screen(doc)
    assert decision.decision == "not_eligible"
    assert "esketamine-arteriovenous-malformation" in _rules(decision)


def test_peripheral_avm_is_reviewed_for_racemic_ketamine() -> None:
    doc = clean_doc("ketamine")
    doc["conditions"] = [{"code": "Q27.3", "display": "Peripheral arteriovenous malformation"}]
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    assert "ketamine-arteriovenous-malformation" in _rules(decision)


@pytest.mark.parametrize("code", ["Q28.1", "Q28.3", "q283"])
def test_other_cerebral_vessel_malformations_are_reviewed_not_passed(code: str) -> None:
    doc = clean_doc("esketamine")
    doc["conditions"] = [code]
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    rule = "cerebral-vessel-malformation-unspecified"
    reason = next(r for r in decision.reasons if r.rule == rule)
    assert "aneurysm" in reason.message


@pytest.mark.parametrize("code", ["Q28.8", "Q27.4", "I60.7"])
def test_neighbouring_codes_do_not_match_the_avm_rule(code: str) -> None:
    doc = clean_doc("esketamine")
    doc["conditions"] = [code]
    assert "esketamine-arteriovenous-malformation" not in _rules(_screen(doc))


# ICD-10-CM (CMS 2026 tabular): I60.0-I60.7 subarachnoid haemorrhage from a named artery (a
# ruptured cerebral aneurysm is coded there: I67.1 Excludes1), I60.9 unspecified, I62 other
# nontraumatic intracranial haemorrhage (I62.0 subdural, I62.1 extradural, I62.9 unspecified),
# I69.0 and I69.2 their sequelae. None names its cause, so each is reviewed, never passed.
@pytest.mark.parametrize(
    "code",
    ["I60", "I60.00", "I60.2", "i607", "I60.9", "I62.00", "I62.1", "I62.9", "I69.051", "I69.20"],
)
@pytest.mark.parametrize("molecule", ["ketamine", "esketamine"])
def test_subarachnoid_and_other_intracranial_haemorrhage_is_reviewed(
    code: str, molecule: str
) -> None:
    doc = clean_doc(molecule)
    doc["conditions"] = [code]
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    reason = next(
        r for r in decision.reasons if r.rule == "intracranial-haemorrhage-cause-unrecorded"
    )
    shown = normalise_icd10cm(code)  # "i607" is read as I60.7
    assert "record its cause" in reason.message and f"ICD-10-CM {shown}" in reason.message


@pytest.mark.parametrize("code", ["I61.9", "I63.9", "I67.1", "I69.10", "I69.30", "I64"])
def test_neighbouring_codes_do_not_match_the_intracranial_haemorrhage_rule(code: str) -> None:
    doc = clean_doc("ketamine")
    doc["conditions"] = [code]
    assert "intracranial-haemorrhage-cause-unrecorded" not in _rules(_screen(doc))


# --------------------------------------------------------------------------------------------
# Psychotic disorders on the record
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        "F20.9",
        "f209",
        "F25.0",
        "F29",
        {"code": "F22", "display": "Delusional disorders"},
        "F32.3",
        "F33.3",
    ],
)
@pytest.mark.parametrize("molecule", ["ketamine", "esketamine"])
def test_psychotic_disorder_on_the_record_needs_physician_review(
    condition: Any, molecule: str
) -> None:
    doc = clean_doc(molecule)
    doc["conditions"] = [condition]
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    reason = next(r for r in decision.reasons if r.rule == "psychotic-disorder-recorded")
    assert reason.severity == "review"
    assert "Cohen SP" in reason.source and "Schwenk ES" in reason.source


@pytest.mark.parametrize("code", ["F33.2", "F30.9", "F19.20"])
def test_codes_outside_the_psychosis_list_do_not_fire(code: str) -> None:
    doc = clean_doc("ketamine")
    doc["conditions"] = [code]
    assert "psychotic-disorder-recorded" not in _rules(_screen(doc))


# --------------------------------------------------------------------------------------------
# Medication names as clinicians write them; dotless codes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "medication",
    [
        "lorazepam 1 mg tablet",
        "Ativan",
        "LORazepam",
        "Ativan 0.5mg PO PRN",
        {"name": "lorazepam 2 mg/mL injection"},
        "Xanax XR 1 mg",  # openFDA NDC 0009-0090: Xanax is alprazolam
    ],
)
def test_benzodiazepine_written_as_clinicians_do_hits_the_cns_depressant_check(
    medication: Any,
) -> None:
    doc = clean_doc("esketamine")
    doc["medications"] = [medication]
    decision = _screen(doc)
    assert "ix-cns-depressants" in {i.id for i in decision.interactions}
    assert not any(m.item.startswith("medication:") for m in decision.missing)
    assert decision.decision == "eligible_with_precautions"


def test_unrecognised_medication_is_listed_for_a_clinician_never_dropped() -> None:
    doc = clean_doc("ketamine")
    doc["medications"] = ["Zorblamine 5 mg", "Ativan 1 mg"]
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    reason = next(r for r in decision.reasons if r.rule == "not-recognised")
    assert "medication 'Zorblamine 5 mg'" in reason.message
    assert "Ativan" not in reason.message
    assert "medication:Zorblamine 5 mg" in _missing(decision)


def test_unreadable_condition_is_listed_for_a_clinician() -> None:
    doc = clean_doc("esketamine")
    doc["conditions"] = ["AVM left arm"]
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    reason = next(r for r in decision.reasons if r.rule == "not-recognised")
    assert "condition 'AVM left arm'" in reason.message


@pytest.mark.parametrize("code", ["I671", "i67.1", " I67.1 "])
def test_cerebral_aneurysm_without_the_dot_is_recognised(code: str) -> None:
    # ICD-10-CM I67.1 Cerebral aneurysm, nonruptured: aneurysmal vascular disease (Spravato 4).
    doc = clean_doc("esketamine")
    doc["conditions"] = [code]
    decision = _screen(doc)
    assert decision.decision == "not_eligible"
    assert "esketamine-aneurysmal-vascular-disease" in _rules(decision)


@pytest.mark.parametrize(
    ("code", "molecule", "rule"),
    [
        # ICD-10-CM I63 Cerebral infarction and I69.3- its sequelae: a stroke
        ("I63.9", "ketamine", "ketamine-stroke-history"),
        ("I69.351", "esketamine", "esketamine-stroke-history"),
        # G93.2 Benign intracranial hypertension: raised intracranial pressure
        ("G93.2", "ketamine", "asra-raised-intracranial-pressure"),
        # H40.05- Ocular hypertension, and glaucoma H40.1-H40.9: raised intraocular pressure
        ("H40.053", "ketamine", "asra-raised-intraocular-pressure"),
        ("H40.1112", "esketamine", "asra-raised-intraocular-pressure"),
        ("H40.9", "ketamine", "asra-raised-intraocular-pressure"),
    ],
)
def test_stroke_intracranial_and_intraocular_pressure_codes_are_read(
    code: str, molecule: str, rule: str
) -> None:
    doc = clean_doc(molecule)
    doc["conditions"] = [code]
    assert rule in _rules(_screen(doc))


@pytest.mark.parametrize("code", ["H40.013", "H40.03", "G93.1", "I62.9", "I69.1"])
def test_neighbouring_codes_do_not_read_as_those_findings(code: str) -> None:
    """H40.0- glaucoma suspect (other than H40.05 ocular hypertension) is not raised
    pressure; the codes beside G93.2, I63 and I69.3 are not the ones listed."""
    doc = clean_doc("ketamine")
    doc["conditions"] = [code]
    fired = _rules(_screen(doc))
    assert not fired & {
        "ketamine-stroke-history",
        "asra-raised-intracranial-pressure",
        "asra-raised-intraocular-pressure",
    }


# --------------------------------------------------------------------------------------------
# Hepatic impairment for esketamine: the label's own statement
# --------------------------------------------------------------------------------------------


def test_severe_hepatic_impairment_for_esketamine_cites_the_label() -> None:
    doc = clean_doc("esketamine")
    doc["history"]["hepatic_impairment"] = "severe"
    decision = _screen(doc)
    assert decision.decision == "physician_review"
    reason = next(r for r in decision.reasons if r.rule == "esketamine-severe-hepatic-impairment")
    assert "Child-Pugh class C" in reason.source and "not recommended" in reason.source
    assert "Spravato" in reason.source
    assert "asra-severe-hepatic-disease" not in _rules(decision)


def test_severe_hepatic_disease_for_ketamine_still_cites_asra() -> None:
    doc = clean_doc("ketamine")
    doc["history"]["hepatic_impairment"] = "severe"
    reason = next(r for r in _screen(doc).reasons if r.rule == "asra-severe-hepatic-disease")
    assert "Cohen SP" in reason.source


# --------------------------------------------------------------------------------------------
# The terminology layer itself
# --------------------------------------------------------------------------------------------


def test_icd10cm_codes_are_normalised_and_ranges_compare_by_category() -> None:
    assert normalise_icd10cm("q2731") == "Q27.31"
    assert normalise_icd10cm("F29") == "F29"
    assert icd10cm_in_range("F29", "F20", "F29") and icd10cm_in_range("F20.0", "F20", "F29")
    assert not icd10cm_in_range("F30.2", "F20", "F29")
    assert not icd10cm_in_range("F19.959", "F20", "F29")
    with pytest.raises(InvalidInput, match="not well formed"):
        normalise_icd10cm("G90-5")


def test_drug_text_strips_strength_form_and_salt() -> None:
    assert clean_drug_text("Ketamine HCl 100mg/mL vial") == "ketamine"
    assert clean_drug_text("lorazepam 1 mg tablet") == "lorazepam"
    assert find_ingredients("Ketanest S") == ("esketamine",)  # the longest name wins
    assert find_ingredients("Ketanest 10 mg/ml") == ("ketamine",)
    assert find_ingredients("Spravato", rxcui=None) == ("esketamine",)
    assert find_ingredients("esketamine nasal spray", rxcui="2201623") == ("esketamine",)
    # an allergy entered by its RxNorm code alone (238082: ketamine HCl 10 mg/mL injection)
    assert find_ingredients("", rxcui="238082") == ("ketamine",)
    assert find_ingredients("unknown brand", rxcui="6130") == ()  # unsourced id: not read
