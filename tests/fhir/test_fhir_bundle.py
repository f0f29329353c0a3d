"""The patient export: a FHIR R4 Bundle whose resources validate and carry the right codes."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle


def test_patient_bundle_validates_and_carries_codes(client: Any, login_api: Any) -> None:
    nurse = login_api("nurse")
    client.post(
        "/api/v1/patients/1/assessments",
        headers=nurse,
        json={"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 0, 0, 0, 0]},
    )
    client.post(
        "/api/v1/patients/1/medications",
        headers=nurse,
        json={"name": "esketamine nasal spray", "rxnorm_code": "2201623"},
    )
    r = client.get("/api/v1/patients/1/fhir", headers=nurse)
    assert r.status_code == 200
    doc = r.json()
    Bundle.model_validate(doc)  # every entry validates against the R4B models
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in doc["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    [patient] = by_type["Patient"]
    assert patient["identifier"][0]["value"] == "KC000001" and patient["gender"] == "female"
    icd = {c["code"]["coding"][0]["code"] for c in by_type["Condition"]}
    assert icd == {"G90.512", "F33.1"}
    assert all(
        c["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
        for c in by_type["Condition"]
    )
    rx = [m for m in by_type["MedicationStatement"] if m["medicationCodeableConcept"].get("coding")]
    assert rx[0]["medicationCodeableConcept"]["coding"][0] == {
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
        "code": "2201623",
        "display": "esketamine nasal spray",
    }
    weights = [o for o in by_type["Observation"] if o["code"]["coding"][0]["code"] == "29463-7"]
    assert {w["valueQuantity"]["value"] for w in weights} == {68.0, 68.8}
    assert weights[0]["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    totals = [o for o in by_type["Observation"] if o["code"]["coding"][0]["code"] == "44261-6"]
    assert totals and totals[0]["valueQuantity"]["value"] == 5  # PHQ-9 total (LOINC 44261-6)
    assert len(by_type["QuestionnaireResponse"]) == 1


def test_a_patient_exports_only_their_own_record(client: Any, login_api: Any) -> None:
    me = login_api("patient1")
    assert client.get("/api/v1/patients/1/fhir", headers=me).status_code == 200
    assert client.get("/api/v1/patients/2/fhir", headers=me).status_code == 403
