"""The append-only log: stale writes refused, amendments keep the original, round trips."""

from __future__ import annotations

import dataclasses

import pytest

from core.sessions.session_helpers import T0, at, chair
from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.sessions import (
    AcknowledgeAlert,
    Amendment,
    Bolus,
    CheckIn,
    Discharge,
    DischargeScore,
    EndSession,
    EscortConfirmed,
    IllegalTransition,
    LimitOverride,
    Medication,
    Pause,
    PreDoseCheck,
    RateChange,
    Resume,
    Scheduled,
    SelfAdministration,
    SideEffects,
    StaleSession,
    StartInfusion,
    Stop,
    Vitals,
    append,
    delivered_mg,
    event_from_dict,
    event_to_dict,
    parse_session_policy,
    replay,
)
from ketacare.core.sessions.events import EVENT_TYPES


def test_stale_expected_sequence_is_refused_with_a_clear_message() -> None:
    c = chair().infusing()
    seen = len(c.log)
    nurse1 = append(c.log, Vitals(at=at(20), by="nurse1", spo2_pct=97), expected_seq=seen)
    with pytest.raises(StaleSession) as info:
        append(nurse1, Vitals(at=at(20), by="nurse2", spo2_pct=96), expected_seq=seen)
    assert str(info.value) == (
        f"the session changed since you loaded it: you saw entry {seen}, it now has entry "
        f"{seen + 1} (vitals by nurse1 at 2025-03-03T09:20:00+00:00); reload it and enter your "
        "change again"
    )
    with pytest.raises(StaleSession):
        append(nurse1, Vitals(at=at(20), by="nurse2", spo2_pct=96), expected_seq=seen + 5)
    # re-entered on the reloaded log, both entries are kept
    both = append(nurse1, Vitals(at=at(20), by="nurse2", spo2_pct=96), expected_seq=seen + 1)
    assert [e.by for e in both[-2:]] == ["nurse1", "nurse2"]


def test_append_numbers_the_event_and_never_changes_the_input() -> None:
    c = chair()
    before = c.log
    out = append(before, CheckIn(at=at(1), by="nurse1", seq=42), expected_seq=1)
    assert out[-1].seq == 2 and before == c.log and len(before) == 1


def test_log_structure_is_checked() -> None:
    c = chair().ready()
    with pytest.raises(InvalidInput, match="entry 2 of the session log is numbered 5"):
        replay((c.log[0], dataclasses.replace(c.log[1], seq=5)))
    with pytest.raises(InvalidInput, match="scheduled only once"):
        replay((c.log[0], dataclasses.replace(c.log[0], seq=2)))


def test_amendment_keeps_the_original_and_recomputes_everything() -> None:
    policy = parse_session_policy({"thresholds": {"sbp_mmhg": {"high": 180}}})
    c = chair(policy=policy).infusing(rate=20, minute=10)
    c.add(Vitals(at=at(20), by="nurse1", sbp_mmhg=210, dbp_mmhg=80))  # typo for 120
    wrong = c.log[-1]
    assert len(c.state.open_alerts) == 1
    c.add(
        Amendment(
            at=at(21),
            by="nurse1",
            target_seq=wrong.seq,
            reason="typing error, was 120/80",
            replacement=Vitals(at=at(20), by="nurse1", sbp_mmhg=120, dbp_mmhg=80),
        )
    )
    state = c.state
    assert wrong in state.events  # the original stays in the log
    assert state.amendments[wrong.seq].reason == "typing error, was 120/80"
    assert state.last_vitals is not None and state.last_vitals.sbp_mmhg == 120
    assert state.last_vitals.seq == wrong.seq
    assert state.open_alerts == ()


def test_amending_a_rate_changes_the_delivered_dose() -> None:
    c = chair().infusing(rate=20, minute=10)
    c.add(Stop(at=at(70), by="nurse1", reason="completed"))
    start = next(e for e in c.log if isinstance(e, StartInfusion))
    assert delivered_mg(c.state, at=at(70)) == pytest.approx(20.0)
    c.add(
        Amendment(
            at=at(71),
            by="nurse1",
            target_seq=start.seq,
            reason="pump was at 15 mg/h",
            replacement=StartInfusion(at=at(10), by="nurse1", rate_mg_per_h=15),
        )
    )
    assert delivered_mg(c.state, at=at(70)) == pytest.approx(15.0)


def test_entered_in_error_and_refused_amendments() -> None:
    c = chair().infusing()
    c.add(Vitals(at=at(20), by="nurse1", spo2_pct=97))
    c.add(Amendment(at=at(21), by="nurse1", target_seq=c.log[-1].seq, reason="wrong patient"))
    assert all(v.at != at(20) for v in c.state.vitals)
    with pytest.raises(InvalidInput, match="replacement is a check_in but entry .* is a vitals"):
        c.add(
            Amendment(
                at=at(22),
                by="n",
                target_seq=c.log[-2].seq,
                reason="x",
                replacement=CheckIn(at=at(1), by="n"),
            )
        )
    with pytest.raises(InvalidInput, match="which does not exist"):
        c.add(Amendment(at=at(22), by="n", target_seq=99, reason="x"))
    with pytest.raises(InvalidInput, match="is a scheduled, which cannot be amended"):
        c.add(Amendment(at=at(22), by="n", target_seq=1, reason="x"))
    with pytest.raises(InvalidInput, match="is a amendment, which cannot be amended"):
        c.add(Amendment(at=at(22), by="n", target_seq=c.log[-1].seq, reason="x"))
    # striking the check-in would make every later entry illegal: refused
    with pytest.raises(IllegalTransition, match="cannot vitals in state scheduled"):
        c.add(Amendment(at=at(22), by="n", target_seq=2, reason="x"))


def test_amendment_that_would_orphan_an_acknowledgement_is_refused() -> None:
    policy = parse_session_policy({"thresholds": {"spo2_pct": {"low": 92}}})
    c = chair(policy=policy).infusing()
    c.add(Vitals(at=at(20), by="nurse1", spo2_pct=88))
    vitals_seq = c.log[-1].seq
    c.add(
        AcknowledgeAlert(
            at=at(21), by="dr_a", alert_id=c.state.alerts[0].id, action="continue", note="O2"
        )
    )
    with pytest.raises(IllegalTransition, match="no alert"):
        c.add(
            Amendment(
                at=at(22),
                by="nurse1",
                target_seq=vitals_seq,
                reason="probe slipped",
                replacement=Vitals(at=at(20), by="nurse1", spo2_pct=97),
            )
        )


def test_amendments_are_allowed_after_discharge() -> None:
    c = chair().ready()
    c.add(EndSession(at=at(8), by="nurse1", reason="did not pass pre-dose checks"))
    c.add(
        Amendment(
            at=at(30),
            by="nurse1",
            target_seq=3,
            reason="x",
            replacement=Vitals(at=at(2), by="nurse1", spo2_pct=96),
        )
    )
    assert c.state.state == "stopped_early"


def every_event_kind() -> list:  # type: ignore[type-arg]
    setup = chair().setup
    t = at(5)
    o = LimitOverride(reason="r", cosigned_by="dr")
    return [
        Scheduled(at=T0, by="a", setup=setup),
        CheckIn(at=t, by="n"),
        PreDoseCheck(at=t, by="n", item="medication_lot", ok=True, detail="K1"),
        Vitals(at=t, by="n", sbp_mmhg=120, dbp_mmhg=80, temperature_c=36.6),
        SideEffects(at=t, by="n", sedation_moaas=4, pain_nrs=3, nausea=True, note="mild"),
        Medication(
            at=t,
            by="n",
            drug="ondansetron",
            dose="4 mg",
            route="iv",
            purpose="rescue",
            reason="nausea",
        ),
        StartInfusion(at=t, by="n", rate_mg_per_h=20, override=o),
        RateChange(at=t, by="n", rate_mg_per_h=10, reason="dizzy"),
        Pause(at=t, by="n", reason="toilet"),
        Resume(at=t, by="n"),
        Bolus(at=t, by="n", amount_mg=5.5),
        SelfAdministration(at=t, by="n", devices=2),
        Stop(at=t, by="n", reason="other", detail="line occluded"),
        AcknowledgeAlert(at=t, by="n", alert_id="4/x", action="reduce_rate"),
        DischargeScore(
            at=t,
            by="n",
            answers={
                "vital_signs": 2,
                "ambulation": 2,
                "nausea_vomiting": 2,
                "pain": 2,
                "bleeding": 2,
                "escort": True,
            },
        ),
        EscortConfirmed(at=t, by="n", name="J"),
        Discharge(at=t, by="n", instructions="no driving"),
        EndSession(at=t, by="n", reason="did not attend"),
        Amendment(
            at=t, by="n", target_seq=3, reason="typo", replacement=Vitals(at=t, by="n", spo2_pct=97)
        ),
    ]


@pytest.mark.parametrize("event", every_event_kind(), ids=lambda e: e.kind)
def test_every_event_round_trips_through_json(event) -> None:  # type: ignore[no-untyped-def]
    import json

    data = json.loads(json.dumps(event_to_dict(event)))
    assert event_from_dict(data) == event


def test_every_event_type_is_covered() -> None:
    assert {e.kind for e in every_event_kind()} == set(EVENT_TYPES)


def test_bad_stored_rows_are_refused() -> None:
    with pytest.raises(UnknownItem, match="unknown event kind 'teleport'"):
        event_from_dict({"kind": "teleport"})
    row = event_to_dict(Vitals(at=at(1), by="n", spo2_pct=97))
    with pytest.raises(InvalidInput, match="unknown field 'colour'"):
        event_from_dict({**row, "colour": "red"})
    with pytest.raises(Exception, match="SpO2 120"):
        event_from_dict({**row, "spo2_pct": 120})
    with pytest.raises(InvalidInput, match="not an ISO 8601 time"):
        event_from_dict({**row, "at": "yesterday"})
    with pytest.raises(InvalidInput, match="timezone-aware"):
        event_from_dict({**row, "at": "2025-03-03T09:00:00"})
