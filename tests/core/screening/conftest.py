"""Shared builders for screening tests: a complete patient document per molecule."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ketacare.core.screening import SitePolicy

HISTORY_CLEAR: dict[str, Any] = {
    "ketamine_hypersensitivity": False,
    "aneurysmal_vascular_disease": False,
    "arteriovenous_malformation": False,
    "intracerebral_haemorrhage_history": False,
    "stroke_history": False,
    "hypertension_uncontrolled": False,
    "thyrotoxicosis": False,
    "bp_elevation_serious_hazard": False,
    "cardiovascular_disease_poorly_controlled": False,
    "psychosis_active": False,
    "hepatic_impairment": "none",
    "intracranial_pressure_raised": False,
    "intraocular_pressure_raised": False,
    "substance_use_disorder_active": False,
    "substance_use_disorder_history": False,
}

NORMAL_LFTS = [
    {"test": "alt", "value": 20, "upper_limit_normal": 40},
    {"test": "alp", "value": 80, "upper_limit_normal": 130},
    {"test": "ggt", "value": 25, "upper_limit_normal": 60},
]

#: Test-only policy values (arbitrary numbers used to exercise the comparison, not advice).
TEST_POLICY = SitePolicy(
    values={"screening_systolic_max_mmhg": 150.0, "screening_diastolic_max_mmhg": 95.0},
    name="test",
)


def clean_doc(molecule: str = "ketamine") -> dict[str, Any]:
    """A complete document that screens as eligible (with TEST_POLICY for ketamine)."""
    route = "iv_infusion" if molecule == "ketamine" else "intranasal"
    return copy.deepcopy(
        {
            "patient": {"age_years": 40, "sex": "female"},
            "treatment": {"molecule": molecule, "route": route, "setting": "in_clinic"},
            "history": HISTORY_CLEAR,
            "pregnancy_status": "not_pregnant",
            "breastfeeding": False,
            "medications": [],
            "allergies": [],
            "vitals": {"systolic_mmhg": 120, "diastolic_mmhg": 75, "heart_rate_bpm": 70},
            "labs": NORMAL_LFTS,
            "instruments": [
                {"instrument": "ort", "total": 0, "band": "low", "flags": []},
                {"instrument": "dast10", "total": 0, "band": "none", "flags": []},
                {"instrument": "auditc", "total": 0, "band": "negative", "flags": []},
            ],
        }
    )


@pytest.fixture
def ketamine_doc() -> dict[str, Any]:
    return clean_doc("ketamine")


@pytest.fixture
def esketamine_doc() -> dict[str, Any]:
    return clean_doc("esketamine")
