"""The state machine: every (state, move) pair, legal and illegal, generated from the table."""

from __future__ import annotations

import pytest

from core.sessions.session_helpers import at, chair
from ketacare.core.sessions import (
    FINAL_STATES,
    MOVES,
    STATES,
    TRANSITIONS,
    CheckIn,
    Discharge,
    IllegalTransition,
    StartInfusion,
    Stop,
    allowed_moves,
    transition,
)

LEGAL = [(s, m, TRANSITIONS[m][s]) for m in MOVES for s in STATES if s in TRANSITIONS[m]]
ILLEGAL = [(s, m) for m in MOVES for s in STATES if s not in TRANSITIONS[m]]

# The main path written out by hand, independently of the table.
HAPPY_PATH = [
    ("scheduled", "check_in", "checked_in"),
    ("checked_in", "vitals", "pre_dose_checks"),
    ("checked_in", "pre_dose_check", "pre_dose_checks"),
    ("pre_dose_checks", "start_infusion", "dosing"),
    ("pre_dose_checks", "self_administration", "dosing"),
    ("dosing", "stop", "recovery"),
    ("recovery", "discharge", "discharged"),
]


def test_every_pair_is_either_legal_or_illegal() -> None:
    assert len(LEGAL) + len(ILLEGAL) == len(STATES) * len(MOVES)
    assert len(LEGAL) == 39


@pytest.mark.parametrize(("state", "move", "after"), LEGAL, ids=repr)
def test_legal_transition(state: str, move: str, after: str) -> None:
    assert transition(state, move) == after  # type: ignore[arg-type]
    assert move in allowed_moves(state)  # type: ignore[arg-type]


@pytest.mark.parametrize(("state", "move"), ILLEGAL, ids=repr)
def test_illegal_transition_names_state_move_and_allowed(state: str, move: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(state, move)  # type: ignore[arg-type]
    allowed = allowed_moves(state)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"cannot {move} in state {state}" in message
    assert f"allowed moves from {state} are {', '.join(allowed)}" in message
    assert info.value.allowed == allowed and info.value.state == state and info.value.move == move


@pytest.mark.parametrize(("state", "move", "after"), HAPPY_PATH, ids=repr)
def test_happy_path_is_in_the_table(state: str, move: str, after: str) -> None:
    assert TRANSITIONS[move][state] == after  # type: ignore[index]


def test_final_states_only_take_amendments() -> None:
    for state in FINAL_STATES:
        assert allowed_moves(state) == ("amendment",)


def test_every_non_final_state_can_end_early() -> None:
    for state in STATES:
        if state not in FINAL_STATES:
            assert transition(state, "end_session") == "stopped_early"  # type: ignore[arg-type]


def test_unknown_move_and_state_are_refused() -> None:
    with pytest.raises(IllegalTransition, match="'fly' is not a known move"):
        transition("dosing", "fly")
    with pytest.raises(IllegalTransition, match="unknown session state 'flying'"):
        allowed_moves("flying")  # type: ignore[arg-type]


def test_replay_refuses_an_illegal_event_and_leaves_the_log_unchanged() -> None:
    c = chair()
    c.add(CheckIn(at=at(1), by="nurse1"))
    before = c.log
    with pytest.raises(
        IllegalTransition, match="entry 3 .*cannot start_infusion in state checked_in"
    ):
        c.add(StartInfusion(at=at(2), by="nurse1", rate_mg_per_h=20))
    assert c.log == before
    with pytest.raises(IllegalTransition, match="cannot discharge in state checked_in"):
        c.add(Discharge(at=at(3), by="nurse1", instructions="no driving"))
    with pytest.raises(IllegalTransition, match="cannot check_in in state checked_in"):
        c.add(CheckIn(at=at(3), by="nurse1"))


def test_start_needs_every_required_pre_dose_check() -> None:
    c = chair()
    c.add(CheckIn(at=at(1), by="nurse1"))
    from ketacare.core.sessions import PreDoseCheck

    c.add(PreDoseCheck(at=at(2), by="nurse1", item="fasting", ok=True))
    c.add(PreDoseCheck(at=at(2), by="nurse1", item="consent_current", ok=False, detail="expired"))
    with pytest.raises(IllegalTransition) as info:
        c.add(StartInfusion(at=at(3), by="nurse1", rate_mg_per_h=20))
    message = str(info.value)
    assert (
        "pre-dose checks not passed: baseline_vitals, escort_arranged, consent_current" in message
    )
    assert "pregnancy_test" not in message  # not required by this plan
    assert c.state.missing_checks[:3] == ("baseline_vitals", "escort_arranged", "consent_current")


def test_pregnancy_test_and_iv_access_depend_on_plan_and_route() -> None:
    from core.sessions.session_helpers import setup_for

    iv = setup_for("crps-outpatient", pregnancy_test_required=True)
    nasal = setup_for("esketamine-trd")
    assert "pregnancy_test" in iv.required_checks and "iv_access" in iv.required_checks
    assert (
        "pregnancy_test" not in nasal.required_checks and "iv_access" not in nasal.required_checks
    )


def test_stopped_early_infusion_still_goes_through_recovery() -> None:
    c = chair().infusing()
    c.add(Stop(at=at(40), by="nurse1", reason="adverse_effect", detail="nausea"))
    assert c.state.state == "recovery"
    assert c.state.stop is not None and c.state.stop.reason == "adverse_effect"
