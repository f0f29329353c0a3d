"""A titrated infusion starts where its source started, not at the ordered ceiling.

crps-continuous orders 22 mg/h for 4 days (ASRA 2018), but 22.2 mg/h/70 kg was the mean
END dose of the trial behind it (Sigtermans 2009), which started S(+)-ketamine at 5 mg/h
per 70 kg and raised it slowly (Dahan 2011, Eur J Pain 15:258). The expected starts
below are worked by hand: 5 mg/h x weight / 70 kg, rounded half up to 0.1 mg/h (the
protocol's rate rounding).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ketacare.core.errors import DataFileError
from ketacare.core.protocols import load_library, load_protocol_file, preview_plan
from ketacare.core.sessions import session_setup
from protocol_policy import build_plan  # under the test policy (hard ceilings set)

from .test_protocol_loading import VALID, _write

CONTINUOUS = "crps-continuous"


@pytest.mark.parametrize(
    ("weight_kg", "start"),
    [
        (70, 5.0),  # 5 x 70 / 70
        (50, 3.6),  # 3.571... rounds half up
        (100, 7.1),  # 7.142...
        (63, 4.5),  # 4.5 exactly
        (91, 6.5),  # 6.5 exactly
    ],
)
def test_the_start_is_five_mg_per_hour_per_seventy_kg(weight_kg: float, start: float) -> None:
    plan = build_plan(protocol=load_library().get(protocol_id=CONTINUOUS), weight_kg=weight_kg)
    [session] = plan.sessions
    assert session.start_rate_mg_per_h == start
    # the ordered rate stays the guideline's 22 mg/h: the ceiling, and the planned dose
    # assumes it for all 96 h (22 x 96 = 2112 mg)
    assert (session.rate_mg_per_h, session.dose_mg) == (22.0, 2112.0)
    assert session.to_dict()["start_rate_mg_per_h"] == start
    [note] = [n for n in plan.notes if n.startswith("titrate:")]
    assert f"start at {start:g} mg/h (5 mg/h per 70 kg, Dahan 2011)" in note
    assert "never above the ordered 22 mg/h" in note


def test_the_start_is_never_above_the_ordered_rate() -> None:
    # an override of 0.05 mg/kg/h for 70 kg orders 3.5 mg/h, below the source's 5 mg/h start
    plan = build_plan(
        protocol=load_library().get(protocol_id=CONTINUOUS),
        weight_kg=70,
        dose_mg_per_kg_per_h=0.05,
    )
    [session] = plan.sessions
    assert (session.rate_mg_per_h, session.start_rate_mg_per_h) == (3.5, 3.5)


def test_an_infusion_without_a_titration_starts_at_its_rate() -> None:
    plan = build_plan(protocol=load_library().get(protocol_id="crps-outpatient"), weight_kg=60)
    assert {s.start_rate_mg_per_h for s in plan.sessions} == {None}
    assert not [n for n in plan.notes if n.startswith("titrate:")]


def test_the_chair_s_setup_carries_the_start() -> None:
    protocol = load_library().get(protocol_id=CONTINUOUS)
    plan = build_plan(protocol=protocol, weight_kg=50)
    setup = session_setup(protocol=protocol, weight_kg=50, planned=plan.sessions[0])
    assert (setup.start_rate_mg_per_h, setup.planned_rate_mg_per_h) == (3.6, 22.0)


def test_the_source_is_cited_with_its_words() -> None:
    protocol = load_library().get(protocol_id=CONTINUOUS)
    titration = protocol.dose.titration
    assert titration is not None
    assert (titration.start_mg_per_h, titration.per_kg) == (5.0, 70.0)
    source = protocol.source(titration.source_key)
    assert source.doi == "10.1016/j.ejpain.2010.06.016"
    assert "slowly increased from 5 mg/h (per 70 kg)" in source.quote


TITRATION = '\n[dose.titration]\nstart_mg_per_h = 2\nper_kg = 70\nsource = "local-sop"\n'


def test_a_clinic_protocol_may_titrate(tmp_path: Path) -> None:
    text = VALID.replace(
        'source = "local-sop"\n\n[[phases]]', f'source = "local-sop"\n{TITRATION}\n[[phases]]', 1
    )
    protocol = load_protocol_file(path=_write(tmp_path, text))
    assert protocol.dose.titration is not None
    plan = preview_plan(protocol=protocol, weight_kg=35)  # its dose ceiling is site policy
    # 2 mg/h x 35 / 70 = 1.0 mg/h; the ordered rate is 0.25 x 35 = 8.75 mg/h, rounded
    # down to 8.7 so as not to cross the 0.25 mg/kg/h soft limit it sits on
    assert [(s.start_rate_mg_per_h, s.rate_mg_per_h) for s in plan.sessions] == [(1.0, 8.7)] * 3


@pytest.mark.parametrize(
    ("titration", "field", "problem"),
    [
        (
            TITRATION.replace("start_mg_per_h = 2", "start_mg_per_h = 0"),
            "dose.titration.start_mg_per_h",
            "must be",
        ),
        (TITRATION.replace("per_kg = 70", "per_kg = -1"), "dose.titration.per_kg", "must be"),
        (
            TITRATION.replace('source = "local-sop"', 'source = "nowhere"'),
            "dose.titration.source",
            "nowhere",
        ),
        (TITRATION.replace("per_kg = 70", "step = 1"), "dose.titration.step", "unknown"),
        (TITRATION.replace("start_mg_per_h = 2\n", ""), "dose.titration.start_mg_per_h", "missing"),
    ],
)
def test_a_broken_titration_is_refused_naming_the_field(
    tmp_path: Path, titration: str, field: str, problem: str
) -> None:
    text = VALID.replace(
        'source = "local-sop"\n\n[[phases]]', f'source = "local-sop"\n{titration}\n[[phases]]', 1
    )
    path = _write(tmp_path, text)
    with pytest.raises(DataFileError) as caught:
        load_protocol_file(path=path)
    message = str(caught.value)
    assert f"field '{field}'" in message and problem in message, message


def test_only_a_rate_is_titrated(tmp_path: Path) -> None:
    text = VALID.replace(
        'kind = "rate_per_kg"\nmg_per_kg_per_h = 0.25', 'kind = "amount_per_kg"\nmg_per_kg = 0.5'
    ).replace(
        'source = "local-sop"\n\n[[phases]]', f'source = "local-sop"\n{TITRATION}\n[[phases]]', 1
    )
    with pytest.raises(DataFileError, match=r"field 'dose.titration': applies to a rate"):
        load_protocol_file(path=_write(tmp_path, text))
