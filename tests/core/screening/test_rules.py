"""Each screening rule: one input that fires it and one that does not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ketacare.core.screening import load_knowledge, screen_document

from .conftest import TEST_POLICY, clean_doc

Patch = Callable[[dict[str, Any]], None]


def _history(**values: Any) -> Patch:
    def patch(doc: dict[str, Any]) -> None:
        doc["history"].update(values)

    return patch


def _set(key: str, value: Any) -> Patch:
    def patch(doc: dict[str, Any]) -> None:
        doc[key] = value

    return patch


def _vitals(**values: Any) -> Patch:
    def patch(doc: dict[str, Any]) -> None:
        doc["vitals"].update(values)

    return patch


def _instrument(
    iid: str,
    total: float | None = None,
    flags: tuple[str, ...] = (),
    items: dict[str, Any] | None = None,
) -> Patch:
    def patch(doc: dict[str, Any]) -> None:
        doc["instruments"] = [i for i in doc["instruments"] if i["instrument"] != iid]
        entry: dict[str, Any] = {"instrument": iid, "total": total, "flags": list(flags)}
        if items is not None:
            entry["items"] = items
        doc["instruments"].append(entry)

    return patch


def _setting(value: str) -> Patch:
    def patch(doc: dict[str, Any]) -> None:
        doc["treatment"]["setting"] = value

    return patch


def _lab(test: str, value: float, uln: float) -> Patch:
    def patch(doc: dict[str, Any]) -> None:
        doc["labs"] = [lab for lab in doc["labs"] if lab["test"] != test]
        doc["labs"].append({"test": test, "value": value, "upper_limit_normal": uln})

    return patch


def _both(*patches: Patch) -> Patch:
    def patch(doc: dict[str, Any]) -> None:
        for p in patches:
            p(doc)

    return patch


def _noop(doc: dict[str, Any]) -> None:
    return None


LFT_POLICY = TEST_POLICY.values | {"lft_review_multiple_of_uln": 3.0}

# rule id -> (molecule, patch that fires it, patch that must not fire it, policy values)
CASES: dict[str, tuple[str, Patch, Patch, dict[str, float]]] = {
    "hypersensitivity": (
        "ketamine",
        _set("allergies", ["Ketamine (rash)"]),
        _set("allergies", ["penicillin"]),
        {},
    ),
    "esketamine-aneurysmal-vascular-disease": (
        "esketamine",
        _set("conditions", ["I67.1"]),
        _set("conditions", ["I10"]),
        {},
    ),
    "esketamine-arteriovenous-malformation": (
        "esketamine",
        _history(arteriovenous_malformation=True),
        _noop,
        {},
    ),
    "esketamine-intracerebral-haemorrhage": (
        "esketamine",
        _set("conditions", ["I69.10"]),
        _set("conditions", ["I63.9"]),
        {},
    ),
    "esketamine-rems-in-clinic": ("esketamine", _setting("take_home"), _noop, {}),
    # Sanacora 2017: at-home self-administration strongly discouraged (a precaution, since
    # oral ketamine is prescribed for pain at home; the REMS rule above forbids esketamine)
    "ketamine-take-home-discouraged": (
        "ketamine",
        _setting("take_home"),
        _setting("in_clinic"),
        {},
    ),
    # Spravato PI 5.6: contraindicated where a rise in BP or ICP poses a serious risk; other
    # cardiovascular and cerebrovascular conditions need a benefit-risk assessment (review)
    "esketamine-bp-serious-hazard": (
        "esketamine",
        _history(bp_elevation_serious_hazard=True),
        _noop,
        {},
    ),
    "esketamine-uncontrolled-hypertension": (
        "esketamine",
        _history(hypertension_uncontrolled=True),
        _noop,
        {},
    ),
    "esketamine-stroke-history": ("esketamine", _history(stroke_history=True), _noop, {}),
    "ketamine-bp-serious-hazard": (
        "ketamine",
        _history(bp_elevation_serious_hazard=True),
        _noop,
        {},
    ),
    "ketamine-aneurysm": (
        "ketamine",
        _set("conditions", ["I71.4"]),
        _set("conditions", ["I71.0"]),
        {},
    ),
    "ketamine-uncontrolled-hypertension": (
        "ketamine",
        _history(hypertension_uncontrolled=True),
        _noop,
        {},
    ),
    "ketamine-thyrotoxicosis": ("ketamine", _set("conditions", ["E05.90"]), _noop, {}),
    "ketamine-stroke-history": ("ketamine", _history(stroke_history=True), _noop, {}),
    "ketamine-intracerebral-haemorrhage": ("ketamine", _set("conditions", ["I61.9"]), _noop, {}),
    "ketamine-arteriovenous-malformation": ("ketamine", _set("conditions", ["Q28.2"]), _noop, {}),
    "asra-cardiovascular-disease": (
        "ketamine",
        _history(cardiovascular_disease_poorly_controlled=True),
        _noop,
        {},
    ),
    "asra-pregnancy": (
        "ketamine",
        _set("pregnancy_status", "pregnant"),
        _set("pregnancy_status", "not_pregnant"),
        {},
    ),
    "esketamine-pregnancy": ("esketamine", _set("pregnancy_status", "pregnant"), _noop, {}),
    "esketamine-breastfeeding": ("esketamine", _set("breastfeeding", True), _noop, {}),
    "esketamine-adults-only": (
        "esketamine",
        _set("patient", {"age_years": 17, "sex": "female"}),
        _set("patient", {"age_years": 18, "sex": "female"}),
        {},
    ),
    "asra-active-psychosis": ("ketamine", _history(psychosis_active=True), _noop, {}),
    "asra-severe-hepatic-disease": (
        "ketamine",
        _history(hepatic_impairment="severe"),
        _history(hepatic_impairment="moderate"),
        {},
    ),
    "asra-moderate-hepatic-disease": (
        "ketamine",
        _history(hepatic_impairment="moderate"),
        _history(hepatic_impairment="mild"),
        {},
    ),
    "asra-raised-intracranial-pressure": (
        "esketamine",
        _history(intracranial_pressure_raised=True),
        _noop,
        {},
    ),
    "asra-raised-intraocular-pressure": (
        "ketamine",
        _history(intraocular_pressure_raised=True),
        _noop,
        {},
    ),
    "asra-active-substance-abuse": (
        "ketamine",
        _history(substance_use_disorder_active=True),
        _noop,
        {},
    ),
    "substance-use-history": (
        "esketamine",
        _history(substance_use_disorder_history=True),
        _noop,
        {},
    ),
    "esketamine-bp-systolic-above-140": (
        "esketamine",
        _vitals(systolic_mmhg=141),
        _vitals(systolic_mmhg=140),
        {},
    ),
    "esketamine-bp-diastolic-above-90": (
        "esketamine",
        _vitals(diastolic_mmhg=91),
        _vitals(diastolic_mmhg=90),
        {},
    ),
    "ketamine-bp-systolic-site-policy": (
        "ketamine",
        _vitals(systolic_mmhg=151),
        _vitals(systolic_mmhg=150),
        {},
    ),
    "ketamine-bp-diastolic-site-policy": (
        "ketamine",
        _vitals(diastolic_mmhg=96),
        _vitals(diastolic_mmhg=95),
        {},
    ),
    "lft-baseline": (
        "ketamine",
        _set("labs", [{"test": "alt", "value": 10, "upper_limit_normal": 40}]),
        _noop,
        {},
    ),
    "lft-above-uln": ("ketamine", _lab("ggt", 61, 60), _lab("ggt", 60, 60), {}),
    "lft-above-site-policy": ("ketamine", _lab("alt", 121, 40), _lab("alt", 120, 40), LFT_POLICY),
    "phq9-item9-positive": (
        "ketamine",
        _instrument("phq9", 5, ("phq9_item9_positive",)),
        _instrument("phq9", 5, items={"q9": 0}),
        {},
    ),
    # ICD-10-CM F20-F29 (block title, medicalcodecenter.com ICD-10-CM 2024 book): F25.0 is
    # schizoaffective disorder, bipolar type; F31.9 (bipolar, unspecified) has no psychotic
    # features and lies outside the block.
    "psychotic-disorder-recorded": (
        "ketamine",
        _set("conditions", ["F25.0"]),
        _set("conditions", ["F31.9"]),
        {},
    ),
    # ICD-10-CM Q28.3 "Other malformations of cerebral vessels" includes a congenital cerebral
    # aneurysm (nonruptured) and a developmental venous anomaly (icd10coded.com/cm/Q28.0).
    "cerebral-vessel-malformation-unspecified": (
        "esketamine",
        _set("conditions", ["Q28.3"]),
        _set("conditions", ["Q28.8"]),
        {},
    ),
    # ICD-10-CM I60.2 is a subarachnoid haemorrhage from the anterior communicating artery, where
    # a ruptured aneurysm is coded (I67.1 Excludes1); I61.9 (intracerebral) has its own rule.
    "intracranial-haemorrhage-cause-unrecorded": (
        "ketamine",
        _set("conditions", ["I60.2"]),
        _set("conditions", ["I63.9"]),
        {},
    ),
    # Spravato PI section 8.6: severe hepatic impairment (Child-Pugh C) "not recommended";
    # moderate: "may need to be monitored for adverse reactions for a longer period of time".
    "esketamine-severe-hepatic-impairment": (
        "esketamine",
        _history(hepatic_impairment="severe"),
        _history(hepatic_impairment="moderate"),
        {},
    ),
    "esketamine-moderate-hepatic-impairment": (
        "esketamine",
        _history(hepatic_impairment="moderate"),
        _history(hepatic_impairment="mild"),
        {},
    ),
    "cssrs-high-risk": (
        "ketamine",
        _instrument("cssrs_screener", None, ("cssrs_high_risk",)),
        _instrument("cssrs_screener", None, ("cssrs_low_risk",)),
        {},
    ),
    "cssrs-moderate-risk": (
        "ketamine",
        _instrument("cssrs_screener", None, ("cssrs_moderate_risk",)),
        _instrument("cssrs_screener", None, ()),
        {},
    ),
    "cssrs-low-risk": (
        "esketamine",
        _instrument("cssrs_screener", None, ("cssrs_low_risk",)),
        _instrument("cssrs_screener", None, ("cssrs_high_risk",)),
        {},
    ),
    "ort-high-risk": ("ketamine", _instrument("ort", 8), _instrument("ort", 7), {}),
    "ort-moderate-risk": ("ketamine", _instrument("ort", 4), _instrument("ort", 3), {}),
    "dast10-moderate-or-higher": (
        "ketamine",
        _instrument("dast10", 3),
        _instrument("dast10", 2),
        {},
    ),
    "dast10-low": ("ketamine", _instrument("dast10", 1), _instrument("dast10", 0), {}),
    "auditc-positive": ("ketamine", _instrument("auditc", 3), _instrument("auditc", 2), {}),
    "take-home-with-substance-risk": (
        "ketamine",
        _both(_setting("take_home"), _instrument("ort", 5)),
        _both(_setting("in_clinic"), _instrument("ort", 5)),
        {},
    ),
}


def _rules_fired(molecule: str, patch: Patch, values: dict[str, float]) -> set[str]:
    doc = clean_doc(molecule)
    patch(doc)
    policy = TEST_POLICY if not values else type(TEST_POLICY)(values=values)
    decision = screen_document(doc, policy=policy, scorer=None)
    return {r.rule for r in decision.reasons}


def test_every_rule_has_a_case() -> None:
    assert {r.id for r in load_knowledge().rules} == set(CASES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires(rule_id: str) -> None:
    molecule, fire, _, values = CASES[rule_id]
    assert rule_id in _rules_fired(molecule, fire, values)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_does_not_fire(rule_id: str) -> None:
    molecule, _, quiet, values = CASES[rule_id]
    assert rule_id not in _rules_fired(molecule, quiet, values)


@pytest.mark.parametrize("molecule", ["ketamine", "esketamine"])
def test_clean_documents_are_eligible(molecule: str) -> None:
    decision = screen_document(clean_doc(molecule), policy=TEST_POLICY)
    assert decision.decision == "eligible", decision.reasons
    assert decision.reasons == ()


def test_rules_do_not_cross_molecules() -> None:
    # the esketamine label's AVM contraindication is not applied to racemic ketamine as such
    fired = _rules_fired("ketamine", _history(arteriovenous_malformation=True), {})
    assert "esketamine-arteriovenous-malformation" not in fired
    assert "ketamine-arteriovenous-malformation" in fired


def test_auditc_uses_male_cut_off() -> None:
    def male(total: float) -> Patch:
        return _both(
            _set("patient", {"age_years": 40, "sex": "male"}), _instrument("auditc", total)
        )

    assert "auditc-positive" not in _rules_fired("ketamine", male(3), {})
    assert "auditc-positive" in _rules_fired("ketamine", male(4), {})


def test_auditc_without_sex_is_missing_only_between_cut_offs() -> None:
    doc = clean_doc()
    doc["patient"] = {"age_years": 40}
    doc["instruments"] = [{"instrument": "auditc", "total": 3}]
    decision = screen_document(doc, policy=TEST_POLICY)
    # 3 is positive for women (>=3) and negative for men (>=4): the rule cannot fire, but the
    # entered screen must not pass silently either: sex is reported missing -> physician review
    assert "auditc-positive" not in {r.rule for r in decision.reasons}
    assert "patient.sex" in [m.item for m in decision.missing]
    assert decision.decision == "physician_review"
    doc["instruments"] = [{"instrument": "auditc", "total": 4}]
    assert "auditc-positive" in {r.rule for r in screen_document(doc, policy=TEST_POLICY).reasons}


def test_pregnancy_not_asked_for_male_patients(ketamine_doc: dict[str, Any]) -> None:
    del ketamine_doc["pregnancy_status"]
    ketamine_doc["patient"]["sex"] = "male"
    decision = screen_document(ketamine_doc, policy=TEST_POLICY)
    assert decision.decision == "eligible"
    ketamine_doc["patient"]["sex"] = "female"
    decision = screen_document(ketamine_doc, policy=TEST_POLICY)
    assert [m.item for m in decision.missing] == ["pregnancy_status"]


def test_code_prefix_matches_only_whole_prefixes() -> None:
    # I71.0 (dissection) is not in the aneurysm map; I72.4 (lower-extremity aneurysm) is
    assert "ketamine-aneurysm" not in _rules_fired("ketamine", _set("conditions", ["I71.01"]), {})
    assert "ketamine-aneurysm" in _rules_fired("ketamine", _set("conditions", ["i72.4"]), {})


def test_reason_message_names_the_evidence() -> None:
    doc = clean_doc("esketamine")
    doc["conditions"] = [{"code": "I71.4"}]
    decision = screen_document(doc)
    reason = decision.reasons[0]
    assert reason.rule == "esketamine-aneurysmal-vascular-disease"
    assert "ICD-10-CM I71.4" in reason.message
    assert reason.source.startswith("Spravato")


def test_esketamine_label_blood_pressure_statements() -> None:
    # Spravato PI 5.6: "contraindicated in patients for whom an increase in BP or intracranial
    # pressure poses a serious risk" -> not eligible; "other cardiovascular and cerebrovascular
    # conditions should be carefully assessed" (benefit against risk) -> physician review
    doc = clean_doc("esketamine")
    doc["history"]["bp_elevation_serious_hazard"] = True
    assert screen_document(doc).decision == "not_eligible"
    for finding in ("hypertension_uncontrolled", "stroke_history"):
        doc = clean_doc("esketamine")
        doc["history"][finding] = True
        decision = screen_document(doc)
        assert decision.decision == "physician_review", finding
        assert all(r.severity != "contraindication" for r in decision.reasons)


def test_instrument_without_total_is_not_read_as_negative() -> None:
    # an ORT entered without a total cannot be banded (0-3 low, 4-7 moderate, >=8 high)
    doc = clean_doc("esketamine")
    doc["instruments"] = [{"instrument": "ort", "total": None}]
    decision = screen_document(doc)
    assert "instrument:ort total" in [m.item for m in decision.missing]
    assert decision.decision == "physician_review"


def test_take_home_ketamine_is_not_plain_eligible() -> None:
    """Sanacora 2017 strongly discourages at-home self-administration: a take-home
    ketamine plan with nothing else against it screens eligible *with precautions*, the
    consensus named, where it used to screen plain "eligible" with no reason."""
    doc = clean_doc("ketamine")
    doc["treatment"]["setting"] = "take_home"
    decision = screen_document(doc, policy=TEST_POLICY, scorer=None)
    assert decision.decision == "eligible_with_precautions"
    (reason,) = decision.reasons
    assert reason.rule == "ketamine-take-home-discouraged"
    assert "strongly discourages at-home self-administration" in reason.message
    assert "Sanacora" in reason.message
