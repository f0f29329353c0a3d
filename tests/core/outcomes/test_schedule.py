"""Outcome schedules: parsing with named errors, and statuses checked against times
worked out by hand (every expected instant below is written out, not computed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ketacare.core.errors import InvalidInput
from ketacare.core.outcomes.schedule import Schedule, parse_schedule
from ketacare.core.outcomes.schedule_status import (
    Measurement,
    PlanEnd,
    SessionTime,
    evaluate_schedule,
)
from ketacare.core.outcomes.templates import load_templates

INSTRUMENTS = ["nrs_pain", "phq9", "gad7", "bpi_sf", "pgic"]
STOP = {"until": "2027-01-01T00:00:00+00:00"}


def t(day: int, hour: int = 9, minute: int = 0, second: int = 0) -> datetime:
    """A time in March 2026, UTC."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def one(
    item: dict[str, Any], grace_hours: float = 24, stop: dict[str, Any] | None = None
) -> Schedule:
    return parse_schedule(
        {"grace_hours": grace_hours, "stop": stop or STOP, "items": [item]},
        instruments=INSTRUMENTS,
    )


def status_at(
    schedule: Schedule,
    now: datetime,
    sessions: list[SessionTime] | None = None,
    measured: list[datetime] | None = None,
    instrument: str = "nrs_pain",
    start: datetime | None = None,
    plan_end: PlanEnd | None = None,
) -> Any:
    result = evaluate_schedule(
        schedule,
        now=now,
        start=start or t(1),
        sessions=sessions or [],
        measurements=[Measurement(instrument=instrument, at=m) for m in measured or []],
        plan_end=plan_end,
    )
    return result.items[0]


def given(at: datetime, key: str, last: bool = False) -> SessionTime:
    return SessionTime(at=at, given=True, key=key, label=f"session {key}", last_of_course=last)


def booked(at: datetime, key: str, last: bool = False) -> SessionTime:
    return SessionTime(at=at, given=False, key=key, label=f"session {key}", last_of_course=last)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"stop": STOP, "items": []}, "grace_hours: is required"),
        ({"grace_hours": 0, "stop": STOP, "items": []}, "grace_hours: must be above 0"),
        ({"grace_hours": True, "stop": STOP, "items": []}, "grace_hours: must be a number"),
        ({"grace_hours": 24, "items": []}, "stop: is required"),
        ({"grace_hours": 24, "stop": {}, "items": []}, "stop: needs at least one condition"),
        ({"grace_hours": 24, "stop": {"until": "2027-01-01"}, "items": []}, "has no time zone"),
        ({"grace_hours": 24, "stop": {"until": "soon"}, "items": []}, "stop.until: must be an ISO"),
        ({"grace_hours": 24, "stop": {"forever": 1}, "items": []}, "stop.forever: unknown field"),
        ({"grace_hours": 24, "stop": STOP, "items": []}, "items: must be a non-empty list"),
        ({"grace_hours": 24, "stop": STOP, "items": [{}], "x": 1}, "x: unknown field"),
        ({"grace_hours": 24, "stop": STOP, "items": ["phq9"]}, "items[0]: must be a table"),
    ],
)
def test_bad_schedules_name_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_schedule(raw, instruments=INSTRUMENTS)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"instrument": "ort", "when": "baseline"},
            "items[0].instrument: unknown instrument 'ort'",
        ),
        (
            {"instrument": "phq9", "when": "daily"},
            "items[0].when: unknown 'daily': allowed baseline",
        ),
        (
            {"instrument": "phq9", "when": "after_each_session"},
            "items[0].offset_hours: is required",
        ),
        ({"instrument": "phq9", "when": "before_each_session"}, "items[0].lead_hours: is required"),
        (
            {"instrument": "phq9", "when": "every", "starts": "first_session"},
            "every_days: is required",
        ),
        (
            {"instrument": "phq9", "when": "every", "every_days": 7, "starts": "monday"},
            "starts: unknown 'monday': allowed schedule_start, first_session, last_session",
        ),
        (
            {"instrument": "phq9", "when": "baseline", "offset_hours": 24},
            "offset_hours: unknown field: allowed instrument, when, grace_hours, lookback_days",
        ),
        (
            {"instrument": "phq9", "when": "after_each_session", "offset_hours": -1},
            "items[0].offset_hours: must be above 0",
        ),
        (
            {"instrument": "phq9", "when": "after_each_session", "offset_hours": "24"},
            "items[0].offset_hours: must be a number of hours",
        ),
        (
            {
                "instrument": "phq9",
                "when": "every",
                "every_days": 7,
                "starts": "first_session",
                "anchored_to_last_treatment": "yes",
            },
            "anchored_to_last_treatment: must be true or false",
        ),
    ],
)
def test_bad_items_name_the_field_and_what_is_allowed(item: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        one(item)
    assert message in str(caught.value)


def test_the_same_item_twice_is_refused_but_a_second_offset_is_not() -> None:
    after = {"instrument": "phq9", "when": "after_each_session", "offset_hours": 24}
    with pytest.raises(InvalidInput, match=r"items\[1\]: repeats items\[0\]"):
        parse_schedule(
            {"grace_hours": 1, "stop": STOP, "items": [after, dict(after)]},
            instruments=INSTRUMENTS,
        )
    two = parse_schedule(
        {"grace_hours": 1, "stop": STOP, "items": [after, {**after, "offset_hours": 72}]},
        instruments=INSTRUMENTS,
    )
    assert [i.offset for i in two.items] == [timedelta(hours=24), timedelta(hours=72)]


def test_a_schedule_reads_back_what_it_writes() -> None:
    raw = {
        "grace_hours": 36,
        "stop": {"after_plan_end_days": 0, "until": "2026-12-31T23:00:00-05:00"},
        "items": [
            {"instrument": "nrs_pain", "when": "baseline", "lookback_days": 14},
            {"instrument": "phq9", "when": "before_each_session", "lead_hours": 48},
            {
                "instrument": "pgic",
                "when": "after_each_session",
                "offset_hours": 24,
                "grace_hours": 6,
            },
            {
                "instrument": "gad7",
                "when": "every",
                "every_days": 30,
                "starts": "last_session",
                "anchored_to_last_treatment": True,
            },
        ],
    }
    schedule = parse_schedule(raw, instruments=INSTRUMENTS)
    assert schedule.stop.until == datetime(2027, 1, 1, 4, 0, tzinfo=UTC)  # -05:00 -> UTC
    assert schedule.stop.after_plan_end == timedelta(0)
    assert schedule.items[2].grace == timedelta(hours=6)
    assert parse_schedule(schedule.to_dict(), instruments=INSTRUMENTS) == schedule


# --------------------------------------------------------------------------- baseline


def test_a_baseline_measured_before_the_schedule_began_counts() -> None:
    schedule = one({"instrument": "nrs_pain", "when": "baseline"})
    s = status_at(schedule, t(3), [booked(t(5), "1")], measured=[datetime(2026, 2, 20, tzinfo=UTC)])
    assert s.status == "satisfied"
    assert s.occurrence.satisfied_at == datetime(2026, 2, 20, tzinfo=UTC)


def test_a_baseline_older_than_the_lookback_does_not_count_and_opens_later() -> None:
    schedule = one({"instrument": "nrs_pain", "when": "baseline", "lookback_days": 7})
    old = [datetime(2026, 2, 20, tzinfo=UTC)]
    # first session 2026-03-20 09:00: the window opens 7 days before, 2026-03-13 09:00
    early = status_at(schedule, t(3), [booked(t(20), "1")], measured=old)
    assert (early.status, early.next_due_at) == ("upcoming", t(13))
    inside = status_at(schedule, t(13), [booked(t(20), "1")], measured=old)
    assert inside.status == "due"
    assert inside.occurrence.overdue_at == t(14)  # 24 h grace
    done = status_at(schedule, t(15), [booked(t(20), "1")], measured=[*old, t(13, 9, 0, 1)])
    assert done.status == "satisfied"


def test_baseline_overdue_boundary_and_the_cap_at_the_first_session() -> None:
    schedule = one({"instrument": "nrs_pain", "when": "baseline"}, grace_hours=48)
    sessions = [booked(t(10), "1")]
    # opens at the start (2026-03-01 09:00); 48 h grace: overdue from 2026-03-03 09:00
    assert status_at(schedule, t(3, 8, 59, 59), sessions).status == "due"
    assert status_at(schedule, t(3), sessions).status == "overdue"
    # first session 30 hours after the start: overdue at the session, not at 48 h
    capped = status_at(schedule, t(2, 15), [booked(t(2, 15), "1")])
    assert (capped.status, capped.occurrence.overdue_at) == ("overdue", t(2, 15))
    assert status_at(schedule, t(2, 14, 59), [booked(t(2, 15), "1")]).status == "due"


def test_baseline_is_missed_when_the_first_session_is_given_without_it() -> None:
    schedule = one({"instrument": "nrs_pain", "when": "baseline"})
    s = status_at(schedule, t(6), [given(t(5), "1")], measured=[t(5, 12)])  # after dosing
    assert s.status == "missed"
    assert "window closed 2026-03-05 09:00 UTC" in s.reason
    # a measurement at the very start of dosing is still a baseline ("at or before")
    assert status_at(schedule, t(6), [given(t(5), "1")], measured=[t(5)]).status == "satisfied"


# --------------------------------------------------------------------------- sessions


def test_before_each_session_opens_lead_hours_before_and_closes_at_dosing() -> None:
    schedule = one({"instrument": "phq9", "when": "before_each_session", "lead_hours": 48})
    sessions = [given(t(2), "1"), booked(t(9), "2")]
    # session 2 at 2026-03-09 09:00: opens 2026-03-07 09:00, overdue 24 h later
    before = status_at(schedule, t(7, 8, 59), sessions, instrument="phq9")
    assert (before.status, before.next_due_at) == ("upcoming", t(7))
    assert before.occurrence.key == "phq9/before/2"
    assert status_at(schedule, t(7), sessions, instrument="phq9").status == "due"
    assert status_at(schedule, t(8), sessions, instrument="phq9").status == "overdue"
    filled = status_at(schedule, t(8, 20), sessions, measured=[t(7, 10)], instrument="phq9")
    assert (filled.status, filled.occurrence.satisfied_at) == ("satisfied", t(7, 10))


def test_before_each_session_never_reaches_back_past_the_previous_session() -> None:
    # a 7-day lead with sessions 3 days apart: session 2's window opens at session 1
    schedule = one({"instrument": "phq9", "when": "before_each_session", "lead_hours": 168})
    sessions = [given(t(2), "1"), booked(t(5), "2")]
    before_first = [t(1, 12)]  # filled for session 1, not for session 2
    s = status_at(schedule, t(2, 20), sessions, measured=before_first, instrument="phq9")
    assert s.status == "due"
    assert s.occurrence.opens_at == t(2)
    assert s.occurrence.key == "phq9/before/2"


def test_before_key_is_the_same_when_booked_and_when_given() -> None:
    schedule = one({"instrument": "phq9", "when": "before_each_session", "lead_hours": 24})
    as_booked = status_at(schedule, t(4, 10), [booked(t(5), "7.2")], instrument="phq9")
    as_given = status_at(
        schedule,
        t(5, 9, 30),
        [SessionTime(at=t(5, 9, 20), given=True, key="7.2")],
        instrument="phq9",
    )
    assert as_booked.occurrence.key == as_given.occurrence.key == "phq9/before/7.2"
    assert as_given.status == "missed"  # dosing started without it


def test_after_each_session_is_due_offset_hours_after_dosing() -> None:
    schedule = one(
        {"instrument": "nrs_pain", "when": "after_each_session", "offset_hours": 24},
        grace_hours=12,
    )
    sessions = [given(t(2, 9, 30), "1")]
    # dosing 2026-03-02 09:30 -> due 2026-03-03 09:30, overdue 2026-03-03 21:30
    assert status_at(schedule, t(3, 9, 29), sessions).status == "upcoming"
    assert status_at(schedule, t(3, 9, 30), sessions).status == "due"
    assert status_at(schedule, t(3, 21, 29, 59), sessions).status == "due"
    assert status_at(schedule, t(3, 21, 30), sessions).status == "overdue"
    too_early = status_at(schedule, t(3, 12), sessions, measured=[t(3, 9, 0)])
    assert too_early.status == "due"  # 23.5 h after: not the 24-hour measurement
    on_time = status_at(schedule, t(3, 12), sessions, measured=[t(3, 10)])
    assert (on_time.status, on_time.occurrence.satisfied_at) == ("satisfied", t(3, 10))


def test_the_next_session_closes_the_after_window_and_opens_its_own() -> None:
    schedule = one({"instrument": "nrs_pain", "when": "after_each_session", "offset_hours": 24})
    sessions = [given(t(2), "1"), given(t(4), "2"), booked(t(6), "3")]
    # after session 1 (due 2026-03-03 09:00) was never filled; session 2 closed it.
    s = status_at(schedule, t(4, 12), sessions)
    assert (s.status, s.next_due_at) == ("upcoming", t(5))
    assert s.occurrence.key == "nrs_pain/after24h/2"
    # a booked session whose time passed without dosing asks nothing afterwards, and
    # does not close the window of the session before it
    late = status_at(schedule, t(8), [given(t(2), "1"), booked(t(6), "2")])
    assert (late.status, late.next_due_at) == ("overdue", None)
    assert late.occurrence.key == "nrs_pain/after24h/1"


# --------------------------------------------------------------------------- every


def test_every_interval_from_the_schedule_start() -> None:
    schedule = one(
        {"instrument": "phq9", "when": "every", "every_days": 7, "starts": "schedule_start"}
    )
    # start 2026-03-01 09:00 -> 03-08 09:00, 03-15 09:00, ...; grace 24 h
    assert status_at(schedule, t(8, 8), instrument="phq9").next_due_at == t(8)
    assert status_at(schedule, t(8, 12), instrument="phq9").status == "due"
    assert status_at(schedule, t(9, 9), instrument="phq9").status == "overdue"
    early = status_at(schedule, t(8, 12), measured=[t(7, 20)], instrument="phq9")
    assert early.status == "due"  # before the occurrence opened
    done = status_at(schedule, t(10), measured=[t(8, 10)], instrument="phq9")
    assert (done.status, done.next_due_at) == ("satisfied", t(15))
    # the next one opens, the 03-08 measurement does not carry over
    assert status_at(schedule, t(15, 10), measured=[t(8, 10)], instrument="phq9").status == "due"


def test_anchoring_restarts_the_clock_when_a_session_is_given() -> None:
    item = {"instrument": "phq9", "when": "every", "every_days": 7, "starts": "first_session"}
    fixed, anchored = one(item), one({**item, "anchored_to_last_treatment": True})
    sessions = [given(t(2), "1"), given(t(6), "2")]
    # fixed: 03-09 09:00 from the first session; anchored: 03-13 09:00 from the second
    f = status_at(fixed, t(9, 10), sessions, instrument="phq9")
    assert (f.status, f.occurrence.opens_at) == ("due", t(9))
    a = status_at(anchored, t(9, 10), sessions, instrument="phq9")
    assert (a.status, a.next_due_at) == ("upcoming", t(13))


def test_a_session_closes_the_anchored_occurrence_that_was_open() -> None:
    schedule = one(
        {
            "instrument": "phq9",
            "when": "every",
            "every_days": 7,
            "starts": "first_session",
            "anchored_to_last_treatment": True,
        }
    )
    # 03-09 09:00 opened and became overdue; a session on 03-12 restarts the clock
    overdue = status_at(schedule, t(11), [given(t(2), "1")], instrument="phq9")
    assert overdue.status == "overdue"
    after = status_at(schedule, t(12, 10), [given(t(2), "1"), given(t(12), "2")], instrument="phq9")
    assert (after.status, after.next_due_at) == ("upcoming", t(19))


def test_every_from_the_last_session_waits_until_it_is_booked() -> None:
    schedule = one(
        {"instrument": "phq9", "when": "every", "every_days": 30, "starts": "last_session"}
    )
    waiting = status_at(schedule, t(3), [given(t(2), "1"), booked(t(4), "2")], instrument="phq9")
    assert (waiting.status, waiting.next_due_at) == ("upcoming", None)
    assert "last session of the course, which is not booked yet" in waiting.reason
    course = [given(t(2), "1"), booked(t(4), "2", last=True)]
    planned = status_at(schedule, t(3), course, instrument="phq9")
    assert planned.next_due_at == datetime(2026, 4, 3, 9, tzinfo=UTC)  # 03-04 + 30 days


# --------------------------------------------------------------------------- stop


def test_stop_on_a_date() -> None:
    schedule = one(
        {"instrument": "phq9", "when": "every", "every_days": 7, "starts": "schedule_start"},
        stop={"until": "2026-03-20T00:00:00+00:00"},
    )
    assert status_at(schedule, t(19, 23, 59), instrument="phq9").status == "overdue"  # 03-15
    stopped = status_at(schedule, t(20, 0), instrument="phq9")
    assert stopped.status == "stopped"
    assert stopped.reason == "stopped: the stop date 2026-03-20 00:00 UTC was reached"
    # 03-15 filled: the next (03-22) would open after the stop, so nothing is next
    last = status_at(schedule, t(16), measured=[t(15, 10)], instrument="phq9")
    assert (last.status, last.next_due_at) == ("satisfied", None)


def test_stop_n_days_after_the_plan_ends() -> None:
    schedule = one(
        {"instrument": "phq9", "when": "every", "every_days": 7, "starts": "schedule_start"},
        stop={"after_plan_end_days": 30},
    )
    end = PlanEnd(at=t(10, 12), stopped=False)  # completed 2026-03-10 12:00
    # stops 2026-04-09 12:00
    assert (
        status_at(
            schedule, datetime(2026, 4, 9, 11, 59, tzinfo=UTC), instrument="phq9", plan_end=end
        ).status
        != "stopped"
    )
    s = status_at(schedule, datetime(2026, 4, 9, 12, tzinfo=UTC), instrument="phq9", plan_end=end)
    assert s.status == "stopped"
    assert "the plan ended 2026-03-10 12:00 UTC; the schedule ran 30 days after" in s.reason


def test_stop_when_the_plan_is_stopped_but_not_when_it_completes() -> None:
    schedule = one(
        {"instrument": "phq9", "when": "every", "every_days": 7, "starts": "schedule_start"},
        stop={"when_plan_stopped": True, "after_plan_end_days": 60},
    )
    completed = status_at(schedule, t(12), instrument="phq9", plan_end=PlanEnd(t(10), False))
    assert completed.status != "stopped"
    stopped = status_at(schedule, t(12), instrument="phq9", plan_end=PlanEnd(t(10), True))
    assert stopped.reason == "stopped: the plan was stopped 2026-03-10 09:00 UTC"


# --------------------------------------------------------------------------- time


def test_times_in_other_zones_are_the_same_instants_in_utc() -> None:
    cet, ist = timezone(timedelta(hours=1)), timezone(timedelta(hours=5, minutes=30))
    schedule = one({"instrument": "nrs_pain", "when": "after_each_session", "offset_hours": 24})
    # dosing 10:00+01:00 = 09:00 UTC -> due 2026-03-03 09:00 UTC
    session = SessionTime(at=datetime(2026, 3, 2, 10, 0, tzinfo=cet), given=True, key="1")
    now = datetime(2026, 3, 3, 10, 30, tzinfo=cet)  # 09:30 UTC
    s = status_at(schedule, now, [session])
    assert (s.status, s.occurrence.opens_at) == ("due", t(3))
    assert s.occurrence.opens_at.tzinfo is UTC
    # 14:29+05:30 = 08:59 UTC: one minute before it opened
    early = status_at(schedule, now, [session], measured=[datetime(2026, 3, 3, 14, 29, tzinfo=ist)])
    assert early.status == "due"
    on_time = status_at(
        schedule, now, [session], measured=[datetime(2026, 3, 3, 14, 31, tzinfo=ist)]
    )
    assert on_time.status == "satisfied"


def test_naive_times_and_future_measurements() -> None:
    schedule = one({"instrument": "nrs_pain", "when": "baseline"})
    with pytest.raises(InvalidInput, match="now 2026-03-02T09:00:00 has no time zone"):
        status_at(schedule, datetime(2026, 3, 2, 9))
    # a measurement dated after now is not counted
    assert status_at(schedule, t(1, 12), measured=[t(3)]).status == "due"


def test_an_item_grace_overrides_the_schedule_grace() -> None:
    schedule = one(
        {
            "instrument": "nrs_pain",
            "when": "after_each_session",
            "offset_hours": 24,
            "grace_hours": 2,
        },
        grace_hours=48,
    )
    s = status_at(schedule, t(3, 11), [given(t(2), "1")])
    assert (s.status, s.occurrence.overdue_at) == ("overdue", t(3, 11))


def test_the_shipped_template_names_domains_and_no_intervals() -> None:
    [immpact] = load_templates()
    assert immpact.doi == "10.1016/j.pain.2004.09.012"
    assert [d.domain for d in immpact.domains] == [
        "pain intensity",
        "physical functioning",
        "emotional functioning",
        "participant ratings of global improvement",
    ]
    emotional = immpact.domains[2]
    assert emotional.instrument is None and "Beck Depression Inventory" in emotional.recommended
    assert not hasattr(immpact, "interval")


def test_before_each_session_waits_for_a_booking() -> None:
    schedule = one({"instrument": "phq9", "when": "before_each_session", "lead_hours": 24})
    s = status_at(schedule, t(3), [given(t(2), "1")], measured=[t(1, 12)], instrument="phq9")
    assert (s.status, s.occurrence.key) == ("satisfied", "phq9/before/1")
    nothing = status_at(schedule, t(3), [], instrument="phq9")
    assert (nothing.status, nothing.next_due_at) == ("upcoming", None)
    assert nothing.reason == "waiting: no further session is booked yet"
