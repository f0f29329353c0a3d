"""Interaction checks on typed values: medicines against a molecule and a route.

Expected findings are read by hand from ``data/interactions.toml`` and
``data/medications.toml``: diazepam is a benzodiazepine, a CNS depressant and IV-incompatible
with ketamine; ix-iv-incompatibility applies to the IV routes only; ix-benzodiazepines-
antidepressant-effect comes from a ketamine source, so for esketamine it is an extrapolation.
"""

from __future__ import annotations

import pytest

from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.screening import (
    Medication,
    check_interactions,
    load_knowledge,
    screen_document,
)
from ketacare.core.terminology.treatments import screened_treatment

KETAMINE_LABEL = "Ketamine hydrochloride injection (Ketamax, Rotexmedica) prescribing information"
SPRAVATO_LABEL = "Spravato (esketamine) prescribing information, Drug interactions"


def test_diazepam_with_ketamine_by_infusion() -> None:
    check = check_interactions(["diazepam 5 mg tablet"], molecule="ketamine", route="iv_infusion")
    assert [(f.id, f.severity, f.extrapolated) for f in check.findings] == [
        ("ix-cns-depressants", "precaution", False),
        ("ix-iv-incompatibility", "info", False),
        ("ix-benzodiazepines-antidepressant-effect", "info", False),
    ]
    cns = check.findings[0]
    assert cns.medications == ("diazepam 5 mg tablet",)
    assert cns.classes == ("benzodiazepine", "cns_depressant")
    assert KETAMINE_LABEL in cns.source and SPRAVATO_LABEL in cns.source
    assert check.not_recognised == ()


def test_the_iv_incompatibility_is_checked_for_iv_routes_only() -> None:
    ids = [
        f.id for f in check_interactions(["diazepam"], molecule="ketamine", route="oral").findings
    ]
    assert ids == ["ix-cns-depressants", "ix-benzodiazepines-antidepressant-effect"]


def test_a_ketamine_source_applied_to_esketamine_says_so() -> None:
    check = check_interactions(["diazepam"], molecule="esketamine", route="intranasal")
    assert [(f.id, f.extrapolated) for f in check.findings] == [
        ("ix-cns-depressants", False),
        ("ix-benzodiazepines-antidepressant-effect", True),
    ]


def test_an_unmapped_entry_is_returned_not_dropped() -> None:
    check = check_interactions(
        [" ondansetron 4 mg ", "lorazepam"], molecule="ketamine", route="iv_infusion"
    )
    assert check.not_recognised == ("ondansetron 4 mg",)
    assert [f.medications for f in check.findings][0] == ("lorazepam",)


def test_classes_given_with_a_medication_are_used() -> None:
    check = check_interactions(
        [Medication("trial drug X", classes=("maoi",))], molecule="esketamine", route="intranasal"
    )
    assert [f.id for f in check.findings] == ["ix-maoi"]
    assert check.not_recognised == ()


def test_findings_involving_a_medicine_match_its_entries_by_text() -> None:
    check = check_interactions(
        ["Lorazepam 1 mg tablet", "morphine"], molecule="ketamine", route="iv_infusion"
    )
    assert [f.id for f in check.involving("lorazepam")] == [
        "ix-cns-depressants",
        "ix-benzodiazepines-antidepressant-effect",
    ]
    assert [f.id for f in check.involving("morphine")] == [
        "ix-cns-depressants",
        "ix-recovery-prolonged",
    ]
    assert check.involving("ondansetron") == ()


@pytest.mark.parametrize(
    ("molecule", "route", "message"),
    [
        (
            "arketamine",
            "iv_infusion",
            "unknown molecule 'arketamine': known are esketamine, ketamine",
        ),
        ("esketamine", "oral", "unknown route for esketamine 'oral': known are intranasal"),
    ],
)
def test_an_unknown_treatment_is_refused_naming_what_is_allowed(
    molecule: str, route: str, message: str
) -> None:
    with pytest.raises(UnknownItem) as caught:
        check_interactions(["lorazepam"], molecule=molecule, route=route)
    assert str(caught.value) == message


def test_an_empty_entry_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"medicines\[1\] must be a non-empty medicine name"):
        check_interactions(["lorazepam", "  "], molecule="ketamine", route="iv_infusion")


@pytest.mark.parametrize(
    "meds",
    [
        ["diazepam", "morphine 10 mg", "phenelzine", "levothyroxine", "unknown-x"],
        ["Ativan", "Ritalin", "St John's Wort", "amlodipine 5 mg"],
        ["phenobarbital", "clarithromycin", "theophylline"],
    ],
    ids=repr,
)
@pytest.mark.parametrize(
    ("protocol_molecule", "protocol_route"),
    [
        ("racemic_ketamine", "iv_infusion"),
        ("racemic_ketamine", "im"),
        ("racemic_ketamine", "oral"),
        ("esketamine", "intranasal_esketamine"),
    ],
)
def test_the_same_findings_as_the_whole_screening(
    meds: list[str], protocol_molecule: str, protocol_route: str
) -> None:
    molecule, route = screened_treatment(protocol_molecule, protocol_route)
    doc = {
        "treatment": {"molecule": molecule, "route": route},
        "medications": [{"name": m} for m in meds],
    }
    decision = screen_document(doc)
    check = check_interactions(meds, molecule=molecule, route=route, knowledge=load_knowledge())
    assert check.findings == decision.interactions
    assert check.findings  # every list above meets at least one check


def test_primidone_is_a_barbiturate_and_a_cns_depressant() -> None:
    # primidone is ATC N03AA03, in the barbiturate group N03AA the class cites: the label's
    # CNS-depressant and prolonged-recovery interactions apply to it
    check = check_interactions(["primidone 250 mg"], molecule="ketamine", route="iv_infusion")
    ids = [f.id for f in check.findings]
    assert "ix-cns-depressants" in ids and "ix-recovery-prolonged" in ids
    # an oral tablet: the IV-incompatibility of injectable barbiturates is not claimed for it
    assert "ix-iv-incompatibility" not in ids
