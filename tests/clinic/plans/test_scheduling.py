"""Scheduling on the clinic's days: book a course on the plan's dates, move and cancel one
appointment (kept as history, audited), open a session off its booked day with a reason.

The clinic opens Monday to Friday 08:00-18:00 (Europe/Amsterdam, the test settings' zone).
March 2026: Thu 5, Fri 6, Sat 7, Sun 8, Mon 9 ... Fri 13, Sat 14, Sun 15, Mon 16.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from plan_helpers import _signed, book_thursday_and_friday

HOURS = """
[opening]
days = ["mon", "tue", "wed", "thu", "fri"]
opens = "08:00"
closes = "18:00"

[[closure]]
date = 2026-03-18
label = "Staff training"

[moves]
max_shift_days = {max_shift}
"""


def _hours(app: Any, tmp_path: Path, max_shift: int = 5) -> None:
    path = tmp_path / "clinic-hours.toml"
    path.write_text(HOURS.format(max_shift=max_shift))
    app.state.ctx.settings.clinic_hours_file = path


def _local(value: str) -> str:
    """An API time shown as the clinic's local day and clock, e.g. 'Mon 09 09:00'."""
    from zoneinfo import ZoneInfo

    at = datetime.fromisoformat(value).astimezone(ZoneInfo("Europe/Amsterdam"))
    return f"{at:%a %d %H:%M}"


def _course(client: Any, clinic: dict[str, Any], plan_id: int, **body: Any) -> Any:
    return client.post(
        f"/api/v1/plans/{plan_id}/appointments/course",
        headers=clinic["team"]["nurse"],
        json={"chair_id": 1, "at_time": "09:00", **body},
    )


def _appointments(app: Any, plan_id: int) -> list[Any]:
    from ketacare.clinic.plans.orm import Appointment

    with app.state.ctx.sessions() as session:
        return list(
            session.scalars(
                select(Appointment).where(Appointment.plan_id == plan_id).order_by(Appointment.id)
            )
        )


def _audit(app: Any, action: str, resource_id: int) -> list[Any]:
    from ketacare.clinic.audit.orm import AuditEvent

    with app.state.ctx.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == action,
                    AuditEvent.resource_type == "appointment",
                    AuditEvent.resource_id == str(resource_id),
                )
            )
        )


def test_the_plan_page_shows_planned_sessions_on_the_days_booking_will_give(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path, login_page: Any
) -> None:
    # the same course as below, before it is booked: its table showed Sat 7 and Sun 8 (the
    # protocol's days 3 and 4), where no session can be booked; it now shows the open days
    # booking gives, with why, and then booking gives exactly those days
    _hours(app, tmp_path, max_shift=5)
    plan = _signed(client, clinic, start_date="2026-03-05")  # a Thursday; 10 daily sessions
    login_page("nurse")
    page = re.sub(r"\s+", " ", unescape(client.get(f"/plans/{plan['id']}").text))
    planned = re.findall(r"planned (\w{3} \d{2}) \w{3} 2026", page)
    assert planned == [
        "Thu 05", "Fri 06", "Mon 09", "Tue 10", "Wed 11",
        "Thu 12", "Fri 13", "Mon 16", "Tue 17", "Thu 19",
    ]  # fmt: skip
    assert "planned Mon 09 Mar 2026 (moved from Sat 07 Mar 2026: closed on Saturdays" in page
    assert "Sat 07" not in planned and "Sun 08" not in planned
    r = _course(client, clinic, plan["id"])
    assert r.status_code == 201, r.text
    assert [_local(a["starts_at"])[:6] for a in r.json()] == planned


def test_planned_dates_follow_a_session_already_booked_as_booking_will(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path, login_page: Any
) -> None:
    # session 1 (planned Thu 5) booked a day late, Fri 6: session 2 keeps its day's spacing
    # (Sat 7, closed: Mon 9), and so on; the page shows what booking the rest then gives.
    # Session 10 (planned Sat 14) lands on Fri 20, 6 days later: the clinic allows 7.
    _hours(app, tmp_path, max_shift=7)
    plan = _signed(client, clinic, start_date="2026-03-05")
    r = client.post(
        f"/api/v1/plans/{plan['id']}/appointments",
        headers=clinic["team"]["nurse"],
        json={"session_number": 1, "chair_id": 1, "starts_at": "2026-03-06T09:00:00+01:00"},
    )
    assert r.status_code == 201, r.text
    login_page("nurse")
    page = re.sub(r"\s+", " ", unescape(client.get(f"/plans/{plan['id']}").text))
    planned = re.findall(r"planned (\w{3} \d{2}) \w{3} 2026", page)
    assert planned[0] == "Mon 09" and len(planned) == 9
    r = _course(client, clinic, plan["id"])
    assert r.status_code == 201, r.text
    assert [_local(a["starts_at"])[:6] for a in r.json()] == planned


def test_a_course_across_a_weekend_is_booked_monday_to_friday_on_the_plans_dates(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path
) -> None:
    # session 10 (planned Sat 14) lands on Thu 19: 5 days later (the weekends and Wed 18)
    _hours(app, tmp_path, max_shift=5)
    plan = _signed(client, clinic, start_date="2026-03-05")  # a Thursday; 10 daily sessions
    r = _course(client, clinic, plan["id"])
    assert r.status_code == 201, r.text
    booked = [_local(a["starts_at"]) for a in r.json()]
    # the plan's dates, not today's (the clock says Mon 2 March); weekends skipped, the
    # closure on Wed 18 skipped, one day between sessions kept; 4 h + 120 min in the chair
    assert booked == [
        "Thu 05 09:00", "Fri 06 09:00", "Mon 09 09:00", "Tue 10 09:00", "Wed 11 09:00",
        "Thu 12 09:00", "Fri 13 09:00", "Mon 16 09:00", "Tue 17 09:00", "Thu 19 09:00",
    ]  # fmt: skip
    assert {_local(a["ends_at"])[-5:] for a in r.json()} == {"15:00"}
    # each moved session keeps why in its history
    third = client.get(f"/api/v1/appointments/{r.json()[2]['id']}", headers=clinic["team"]["nurse"])
    (event,) = third.json()["history"]
    assert event["kind"] == "booked"
    assert event["reason"] == "planned Sat 07 Mar 2026: closed on Saturdays (open Mon-Fri)"
    assert len(_audit(app, "book", r.json()[0]["id"])) == 1


def test_a_course_the_clinics_days_cannot_hold_is_refused_and_nothing_is_booked(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path
) -> None:
    _hours(app, tmp_path, max_shift=3)
    plan = _signed(client, clinic, start_date="2026-03-05")
    r = _course(client, clinic, plan["id"])
    assert r.status_code == 422
    said = r.json()["detail"]
    assert said.startswith("nothing was booked: session 8 (day 8) is planned on Thu 12 Mar 2026")
    assert "more than the 3 day(s) the clinic hours file lets a session move" in said
    assert _appointments(app, plan["id"]) == []
    # a clock time whose chair time runs past closing is refused the same way
    _hours(app, tmp_path)
    r = _course(client, clinic, plan["id"], at_time="14:00")
    assert r.status_code == 422
    assert "session 1 on Thu 05 Mar 2026 holds its chair 14:00 to 20:00" in r.json()["detail"]
    assert "outside the clinic's hours on Thursdays (08:00-18:00)" in r.json()["detail"]
    assert _appointments(app, plan["id"]) == []
    # a first day other than the plan's start date is refused: table and bookings agree
    r = _course(client, clinic, plan["id"], first_day="2026-03-09")
    assert r.status_code == 422 and "starts on Thu 05 Mar 2026" in r.json()["detail"]


def test_one_booking_on_a_closed_day_is_refused(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path
) -> None:
    _hours(app, tmp_path)
    plan = _signed(client, clinic)
    r = client.post(
        f"/api/v1/plans/{plan['id']}/appointments",
        headers=clinic["team"]["nurse"],
        json={"session_number": 1, "chair_id": 1, "starts_at": "2026-03-07T09:00:00+01:00"},
    )
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "session 1 cannot be booked on Sat 07 Mar 2026: closed on Saturdays (open Mon-Fri)"
    )


def test_moving_and_cancelling_one_appointment_keeps_its_history_and_is_audited(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path
) -> None:
    _hours(app, tmp_path)
    nurse = clinic["team"]["nurse"]
    plan = _signed(client, clinic, start_date="2026-03-09")
    booked = _course(client, clinic, plan["id"]).json()
    second = booked[1]["id"]  # Tue 10 09:00
    url = f"/api/v1/appointments/{second}"
    move = {"starts_at": "2026-03-10T11:30:00+01:00", "chair_id": 2}
    # no reason, a closed day, too soon after session 1, a clash: refused, nothing changes
    r = client.post(f"{url}/move", headers=nurse, json={**move, "reason": " "})
    assert r.status_code == 422 and "needs a reason" in r.json()["detail"]
    r = client.post(
        f"{url}/move",
        headers=nurse,
        json={"starts_at": "2026-03-14T09:00:00+01:00", "reason": "patient asked"},
    )
    assert r.status_code == 422 and "closed on Saturdays" in r.json()["detail"]
    r = client.post(
        f"{url}/move",
        headers=nurse,
        json={"starts_at": "2026-03-09T16:00:00+01:00", "reason": "patient asked"},
    )
    assert r.status_code == 422 and "outside the clinic's hours" in r.json()["detail"]
    r = client.post(
        f"{url}/move",
        headers=nurse,
        json={"starts_at": "2026-03-09T08:00:00+01:00", "chair_id": 2, "reason": "asked"},
    )
    assert r.status_code == 409 and "too soon" in r.json()["detail"]
    assert _local(client.get(url, headers=nurse).json()["starts_at"]) == "Tue 10 09:00"
    # the move, with a reason
    r = client.post(f"{url}/move", headers=nurse, json={**move, "reason": "patient works late"})
    assert r.status_code == 200, r.text
    assert _local(r.json()["starts_at"]) == "Tue 10 11:30"
    assert _local(r.json()["ends_at"]) == "Tue 10 17:30" and r.json()["chair_id"] == 2
    history = client.get(url, headers=nurse).json()["history"]
    assert [e["kind"] for e in history] == ["booked", "moved"]
    assert _local(history[1]["starts_at_before"]) == "Tue 10 09:00"
    assert history[1]["chair_id_before"] == 1 and history[1]["reason"] == "patient works late"
    (audited,) = _audit(app, "move", second)
    assert audited.detail["reason"] == "patient works late"
    assert audited.patient_id == clinic["pid"]
    # the cancellation keeps the row and its history
    r = client.post(f"{url}/cancel", headers=nurse, json={"reason": "no"})
    assert r.status_code == 422 and "needs a reason" in r.json()["detail"]
    r = client.post(f"{url}/cancel", headers=nurse, json={"reason": "patient unwell"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    shown = client.get(url, headers=nurse).json()
    assert shown["status"] == "cancelled"
    assert [e["kind"] for e in shown["history"]] == ["booked", "moved", "cancelled"]
    assert len(_audit(app, "cancel", second)) == 1
    r = client.post(f"{url}/cancel", headers=nurse, json={"reason": "patient unwell"})
    assert r.status_code == 409 and "is cancelled" in r.json()["detail"]
    assert len(_appointments(app, plan["id"])) == 10  # none deleted
    # the therapist reads the calendar but does not move bookings
    therapist = clinic["team"]["therapist"]
    r = client.post(f"/api/v1/appointments/{booked[2]['id']}/move", headers=therapist, json=move)
    assert r.status_code == 403


def test_the_history_is_append_only_in_the_database(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path
) -> None:
    _hours(app, tmp_path)
    plan = _signed(client, clinic, start_date="2026-03-09")
    assert _course(client, clinic, plan["id"]).status_code == 201
    for statement in (
        "UPDATE appointment_events SET reason = 'x'",
        "DELETE FROM appointment_events",
    ):
        with app.state.ctx.sessions() as session, pytest.raises(Exception, match="append-only"):
            session.execute(text(statement))
            session.flush()


def test_a_session_opened_off_its_booked_day_needs_a_reason(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_api: Any
) -> None:
    nurse = clinic["team"]["nurse"]
    plan = _signed(client, clinic)
    for number, day in ((1, "2026-03-05"), (2, "2026-03-06"), (3, "2026-03-07")):
        r = client.post(
            f"/api/v1/plans/{plan['id']}/appointments",
            headers=nurse,
            json={"session_number": number, "chair_id": 1, "starts_at": f"{day}T09:00:00+01:00"},
        )
        assert r.status_code == 201, r.text
    url = f"/api/v1/plans/{plan['id']}/sessions"
    # session 1 on its booked day: the contract as before, no reason asked
    clock.now = datetime(2026, 3, 5, 8, 30, tzinfo=UTC)
    nurse = login_api("nurse")  # a token of that day
    r = client.post(url, headers=nurse, json={"session_number": 1})
    assert r.status_code == 201, r.text
    assert r.json()["booked_day"] is None and r.json()["off_schedule_reason"] is None
    # session 2 is booked for Friday 6; opened on Thursday 5 without a reason: refused
    clock.now = datetime(2026, 3, 5, 14, 0, tzinfo=UTC)
    r = client.post(url, headers=nurse, json={"session_number": 2})
    assert r.status_code == 422
    assert r.json()["detail"] == (
        f"session 2 of plan {plan['id']} is booked for Fri 06 Mar 2026, not Thu 05 Mar 2026: "
        "opening it on another day needs a reason (off_schedule_reason)"
    )
    from ketacare.clinic.sessions.orm import DosingSession

    with app.state.ctx.sessions() as session:
        opened = session.scalars(
            select(DosingSession.session_number).where(DosingSession.plan_id == plan["id"])
        ).all()
    assert opened == [1]  # nothing stored
    reason = "patient travels on Friday; physician agreed"
    r = client.post(url, headers=nurse, json={"session_number": 2, "off_schedule_reason": reason})
    assert r.status_code == 201, r.text
    assert r.json()["booked_day"] == "2026-03-06" and r.json()["off_schedule_reason"] == reason
    # the record shows it
    from conftest import page_login

    page_login(client, "nurse")
    summary = client.get(f"/sessions/{r.json()['id']}/summary").text
    assert "Booked for Fri 06 Mar 2026; opened on another day. Reason: " + reason in summary
    # a session with no booking opens as before
    r = client.post(url, headers=nurse, json={"session_number": 4})
    assert r.status_code == 201 and r.json()["booked_day"] is None


def test_the_calendar_shows_chairs_by_week_and_day_with_therapy_and_closed_days(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path, login_page: Any
) -> None:
    _hours(app, tmp_path)
    team = clinic["team"]
    plan = _signed(client, clinic, start_date="2026-03-05")
    assert _course(client, clinic, plan["id"]).status_code == 201
    therapist_id = client.get("/api/v1/users/me", headers=team["therapist"]).json()["id"]
    r = client.post(
        f"/api/v1/plans/{plan['id']}/therapy",
        headers=team["physician"],
        json={"kind": "integration", "therapist_id": therapist_id, "planned_date": "2026-03-09"},
    )
    assert r.status_code == 201, r.text
    login_page("nurse")
    week = client.get("/calendar?week=2026-03-05").text
    assert "Chairs, week of 02 March 2026" in week
    assert "Open Mon-Fri, 08:00-18:00." in week
    assert week.count('class="appt"') == 2  # Thu 5, Fri 6 and nothing on the weekend
    assert 'class="appt therapy"' not in week
    next_week = client.get("/calendar?week=2026-03-09").text
    assert next_week.count('class="appt therapy"') == 1  # the integration session on Mon 9
    assert "closed on Saturdays (open Mon-Fri)" in week
    day = client.get("/calendar?day=2026-03-09").text
    assert "Chairs on Monday 09 March 2026" in day
    assert "09:00–15:00" in day and "session 3" in day
    assert "Integration · " in day and "therapy" in day
    assert "Times in Europe/Amsterdam." in day and day.count("Europe/Amsterdam") == 1
    closed = client.get("/calendar?day=2026-03-18").text
    assert "Clinic closed: Staff training." in closed
    # without opening days the calendar says so loudly
    app.state.ctx.settings.clinic_hours_file = None
    assert "Opening days are not set" in client.get("/calendar").text


def _three_of_ten_begun(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path, clock: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A signed plan's ten sessions booked from Mon 9 March, and the clock on Wed 11 March
    12:00 local: sessions 1-3 (Mon 9 - Wed 11 09:00) have begun, the seven from Thu 12
    have not. The plan and its bookings."""
    _hours(app, tmp_path)
    plan = _signed(client, clinic, start_date="2026-03-09")
    booked = _course(client, clinic, plan["id"]).json()
    assert len(booked) == 10
    clock.now = datetime(2026, 3, 11, 11, 0, tzinfo=UTC)
    return plan, booked


def test_retiring_a_record_cancels_its_bookings_to_come_with_the_reason(
    app: Any,
    client: Any,
    clinic: dict[str, Any],
    tmp_path: Path,
    clock: Any,
    login_api: Any,
) -> None:
    plan, booked = _three_of_ten_begun(app, client, clinic, tmp_path, clock)
    nurse, physician = login_api("nurse"), login_api("physician")
    r = client.post(
        f"/api/v1/patients/{clinic['pid']}/retire",
        headers=physician,
        json={"reason": "duplicate of another record"},
    )
    assert r.status_code == 200, r.text
    statuses = [a.status for a in _appointments(app, plan["id"])]
    assert statuses == ["booked"] * 3 + ["cancelled"] * 7
    last = client.get(f"/api/v1/appointments/{booked[-1]['id']}", headers=nurse).json()
    assert [e["kind"] for e in last["history"]] == ["booked", "cancelled"]
    assert last["history"][-1]["reason"] == (
        "the patient's record was retired as entered in error: duplicate of another record"
    )
    assert len(_audit(app, "cancel", booked[-1]["id"])) == 1
    assert _audit(app, "cancel", booked[2]["id"]) == []  # begun: kept as it was


def test_stopping_a_plan_cancels_its_bookings_to_come_and_leaves_a_passed_one_to_record(
    app: Any,
    client: Any,
    clinic: dict[str, Any],
    tmp_path: Path,
    clock: Any,
    login_api: Any,
) -> None:
    """A plan stopped mid-course: the seven bookings not begun are cancelled, each with the
    stop's reason and audited; the three whose start has passed stay booked (no session
    was opened: whether the patient came is still to be recorded, not rewritten as a
    cancellation) and can be marked not attended afterwards."""
    from ketacare.clinic.followup.schedules import _sessions
    from ketacare.clinic.plans.orm import Plan

    def session_times() -> list[str]:
        """The sessions the plan's outcome schedule counts as given or to come."""
        with app.state.ctx.sessions() as session:
            return [t.key for t in _sessions(session, [session.get(Plan, plan["id"])])]

    plan, booked = _three_of_ten_begun(app, client, clinic, tmp_path, clock)
    assert len(session_times()) == 10  # booked, to come or not yet recorded
    nurse, physician = login_api("nurse"), login_api("physician")
    url = f"/api/v1/plans/{plan['id']}/status"
    assert client.post(url, headers=physician, json={"action": "activate"}).status_code == 200
    r = client.post(
        url, headers=physician, json={"action": "stop", "reason": "hypertension at session 2"}
    )
    assert r.status_code == 200 and r.json()["status"] == "stopped", r.text
    statuses = [a.status for a in _appointments(app, plan["id"])]
    assert statuses == ["booked"] * 3 + ["cancelled"] * 7
    last = client.get(f"/api/v1/appointments/{booked[-1]['id']}", headers=nurse).json()
    assert [e["kind"] for e in last["history"]] == ["booked", "cancelled"]
    assert last["history"][-1]["reason"] == "plan stopped: hypertension at session 2"
    assert all(len(_audit(app, "cancel", b["id"])) == 1 for b in booked[3:])
    assert _audit(app, "cancel", booked[2]["id"]) == []
    # no session of the stopped plan is to come: questionnaires wait for none of them
    assert session_times() == []
    # the passed one is recorded as what happened
    r = client.post(
        f"/api/v1/appointments/{booked[2]['id']}/not-attended",
        headers=nurse,
        json={"reason": "told by phone the plan was stopped"},
    )
    assert r.status_code == 200 and r.json()["status"] == "not_attended", r.text


def test_retiring_a_record_cancels_its_therapy_sessions_to_come_with_the_reason(
    app: Any,
    client: Any,
    clinic: dict[str, Any],
    tmp_path: Path,
    clock: Any,
    login_api: Any,
    login_page: Any,
) -> None:
    from ketacare.clinic.audit.orm import AuditEvent
    from ketacare.clinic.plans.orm import TherapySession

    _hours(app, tmp_path)
    team = clinic["team"]
    plan = _signed(client, clinic, start_date="2026-03-09")
    therapist_id = client.get("/api/v1/users/me", headers=team["therapist"]).json()["id"]
    ids = {}
    for day in ("2026-03-10", "2026-03-11", "2026-03-13", "2026-03-16"):
        r = client.post(
            f"/api/v1/plans/{plan['id']}/therapy",
            headers=team["physician"],
            json={"kind": "integration", "therapist_id": therapist_id, "planned_date": day},
        )
        assert r.status_code == 201, r.text
        ids[day] = r.json()["id"]
    # the session of Mon 16 is not documented ahead of its day: it stays planned
    note = {
        "goals": "g",
        "what_came_up": "w",
        "integration_steps": "i",
        "risk_check": "none",
        "risk_concern": False,
    }
    r = client.post(
        f"/api/v1/therapy/{ids['2026-03-16']}/note", headers=team["therapist"], json=note
    )
    assert r.status_code == 422 and "planned for Mon 16 Mar 2026" in r.json()["detail"]
    # the session of Tue 10 is held and documented on its day: it stays documented
    clock.now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    r = client.post(
        f"/api/v1/therapy/{ids['2026-03-10']}/note", headers=login_api("therapist"), json=note
    )
    assert r.status_code == 200, r.text
    # Wed 11 March 12:00 local: Tue 10 is past, Wed 11 is today (it may have begun),
    # Fri 13 is still to come
    clock.now = datetime(2026, 3, 11, 11, 0, tzinfo=UTC)
    physician = login_api("physician")
    r = client.post(
        f"/api/v1/patients/{clinic['pid']}/retire",
        headers=physician,
        json={"reason": "duplicate of another record"},
    )
    assert r.status_code == 200, r.text
    reason = "the patient's record was retired as entered in error: duplicate of another record"
    with app.state.ctx.sessions() as session:
        rows = {t.id: t for t in session.scalars(select(TherapySession))}
        audits = list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "cancel", AuditEvent.resource_type == "therapy_session"
                )
            )
        )
    physician_id = client.get("/api/v1/users/me", headers=physician).json()["id"]
    for day in ("2026-03-13", "2026-03-16"):
        future = rows[ids[day]]
        assert (future.status, future.cancel_reason) == ("cancelled", reason)
        assert (future.cancelled_at, future.cancelled_by) == (clock.now, physician_id)
    kept = rows[ids["2026-03-11"]]
    assert (kept.status, kept.cancelled_at, kept.cancel_reason) == ("planned", None, None)
    assert rows[ids["2026-03-10"]].status == "documented"
    assert rows[ids["2026-03-10"]].cancel_reason is None
    assert [(a.resource_id, a.detail) for a in audits] == [
        (str(ids["2026-03-13"]), {"reason": reason}),
        (str(ids["2026-03-16"]), {"reason": reason}),
    ]
    # the therapy page says so, with the reason; the calendar no longer shows it
    login_page("physician")
    page = client.get(f"/therapy/{ids['2026-03-13']}").text
    assert 'data-testid="therapy-cancelled"' in page
    assert "retired as entered in error: duplicate of another record" in page
    week = client.get("/calendar?week=2026-03-09").text
    assert week.count('href="/therapy/') == 2  # Tue 10 and Wed 11 (Mon 16 is next week)
    assert f'href="/therapy/{ids["2026-03-13"]}"' not in week


def _booked_thursday_and_friday(
    client: Any, clinic: dict[str, Any]
) -> tuple[dict[str, Any], list[int]]:
    """A signed plan with sessions 1 and 2 booked on chair 1, Thu 5 and Fri 6 March 09:00."""
    plan = _signed(client, clinic)
    return plan, book_thursday_and_friday(client, clinic, plan["id"])


def _neither_cancelled_nor_moved(client: Any, nurse: Any, url: str, status: str) -> None:
    """Cancelling and moving the appointment at ``url`` are refused, naming ``status``."""
    r = client.post(f"{url}/cancel", headers=nurse, json={"reason": "patient unwell"})
    assert r.status_code == 409 and f"is {status}" in r.json()["detail"]
    r = client.post(
        f"{url}/move",
        headers=nurse,
        json={"starts_at": "2026-03-05T11:00:00+01:00", "reason": "patient asked"},
    )
    assert r.status_code == 409 and f"is {status}" in r.json()["detail"]


def test_opening_a_booked_session_marks_its_appointment_attended_on_the_calendar(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_api: Any
) -> None:
    nurse = clinic["team"]["nurse"]
    plan, (first, second) = _booked_thursday_and_friday(client, clinic)
    clock.now = datetime(2026, 3, 5, 8, 30, tzinfo=UTC)  # Thu 5, 09:30 in Amsterdam
    nurse = login_api("nurse")
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sessions", headers=nurse, json={"session_number": 1}
    )
    assert r.status_code == 201, r.text
    session_id = r.json()["id"]
    shown = client.get(f"/api/v1/appointments/{first}", headers=nurse).json()
    assert shown["status"] == "attended"
    assert [e["kind"] for e in shown["history"]] == ["booked", "attended"]
    assert shown["history"][-1]["reason"] == f"dosing session {session_id} opened"
    (audited,) = _audit(app, "attend", first)
    assert audited.detail == {"session": session_id} and audited.patient_id == clinic["pid"]
    # the next booking is untouched
    assert client.get(f"/api/v1/appointments/{second}", headers=nurse).json()["status"] == "booked"
    assert _audit(app, "attend", second) == []
    # attended: it happened, so it is neither moved nor cancelled, and still holds its
    # chair and its place in the course
    url = f"/api/v1/appointments/{first}"
    _neither_cancelled_nor_moved(client, nurse, url, "attended")
    r = client.post(
        f"/api/v1/plans/{plan['id']}/appointments",
        headers=nurse,
        json={"session_number": 1, "chair_id": 2, "starts_at": "2026-03-05T13:00:00+01:00"},
    )
    assert r.status_code == 409 and "already booked" in r.json()["detail"]
    # the calendar shows it attended (day and week), the next one not
    from conftest import page_login

    page_login(client, "nurse")
    day = client.get("/calendar?day=2026-03-05").text
    assert f'href="/appointments/{first}"' in day
    assert day.count('data-testid="attended"') == 1
    assert "session 1 (plan" in day and "· <span" in day
    assert 'data-testid="attended"' not in client.get("/calendar?day=2026-03-06").text
    week = client.get("/calendar?week=2026-03-05").text
    assert week.count('data-testid="attended"') == 1 and week.count("/appointments/") == 2
    page = client.get(f"/appointments/{first}").text
    assert "attended (Thu 05 Mar 09:00" in page and 'data-testid="move-form"' not in page


def test_a_session_is_not_opened_for_a_cancelled_or_another_session_s_appointment(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_api: Any
) -> None:
    nurse = clinic["team"]["nurse"]
    plan, (first, second) = _booked_thursday_and_friday(client, clinic)
    r = client.post(
        f"/api/v1/appointments/{first}/cancel", headers=nurse, json={"reason": "patient unwell"}
    )
    assert r.status_code == 200, r.text
    clock.now = datetime(2026, 3, 5, 8, 30, tzinfo=UTC)  # Thu 5, 09:30 in Amsterdam
    nurse = login_api("nurse")
    url = f"/api/v1/plans/{plan['id']}/sessions"
    r = client.post(url, headers=nurse, json={"session_number": 1, "appointment_id": first})
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"appointment {first} is cancelled: a session cannot be opened for it (book the "
        "session again, or open it without the appointment)"
    )
    r = client.post(url, headers=nurse, json={"session_number": 1, "appointment_id": second})
    assert r.status_code == 422
    assert f"appointment {second} is booked for session 2, not session 1" in r.text
    # nothing was opened, the appointments are as they were
    from ketacare.clinic.sessions.orm import DosingSession

    with app.state.ctx.sessions() as db:
        opened = db.scalars(select(DosingSession).where(DosingSession.plan_id == plan["id"]))
        assert list(opened) == []
    statuses = [
        client.get(f"/api/v1/appointments/{a}", headers=nurse).json()["status"]
        for a in (first, second)
    ]
    assert statuses == ["cancelled", "booked"]
    # without the appointment the session opens (an unbooked session)
    r = client.post(url, headers=nurse, json={"session_number": 1})
    assert r.status_code == 201, r.text


def test_a_no_show_is_refused_before_the_start_and_recorded_after_it_with_a_reason(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_api: Any
) -> None:
    nurse = clinic["team"]["nurse"]
    plan, (first, second) = _booked_thursday_and_friday(client, clinic)
    url = f"/api/v1/appointments/{first}"
    again = {"session_number": 1, "chair_id": 1, "starts_at": "2026-03-05T13:00:00+01:00"}
    book_url = f"/api/v1/plans/{plan['id']}/appointments"
    # Thu 5 09:00 in Amsterdam is 08:00 UTC: one second before, it has not started
    clock.now = datetime(2026, 3, 5, 7, 59, 59, tzinfo=UTC)
    nurse = login_api("nurse")
    r = client.post(f"{url}/not-attended", headers=nurse, json={"reason": "did not come"})
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"appointment {first} starts Thu 05 Mar 2026 09:00 (Europe/Amsterdam): it has not "
        "started yet, so it cannot be marked not attended; to call it off before then, "
        "cancel it instead"
    )
    # from its start on: a reason is needed (blank, too short, missing, too long)
    clock.now = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    nurse = login_api("nurse")
    for body in ({"reason": "   "}, {"reason": " ab "}, {}, {"reason": "x" * 2001}):
        r = client.post(f"{url}/not-attended", headers=nurse, json=body)
        assert r.status_code == 422, (body, r.text)
    assert (
        "recording a no-show for an appointment needs a reason"
        in client.post(f"{url}/not-attended", headers=nurse, json={"reason": " "}).text
    )
    shown = client.get(url, headers=nurse).json()
    assert shown["status"] == "booked" and [e["kind"] for e in shown["history"]] == ["booked"]
    assert _audit(app, "not_attended", first) == []
    # while booked it holds its chair and its place in the course
    r = client.post(book_url, headers=nurse, json=again)
    assert (
        r.status_code == 409
        # 08:00 UTC is 09:00 in the clinic (Amsterdam, UTC+1 in March)
        and "chair Chair 1 is booked from Thu 05 Mar 2026 09:00 to" in r.json()["detail"]
        and "(Europe/Amsterdam time; plan" in r.json()["detail"]
    )
    r = client.post(book_url, headers=nurse, json={**again, "chair_id": 2})
    assert r.status_code == 409 and "already booked" in r.json()["detail"]
    # marked, with the reason trimmed, in its history and the audit trail
    reason = "patient did not come; no answer by phone"
    r = client.post(f"{url}/not-attended", headers=nurse, json={"reason": f"  {reason} "})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "not_attended" and r.json()["id"] == first
    shown = client.get(url, headers=nurse).json()
    assert shown["status"] == "not_attended"
    assert [e["kind"] for e in shown["history"]] == ["booked", "not_attended"]
    assert shown["history"][-1]["reason"] == reason
    assert _local(shown["history"][-1]["at"]) == "Thu 05 09:00"
    (audited,) = _audit(app, "not_attended", first)
    assert audited.detail == {"reason": reason} and audited.patient_id == clinic["pid"]
    # once only; neither moved nor cancelled afterwards; no session opens for it
    r = client.post(f"{url}/not-attended", headers=nurse, json={"reason": reason})
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"appointment {first} is not_attended: only a booked appointment is marked not attended"
    )
    _neither_cancelled_nor_moved(client, nurse, url, "not_attended")
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sessions",
        headers=nurse,
        json={"session_number": 1, "appointment_id": first},
    )
    assert r.status_code == 409 and "is not_attended" in r.json()["detail"]
    assert len(_audit(app, "not_attended", first)) == 1
    # the next booking is untouched; the session is booked again, on the chair it freed
    assert client.get(f"/api/v1/appointments/{second}", headers=nurse).json()["status"] == "booked"
    r = client.post(book_url, headers=nurse, json=again)
    assert r.status_code == 201, r.text
    assert r.json()["session_number"] == 1 and _local(r.json()["starts_at"]) == "Thu 05 13:00"
    rows = _appointments(app, plan["id"])  # none deleted
    assert [(a.session_number, a.status) for a in rows] == [
        (1, "not_attended"),
        (2, "booked"),
        (1, "booked"),
    ]
    # the therapist reads the calendar but does not record a no-show
    therapist = login_api("therapist")
    r = client.post(
        f"/api/v1/appointments/{second}/not-attended", headers=therapist, json={"reason": reason}
    )
    assert r.status_code == 403


def test_the_calendar_and_the_appointment_page_show_a_no_show_in_words(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    from conftest import page_login

    plan, (first, second) = _booked_thursday_and_friday(client, clinic)
    # before Thursday: neither has started, nothing is pending, no form
    csrf = login_page("nurse")
    assert 'data-testid="no-show-pending"' not in client.get("/calendar?week=2026-03-05").text
    assert 'data-testid="not-attended-form"' not in client.get(f"/appointments/{first}").text
    # Thu 5, 11:00 in Amsterdam: the 09:00 booking has started with no session opened
    clock.now = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
    csrf = page_login(client, "nurse")
    day = client.get("/calendar?day=2026-03-05").text
    assert day.count('data-testid="no-show-pending"') == 1
    assert "09:00–15:00" in day and '· <span data-testid="no-show-pending">no session opened' in day
    assert 'data-testid="not-attended"' not in day
    assert 'data-testid="no-show-pending"' not in client.get("/calendar?day=2026-03-06").text
    week = client.get("/calendar?week=2026-03-05").text
    assert week.count('data-testid="no-show-pending"') == 1 and week.count("/appointments/") == 2
    assert "no session opened</span>" in week and "did not attend" not in week
    # the form only where it is allowed: a started booking, for whoever writes the schedule
    page = client.get(f"/appointments/{first}").text
    assert 'data-testid="not-attended-form"' in page
    assert f'action="/appointments/{first}/not-attended"' in page
    assert 'name="csrf_token"' in page and 'name="reason" required' in page
    assert 'data-testid="not-attended-form"' not in client.get(f"/appointments/{second}").text
    # a refusal (no reason, or too short) stores nothing and says why
    for reason, why in ((" ", "reason: Field required"), ("ab", "needs a reason")):
        r = client.post(
            f"/appointments/{first}/not-attended",
            data={"reason": reason, "csrf_token": csrf},
            follow_redirects=False,
        )
        assert r.status_code == 422 and why in r.text
    assert _appointments(app, plan["id"])[0].status == "booked"
    r = client.post(
        f"/appointments/{first}/not-attended",
        data={"reason": "patient did not come", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/appointments/{first}"
    page = client.get(f"/appointments/{first}").text
    assert 'data-testid="not-attended-form"' not in page and 'data-testid="move-form"' not in page
    assert "did not attend (Thu 05 Mar 09:00, " in page and "patient did not come" in page
    day = client.get("/calendar?day=2026-03-05").text
    assert day.count('data-testid="not-attended"') == 1 and "· <span" in day
    assert ">did not attend</span>" in day and 'data-testid="no-show-pending"' not in day
    week = client.get("/calendar?week=2026-03-05").text
    assert week.count('data-testid="not-attended"') == 1 and week.count("/appointments/") == 2
    assert 'data-testid="no-show-pending"' not in week
    # the therapist reads the calendar and the page, without the form
    page_login(client, "therapist")
    page = client.get(f"/appointments/{first}").text
    assert "did not attend" in page
    clock.now = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)  # Fri 6 11:00: the second started
    page_login(client, "therapist")
    page = client.get(f"/appointments/{second}").text
    assert "no session opened" in page and 'data-testid="not-attended-form"' not in page


def test_a_course_a_closure_would_push_too_far_is_booked_one_session_at_a_time(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Path, login_page: Any
) -> None:
    """The refusal said "book this session by hand", and the plan page had no way to: it now
    has a form for one session, in the clinic's time, with the same checks as any booking."""
    _hours(app, tmp_path, max_shift=3)
    plan = _signed(client, clinic, start_date="2026-03-05")
    assert _course(client, clinic, plan["id"]).status_code == 422
    csrf = login_page("nurse")
    page = client.get(f"/plans/{plan['id']}").text
    assert 'data-testid="book-one"' in page and "Book this session" in page
    form = {"csrf_token": csrf, "session_number": "1", "starts_at": "2026-03-05T09:00"}
    r = client.post(f"/plans/{plan['id']}/book-session", data=form)  # no chair
    assert r.status_code == 422 and "choose a chair" in r.text
    assert _appointments(app, plan["id"]) == []
    r = client.post(
        f"/plans/{plan['id']}/book-session",
        data={**form, "chair_id": "1", "starts_at": "2026-03-07T09:00"},  # a Saturday
    )
    assert r.status_code == 422 and "closed on Saturdays" in unescape(r.text)
    assert _appointments(app, plan["id"]) == []
    r = client.post(
        f"/plans/{plan['id']}/book-session",
        data={**form, "chair_id": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    [booked] = _appointments(app, plan["id"])
    # 09:00 in Amsterdam (UTC+1 in March) is 08:00 UTC
    assert booked.session_number == 1
    assert booked.starts_at.replace(tzinfo=UTC) == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    # the booked session leaves the form's choices
    page = client.get(f"/plans/{plan['id']}").text
    one = page[page.index('data-testid="book-one"') :]
    assert '<option value="1">#1 ' not in one[: one.index("</form>")]
    assert '<option value="2">#2 ' in one[: one.index("</form>")]
