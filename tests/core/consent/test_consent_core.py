"""The consent core: programs cover every protocol, EXAMPLE templates name the risks with
sources, teach-back checking, and whether a consent is in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import pytest

from ketacare.core.consent import (
    Published,
    Signed,
    example_programs,
    example_template,
    parse_template,
    program_for,
    programs,
    standing,
    teach_back_errors,
    template_to_dict,
)
from ketacare.core.errors import DataFileError
from ketacare.core.protocols import load_library

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

#: the risks the treatment templates must name (the issue's list), each with a source
TREATMENT_RISKS = {
    "dissociation",
    "blood_pressure",
    "bladder",
    "liver",
    "misuse",
    "compounded_home_use",
    "off_label",
    "alternatives",
}


def test_every_shipped_protocol_has_a_consent_program() -> None:
    library = load_library()
    for protocol in (library.get(protocol_id=i) for i in library.ids):
        assert program_for(molecule=protocol.molecule, route=protocol.route) is not None, (
            protocol.id
        )


def test_the_programs_are_the_five_of_the_clinic() -> None:
    assert list(programs()) == [
        "iv_racemic",
        "racemic_other",
        "esketamine",
        "psychotherapy",
        "research",
    ]
    assert set(example_programs()) == set(programs())


@pytest.mark.parametrize("program", ["iv_racemic", "racemic_other", "esketamine"])
def test_treatment_examples_name_every_listed_risk_with_sources(program: str) -> None:
    t = example_template(program)
    assert t.example and "EXAMPLE" in t.notice and "EXAMPLE" in t.title
    assert TREATMENT_RISKS <= {r.id for r in t.risks}
    for risk in t.risks:
        assert risk.sources and all(key in t.sources for key in risk.sources)
    assert t.sources["fda-2023-compounded"].citation.find("10 October 2023") > 0


def test_esketamine_example_names_sedation_and_the_rems() -> None:
    t = example_template("esketamine")
    sedation = next(r for r in t.risks if r.id == "sedation")
    assert set(sedation.sources) == {"spravato-pi", "fda-rems-spravato"}


@pytest.mark.parametrize("program", ["iv_racemic", "racemic_other", "esketamine", "research"])
def test_a_template_round_trips_through_its_stored_form(program: str) -> None:
    t = example_template(program)
    assert parse_template(template_to_dict(t), name="stored") == t


def _doc() -> dict[str, Any]:
    return template_to_dict(example_template("iv_racemic"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["risk"][0].update(sources=[]), "must be a non-empty list of source keys"),
        (lambda d: d["risk"][0].update(sources=["x-1999"]), "unknown source 'x-1999'"),
        (lambda d: d["teach_back"][0].update(answer=7), "must be the index of a choice"),
        (lambda d: d["teach_back"][0].update(choices=["only"]), "at least two choices"),
        (lambda d: d["template"].update(program="reiki"), "'reiki' is not one of"),
        (lambda d: d["template"].pop("notice"), "an example must say it is one"),
    ],
)
def test_a_bad_template_is_refused_naming_the_field(change: Any, message: str) -> None:
    doc = _doc()
    change(doc)
    with pytest.raises(DataFileError, match=message):
        parse_template(doc, name="t")


def test_teach_back_lists_the_unanswered_and_the_wrong() -> None:
    t = example_template("iv_racemic")
    # ride_home: choice 1 is right; bladder_symptoms: 1; stop_any_time: 0 (read from the file)
    assert teach_back_errors(t, {"ride_home": 1, "bladder_symptoms": 1, "stop_any_time": 0}) == []
    assert teach_back_errors(t, {"ride_home": 0, "stop_any_time": 0}) == [
        "ride_home",
        "bladder_symptoms",
    ]


def _signed(
    i: int, version: int, days: int, *, counter: bool = True, out: int | None = None
) -> Signed:
    at = T0 + timedelta(days=days)
    return Signed(
        id=i,
        program="iv_racemic",
        version=version,
        signed_at=at,
        countersigned_at=at + timedelta(minutes=5) if counter else None,
        withdrawn_at=at + timedelta(days=out) if out is not None else None,
    )


def _v(version: int, reconsent: bool) -> Published:
    return Published(
        program="iv_racemic", version=version, published_at=T0, reconsent_required=reconsent
    )


def test_standing() -> None:
    assert not standing(program="iv_racemic", consents=[], published=[]).ok
    pending = standing(
        program="iv_racemic", consents=[_signed(1, 1, 0, counter=False)], published=[]
    )
    assert not pending.ok and "awaits its countersignature" in (pending.problem or "")
    ok = standing(program="iv_racemic", consents=[_signed(1, 1, 0)], published=[_v(1, False)])
    assert ok.ok and ok.consent is not None and ok.consent.id == 1
    # a later version without re-consent leaves it in force; one with re-consent does not
    assert standing(program="iv_racemic", consents=[_signed(1, 1, 0)], published=[_v(2, False)]).ok
    due = standing(
        program="iv_racemic", consents=[_signed(1, 1, 0)], published=[_v(2, False), _v(3, True)]
    )
    assert due.reconsent_due and "version 3" in (due.problem or "")
    # signing version 3 settles it
    assert standing(
        program="iv_racemic",
        consents=[_signed(1, 1, 0), _signed(2, 3, 9)],
        published=[_v(3, True)],
    ).ok
    # the newest consent withdrawn: none holds, even with an older one on record
    out = standing(
        program="iv_racemic",
        consents=[_signed(1, 1, 0), _signed(2, 1, 9, out=3)],
        published=[],
    )
    assert out.withdrawn and "withdrew consent" in (out.problem or "")
    # another program's consent counts for nothing here
    other = Signed(id=5, program="esketamine", version=1, signed_at=T0, countersigned_at=T0)
    assert not standing(program="iv_racemic", consents=[other], published=[]).ok


def test_programs_file_is_the_shipped_one() -> None:
    assert (files("ketacare.core.consent") / "data" / "programs.toml").is_file()
