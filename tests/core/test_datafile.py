"""The one data-file reader and the one Source: every loader's messages take one form."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import DataFileError
from ketacare.core.sources import Source


def _reader(table: dict[str, object]) -> Reader:
    return Reader(kind="test", path="t.toml", table=table)


@pytest.mark.parametrize(
    ("table", "read", "message"),
    [
        ({}, lambda r: r.text("id"), "test file t.toml: field 'id': is missing"),
        ({"id": " "}, lambda r: r.text("id"), "field 'id': must be a non-empty string, got ' '"),
        ({"x": 1}, lambda r: r.only(("id",)), "field 'x': unknown field (allowed: id)"),
        ({"n": 0}, lambda r: r.number("n", positive=True), "must be a positive number, got 0"),
        ({"n": True}, lambda r: r.number("n"), "field 'n': must be a finite number, got True"),
        ({"n": -1}, lambda r: r.number("n", minimum=0), "must be a number >= 0, got -1"),
        ({"n": 1.5}, lambda r: r.integer("n", minimum=1), "must be an integer >= 1, got 1.5"),
        ({"b": "yes"}, lambda r: r.boolean("b"), "field 'b': must be true or false, got 'yes'"),
        ({"k": "c"}, lambda r: r.choice("k", ("a", "b")), "field 'k': 'c' is not one of a, b"),
        ({"s": ["a", 1]}, lambda r: r.strings("s"), "field 's': must be a list of non-empty"),
        ({"t": 1}, lambda r: r.sub("t"), "field 't': must be a table"),
        ({"t": {"u": {}}}, lambda r: r.sub("t").sub("u").text("v"), "field 't.u.v': is missing"),
        (
            {"r": [{"id": "a"}, {"id": "b", "x": 1}]},
            lambda r: [e.only(("id",)) for e in r.tables("r", id_key="id")],
            "field 'r[b].x': unknown field",
        ),
        (
            {"r": {}},
            lambda r: r.tables("r"),
            "field 'r': must be an array of tables, written [[r]]",
        ),
        ({"i": [5, 1]}, lambda r: r.interval("i"), "field 'i': low 5 is above high 1"),
        (
            {"src": "x"},
            lambda r: r.source_ref("src", {"a", "b"}),
            "field 'src': unknown source 'x' (known: a, b)",
        ),
    ],
)
def test_each_problem_names_the_file_the_field_and_what_is_allowed(
    table: dict[str, object], read: object, message: str
) -> None:
    with pytest.raises(DataFileError) as raised:
        read(_reader(table))  # type: ignore[operator]
    assert str(raised.value).startswith("test file t.toml: ")
    assert message in str(raised.value)


def test_defaults_apply_only_to_absent_fields() -> None:
    r = _reader({"a": "x"})
    assert r.text("b", default="") == "" and r.text("a", default="y") == "x"
    assert r.opt_number("n") is None and r.boolean("f", default=False) is False


def test_sources_from_an_array_and_from_keyed_tables() -> None:
    listed = _reader(
        {"sources": [{"key": "s1", "citation": "C one", "url": "https://a.org", "statement": "q"}]}
    ).sources(
        "sources", required={"key", "citation", "url", "statement"}, rename={"statement": "quote"}
    )
    assert listed == {"s1": Source(key="s1", citation="C one", url="https://a.org", quote="q")}
    assert listed["s1"].statement == "q" and listed["s1"].text == "C one https://a.org"
    keyed = _reader(
        {
            "sources": {
                "dom": {
                    "authors": "Domino EF",
                    "year": 1984,
                    "title": "T",
                    "journal": "J",
                    "doi": "10.1/x",
                    "verified": False,
                }
            }
        }
    ).sources(
        "sources",
        required={"authors", "year", "title", "journal", "verified"},
        optional={"doi"},
        keyed=True,
    )
    # the citation is composed from the structured parts: authors (year). title. journal. doi
    assert keyed["dom"].citation == "Domino EF (1984). T. J. doi:10.1/x"
    assert keyed["dom"].verified is False and keyed["dom"].year == 1984


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ([], "field 'sources': must not be empty"),
        (
            [{"key": "a", "citation": "c"}, {"key": "a", "citation": "d"}],
            "field 'sources[a].key': duplicate source key 'a'",
        ),
        ([{"key": "a"}], "field 'sources[a].citation': is missing"),
        ([{"key": "a", "citation": "c", "year": 1800}], "must be an integer >= 1900, got 1800"),
    ],
)
def test_bad_sources_are_refused(sources: list[dict[str, object]], message: str) -> None:
    with pytest.raises(DataFileError) as raised:
        _reader({"sources": sources}).sources(
            "sources", required={"key", "citation"}, optional={"year"}
        )
    assert message in str(raised.value)


def test_reading_a_file(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text("a = 1\n", encoding="utf-8")
    assert read_toml(path, kind="test") == {"a": 1}
    path.write_text("a = \n", encoding="utf-8")
    with pytest.raises(DataFileError, match=f"test file {path}: is not valid TOML"):
        read_toml(path, kind="test")
    with pytest.raises(DataFileError, match="test file absent.toml: cannot be read"):
        read_toml(tmp_path / "absent.toml", kind="test", name="absent.toml")
