"""The definition library: sourced values and validation on load."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ketacare.core.errors import DataFileError, OutOfRange, UnknownItem
from ketacare.core.outcomes import BoosterRule, load_definitions, parse_definitions

# The numbers as published (see docs/outcomes.md): IMMPACT >=30% / >=50% pain
# reduction; PHQ-9 response >=50% and remission <5, both for an initial PHQ-9 > 9
# (MN Community Measurement NQF 1885 / 0710); futility after 3 infusions (Sanacora 2017).
PUBLISHED = {
    "pain-30": ("nrs_pain", "response", "percent_reduction", 30.0, None),
    "pain-50": ("nrs_pain", "response", "percent_reduction", 50.0, None),
    "phq9-response": ("phq9", "response", "percent_reduction", 50.0, 9.0),
    "phq9-remission": ("phq9", "remission", "score_below", 5.0, 9.0),
}


def test_shipped_definitions_carry_the_published_numbers():
    lib = load_definitions()
    got = {
        d.id: (d.measure, d.role, d.kind, d.threshold, d.baseline_above) for d in lib.definitions
    }
    assert got == PUBLISHED
    (rule,) = lib.futility_rules
    assert (rule.definition_id, rule.sessions) == ("phq9-response", 3)


def test_every_definition_and_rule_has_a_source():
    lib = load_definitions()
    for item in (*lib.definitions, *lib.futility_rules):
        assert item.sources
        for source in item.sources:
            assert source.citation and source.url.startswith("http") and source.statement


def test_dworkin_doi():
    source = load_definitions().get(definition_id="pain-30").sources[0]
    assert source.doi == "10.1016/j.jpain.2007.09.005"


def test_unknown_definition():
    with pytest.raises(UnknownItem, match="pain-30"):
        load_definitions().get(definition_id="pain-40")


@pytest.mark.parametrize("baseline", range(1, 11))
def test_exact_thirty_percent_counts_on_every_nrs_baseline(baseline):
    # by hand: a reduction r meets ">= 30%" iff 10 * r >= 3 * baseline
    d = load_definitions().get(definition_id="pain-30")
    for value in range(0, 11):
        expected = 10 * (baseline - value) >= 3 * baseline
        assert bool(d.met([baseline], [value])[0]) is expected, (baseline, value)


def test_phq9_edges():
    lib = load_definitions()
    response = lib.get(definition_id="phq9-response")
    remission = lib.get(definition_id="phq9-remission")
    # baseline 10 (eligible): 5 is exactly 50% -> response; 6 is not
    assert response.met([10, 10], [5, 6]).tolist() == [True, False]
    # remission is strictly below 5
    assert remission.met([20, 20], [4, 5]).tolist() == [True, False]
    # a baseline of 9 is outside the definitions' population
    assert response.met([9], [0]).tolist() == [False]
    assert remission.met([9], [0]).tolist() == [False]


def test_scale_is_enforced():
    with pytest.raises(OutOfRange, match="0 to 27"):
        load_definitions().get(definition_id="phq9-response").check_values([28])


def _file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "x.toml").write_text(text, encoding="utf-8")
    return tmp_path


GOOD = """
schema = 1
[[sources]]
key = "s"
citation = "c"
url = "https://example.org"
read = "abstract"
statement = "says so"
[[definitions]]
id = "d-1"
measure = "nrs_pain"
role = "response"
kind = "percent_reduction"
threshold = 30
scale = [0, 10]
label = "l"
short = "s"
sources = ["s"]
"""


def test_a_clinic_directory_loads(tmp_path):
    lib = load_definitions(directory=_file(tmp_path, GOOD))
    assert [d.id for d in lib.definitions] == ["d-1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('sources = ["s"]', 'sources = ["nope"]'), "unknown source"),
        (('sources = ["s"]', "sources = []"), "non-empty list"),
        (('kind = "percent_reduction"', 'kind = "ratio"'), "kind"),
        (("threshold = 30", "threshold = 130"), "threshold"),
        (("threshold = 30", "threshold = -1"), "threshold"),
        (("scale = [0, 10]", "scale = [10, 0]"), "scale"),
        (('role = "response"', 'role = "cure"'), "role"),
        (('label = "l"', 'label = "l"\ncolour = "red"'), "unknown field"),
        (("schema = 1", "schema = 2"), "schema"),
        (('statement = "says so"', ""), "statement"),
    ],
    ids=repr,
)
def test_bad_files_are_refused(tmp_path, change, message):
    with pytest.raises(DataFileError, match=message):
        load_definitions(directory=_file(tmp_path, GOOD.replace(*change)))


def test_futility_rule_must_name_a_response_definition(tmp_path):
    text = GOOD + '\n[[futility_rules]]\nid = "f-1"\ndefinition = "d-2"\nsessions = 3\n'
    text += 'scope = "x"\ntext = "t"\nsources = ["s"]\n'
    with pytest.raises(DataFileError, match="unknown definition"):
        load_definitions(directory=_file(tmp_path, text))


def test_parse_refuses_invalid_toml(tmp_path):
    with pytest.raises(DataFileError, match="not valid TOML"):
        load_definitions(directory=_file(tmp_path, "schema = = 1"))


def test_shipped_files_parse_one_by_one():
    root = Path(__file__).parents[3] / "src/ketacare/core/outcomes/data"
    for path in sorted(root.glob("*.toml")):
        parse_definitions(tomllib.loads(path.read_text(encoding="utf-8")), path=path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "score_at_or_above", "threshold": float("nan"), "set_by": "p"},
        {"kind": "score_at_or_above", "threshold": -0.5, "set_by": "p"},
        {"kind": "score_at_or_above", "threshold": 6, "set_by": "  "},
        {"kind": "score_at_or_above", "threshold": True, "set_by": "p"},
    ],
    ids=repr,
)
def test_booster_rule_refuses_bad_values(kwargs):
    with pytest.raises(OutOfRange):
        BoosterRule(definition_id="pain-30", **kwargs)


def test_booster_rule_refuses_unknown_kind():
    with pytest.raises(UnknownItem):
        BoosterRule(definition_id="pain-30", kind="rise", threshold=1, set_by="p")  # type: ignore[arg-type]
