"""JSON Schema (draft 2020-12) of the screening input document.

Built from the same vocabulary the parser uses (findings from ``rules.toml``), so the schema and
:func:`~ketacare.core.screening.inputs.parse_screening_input` cannot drift apart.

Examples
--------
>>> schema = input_schema()
>>> schema["required"]
['treatment']
>>> "psychosis_active" in schema["properties"]["history"]["properties"]
True
"""

from __future__ import annotations

from typing import Any

from ketacare.core.screening.inputs import PREGNANCY
from ketacare.core.screening.knowledge import Knowledge, load_knowledge
from ketacare.core.screening.model import LFT_TESTS, MOLECULES, ROUTES, SETTINGS

SCHEMA_ID = "https://ketacare.example/schemas/screening-input.json"


def _number(description: str, minimum: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "number", "description": description}
    if minimum is not None:
        out["minimum"] = minimum
    return out


def _instrument_schema() -> dict[str, Any]:
    scored = {
        "type": "object",
        "description": "An already scored instrument.",
        "required": ["instrument", "total"],
        "additionalProperties": False,
        "properties": {
            "instrument": {"type": "string", "description": "Instrument id, e.g. ort, phq9."},
            "total": {"type": ["number", "null"]},
            "band": {"type": ["string", "null"]},
            "flags": {"type": "array", "items": {"type": "string"}},
            "version": {"type": ["string", "null"]},
            "items": {
                "type": "object",
                "description": (
                    'Answers to single items, e.g. {"q9": 0} for PHQ-9 item 9. A PHQ-9 '
                    "total without item 9 (and without the phq9_item9_positive flag) leaves "
                    "item 9 missing: it must be asked."
                ),
                "additionalProperties": {"type": ["number", "boolean", "null"]},
            },
        },
    }
    raw = {
        "type": "object",
        "description": "Raw answers, scored by ketacare.core.instruments.score.",
        "required": ["instrument", "answers"],
        "additionalProperties": False,
        "properties": {
            "instrument": {"type": "string"},
            "answers": {"type": ["array", "object"]},
        },
    }
    return {"oneOf": [scored, raw]}


def input_schema(knowledge: Knowledge | None = None) -> dict[str, Any]:
    """Return the JSON Schema of the ``ketacare screen`` input file."""
    kb = knowledge or load_knowledge()
    history = {
        f.id: (
            {"enum": list(f.values), "description": f.label}
            if f.values
            else {"type": "boolean", "description": f.label}
        )
        for f in kb.findings
    }
    routes = sorted({r for rs in ROUTES.values() for r in rs})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "ketacare screening input",
        "description": (
            "One patient and one intended treatment. A field left out means 'not known'; "
            "give [] for an empty medication or allergy list. Esketamine is intranasal only."
        ),
        "type": "object",
        "required": ["treatment"],
        "additionalProperties": False,
        "properties": {
            "patient": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "age_years": _number("Age in years", 0),
                    "sex": {"enum": ["female", "male", "F", "M", "f", "m"]},
                },
            },
            "treatment": {
                "type": "object",
                "required": ["molecule", "route"],
                "additionalProperties": False,
                "properties": {
                    "molecule": {"enum": list(MOLECULES)},
                    "route": {"enum": routes},
                    "setting": {"enum": list(SETTINGS), "default": "in_clinic"},
                },
            },
            "conditions": {
                "type": "array",
                "description": "Diagnoses as ICD-10-CM codes.",
                "items": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "object",
                            "required": ["code"],
                            "additionalProperties": False,
                            "properties": {
                                "code": {"type": "string", "minLength": 1},
                                "system": {"const": "ICD-10-CM"},
                                "display": {"type": "string"},
                            },
                        },
                    ]
                },
            },
            "history": {
                "type": "object",
                "description": "History findings; leave one out when it is not known.",
                "additionalProperties": False,
                "properties": history,
            },
            "pregnancy_status": {"enum": list(PREGNANCY)},
            "breastfeeding": {"type": "boolean"},
            "medications": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "rxcui": {"type": "string", "pattern": "^[0-9]+$"},
                                "classes": {
                                    "type": "array",
                                    "items": {"enum": sorted(kb.class_labels)},
                                },
                            },
                        },
                    ]
                },
            },
            "allergies": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "vitals": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "systolic_mmhg": _number("Resting systolic blood pressure, mmHg", 40),
                    "diastolic_mmhg": _number("Resting diastolic blood pressure, mmHg", 20),
                    "heart_rate_bpm": _number("Resting heart rate, beats per minute", 20),
                },
            },
            "labs": {
                "type": "array",
                "description": "Liver tests with the laboratory's upper limit of normal.",
                "items": {
                    "type": "object",
                    "required": ["test", "value", "upper_limit_normal"],
                    "additionalProperties": False,
                    "properties": {
                        "test": {"enum": list(LFT_TESTS)},
                        "value": _number("Result", 0),
                        "upper_limit_normal": {"type": "number", "exclusiveMinimum": 0},
                        "unit": {"type": "string"},
                    },
                },
            },
            "instruments": {"type": "array", "items": _instrument_schema()},
            "screened_on": {"type": "string", "format": "date"},
        },
    }
