"""A plan's adjunct is checked against the patient's medicines by the core, on typed values.

Worked from ``core/screening/data/interactions.toml`` and ``medications.toml``: lorazepam is a
benzodiazepine and a CNS depressant, morphine an opioid and a CNS depressant; ondansetron is
in neither map. Only the findings that involve the adjunct are kept with it.
"""

from __future__ import annotations

import pytest

from ketacare.clinic.plans.service import _interaction_check
from ketacare.core.errors import UnknownItem
from ketacare.core.protocols import load_library


def test_lorazepam_as_a_rescue_with_a_patient_on_morphine() -> None:
    protocol = load_library().get(protocol_id="crps-outpatient")
    found = _interaction_check(protocol, "lorazepam", ["morphine 10 mg", "ondansetron"])
    assert [(f["id"], f["severity"], f["medications"]) for f in found] == [
        ("ix-cns-depressants", "precaution", ["morphine 10 mg", "lorazepam"]),
        ("ix-benzodiazepines-antidepressant-effect", "info", ["lorazepam"]),
    ]
    assert found[0]["effect"].startswith("Additive CNS depression")
    assert "Spravato (esketamine) prescribing information" in found[0]["source"]


def test_an_adjunct_without_a_finding_of_its_own_gets_none() -> None:
    protocol = load_library().get(protocol_id="crps-outpatient")
    assert _interaction_check(protocol, "ondansetron", ["morphine 10 mg"]) == []


def test_a_protocol_the_screening_cannot_cover_is_refused_not_read_as_ketamine() -> None:
    protocol = load_library().get(protocol_id="crps-continuous")  # esketamine by IV infusion
    with pytest.raises(
        UnknownItem, match="route for esketamine 'iv_infusion': known are intranasal"
    ):
        _interaction_check(protocol, "midazolam", [])
