"""Whole-patient decisions, missing items, site policies and interactions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from ketacare.core.screening import (
    SitePolicy,
    parse_site_policy,
    screen_document,
)

from .conftest import TEST_POLICY, clean_doc

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples" / "screening"


def _example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def _policy_file() -> SitePolicy:
    return parse_site_policy((EXAMPLES / "site-policy.example.toml").read_text(encoding="utf-8"))


# --- the three reference patients ------------------------------------------------------------


def test_eligible_patient() -> None:
    decision = screen_document(_example("eligible-esketamine.json"))
    assert decision.decision == "eligible"
    assert decision.reasons == () and decision.missing == ()
    assert decision.ruleset_version == "1.2.0"


def test_eligible_ketamine_patient_with_site_policy() -> None:
    decision = screen_document(
        _example("eligible-ketamine-with-policy.json"), policy=_policy_file()
    )
    assert decision.decision == "eligible"
    applied = {p.key: p for p in decision.policies}
    assert applied["screening_systolic_max_mmhg"].status == "applied"
    assert applied["screening_systolic_max_mmhg"].value == 140
    assert decision.site_policy_name == "Example clinic (illustration only)"


def test_patient_needing_review() -> None:
    decision = screen_document(_example("review-ketamine-crps.json"))
    assert decision.decision == "physician_review"
    rules = [r.rule for r in decision.reasons]
    assert {"ort-high-risk", "phq9-item9-positive", "ix-cyp3a4-inhibitors"} <= set(rules)
    assert [m.item for m in decision.missing] == ["instrument:cssrs_screener"]
    assert decision.substance_use_risk
    assert {s.id for s in decision.safeguards} == {
        "no_take_home_doses",
        "abuse_misuse_monitoring",
        "urine_drug_screens",
        "defined_course",
    }


def test_patient_not_eligible() -> None:
    decision = screen_document(_example("not-eligible-ketamine.json"))
    assert decision.decision == "not_eligible"
    contraindications = [r.rule for r in decision.reasons if r.severity == "contraindication"]
    assert contraindications == ["hypersensitivity", "ketamine-aneurysm"]
    # strongest reasons come first
    assert decision.reasons[0].severity == "contraindication"


def test_precaution_only_gives_eligible_with_precautions() -> None:
    doc = clean_doc()
    doc["medications"] = ["levothyroxine"]
    decision = screen_document(doc, policy=TEST_POLICY)
    assert decision.decision == "eligible_with_precautions"
    assert [r.rule for r in decision.reasons] == ["ix-thyroid-hormones"]


def test_info_reasons_do_not_change_the_decision() -> None:
    doc = clean_doc()
    doc["medications"] = ["lamotrigine"]
    decision = screen_document(doc, policy=TEST_POLICY)
    assert decision.decision == "eligible"
    assert [r.severity for r in decision.reasons] == ["info"]


# --- missing information ---------------------------------------------------------------------


def test_empty_document_lists_what_is_missing() -> None:
    decision = screen_document({"treatment": {"molecule": "esketamine", "route": "intranasal"}})
    assert decision.decision == "physician_review"
    items = {m.item for m in decision.missing}
    assert {
        "history.aneurysmal_vascular_disease",
        "history.arteriovenous_malformation",
        "history.intracerebral_haemorrhage_history",
        "history.ketamine_hypersensitivity",
        "pregnancy_status",
        "medications",
        "instrument:ort",
        "vitals.systolic_mmhg",
    } <= items
    assert decision.reasons[-1].rule == "missing-information"


def test_not_eligible_stays_not_eligible_when_items_are_missing() -> None:
    doc = {
        "treatment": {"molecule": "esketamine", "route": "intranasal"},
        "allergies": ["esketamine"],
    }
    assert screen_document(doc).decision == "not_eligible"


def test_unknown_medication_is_missing_until_classified(ketamine_doc: dict[str, Any]) -> None:
    ketamine_doc["medications"] = ["zzz-unlisted"]
    decision = screen_document(ketamine_doc, policy=TEST_POLICY)
    assert decision.decision == "physician_review"
    assert [m.item for m in decision.missing] == ["medication:zzz-unlisted"]
    ketamine_doc["medications"] = [{"name": "zzz-unlisted", "classes": []}]
    assert screen_document(ketamine_doc, policy=TEST_POLICY).decision == "eligible"


def test_explicit_classes_are_checked(ketamine_doc: dict[str, Any]) -> None:
    ketamine_doc["medications"] = [{"name": "new-drug", "classes": ["maoi"]}]
    decision = screen_document(ketamine_doc, policy=TEST_POLICY)
    assert [i.id for i in decision.interactions] == ["ix-maoi"]


# --- site policies ---------------------------------------------------------------------------


def test_bp_policy_unset_needs_review_and_says_so(ketamine_doc: dict[str, Any]) -> None:
    decision = screen_document(ketamine_doc)  # no policy at all
    assert decision.decision == "physician_review"
    unset = [p for p in decision.policies if p.status == "unset"]
    assert {p.key for p in unset} == {"screening_systolic_max_mmhg", "screening_diastolic_max_mmhg"}
    assert all(p.value is None for p in unset)
    messages = [r.message for r in decision.reasons if r.rule.endswith("site-policy")]
    assert all("is not set" in m for m in messages) and len(messages) == 2


def test_bp_policy_applied_is_recorded(ketamine_doc: dict[str, Any]) -> None:
    ketamine_doc["vitals"]["systolic_mmhg"] = 155
    decision = screen_document(ketamine_doc, policy=TEST_POLICY)
    assert decision.decision == "physician_review"
    systolic = next(p for p in decision.policies if p.key == "screening_systolic_max_mmhg")
    assert (systolic.status, systolic.value) == ("applied", 150)
    assert "above the site limit 150" in systolic.detail


def test_esketamine_needs_no_bp_policy(esketamine_doc: dict[str, Any]) -> None:
    decision = screen_document(esketamine_doc)
    assert decision.decision == "eligible"
    assert decision.policies == ()


def test_lft_policy_unset_sends_raised_lft_to_review(ketamine_doc: dict[str, Any]) -> None:
    ketamine_doc["labs"][0] = {"test": "alt", "value": 50, "upper_limit_normal": 40}
    decision = screen_document(ketamine_doc, policy=TEST_POLICY)
    assert decision.decision == "physician_review"
    assert any(
        p.key == "lft_review_multiple_of_uln" and p.status == "unset" for p in decision.policies
    )
    policy = SitePolicy(values={**TEST_POLICY.values, "lft_review_multiple_of_uln": 3})
    decision = screen_document(ketamine_doc, policy=policy)
    assert decision.decision == "eligible_with_precautions"
    assert [r.rule for r in decision.reasons] == ["lft-above-uln"]


def test_urine_drug_screen_interval_policy(ketamine_doc: dict[str, Any]) -> None:
    ketamine_doc["instruments"][0]["total"] = 5  # ORT moderate
    decision = screen_document(ketamine_doc, policy=TEST_POLICY)
    uds = next(p for p in decision.policies if p.key == "urine_drug_screen_interval_days")
    assert uds.status == "unset"
    policy = SitePolicy(values={**TEST_POLICY.values, "urine_drug_screen_interval_days": 30})
    decision = screen_document(ketamine_doc, policy=policy)
    uds = next(p for p in decision.policies if p.key == "urine_drug_screen_interval_days")
    assert (uds.status, uds.value) == ("applied", 30)
    assert decision.decision == "eligible_with_precautions"


def test_screening_validity_from_policy(ketamine_doc: dict[str, Any]) -> None:
    ketamine_doc["screened_on"] = "2025-01-31"
    policy = SitePolicy(values={**TEST_POLICY.values, "screening_valid_days": 90})
    decision = screen_document(ketamine_doc, policy=policy)
    assert decision.valid_until == dt.date(2025, 5, 1)
    assert screen_document(ketamine_doc, policy=TEST_POLICY).valid_until is None


# --- interactions ----------------------------------------------------------------------------

INTERACTION_CASES = [
    ("midazolam", "ix-cns-depressants", "precaution"),
    ("oxycodone", "ix-recovery-prolonged", "info"),
    ("lorazepam", "ix-benzodiazepines-antidepressant-effect", "info"),
    ("phenelzine", "ix-maoi", "precaution"),
    ("methylphenidate", "ix-psychostimulants", "precaution"),
    ("pseudoephedrine", "ix-sympathomimetics", "precaution"),
    ("levothyroxine", "ix-thyroid-hormones", "precaution"),
    ("lisinopril", "ix-antihypertensives", "precaution"),
    ("theophylline", "ix-theophylline", "review"),
    ("clarithromycin", "ix-cyp3a4-inhibitors", "precaution"),
    ("Grapefruit Juice", "ix-cyp3a4-inhibitors", "precaution"),
    ("ticlopidine", "ix-cyp2b6-inhibitors", "precaution"),
    ("rifampin", "ix-cyp-inducers", "precaution"),
    ("St John's wort", "ix-cyp-inducers", "precaution"),
    ("lamotrigine", "ix-lamotrigine", "info"),
    ("sertraline", "ix-conventional-antidepressants", "info"),
    ("diazepam", "ix-iv-incompatibility", "info"),
]


@pytest.mark.parametrize(("medication", "interaction", "severity"), INTERACTION_CASES)
def test_interaction_fires(medication: str, interaction: str, severity: str) -> None:
    doc = clean_doc()
    doc["medications"] = [medication]
    decision = screen_document(doc, policy=TEST_POLICY)
    found = {i.id: i for i in decision.interactions}
    assert interaction in found
    assert found[interaction].severity == severity
    assert found[interaction].source and found[interaction].advice
    reason = next(r for r in decision.reasons if r.rule == interaction)
    assert medication in reason.message


def test_every_interaction_has_a_case() -> None:
    from ketacare.core.screening import load_knowledge

    assert {i.id for i in load_knowledge().interactions} == {c[1] for c in INTERACTION_CASES}


def test_interactions_do_not_fire_without_the_class(ketamine_doc: dict[str, Any]) -> None:
    ketamine_doc["medications"] = [{"name": "paracetamol", "classes": []}]
    assert screen_document(ketamine_doc, policy=TEST_POLICY).interactions == ()


def test_route_limited_interaction() -> None:
    doc = clean_doc()
    doc["treatment"]["route"] = "oral"
    doc["medications"] = ["diazepam"]
    ids = {i.id for i in screen_document(doc, policy=TEST_POLICY).interactions}
    assert "ix-iv-incompatibility" not in ids and "ix-cns-depressants" in ids


def test_extrapolated_interaction_says_so() -> None:
    # the psychostimulant check rests on the esketamine label alone
    doc = clean_doc("ketamine")
    doc["medications"] = ["methylphenidate"]
    decision = screen_document(doc, policy=TEST_POLICY)
    ix = decision.interactions[0]
    assert ix.id == "ix-psychostimulants" and ix.extrapolated
    assert "source concerns esketamine" in decision.reasons[0].message
    doc = clean_doc("esketamine")
    doc["medications"] = ["methylphenidate"]
    assert not screen_document(doc).interactions[0].extrapolated


@pytest.mark.parametrize("molecule", ["ketamine", "esketamine"])
@pytest.mark.parametrize(
    "medicine", ["phenelzine", "tranylcypromine", "isocarboxazid", "moclobemide"]
)
def test_an_maoi_gets_the_blood_pressure_check_and_no_reassurance(
    molecule: str, medicine: str
) -> None:
    """An MAOI is an N06A antidepressant, but Andrade 2017's reassurance is for "most
    conventional antidepressants": the label and the MAOI case series say blood pressure
    may rise (Veraart 2022 reviewed 39 patients on ketamine or esketamine with an MAOI),
    so only the precaution is shown, sourced for both molecules."""
    doc = clean_doc(molecule)
    doc["medications"] = [medicine]
    found = screen_document(doc, policy=TEST_POLICY).interactions
    assert [(i.id, i.severity, i.extrapolated) for i in found] == [("ix-maoi", "precaution", False)]


def test_nefazodone_is_not_reassured_as_a_conventional_antidepressant() -> None:
    doc = clean_doc("ketamine")
    doc["medications"] = ["nefazodone"]
    found = screen_document(doc, policy=TEST_POLICY).interactions
    assert [i.id for i in found] == ["ix-cyp3a4-inhibitors"]


def test_itraconazole_is_not_said_to_raise_exposure_it_did_not_raise() -> None:
    doc = clean_doc("ketamine")
    doc["medications"] = ["itraconazole"]
    [found] = screen_document(doc, policy=TEST_POLICY).interactions
    assert found.effect.startswith("Ketamine exposure may be higher")
    assert "in one study itraconazole did not raise it" in found.effect


def test_to_dict_matches_the_contract() -> None:
    out = screen_document(_example("review-ketamine-crps.json")).to_dict()
    assert out["decision"] == "physician_review"
    assert all(set(r) == {"rule", "severity", "message", "source"} for r in out["reasons"])
    assert out["ruleset"] == {"id": "ketacare-screening", "version": "1.2.0"}
    json.dumps(out)
