"""A patient's record as a FHIR R4 ``Bundle`` (type ``collection``).

Patient, Condition (ICD-10-CM), MedicationStatement (RxNorm where known),
AllergyIntolerance, body weight and height Observations (the vital-signs profile's
LOINC codes and UCUM units, from ``codes.toml``), and each scored questionnaire as a
QuestionnaireResponse with its score Observations. Entries retired as
entered-in-error keep that status, as FHIR expects.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any, Protocol

from ketacare.core.instruments import score
from ketacare.fhir.questionnaire import score_to_fhir


@cache
def codes() -> dict[str, Any]:
    """The code systems and codes of the export (with their sources)."""
    text = resources.files(__package__).joinpath("codes.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _system(name: str) -> str:
    return str(codes()["systems"][name]["uri"])


class _Row(Protocol):
    id: int
    status: str


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def patient_resource(patient: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"patient-{patient.id}",
        "identifier": [{"system": _system("mrn"), "value": patient.mrn}],
        "name": [{"family": patient.family_name, "given": [patient.given_name]}],
        "gender": patient.sex,
        "birthDate": patient.birth_date.isoformat(),
    }
    telecom = []
    if patient.phone:
        telecom.append({"system": "phone", "value": patient.phone})
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    if telecom:
        resource["telecom"] = telecom
    if patient.address:
        resource["address"] = [{"text": patient.address}]
    return resource


def _subject(patient: Any) -> dict[str, str]:
    return {"reference": f"Patient/patient-{patient.id}"}


def condition_resource(patient: Any, row: Any) -> dict[str, Any]:
    clinical = {"active": "active", "resolved": "resolved"}.get(row.status)
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"condition-{row.id}",
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "entered-in-error" if row.status == "entered-in-error" else "confirmed",
                }
            ]
        },
        "code": {
            "coding": [
                {"system": _system("icd10cm"), "code": row.icd10_code, "display": row.display}
            ],
            "text": row.display,
        },
        "subject": _subject(patient),
        "recordedDate": _iso(row.recorded_at),
    }
    if clinical:
        resource["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical,
                }
            ]
        }
    if row.onset_date:
        resource["onsetDateTime"] = row.onset_date.isoformat()
    return resource


def medication_resource(patient: Any, row: Any) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": row.name}
    if row.rxnorm_code:
        concept["coding"] = [
            {"system": _system("rxnorm"), "code": row.rxnorm_code, "display": row.name}
        ]
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": f"medication-{row.id}",
        "status": {"active": "active", "stopped": "stopped"}.get(row.status, "entered-in-error"),
        "medicationCodeableConcept": concept,
        "subject": _subject(patient),
        "dateAsserted": _iso(row.recorded_at),
    }
    if row.dose_text:
        resource["dosage"] = [{"text": row.dose_text}]
    return resource


def allergy_resource(patient: Any, row: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": f"allergy-{row.id}",
        "code": {"text": row.substance},
        "patient": _subject(patient),
        "recordedDate": _iso(row.recorded_at),
    }
    if row.status == "entered-in-error":
        resource["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "entered-in-error",
                }
            ]
        }
    else:
        resource["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active" if row.status == "active" else "inactive",
                }
            ]
        }
    if row.reaction or row.severity:
        reaction: dict[str, Any] = {"manifestation": [{"text": row.reaction or "unspecified"}]}
        if row.severity:
            reaction["severity"] = row.severity
        resource["reaction"] = [reaction]
    return resource


def _vital(patient: Any, row: Any, kind: str, value: float) -> dict[str, Any]:
    spec = codes()["vitals"][kind]
    return {
        "resourceType": "Observation",
        "id": f"{kind.replace('_', '-')}-{row.id}",
        "status": "entered-in-error" if row.status == "entered-in-error" else "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": _system("loinc"), "code": spec["loinc"], "display": spec["display"]}
            ],
            "text": spec["display"],
        },
        "subject": _subject(patient),
        "effectiveDateTime": _iso(row.measured_at),
        "valueQuantity": {
            "value": value,
            "unit": spec["unit"],
            "system": _system("ucum"),
            "code": spec["unit"],
        },
    }


def body_measurements(patient: Any, rows: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        out.append(_vital(patient, row, "body_weight", float(row.weight_kg)))
        if row.height_cm is not None:
            out.append(_vital(patient, row, "body_height", float(row.height_cm)))
    return out


def assessment_resources(patient: Any, rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Each stored assessment, re-scored from its kept answers, as FHIR resources."""
    sex = {"female": "F", "male": "M"}.get(patient.sex)
    out: list[dict[str, Any]] = []
    for row in rows:
        result = score(row.instrument_id, row.answers, sex=sex)
        rendered = score_to_fhir(
            result,
            response_id=f"assessment-{row.id}",
            subject=f"Patient/patient-{patient.id}",
            authored=_iso(row.completed_at),
        )
        out.append(rendered["questionnaireResponse"])
        out.extend(rendered["observations"])
    return out


def patient_bundle(
    *,
    patient: Any,
    conditions: Iterable[Any],
    medications: Iterable[Any],
    allergies: Iterable[Any],
    measurements: Iterable[Any],
    assessments: Iterable[Any],
    generated_at: datetime,
) -> dict[str, Any]:
    """The whole record as one ``collection`` Bundle."""
    resources_: list[dict[str, Any]] = [patient_resource(patient)]
    resources_ += [condition_resource(patient, c) for c in conditions]
    resources_ += [medication_resource(patient, m) for m in medications]
    resources_ += [allergy_resource(patient, a) for a in allergies]
    resources_ += body_measurements(patient, measurements)
    resources_ += assessment_resources(patient, assessments)
    return {
        "resourceType": "Bundle",
        "id": f"patient-{patient.id}-record",
        "type": "collection",
        "timestamp": generated_at.isoformat(),
        "entry": [
            {"fullUrl": f"urn:ketacare:{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources_
        ],
    }
