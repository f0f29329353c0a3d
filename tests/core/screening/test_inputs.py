"""Input validation, the JSON Schema, site-policy files, raw instrument answers, data files."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.screening import (
    input_schema,
    load_knowledge,
    parse_screening_input,
    parse_site_policy,
    screen_document,
)
from ketacare.core.screening.knowledge import build_knowledge

from .conftest import TEST_POLICY, clean_doc

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples" / "screening"

BAD_INPUTS: list[tuple[Any, str]] = [
    ([], "must be a JSON object"),
    ({}, "treatment is required"),
    ({"treatment": {"molecule": "arketamine", "route": "oral"}}, "treatment.molecule"),
    ({"treatment": {"molecule": "esketamine", "route": "iv_infusion"}}, "route for esketamine"),
    ({"treatment": {"molecule": "ketamine", "route": "oral", "setting": "home"}}, "setting"),
    (
        {"treatment": {"molecule": "ketamine", "route": "oral"}, "extra": 1},
        "unknown field(s) extra",
    ),
    (
        {"treatment": {"molecule": "ketamine", "route": "oral"}, "history": {"psychosis": True}},
        "history has unknown field(s) psychosis",
    ),
    (
        {
            "treatment": {"molecule": "ketamine", "route": "oral"},
            "history": {"psychosis_active": "yes"},
        },
        "history.psychosis_active must be true or false",
    ),
    (
        {
            "treatment": {"molecule": "ketamine", "route": "oral"},
            "history": {"hepatic_impairment": "bad"},
        },
        "history.hepatic_impairment",
    ),
    (
        {"treatment": {"molecule": "ketamine", "route": "oral"}, "vitals": {"systolic_mmhg": 900}},
        "vitals.systolic_mmhg 900 is out of range",
    ),
    (
        {
            "treatment": {"molecule": "ketamine", "route": "oral"},
            "vitals": {"systolic_mmhg": 80, "diastolic_mmhg": 90},
        },
        "must be below",
    ),
    (
        {
            "treatment": {"molecule": "ketamine", "route": "oral"},
            "vitals": {"systolic_mmhg": "120"},
        },
        "vitals.systolic_mmhg must be a number",
    ),
    (
        {
            "treatment": {"molecule": "ketamine", "route": "oral"},
            "labs": [{"test": "albumin", "value": 1, "upper_limit_normal": 2}],
        },
        "labs[0].test",
    ),
    (
        {
            "treatment": {"molecule": "ketamine", "route": "oral"},
            "labs": [{"test": "alt", "value": 1, "upper_limit_normal": 0}],
        },
        "upper_limit_normal 0",
    ),
    (
        {"treatment": {"molecule": "ketamine", "route": "oral"}, "pregnancy_status": "maybe"},
        "pregnancy_status",
    ),
    (
        {
            "treatment": {"molecule": "ketamine", "route": "oral"},
            "conditions": [{"code": "X", "system": "SNOMED"}],
        },
        "conditions[0].system",
    ),
    (
        {
            "treatment": {"molecule": "ketamine", "route": "oral"},
            "medications": [{"name": "x", "rxcui": "abc"}],
        },
        "rxcui",
    ),
    (
        {"treatment": {"molecule": "ketamine", "route": "oral"}, "screened_on": "31/01/2025"},
        "not a date",
    ),
    (
        {"treatment": {"molecule": "ketamine", "route": "oral"}, "patient": {"sex": "x"}},
        "patient.sex",
    ),
    (
        {
            "treatment": {"molecule": "ketamine", "route": "oral"},
            "instruments": [{"instrument": "ort", "total": "high"}],
        },
        "instruments[0].total",
    ),
]


@pytest.mark.parametrize(("doc", "fragment"), BAD_INPUTS, ids=[b[1] for b in BAD_INPUTS])
def test_bad_input_is_refused_with_a_named_field(doc: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_screening_input(doc)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_schema_is_json_and_lists_the_vocabulary() -> None:
    schema = json.loads(json.dumps(input_schema()))
    props = schema["properties"]
    assert set(props["history"]["properties"]) == {f.id for f in load_knowledge().findings}
    assert props["treatment"]["properties"]["molecule"]["enum"] == ["ketamine", "esketamine"]
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_examples_use_only_schema_fields(name: str) -> None:
    doc = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    props = input_schema()["properties"]
    assert set(doc) <= set(props)
    for key in ("patient", "treatment", "history", "vitals"):
        if key in doc:
            assert set(doc[key]) <= set(props[key]["properties"])
    parse_screening_input(doc)


def test_schema_and_parser_agree_on_top_level_fields() -> None:
    from ketacare.core.screening.inputs import TOP_LEVEL

    assert set(input_schema()["properties"]) == set(TOP_LEVEL)


# --- site policy files ----------------------------------------------------------------------


def test_site_policy_file() -> None:
    policy = parse_site_policy(
        '[site_policy]\nname = "Clinic A"\nversion = "2025-01"\nscreening_systolic_max_mmhg = 150\n'
    )
    assert policy.get("screening_systolic_max_mmhg") == 150
    assert policy.get("screening_diastolic_max_mmhg") is None
    assert (policy.name, policy.version) == ("Clinic A", "2025-01")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x = 1", "needs a [site_policy] table"),
        ("[site_policy]\nbp_limit = 1", "unknown field(s) bp_limit"),
        ("[site_policy]\nscreening_systolic_max_mmhg = -3", "out of range"),
        ("[site_policy]\nscreening_systolic_max_mmhg = 'high'", "must be a number"),
        ("[site_policy", "not valid TOML"),
    ],
)
def test_bad_site_policy(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=None) as info:
        parse_site_policy(text)
    assert fragment in str(info.value)


def test_no_policy_has_a_default() -> None:
    raw = tomllib.loads(
        resources.files("ketacare.core.screening").joinpath("data", "rules.toml").read_text("utf-8")
    )
    assert all(set(p) == {"key", "description", "unit", "when_unset"} for p in raw["policy"])


# --- raw instrument answers ------------------------------------------------------------------


def test_raw_answers_are_scored_by_the_instruments_package() -> None:
    pytest.importorskip("ketacare.core.instruments")
    doc = clean_doc()
    doc["instruments"] = [
        {"instrument": "phq9", "answers": [0, 0, 0, 0, 0, 0, 0, 0, 1]},
        {"instrument": "auditc", "answers": [1, 1, 1]},
        {"instrument": "ort", "total": 0},
    ]
    decision = screen_document(doc, policy=TEST_POLICY)
    fired = {r.rule for r in decision.reasons}
    assert {"phq9-item9-positive", "auditc-positive"} <= fired  # AUDIT-C 3 in a woman
    assert [m.item for m in decision.missing] == ["instrument:cssrs_screener"]
    scored = {i.instrument: i for i in decision.instruments}
    assert scored["phq9"].total == 1 and "phq9_item9_positive" in scored["phq9"].flags


def test_raw_answers_with_a_stub_scorer() -> None:
    class Result:
        instrument = "dast10"
        total = 4
        band = "moderate"
        flags = ()
        version = "x"

    calls: list[tuple[str, Any, Any]] = []

    def scorer(iid: str, answers: Any, *, sex: str | None = None) -> Result:
        calls.append((iid, answers, sex))
        return Result()

    doc = clean_doc()
    doc["instruments"] = [{"instrument": "dast10", "answers": [True] * 10}]
    data = parse_screening_input(doc, scorer=scorer)
    assert calls == [("dast10", [True] * 10, "F")]
    assert data.instruments[0].total == 4


def test_invalid_raw_answers_are_refused() -> None:
    pytest.importorskip("ketacare.core.instruments")
    doc = clean_doc()
    doc["instruments"] = [{"instrument": "phq9", "answers": [9, 9, 9, 9, 9, 9, 9, 9, 9]}]
    with pytest.raises(InvalidInput):
        screen_document(doc)


# --- data-file validation ------------------------------------------------------------------------


def _raw(name: str) -> dict[str, Any]:
    text = resources.files("ketacare.core.screening").joinpath("data", name).read_text("utf-8")
    return tomllib.loads(text)


def _files() -> dict[str, dict[str, Any]]:
    return {n: _raw(f"{n}.toml") for n in ("rules", "interactions", "medications", "codes")}


def _build(files: dict[str, dict[str, Any]]) -> None:
    build_knowledge(files["rules"], files["interactions"], files["medications"], files["codes"])


@pytest.mark.parametrize(
    ("file", "mutate", "fragment"),
    [
        ("rules", lambda d: d["rule"][0].pop("source"), ".source': is missing"),
        ("rules", lambda d: d["rule"][0].update(source="nowhere"), "unknown source 'nowhere'"),
        (
            "rules",
            lambda d: d["rule"][0].update(severity="fatal"),
            ".severity': 'fatal' is not",
        ),
        (
            "rules",
            lambda d: d["rule"][0].update(when={"finding": "x"}),
            "when.finding': 'x' is not",
        ),
        (
            "rules",
            lambda d: d["rule"][0].update(when={"colour": 1}),
            "when.colour': unknown field",
        ),
        (
            "rules",
            lambda d: d["rule"][0].update(applies_to=["lsd"]),
            "applies_to': must list",
        ),
        ("rules", lambda d: d["rule"].append(dict(d["rule"][0])), "duplicate id"),
        ("rules", lambda d: d["policy"][0].update(default=140), "no default value"),
        ("rules", lambda d: d["rule"][0].update(safeguards=["prayer"]), "unknown safeguard"),
        ("interactions", lambda d: d["interaction"][0].update(classes=["nope"]), "unknown class"),
        ("medications", lambda d: d["medication"][0].update(classes=["nope"]), "unknown class"),
        ("codes", lambda d: d["code"][0].update(finding="nope"), "unknown boolean finding"),
        ("codes", lambda d: d.pop("codes"), "field 'codes': is missing"),
    ],
)
def test_broken_data_files_are_refused(file: str, mutate: Any, fragment: str) -> None:
    files = _files()
    mutate(files[file])
    with pytest.raises(DataFileError) as info:
        _build(files)
    assert fragment in str(info.value)
    assert f"{file}.toml" in str(info.value)


def test_shipped_data_files_are_valid_and_sourced() -> None:
    kb = load_knowledge()
    assert all(r.source.strip() for r in kb.rules)
    assert all(i.source.strip() for i in kb.interactions)
    assert set(kb.data_versions) == {"rules", "interactions", "medications", "codes", "drugs"}
