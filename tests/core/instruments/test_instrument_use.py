"""Every instrument file says how the clinic uses it, and the other data files agree with it.

The files are read here as plain TOML (not through the loader), so a file that leaves a field
out fails here by name even if the loader were to give it a default. The expected lists are
the ones the clinic has used since the clinical-safety review (patients may fill PHQ-9,
GAD-7, pain NRS, BPI-SF, PCS, PGIC, AUDIT-C and DAST-10 themselves; the screening reads ORT,
DAST-10, AUDIT-C, PHQ-9, the C-SSRS screener and GAD-7; the outcome panel shows pain,
pain interference, depression, anxiety and global impression of change, in that order).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ketacare.core.instruments import (
    get_instrument,
    outcome_measures,
    screening_instrument_ids,
    self_report_ids,
)
from ketacare.core.instruments.loader import DATA_DIR
from ketacare.core.instruments.model import SCREENINGS

CORE = DATA_DIR.parents[1]
FILES = sorted(DATA_DIR.glob("*.toml"))


def _read(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_instrument_file_declares_how_it_is_used(path: Path) -> None:
    doc = _read(path)
    assert isinstance(doc.get("title"), str) and doc["title"].strip(), "title (display label)"
    assert isinstance(doc.get("short_title"), str) and doc["short_title"].strip(), "short_title"
    use = doc.get("use")
    assert isinstance(use, dict), f"{path.name} has no [use] table"
    assert isinstance(use.get("self_report"), bool), f"{path.name}: [use] self_report"
    assert isinstance(use.get("screenings"), list), f"{path.name}: [use] screenings"
    assert set(use["screenings"]) <= set(SCREENINGS)
    for measure in use.get("measures", []):
        for key in ("id", "field", "label", "short"):
            assert isinstance(measure.get(key), str) and measure[key].strip(), (path.name, key)
        assert isinstance(measure.get("order"), int)


def test_the_self_report_instruments() -> None:
    assert set(self_report_ids()) == {
        "phq9",
        "gad7",
        "nrs_pain",
        "bpi_sf",
        "pcs",
        "pgic",
        "auditc",
        "dast10",
    }


def test_the_instruments_the_eligibility_screening_reads() -> None:
    assert set(screening_instrument_ids("eligibility")) == {
        "ort",
        "dast10",
        "auditc",
        "phq9",
        "cssrs_screener",
        "gad7",
    }


def test_the_outcome_measures_with_their_labels_in_panel_order() -> None:
    assert [(m.id, m.instrument, m.field, m.label, m.short) for m in outcome_measures()] == [
        ("nrs_pain", "nrs_pain", "total", "Pain intensity (NRS 0-10)", "pain (NRS)"),
        (
            "bpi_interference",
            "bpi_sf",
            "interference",
            "Pain interference (BPI-SF, mean of 7 items)",
            "pain interference (BPI)",
        ),
        ("phq9", "phq9", "total", "Depression (PHQ-9)", "PHQ-9"),
        ("gad7", "gad7", "total", "Anxiety (GAD-7)", "GAD-7"),
        (
            "pgic",
            "pgic",
            "total",
            "Global impression of change (PGIC, 1 very much improved - 7 very much worse)",
            "PGIC",
        ),
    ]


def test_outcome_measures_are_patient_reported() -> None:
    for measure in outcome_measures():
        assert get_instrument(measure.instrument).use.self_report, measure.id


def _rule_instruments(value: object) -> set[str]:
    """Every instrument a screening rule names, wherever in the rule it does."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "instrument" and isinstance(inner, str):
                found.add(inner)
            found |= _rule_instruments(inner)
    elif isinstance(value, list):
        for inner in value:
            if isinstance(inner, str) and inner.startswith("instrument:"):
                found.add(inner.split(":", 1)[1])
            found |= _rule_instruments(inner)
    return found


def test_every_instrument_a_screening_rule_reads_is_given_to_the_screening() -> None:
    named = _rule_instruments(_read(CORE / "screening" / "data" / "rules.toml"))
    assert named, "the rules name instruments"
    assert named <= set(screening_instrument_ids("eligibility"))


def test_outcome_definitions_name_outcome_measures() -> None:
    measures = {m.id for m in outcome_measures()}
    for path in sorted((CORE / "outcomes" / "data").glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        named = {
            line.split("=", 1)[1].strip().strip('"')
            for line in text.splitlines()
            if line.strip().startswith("measure =")
        }
        assert named <= measures, path.name


def test_schedule_templates_name_self_report_instruments() -> None:
    for path in sorted((CORE / "outcomes" / "data" / "schedule_templates").glob("*.toml")):
        named = {d["instrument"] for d in _read(path).get("domains", []) if d.get("instrument")}
        assert named <= set(self_report_ids()), path.name
