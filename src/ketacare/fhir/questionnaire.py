"""Instruments as FHIR R4 ``Questionnaire``; results as ``QuestionnaireResponse`` + ``Observation``.

Codes: LOINC (``http://loinc.org``) wherever the instrument's data file carries a
sourced code; otherwise the local code system :data:`SCORE_SYSTEM` with codes
``<instrument>-total`` (``<instrument>-result`` for a decision without a total),
``<instrument>-<subscale>`` and ``<instrument>-<flag>``.
Bands go to ``Observation.interpretation`` in :data:`BAND_SYSTEM` (plus the
SNOMED CT code when the data file gives one, as for the pain NRS).

The functions only build dicts: they never read the clock; the caller passes
``authored`` (an ISO 8601 date-time) and the ids it wants.

Examples
--------
>>> from ketacare.core.instruments import get_instrument, score
>>> q = questionnaire(get_instrument("phq9"))
>>> q["resourceType"], q["code"][0]["code"], q["item"][8]["code"][0]["code"]
('Questionnaire', '44249-1', '44260-8')
>>> bundle = score_to_fhir(score("phq9", [1, 1, 2, 1, 0, 1, 1, 0, 1]), response_id="r1")
>>> [o["code"]["coding"][0]["code"] for o in bundle["observations"]]
['44261-6', 'phq9-phq9_item9_positive']
"""

from __future__ import annotations

from typing import Any

from ketacare.core.instruments import Instrument, Item, ScoreResult, get_instrument

__all__ = [
    "BAND_SYSTEM",
    "BASE_URL",
    "SCORE_SYSTEM",
    "questionnaire",
    "questionnaire_response",
    "score_observations",
    "score_to_fhir",
]

BASE_URL = "https://ketacare.org/fhir"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
#: Local code system for scores, subscores and flags without a LOINC code.
SCORE_SYSTEM = f"{BASE_URL}/CodeSystem/instrument-score"
#: Local code system for instrument bands (Observation.interpretation).
BAND_SYSTEM = f"{BASE_URL}/CodeSystem/instrument-band"
#: Local code system for answer values of items without LOINC answer codes.
ANSWER_SYSTEM = f"{BASE_URL}/CodeSystem/instrument-answer"
_ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _canonical(instrument: Instrument) -> str:
    return f"{BASE_URL}/Questionnaire/{instrument.id}"


def _name(instrument: Instrument) -> str:
    return "".join(part.capitalize() for part in instrument.id.split("_"))


def _answer_coding(instrument: Instrument, item: Item, value: int) -> dict[str, Any]:
    for option in item.options:
        if option.value == value:
            if option.loinc_answer:
                return {"system": LOINC, "code": option.loinc_answer, "display": option.label}
            return {
                "system": f"{ANSWER_SYSTEM}/{instrument.id}",
                "code": f"{item.id}-{value}",
                "display": option.label,
            }
    raise ValueError(f"{instrument.id} item {item.id}: no option {value}")


def _q_item(instrument: Instrument, item: Item) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "linkId": item.id,
        "text": item.text or item.label,
        "required": item.required,
    }
    if item.loinc:
        entry["code"] = [{"system": LOINC, "code": item.loinc, "display": item.label}]
    if item.kind == "boolean":
        entry["type"] = "boolean"
    elif item.kind == "integer":
        entry["type"] = "integer"
    elif item.kind == "measurement":
        # A raw reading (NEWS2 vitals): FHIR's decimal or integer by the chart's resolution.
        entry["type"] = "decimal" if item.decimals else "integer"
    else:
        entry["type"] = "choice"
        entry["answerOption"] = [
            {
                "valueCoding": {
                    **_answer_coding(instrument, item, option.value),
                    "extension": [{"url": _ORDINAL, "valueDecimal": option.value}],
                }
            }
            for option in item.options
        ]
    if item.enable_when is not None:
        gate = item.enable_when
        answer_key = "answerBoolean" if isinstance(gate.equals, bool) else "answerInteger"
        entry["enableWhen"] = [{"question": gate.item, "operator": "=", answer_key: gate.equals}]
    return entry


def questionnaire(instrument: Instrument) -> dict[str, Any]:
    """Render an instrument as a FHIR R4 ``Questionnaire`` (plain dict).

    Items carry their licensed text when the licence allows it or a clinic
    loaded its texts, otherwise the short neutral label.
    """
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": instrument.id.replace("_", "-"),
        "url": _canonical(instrument),
        "version": instrument.version,
        "name": _name(instrument),
        "title": instrument.title,
        "status": "active",
        "subjectType": ["Patient"],
        "description": instrument.description,
        "copyright": f"{instrument.licence.holder}. {instrument.licence.terms}",
        "item": [_q_item(instrument, item) for item in instrument.items],
    }
    if instrument.loinc_panel:
        resource["code"] = [
            {"system": LOINC, "code": instrument.loinc_panel, "display": instrument.title}
        ]
    return resource


def questionnaire_response(
    result: ScoreResult,
    *,
    response_id: str,
    subject: str | None = None,
    authored: str | None = None,
) -> dict[str, Any]:
    """The answers of a scored result as a FHIR R4 ``QuestionnaireResponse``.

    ``subject`` is a reference such as ``"Patient/123"``. Unanswered and
    skipped items are left out; the status is ``in-progress`` when required
    items are missing.
    """
    instrument = get_instrument(result.instrument)
    items = []
    for item in instrument.items:
        value = result.answers.get(item.id)
        if value is None:
            continue
        if isinstance(value, bool):
            answer: dict[str, Any] = {"valueBoolean": value}
        elif item.kind == "choice" and isinstance(value, int):
            answer = {"valueCoding": _answer_coding(instrument, item, value)}
        else:
            answer = {"valueInteger": value}
        items.append({"linkId": item.id, "text": item.text or item.label, "answer": [answer]})
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": response_id,
        "questionnaire": f"{_canonical(instrument)}|{instrument.version}",
        "status": "in-progress" if result.missing else "completed",
        "item": items,
    }
    if subject:
        resource["subject"] = {"reference": subject}
    if authored:
        resource["authored"] = authored
    return resource


def _observation(
    *,
    obs_id: str,
    code: dict[str, Any],
    response_id: str,
    subject: str | None,
    effective: str | None,
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "category": [{"coding": [{"system": _CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [code], "text": code["display"]},
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{response_id}"}],
    }
    if subject:
        obs["subject"] = {"reference": subject}
    if effective:
        obs["effectiveDateTime"] = effective
    return obs


def _score_quantity(value: float | int) -> dict[str, Any]:
    return {"value": value, "unit": "{score}", "system": UCUM, "code": "{score}"}


def score_observations(
    result: ScoreResult,
    *,
    response_id: str,
    subject: str | None = None,
    effective: str | None = None,
) -> list[dict[str, Any]]:
    """Scored ``Observation`` dicts: total (or decision), each subscore, each raised flag.

    The total uses the instrument's LOINC total code where one is sourced; a
    rules-based decision (C-SSRS risk, Budapest, ACR 2016) becomes a
    ``valueCodeableConcept``. Subscores use their LOINC code where sourced
    (BPI interference 77565-0). Raised flags become ``valueBoolean`` true.
    """
    instrument = get_instrument(result.instrument)
    observations = []
    interpretation = None
    if result.band is not None:
        codings = [
            {
                "system": BAND_SYSTEM,
                "code": f"{instrument.id}-{result.band}",
                "display": result.band_label or result.band,
            }
        ]
        for band in instrument.bands:
            if band.id == result.band and band.snomed and band.sex in (None, result.sex):
                codings.append({"system": SNOMED, "code": band.snomed, "display": band.label})
                break
        interpretation = [{"coding": codings, "text": result.band_label or result.band}]

    if result.total is not None or result.band is not None:
        if instrument.loinc_total and result.total is not None:
            code = {"system": LOINC, "code": instrument.loinc_total}
        elif result.total is not None:
            code = {"system": SCORE_SYSTEM, "code": f"{instrument.id}-total"}
        else:
            code = {"system": SCORE_SYSTEM, "code": f"{instrument.id}-result"}
        code["display"] = f"{instrument.short_title} total score"
        if result.total is None:
            code["display"] = f"{instrument.short_title} result"
        obs = _observation(
            obs_id=f"{response_id}-total",
            code=code,
            response_id=response_id,
            subject=subject,
            effective=effective,
        )
        if result.total is not None:
            obs["valueQuantity"] = _score_quantity(result.total)
        else:
            assert interpretation is not None
            obs["valueCodeableConcept"] = interpretation[0]
        if interpretation is not None:
            obs["interpretation"] = interpretation
        observations.append(obs)

    for sub in instrument.subscales:
        value = result.subscores.get(sub.id)
        if value is None:
            continue
        if sub.loinc:
            code = {"system": LOINC, "code": sub.loinc}
        else:
            code = {"system": SCORE_SYSTEM, "code": f"{instrument.id}-{sub.id}"}
        code["display"] = f"{instrument.short_title} {sub.label}"
        obs = _observation(
            obs_id=f"{response_id}-{sub.id.replace('_', '-')}",
            code=code,
            response_id=response_id,
            subject=subject,
            effective=effective,
        )
        obs["valueQuantity"] = _score_quantity(value)
        observations.append(obs)

    for detail in result.flag_details:
        flag_id = str(detail["id"])
        code = {
            "system": SCORE_SYSTEM,
            "code": f"{instrument.id}-{flag_id}",
            "display": str(detail["message"]),
        }
        obs = _observation(
            obs_id=f"{response_id}-{flag_id.replace('_', '-')}",
            code=code,
            response_id=response_id,
            subject=subject,
            effective=effective,
        )
        obs["valueBoolean"] = True
        observations.append(obs)
    return observations


def score_to_fhir(
    result: ScoreResult,
    *,
    response_id: str,
    subject: str | None = None,
    authored: str | None = None,
) -> dict[str, Any]:
    """Both renderings of a scored result.

    Returns
    -------
    dict
        ``{"questionnaireResponse": {...}, "observations": [{...}, ...]}``.
    """
    return {
        "questionnaireResponse": questionnaire_response(
            result, response_id=response_id, subject=subject, authored=authored
        ),
        "observations": score_observations(
            result, response_id=response_id, subject=subject, effective=authored
        ),
    }
