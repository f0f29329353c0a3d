"""Data files: every shipped file validates, and broken files fail with clear messages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ketacare.core.errors import DataFileError
from ketacare.core.instruments import (
    get_instrument,
    list_instruments,
    load_instrument_file,
    load_instrument_text,
    load_item_texts,
    parse_condition,
    score,
    with_item_texts,
)
from ketacare.core.instruments.loader import DATA_DIR

MINIMAL = """
id = "demo"
version = "1.0.0"
title = "Demo"
short_title = "Demo"
description = "d"
[use]
self_report = true
screenings = []
[licence]
case = "full_text"
holder = "h"
terms = "t"
[[sources]]
citation = "c"
url = "https://example.org"
[[items]]
id = "a"
label = "A"
kind = "choice"
options = [{ value = 0, label = "no" }, { value = 1, label = "yes" }]
[scoring]
method = "sum"
"""


def test_minimal_file_loads() -> None:
    inst = load_instrument_text(MINIMAL)
    assert inst.id == "demo" and inst.total_range() == (0, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('case = "full_text"', 'case = "maybe"'),
         "'licence.case': 'maybe' is not one of"),
        (lambda t: t.replace('kind = "choice"', 'kind = "slider"'),
         "'items[a].kind': 'slider' is not one of"),
        (lambda t: t.replace("{ value = 1,", "{ value = 0,"), "values must be unique"),
        (lambda t: t.replace('method = "sum"', 'method = "magic"'),
         "'scoring.method': 'magic' is not one of"),
        (lambda t: t.replace('id = "a"', 'id = "A b"'), "item id 'A b' must be lowercase"),
        (lambda t: t + "\nfoo = 1\n", "unknown field"),
        (lambda t: t.replace('[[sources]]\ncitation = "c"\nurl = "https://example.org"\n', ""),
         "field 'sources': is missing"),
        (lambda t: t + '[[bands]]\nid="x"\nlabel="x"\nmin=0\nmax=1\n'
                       '[[bands]]\nid="y"\nlabel="y"\nmin=1\nmax=1\n', "band y overlaps band x"),
        (lambda t: t + '[[bands]]\nid="x"\nlabel="x"\nmin=2\nmax=1\n', "min 2 is above max 1"),
        (lambda t: t + '[[flags]]\nid="f"\nmessage="m"\nwhen="zz > 1"\n', "unknown name(s) zz"),
        (lambda t: t + '[[flags]]\nid="f"\nmessage="m"\nwhen="a >"\n', "ends too early"),
        (lambda t: t + '[[subscales]]\nid="s"\nlabel="s"\nitems=["b"]\n', "unknown item(s) b"),
        (lambda t: t.replace('kind = "choice"', 'kind = "choice"\nloinc = "12-34"'),
         "not a LOINC code"),
        (lambda t: t.replace('case = "full_text"', 'case = "labels_only"').replace(
            'label = "A"', 'label = "A"\ntext = "Licensed"'), "licence case is labels_only"),
        (lambda t: t.replace('kind = "choice"', 'kind = "choice"\npoints_by_sex = {F = 1, M = 2}'),
         "field 'items[a].points_by_sex': must be"),
        (lambda t: t.replace("[scoring]", "[scoring]\nmissing = \"prorate\""), "only none_allowed"),
        (lambda t: t + "[[subscales]]\nid=\"a\"\nlabel=\"s\"\nitems=[\"a\"]\n", "must be unique"),
        (lambda t: t.replace('id = "demo"', 'id = "demo'), "not valid TOML"),
        (lambda t: t.replace("[use]\nself_report = true\nscreenings = []\n", ""),
         "field 'use': is missing"),
        (lambda t: t.replace("self_report = true\n", ""), "field 'use.self_report': is missing"),
        (lambda t: t.replace("self_report = true\n", 'self_report = "yes"\n'),
         "field 'use.self_report': must be true (a patient fills it in) or false"),
        (lambda t: t.replace("screenings = []\n", ""), "field 'use.screenings': is missing"),
        (lambda t: t.replace("screenings = []", 'screenings = ["intake"]'),
         "unknown screening(s) intake: allowed eligibility"),
        (lambda t: t.replace("screenings = []", 'screenings = []\n[[use.measures]]\nid = "m"\n'
                             'field = "zz"\nlabel = "M"\nshort = "m"\norder = 1'),
         "field 'use.measures[0].field': 'zz' must be total or a subscale of demo"),
    ],
)  # fmt: skip
def test_broken_files_fail_with_a_clear_message(change: object, message: str) -> None:
    with pytest.raises(DataFileError) as err:
        load_instrument_text(change(MINIMAL), "demo.toml")  # type: ignore[operator]
    assert message in str(err.value)
    assert str(err.value).startswith("instrument file demo.toml: ")


def test_file_name_must_match_id(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    with pytest.raises(DataFileError, match="id 'demo' must match the file name"):
        load_instrument_file(path)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="instrument file missing.toml: cannot be read"):
        load_instrument_file(tmp_path / "missing.toml")


@pytest.mark.parametrize("inst", list_instruments(), ids=lambda i: i.id)
def test_every_shipped_file_is_sourced_and_consistent(inst: object) -> None:
    from ketacare.core.instruments import Instrument

    assert isinstance(inst, Instrument)
    assert inst.sources and all(s.url.startswith("http") for s in inst.sources)
    assert inst.licence.case in ("full_text", "labels_only")
    if inst.licence.case == "labels_only":
        assert all(item.text is None for item in inst.items)
    assert load_instrument_file(DATA_DIR / f"{inst.id}.toml") == inst


# LOINC codes confirmed in a source read (docs/instruments.md); nothing else may ship.
CONFIRMED_LOINC = {
    "phq9": {"44249-1", "44261-6", "44250-9", "44255-8", "44259-0", "44254-1", "44251-7",
             "44258-2", "44252-5", "44253-3", "44260-8"},
    "gad7": {"70274-6", "69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8",
             "69736-7"},
    "nrs_pain": {"72514-3"},
    "bpi_sf": {"77565-0"},
    "dast10": {"82666-9", "82667-7"},
    "auditc": {"72109-2", "75626-2", "68519-8", "68520-6"},
}  # fmt: skip


@pytest.mark.parametrize("inst", list_instruments(), ids=lambda i: i.id)
def test_only_confirmed_loinc_codes_ship(inst: object) -> None:
    from ketacare.core.instruments import Instrument

    assert isinstance(inst, Instrument)
    codes = {inst.loinc_panel, inst.loinc_total} | {i.loinc for i in inst.items}
    codes |= {s.loinc for s in inst.subscales}
    codes.discard(None)
    assert codes == CONFIRMED_LOINC.get(inst.id, set())


def test_core_instruments_import_no_shell_library() -> None:
    forbidden = {"fastapi", "sqlalchemy", "typer", "jinja2", "starlette", "ketacare.fhir"}
    for path in Path(DATA_DIR.parent).glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in forbidden), path


# --- condition language ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "context", "expected"),
    [
        ("a >= 7 and b >= 5 or a >= 4 and a <= 6 and b >= 9", {"a": 5, "b": 9}, True),
        ("a >= 7 and b >= 5 or a >= 4 and a <= 6 and b >= 9", {"a": 3, "b": 12}, False),
        ("(a == 1 or b == 1) and c == true", {"a": 1, "b": 0, "c": True}, True),
        ("(a == 1 or b == 1) and c == true", {"a": 1, "b": 0, "c": None}, False),
        ('band == "high"', {"band": "high"}, True),
        ('band != "high"', {"band": None}, False),
        ("a == true", {"a": 1}, False),
        ("a < 2.5", {"a": 2}, True),
    ],
)
def test_conditions(text: str, context: dict[str, object], expected: bool) -> None:
    assert parse_condition(text).evaluate(context) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", ["a", "a = 1", "a > 1 and", "(a > 1", "a > 1 b", "not a > 1", "a > ?"]
)
def test_bad_conditions_are_refused(bad: str) -> None:
    from ketacare.core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        parse_condition(bad)


# --- licensed item texts ------------------------------------------------------------------


def test_clinic_can_load_licensed_texts(tmp_path: Path) -> None:
    path = tmp_path / "bpi.toml"
    path.write_text(
        'instrument = "bpi_sf"\nlicence_reference = "MDACC-2025-001"\n'
        '[texts]\nworst = "Licensed wording for worst pain"\n',
        encoding="utf-8",
    )
    inst = load_item_texts(path)
    assert inst.item("worst").text == "Licensed wording for worst pain"
    assert inst.item("least").text is None
    assert inst.texts_loaded_under == "MDACC-2025-001"
    assert get_instrument("bpi_sf").item("worst").text is None  # library copy untouched
    # scoring does not depend on texts
    assert score("bpi_sf", [1] * 11).subscores == {"severity": 1.0, "interference": 1.0}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('instrument = "bpi_sf"\n[texts]\nworst = "x"\n', "licence_reference"),
        (
            'instrument = "bpi_sf"\nlicence_reference = "L"\n[texts]\nfoo = "x"\n',
            "unknown item 'foo'",
        ),
        ('instrument = "nope"\nlicence_reference = "L"\n[texts]\n', "unknown instrument 'nope'"),
        ('instrument = "pcs"\nlicence_reference = "L"\n[texts]\nq1 = ""\n', "must not be empty"),
        ('instrument = "pcs"\nlicence_reference = "L"\nextra = 1\n[texts]\n', "unknown field"),
    ],
)
def test_bad_licensed_text_files(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "texts.toml"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(DataFileError, match=message):
        load_item_texts(path)


def test_with_item_texts_needs_a_licence_reference() -> None:
    with pytest.raises(DataFileError, match="licence_reference must not be empty"):
        with_item_texts(get_instrument("pcs"), {"q1": "x"}, " ")
