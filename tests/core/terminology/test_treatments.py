"""The molecule/route vocabulary: one file, agreeing with protocols, screening and models."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from ketacare.core.errors import DataFileError, UnknownItem
from ketacare.core.pharmacology import list_models
from ketacare.core.pharmacology.models import KNOWN_ROUTES
from ketacare.core.protocols import load_library
from ketacare.core.protocols import model as protocols
from ketacare.core.screening import model as screening
from ketacare.core.screening import parse_screening_input
from ketacare.core.terminology.treatments import (
    build_treatments,
    engine_route,
    engine_treatment,
    molecule_label,
    route_words,
    screened_treatment,
    treatment_vocabulary,
)


def _doc() -> dict[str, Any]:
    text = resources.files("ketacare.core.terminology").joinpath("treatments.toml").read_text()
    return tomllib.loads(text)


RK, EK = "racemic ketamine", "esketamine"


@pytest.mark.parametrize(
    ("molecule", "route", "screened", "engine"),
    [
        ("racemic_ketamine", "iv_infusion", ("ketamine", "iv_infusion"), (RK, "iv_infusion")),
        ("racemic_ketamine", "iv_bolus", ("ketamine", "iv_bolus"), (RK, "iv_bolus")),
        ("racemic_ketamine", "im", ("ketamine", "intramuscular"), (RK, "im")),
        ("racemic_ketamine", "oral", ("ketamine", "oral"), (RK, "oral")),
        ("racemic_ketamine", "sublingual", ("ketamine", "sublingual"), (RK, "sublingual")),
        ("racemic_ketamine", "intranasal", ("ketamine", "intranasal"), (RK, "intranasal")),
        ("esketamine", "intranasal_esketamine", ("esketamine", "intranasal"), (EK, "intranasal")),
    ],
)
def test_a_protocol_treatment_for_the_screening_and_the_models(
    molecule: str, route: str, screened: tuple[str, str], engine: tuple[str, str]
) -> None:
    assert screened_treatment(molecule, route) == screened
    assert engine_treatment(molecule, route) == engine
    assert engine_route(route) == engine[1]


@pytest.mark.parametrize(
    ("route", "words"),
    [
        ("iv_infusion", "IV infusion"),
        ("iv_bolus", "IV bolus"),
        ("intramuscular", "intramuscular injection"),
        ("intranasal", "nasal spray"),
        ("oral", "mouth"),
        ("sublingual", "sublingual tablet"),
    ],
)
def test_screening_routes_in_clinical_words(route: str, words: str) -> None:
    assert route_words(route) == words


def test_molecule_labels() -> None:
    assert molecule_label("racemic_ketamine") == "racemic ketamine"
    assert molecule_label("esketamine") == "esketamine"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: screened_treatment("ketamine", "iv_infusion"),
            "unknown molecule 'ketamine': known are esketamine, racemic_ketamine",
        ),
        (
            lambda: screened_treatment("esketamine", "rectal"),
            "unknown route 'rectal': known are im, intranasal, intranasal_esketamine, "
            "iv_bolus, iv_infusion, oral, sublingual",
        ),
        (
            lambda: engine_route("intramuscular"),
            "unknown route 'intramuscular': known are im, intranasal, intranasal_esketamine, "
            "iv_bolus, iv_infusion, oral, sublingual",
        ),
        (
            lambda: route_words("im"),
            "unknown screening route 'im': known are intramuscular, intranasal, iv_bolus, "
            "iv_infusion, oral, sublingual",
        ),
        (lambda: molecule_label("arketamine"), "unknown molecule 'arketamine'"),
    ],
)
def test_an_unknown_name_is_refused_never_defaulted(call: Any, message: str) -> None:
    with pytest.raises(UnknownItem) as caught:
        call()
    assert str(caught.value).startswith(message)


def test_the_vocabulary_holds_exactly_the_protocol_names() -> None:
    vocab = treatment_vocabulary()
    assert set(vocab.molecules) == set(protocols.MOLECULES)
    assert set(vocab.routes) == set(protocols.ROUTES)


def test_the_screening_names_are_the_screenings() -> None:
    vocab = treatment_vocabulary()
    assert {m.screening for m in vocab.molecules.values()} == set(screening.MOLECULES)
    assert set(vocab.screening_routes) == {r for rs in screening.ROUTES.values() for r in rs}


def test_the_engine_names_are_the_models() -> None:
    vocab = treatment_vocabulary()
    assert {m.engine for m in vocab.molecules.values()} <= {m.molecule for m in list_models()}
    assert {r.engine for r in vocab.routes.values()} <= set(KNOWN_ROUTES)


#: Protocols whose treatment the screening cannot be made for: its esketamine rules are the
#: nasal spray's (Spravato label), and crps-continuous gives S(+)-ketamine by IV infusion.
#: Such a protocol is refused when a plan is drafted (fail closed) until the screening
#: covers it.
NOT_SCREENABLE = {"crps-continuous"}


@pytest.mark.parametrize("protocol", load_library().protocols, ids=lambda p: p.id)
def test_every_shipped_protocol_translates_to_a_valid_screening(protocol: Any) -> None:
    molecule, route = screened_treatment(protocol.molecule, protocol.route)
    doc = {"treatment": {"molecule": molecule, "route": route}}
    if protocol.id in NOT_SCREENABLE:
        with pytest.raises(UnknownItem, match=f"route for {molecule} '{route}'"):
            parse_screening_input(doc)
    else:
        assert parse_screening_input(doc).treatment.route == route


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("treatments"), "missing [treatments] table"),
        (lambda d: d["molecule"].append(dict(d["molecule"][0])),
         "id 'racemic_ketamine' is given twice"),
        (lambda d: d["route"][0].pop("engine"), "route[0]: 'engine' must be a non-empty string"),
        (lambda d: d["route"][0].update(colour="red"), "unknown field(s) colour"),
        (lambda d: d["route"][0].update(screening="rectal"), "screening route 'rectal' is not"),
        (lambda d: d.pop("screening_route"), "give at least one [[screening_route]]"),
    ],
)  # fmt: skip
def test_a_broken_vocabulary_is_refused_by_name(change: Any, message: str) -> None:
    doc = _doc()
    change(doc)
    with pytest.raises(DataFileError) as caught:
        build_treatments(doc)
    assert message in str(caught.value)
    assert str(caught.value).startswith("terminology data file treatments.toml")
