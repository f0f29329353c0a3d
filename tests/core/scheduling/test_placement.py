"""Where a plan's sessions land on the clinic's open days (worked by hand on a calendar).

March 2026: Thu 5, Fri 6, Sat 7, Sun 8, Mon 9 ... Sat 14, Sun 15, Mon 16.
"""

from __future__ import annotations

import datetime as dt

import pytest

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.scheduling import (
    ClinicHours,
    OpeningHours,
    PlannedDay,
    parse_clinic_hours,
    place_sessions,
)

WEEKDAYS = {d: OpeningHours() for d in range(5)}
DAILY_10 = [PlannedDay(n, n) for n in range(1, 11)]  # crps-outpatient: daily for 10 days
#: depression-iv: twice weekly on days 1 and 4 of each week (cycle of 7 days)
TWICE_WEEKLY = [PlannedDay(n, 1 + 7 * ((n - 1) // 2) + 3 * ((n - 1) % 2)) for n in range(1, 7)]


def _dates(placements: tuple[object, ...]) -> list[str]:
    return [f"{p.date:%a %d}" for p in placements]  # type: ignore[attr-defined]


def _gaps_kept(sessions: list[PlannedDay], placements: tuple[object, ...]) -> bool:
    days = {s.number: s.day for s in sessions}
    ordered = sorted(placements, key=lambda p: p.day)  # type: ignore[attr-defined]
    return all(
        (b.date - a.date).days >= days[b.number] - days[a.number]  # type: ignore[attr-defined]
        for a, b in zip(ordered, ordered[1:], strict=False)
    )


def test_a_daily_course_across_a_weekend_lands_monday_to_friday() -> None:
    hours = ClinicHours(days=WEEKDAYS, max_shift_days=4)
    placed = place_sessions(sessions=DAILY_10, start=dt.date(2026, 3, 5), hours=hours)
    assert _dates(placed) == [
        "Thu 05", "Fri 06", "Mon 09", "Tue 10", "Wed 11",
        "Thu 12", "Fri 13", "Mon 16", "Tue 17", "Wed 18",
    ]  # fmt: skip
    assert all(p.date.weekday() < 5 for p in placed)
    assert _gaps_kept(DAILY_10, placed)
    # session 3 was planned on Saturday 7 March: moved 2 days, with the reason
    third = placed[2]
    assert (third.planned, third.shift_days) == (dt.date(2026, 3, 7), 2)
    assert third.why_moved == "closed on Saturdays (open Mon-Fri)"
    # session 5 (Monday 9) was open but had to follow session 4 by a day
    assert placed[4].why_moved == (
        "it must stay 1 day(s) after session 4, which moved from Sun 08 Mar 2026 to Tue 10 Mar 2026"
    )
    assert placed[0].why_moved is None and placed[0].shift_days == 0


def test_a_twice_weekly_course_keeps_its_spacing_across_weekends() -> None:
    assert [s.day for s in TWICE_WEEKLY] == [1, 4, 8, 11, 15, 18]
    hours = ClinicHours(days=WEEKDAYS, max_shift_days=2)
    placed = place_sessions(sessions=TWICE_WEEKLY, start=dt.date(2026, 3, 5), hours=hours)
    # day 4 is Sunday 8 -> Monday 9; day 8 (Thu 12) must be 4 days after it -> Fri 13;
    # day 11 (Sun 15) 3 days after that -> Mon 16; day 15 (Thu 19) -> Fri 20; day 18 -> Mon 23
    assert _dates(placed) == ["Thu 05", "Mon 09", "Fri 13", "Mon 16", "Fri 20", "Mon 23"]
    assert _gaps_kept(TWICE_WEEKLY, placed)


def test_a_closure_day_moves_the_session_and_those_after_it() -> None:
    hours = parse_clinic_hours(
        {
            "opening": {"days": ["mon", "tue", "wed", "thu", "fri"]},
            "closure": [{"date": dt.date(2026, 3, 11), "label": "Staff training"}],
            "moves": {"max_shift_days": 3},
        }
    )
    five = DAILY_10[:5]
    placed = place_sessions(sessions=five, start=dt.date(2026, 3, 9), hours=hours)
    assert _dates(placed) == ["Mon 09", "Tue 10", "Thu 12", "Fri 13", "Mon 16"]
    assert placed[2].why_moved == "closed: Staff training"


def test_a_move_beyond_the_clinics_limit_is_refused_naming_the_session_and_day() -> None:
    hours = ClinicHours(days=WEEKDAYS, max_shift_days=3)
    # session 8 (planned Thu 12) would land on Mon 16: 4 days later
    with pytest.raises(InvalidInput) as refused:
        place_sessions(sessions=DAILY_10, start=dt.date(2026, 3, 5), hours=hours)
    message = str(refused.value)
    assert message.startswith(
        "nothing was booked: session 8 (day 8) is planned on Thu 12 Mar 2026: it must stay "
        "1 day(s) after session 7, which moved from Wed 11 Mar 2026 to Fri 13 Mar 2026;"
    ), message
    assert "Mon 16 Mar 2026, 4 day(s) after its planned day" in message
    assert "more than the 3 day(s) the clinic hours file lets a session move" in message
    assert message.endswith("book the sessions one at a time on days you choose")


def test_without_a_limit_no_session_is_moved() -> None:
    hours = ClinicHours(days=WEEKDAYS)
    refused = r"session 3 \(day 3\) is planned on Sat 07 Mar 2026: closed on Saturdays"
    with pytest.raises(InvalidInput, match=refused + r".*sets no limit on how far a session"):
        place_sessions(sessions=DAILY_10, start=dt.date(2026, 3, 5), hours=hours)
    # a course that misses the weekend needs no move
    placed = place_sessions(sessions=DAILY_10[:5], start=dt.date(2026, 3, 9), hours=hours)
    assert _dates(placed) == ["Mon 09", "Tue 10", "Wed 11", "Thu 12", "Fri 13"]


def test_without_opening_days_every_day_is_bookable() -> None:
    placed = place_sessions(sessions=DAILY_10, start=dt.date(2026, 3, 5), hours=ClinicHours())
    assert [p.date.day for p in placed] == list(range(5, 15))
    assert all(p.why_moved is None for p in placed)


def test_a_move_that_breaks_the_spacing_before_a_booked_session_is_refused() -> None:
    hours = ClinicHours(days=WEEKDAYS, max_shift_days=4)
    # session 4 is already booked on Monday 9; session 3 (Sat 7) can only move to Mon 9
    refused = r"session 3 \(day 3\) would land on Mon 09 Mar 2026, less than 1 day\(s\) before"
    with pytest.raises(InvalidInput, match=refused + r" session 4, already booked on Mon 09"):
        place_sessions(
            sessions=DAILY_10[:5],
            start=dt.date(2026, 3, 5),
            hours=hours,
            booked={4: dt.date(2026, 3, 9)},
        )
    # booked on Tuesday 10 instead, session 3 fits on Monday 9; session 5 follows on Wed 11
    placed = place_sessions(
        sessions=DAILY_10[:5],
        start=dt.date(2026, 3, 5),
        hours=hours,
        booked={4: dt.date(2026, 3, 10)},
    )
    assert _dates(placed) == ["Thu 05", "Fri 06", "Mon 09", "Tue 10", "Wed 11"]
    assert placed[3].already_booked


def test_opening_hours_and_closed_days_are_named() -> None:
    hours = parse_clinic_hours(
        {
            "opening": {
                "days": ["mon", "fri"],
                "opens": "08:00",
                "closes": "18:00",
                "hours": {"fri": {"opens": "08:00", "closes": "14:00"}},
            }
        }
    )
    assert hours.opening_days_text() == "Mon, Fri"
    monday, friday = dt.date(2026, 3, 9), dt.date(2026, 3, 13)
    assert hours.outside_hours(monday, dt.time(9), dt.time(15)) is None
    assert hours.outside_hours(friday, dt.time(9), dt.time(15)) == (
        "09:00 to 15:00 is outside the clinic's hours on Fridays (08:00-14:00)"
    )
    assert hours.outside_hours(monday, dt.time(7, 30), dt.time(12)) is not None
    assert hours.outside_hours(monday, dt.time(17), None) is not None  # past midnight
    assert hours.closed_because(dt.date(2026, 3, 10)) == "closed on Tuesdays (open Mon, Fri)"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"opening": {"days": ["mon", "sunday"]}}, "field 'opening.days': unknown day 'sunday'"),
        ({"opening": {"days": []}}, "field 'opening.days': must be a non-empty list"),
        (
            {"opening": {"days": ["mon"], "opens": "18:00", "closes": "08:00"}},
            "field 'opening.closes': 08:00 must be after opens 18:00",
        ),
        ({"opening": {"days": ["mon"], "opens": "8am", "closes": "18:00"}}, "'8am' is not a time"),
        ({"closure": [{"date": "2026-13-01", "label": "x"}]}, "must be a date written YYYY-MM-DD"),
        ({"closure": [{"date": dt.date(2026, 1, 1)}]}, "field 'closure[0].label': is missing"),
        (
            {"closure": [{"from": dt.date(2026, 1, 5), "to": dt.date(2026, 1, 1), "label": "x"}]},
            "2026-01-01 is before from 2026-01-05",
        ),
        ({"moves": {"max_shift_days": -1}}, "must be an integer >= 0"),
        ({"hours": {}}, "field 'hours': unknown field"),
    ],
    ids=repr,
)
def test_a_bad_clinic_hours_file_is_refused_naming_the_field(
    data: dict[str, object], problem: str
) -> None:
    with pytest.raises(DataFileError) as refused:
        parse_clinic_hours(data, path="hours.toml")
    assert str(refused.value).startswith("clinic hours file hours.toml: ")
    assert problem in str(refused.value)


def test_the_demo_file_is_valid_and_opens_monday_to_friday() -> None:
    from ketacare.clinic.demo_policy import DEMO_CLINIC_HOURS_FILE
    from ketacare.core.scheduling import load_clinic_hours

    hours = load_clinic_hours(path=DEMO_CLINIC_HOURS_FILE)
    assert sorted(hours.days) == [0, 1, 2, 3, 4]
    assert hours.days[0] == OpeningHours(dt.time(8), dt.time(18))
    assert hours.closed_because(dt.date(2026, 12, 25)) == "closed: Christmas (EXAMPLE closure)"
