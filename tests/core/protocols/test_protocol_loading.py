"""The shipped library, and validation of a clinic's own protocol files."""

from __future__ import annotations

from pathlib import Path

import pytest

import ketacare.core.protocols as protocols_pkg
from ketacare.core.errors import DataFileError, UnknownItem
from ketacare.core.protocols import SitePolicy, load_library, load_protocol_file
from ketacare.core.protocols.model import ROUTES
from protocol_policy import build_plan  # under the test policy (hard ceilings set)

SHIPPED = {
    "crps-outpatient": ("iv_infusion", "racemic_ketamine", "Schwartzman 2009"),
    "crps-continuous": ("iv_infusion", "esketamine", "ASRA 2018 (Cohen et al.)"),
    "depression-iv": ("iv_infusion", "racemic_ketamine", "Sanacora 2017 (APA consensus)"),
    "esketamine-trd": ("intranasal_esketamine", "esketamine", "Spravato label (Janssen)"),
    "esketamine-mdd-si": ("intranasal_esketamine", "esketamine", "Spravato label, MDSI"),
    "oral-followon": ("oral", "racemic_ketamine", "ASRA 2018 (Cohen et al.)"),
}

# A small valid clinic protocol; the tests below break one field at a time.
VALID = """
schema = 1
id = "clinic-crps-short"
title = "Clinic CRPS short infusion"
status = "published"
molecule = "racemic_ketamine"
route = "iv_infusion"
setting = "outpatient"
summary = "A clinic's own regimen."

[[indications]]
code = "G90.50"
display = "Complex regional pain syndrome I, unspecified"

[[sources]]
key = "local-sop"
label = "Clinic SOP 2024"
citation = "Clinic standard operating procedure, version 3."
url = "https://clinic.example/sop"
read = "full text"
quote = "0.25 mg/kg/h for 2 h on 3 consecutive days"

[dose]
kind = "rate_per_kg"
mg_per_kg_per_h = 0.25
duration_min = 120
source = "local-sop"

[[phases]]
name = "course"
start_day = 1
cycle_days = 1
pattern = [0]
cycles = 3
source = "local-sop"

[rounding]
dose_mg = { step = 0.1, mode = "half_up" }
rate_mg_per_h = { step = 0.1, mode = "half_up" }
rate_ml_per_h = { step = 0.1, mode = "down" }

[limits.rate_mg_per_kg_per_h]
soft = { value = 0.25, source = "local-sop", basis = "SOP rate" }
hard = { value = 0.5, source = "local-sop", basis = "SOP maximum" }

[limits.rate_mg_per_h]
soft = { site_policy = true }
hard = { value = 40, source = "local-sop", basis = "SOP maximum rate" }

[limits.dose_mg]
soft = { site_policy = true }
hard = { site_policy = true }

[limits.dose_mg_per_kg]
soft = { site_policy = true }
hard = { value = 3, source = "local-sop", basis = "SOP maximum per session" }

[limits.course_mg]
soft = { site_policy = true }
hard = { value = 300, source = "local-sop", basis = "SOP maximum per course" }

[monitoring]
vitals_interval_min = { value = 15, source = "local-sop" }
observation_min = { site_policy = true }
"""


def test_shipped_library() -> None:
    library = load_library()
    assert set(library.ids) == set(SHIPPED)
    for protocol in library.protocols:
        route, molecule, source = SHIPPED[protocol.id]
        assert (protocol.route, protocol.molecule, protocol.primary_source.label) == (
            route,
            molecule,
            source,
        )
        assert protocol.origin == "builtin"
        assert protocol.route in ROUTES
        assert protocol.indications
        for source_entry in protocol.sources:
            assert source_entry.citation and source_entry.url and source_entry.quote


def test_every_shipped_protocol_has_a_dose_rule_source_unless_clinic_set() -> None:
    for protocol in load_library().protocols:
        if protocol.status == "published":
            assert protocol.dose.source_key is not None
            assert all(phase.source_key for phase in protocol.phases)
        else:
            assert protocol.dose.kind == "clinic_set"


def test_unknown_protocol() -> None:
    with pytest.raises(UnknownItem, match="unknown protocol 'x': known are crps-continuous"):
        load_library().get(protocol_id="x")


def test_public_api_is_sorted() -> None:
    names = protocols_pkg.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert all(hasattr(protocols_pkg, name) for name in names)


def _write(directory: Path, text: str, name: str = "clinic.toml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_clinic_protocol_loads_and_plans(tmp_path: Path) -> None:
    _write(tmp_path / "protocols", VALID)
    library = load_library(clinic_dirs=[tmp_path / "protocols"])
    protocol = library.get(protocol_id="clinic-crps-short")
    assert protocol.origin == "clinic"
    # 0.25 x 71 = 17.75 mg/h; half up would give 17.8 mg/h, above the 0.25 mg/kg/h soft
    # limit (17.75 mg/h) the order sits on, so it rounds down: 17.7 mg/h;
    # 1 mg/mL -> 17.75 -> 17.7 mL/h (down)
    # dose 17.75 x 2 = 35.5 mg; 3 sessions -> 106.5 mg
    # the clinic's policy (TEST VALUE) sets the one hard slot the clinic's file leaves open
    policy = SitePolicy(limits={("clinic-crps-short", "dose_mg", "hard"): 100.0})
    plan = build_plan(protocol=protocol, weight_kg=71, bag_mg=100, bag_ml=100, site_policy=policy)
    first = plan.sessions[0]
    assert (first.rate_mg_per_h, first.rate_ml_per_h, first.dose_mg) == (17.7, 17.7, 35.5)
    assert plan.total_dose_mg == 106.5
    assert "pump rates to 0.1 mL/h (down)" in plan.rounding


def _replace(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (_replace('id = "clinic-crps-short"\n', ""), "'id'", "is missing"),
        (_replace('id = "clinic-crps-short"', 'id = "Bad Id"'), "'id'", "lower-case"),
        (_replace("schema = 1", "schema = 2"), "'schema'", "must be 1"),
        (_replace('route = "iv_infusion"', 'route = "rectal"'), "'route'", "is not one of"),
        (_replace('molecule = "racemic_ketamine"', 'molecule = "x"'), "'molecule'", "is not one"),
        (_replace('status = "published"', 'status = "draft"'), "'status'", "is not"),
        ("colour = 'blue'\n" + VALID, "'colour'", "unknown field"),
        (_replace('code = "G90.50"', 'code = "CRPS"'), "'indications[0].code'", "not an ICD"),
        (
            _replace('source = "local-sop"\n\n[[phases]]', 'source = "nope"\n\n[[phases]]'),
            "'dose.source'",
            "unknown source 'nope'",
        ),
        (_replace("mg_per_kg_per_h = 0.25\n", ""), "'dose.mg_per_kg_per_h'", "is missing"),
        (
            _replace("mg_per_kg_per_h = 0.25", "mg_per_kg_per_h = -1"),
            "'dose.mg_per_kg_per_h'",
            "must be a positive number",
        ),
        (
            _replace("duration_min = 120", "duration_min = 120\nmg = 5"),
            "'dose.mg'",
            "does not apply to dose kind",
        ),
        (
            _replace('kind = "rate_per_kg"', 'kind = "amount_fixed"'),
            "'dose.kind'",
            "an infusion gives a rate",
        ),
        (_replace("pattern = [0]", "pattern = [1, 0]"), "'phases[0].pattern'", "increasing"),
        (_replace("cycles = 3", "cycles = 0"), "'phases[0].cycles'", "integer >= 1"),
        (_replace('mode = "down"', 'mode = "up"'), "'rounding.rate_ml_per_h.mode'", "'up'"),
        (
            _replace(
                'hard = { value = 0.5, source = "local-sop", basis = "SOP maximum" }',
                'hard = { value = 0.2, source = "local-sop", basis = "SOP maximum" }',
            ),
            "'limits.rate_mg_per_kg_per_h.soft'",
            "soft limit 0.25 is above hard limit 0.2",
        ),
        (
            _replace(
                "[limits.dose_mg]\nsoft = { site_policy = true }\nhard = { site_policy = true }", ""
            ),
            "'limits.dose_mg'",
            "is missing: a iv_infusion protocol must declare it",
        ),
        (
            _replace(
                "[limits.course_mg]\nsoft = { site_policy = true }\n"
                'hard = { value = 300, source = "local-sop", basis = "SOP maximum per course" }',
                "",
            ),
            "'limits.course_mg'",
            "is missing: a iv_infusion protocol must declare it",
        ),
        (
            _replace(
                "[limits.rate_mg_per_h]\nsoft = { site_policy = true }",
                "[limits.rate_mg_per_h]\nsoft = { site_policy = true, value = 3 }",
            ),
            "'limits.rate_mg_per_h.soft.site_policy'",
            "the clinic sets it",
        ),
        (
            _replace(
                "[limits.rate_mg_per_h]\nsoft = { site_policy = true }",
                "[limits.rate_mg_per_h]\nsoft = { basis = 'x' }",
            ),
            "'limits.rate_mg_per_h.soft.value'",
            "is missing (or mark the limit site_policy = true)",
        ),
        (_replace("[monitoring]\n", "[monitoring]\nbp = 1\n"), "'monitoring.bp'", "unknown"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 60 else None,
)
def test_clinic_protocol_validation(tmp_path: Path, text: str, field: str, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DataFileError) as caught:
        load_protocol_file(path=path)
    message = str(caught.value)
    assert message.startswith(f"protocol file {path}: field {field}: "), message
    assert problem in message


def test_rate_limit_refused_on_oral_route(tmp_path: Path) -> None:
    text = (
        _replace('route = "iv_infusion"', 'route = "oral"')
        .replace(
            'kind = "rate_per_kg"\nmg_per_kg_per_h = 0.25\nduration_min = 120',
            'kind = "amount_fixed"\nmg = 50',
        )
        .replace(
            '[limits.rate_mg_per_kg_per_h]\nsoft = { value = 0.25, source = "local-sop", '
            'basis = "SOP rate" }\nhard = { value = 0.5, source = "local-sop", basis = '
            '"SOP maximum" }\n',
            "",
        )
    )
    path = _write(tmp_path, text)
    with pytest.raises(DataFileError, match="'limits.rate_mg_per_h': a rate limit does not apply"):
        load_protocol_file(path=path)


def test_invalid_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, "id = ")
    with pytest.raises(DataFileError, match=f"protocol file {path}: is not valid TOML"):
        load_protocol_file(path=path)


def test_duplicate_id_with_shipped_protocol(tmp_path: Path) -> None:
    path = _write(tmp_path, _replace('id = "clinic-crps-short"', 'id = "crps-outpatient"'))
    with pytest.raises(DataFileError, match="'crps-outpatient' is already defined in") as caught:
        load_library(clinic_dirs=[tmp_path])
    assert str(path) in str(caught.value)


def test_missing_clinic_directory(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist or is not a directory"):
        load_library(clinic_dirs=[tmp_path / "absent"])
