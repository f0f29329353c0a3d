"""FHIR R4 renderings, validated with the fhir.resources R4B models.

Questionnaire, QuestionnaireResponse and Observation have the same JSON in R4
(4.0.1) and R4B, so the R4B models check the R4 output.
"""

from __future__ import annotations

import pytest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from ketacare.core.instruments import Instrument, get_instrument, list_instruments, score
from ketacare.core.instruments.texts import with_item_texts
from ketacare.fhir.questionnaire import (
    BAND_SYSTEM,
    SCORE_SYSTEM,
    questionnaire,
    score_observations,
    score_to_fhir,
)

LOINC = "http://loinc.org"


@pytest.mark.parametrize("inst", list_instruments(), ids=lambda i: i.id)
def test_every_instrument_is_a_valid_questionnaire(inst: Instrument) -> None:
    resource = questionnaire(inst)
    model = Questionnaire.model_validate(resource)
    assert model.status == "active"
    assert [i.linkId for i in model.item] == list(inst.item_ids)


def test_phq9_questionnaire_carries_loinc_codes_and_answer_codes() -> None:
    resource = questionnaire(get_instrument("phq9"))
    assert resource["code"] == [{"system": LOINC, "code": "44249-1", "display": resource["title"]}]
    q9 = resource["item"][8]
    assert q9["code"][0]["code"] == "44260-8"
    assert [o["valueCoding"]["code"] for o in q9["answerOption"]] == [
        "LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"
    ]  # fmt: skip
    assert q9["text"].startswith("Thoughts that you would be better off dead")


def test_labels_only_instrument_shows_labels_until_texts_are_loaded() -> None:
    pcs = get_instrument("pcs")
    assert questionnaire(pcs)["item"][0]["text"] == pcs.items[0].label
    licensed = with_item_texts(pcs, {"q1": "Licensed wording"}, "Mapi licence 7")
    assert questionnaire(licensed)["item"][0]["text"] == "Licensed wording"


def test_cssrs_skip_logic_becomes_enable_when() -> None:
    items = {i["linkId"]: i for i in questionnaire(get_instrument("cssrs_screener"))["item"]}
    assert items["q3"]["enableWhen"] == [{"question": "q2", "operator": "=", "answerBoolean": True}]
    assert items["q6_recent"]["enableWhen"][0]["question"] == "q6"
    assert "enableWhen" not in items["q1"]


def validate(bundle: dict[str, object]) -> tuple[QuestionnaireResponse, list[Observation]]:
    qr = QuestionnaireResponse.model_validate(bundle["questionnaireResponse"])
    obs = [Observation.model_validate(o) for o in bundle["observations"]]  # type: ignore[attr-defined]
    return qr, obs


def test_phq9_response_and_observations() -> None:
    result = score("phq9", [1, 1, 2, 1, 0, 1, 1, 0, 1])
    bundle = score_to_fhir(
        result, response_id="qr1", subject="Patient/7", authored="2025-03-01T09:30:00Z"
    )
    qr, obs = validate(bundle)
    assert qr.status == "completed" and len(qr.item) == 9
    assert qr.questionnaire == "https://ketacare.org/fhir/Questionnaire/phq9|1.0.0"
    total = bundle["observations"][0]  # type: ignore[index]
    assert total["code"]["coding"][0] == {"system": LOINC, "code": "44261-6",
                                           "display": "PHQ-9 total score"}  # fmt: skip
    assert total["valueQuantity"]["value"] == 8
    assert total["interpretation"][0]["coding"][0] == {
        "system": BAND_SYSTEM, "code": "phq9-mild", "display": "Mild depression"
    }  # fmt: skip
    assert total["derivedFrom"] == [{"reference": "QuestionnaireResponse/qr1"}]
    flag = bundle["observations"][1]  # type: ignore[index]
    assert flag["code"]["coding"][0]["code"] == "phq9-phq9_item9_positive"
    assert flag["valueBoolean"] is True
    assert all(o.subject.reference == "Patient/7" for o in obs)


def test_bpi_interference_uses_loinc_and_severity_local_code() -> None:
    result = score("bpi_sf", [8, 2, 5, 4, 6, 4, 7, 5, 3, 8, 2])
    observations = score_observations(result, response_id="qr2")
    for o in observations:
        Observation.model_validate(o)
    codes = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert codes["77565-0"]["valueQuantity"]["value"] == pytest.approx(5.0)
    assert codes["bpi_sf-severity"]["code"]["coding"][0]["system"] == SCORE_SYSTEM
    assert "bpi_sf-total" not in codes  # the BPI has no total


def test_nrs_band_carries_snomed_interpretation() -> None:
    total = score_observations(score("nrs_pain", [5]), response_id="qr3")[0]
    systems = {c["system"]: c["code"] for c in total["interpretation"][0]["coding"]}
    assert systems["http://snomed.info/sct"] == "50415004"
    assert total["code"]["coding"][0]["code"] == "72514-3"


def test_decision_instruments_use_codeable_concept() -> None:
    result = score("cssrs_screener", [True, True, False, True, False, False, None])
    bundle = score_to_fhir(result, response_id="qr4")
    _, obs = validate(bundle)
    decision = bundle["observations"][0]  # type: ignore[index]
    assert decision["code"]["coding"][0]["code"] == "cssrs_screener-result"
    assert decision["valueCodeableConcept"]["coding"][0]["code"] == "cssrs_screener-high"
    assert len(obs) == 2  # decision + cssrs_high_risk flag


def test_incomplete_response_is_in_progress_and_has_no_total() -> None:
    result = score("gad7", [1, 1, None, 1, 1, 1, 1])
    bundle = score_to_fhir(result, response_id="qr5")
    qr, obs = validate(bundle)
    assert qr.status == "in-progress" and len(qr.item) == 6
    assert obs == []


@pytest.mark.parametrize(
    ("instrument_id", "answers", "sex"),
    [
        ("ort", [True] * 10, "F"),
        ("auditc", [2, 1, 0], "M"),
        ("dast10", [True] * 10, None),
        ("acr2016_fm", [True] * 19 + [3, 3, 3, True, True, True, True], None),
        ("budapest_crps", [True] * 10, None),
        ("padss_ketamine", [2, 2, 2, 2, 2, False], None),
        ("dn4", [True] * 4 + [False] * 6, None),
        ("pcs", [2] * 13, None),
        ("pgic", [2], None),
    ],
)
def test_other_results_validate(instrument_id: str, answers: list[object], sex: str | None) -> None:
    bundle = score_to_fhir(score(instrument_id, answers, sex=sex), response_id="r")
    validate(bundle)
