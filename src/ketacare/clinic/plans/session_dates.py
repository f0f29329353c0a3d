"""The plan page's sessions as the record has them: when each was given, or is booked, or
is planned, and which of them can still be opened at the chair."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ketacare.clinic.plans.booking import session_days
from ketacare.clinic.plans.orm import Appointment, Plan
from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.sessions.words import STATE_WORDS
from ketacare.core.errors import InvalidInput
from ketacare.core.scheduling import ClinicHours, PlannedDay, place_sessions

DAY = "%a %d %b %Y"
DAY_TIME = "%a %d %b %Y %H:%M"


@dataclass(frozen=True, slots=True)
class CourseSessions:
    """``dates``: what the plan's table shows for each session number; ``openable``: the
    numbers a session can be opened for (none open or given), the next due first."""

    dates: dict[int, str]
    openable: list[int]


def _planned(plan: Plan, hours: ClinicHours, booked: dict[int, date]) -> dict[int, str]:
    """Each session's planned date as booking the course would place it (``booked``: the
    sessions already booked keep their day): a date on a closed day is shown on the open
    day it moves to, with why. Empty when the course cannot be placed (booking says why)."""
    if plan.start_date is None:
        return {}
    try:
        placed = place_sessions(
            sessions=[PlannedDay(n, day) for n, (day, _) in session_days(plan).items()],
            start=plan.start_date,
            hours=hours,
            booked=booked,
        )
    except InvalidInput:
        return {}
    return {
        p.number: f"planned {p.date.strftime(DAY)}"
        + (f" (moved from {p.planned.strftime(DAY)}: {p.why_moved})" if p.why_moved else "")
        for p in placed
    }


def course_sessions(
    *,
    session: Session,
    plan: Plan,
    booked: Sequence[Appointment],
    zone: ZoneInfo,
    hours: ClinicHours | None = None,
) -> CourseSessions:
    """Per session of ``plan``: the day and time it was given (its dosing start, else its
    opening) or, not given, when it is open since; else its booked appointment (of
    ``booked``); else its planned date when the plan has a start date, placed on the
    clinic's open days (``hours``); else "not booked". Times in the clinic's ``zone``."""
    holding = {a.session_number: a.starts_at.astimezone(zone).date() for a in booked}
    placed = _planned(plan, hours, holding) if hours is not None else {}
    rows = sessions.sessions_of_plan(session=session, plan_id=plan.id)
    states = sessions.states_of(session=session, session_ids=[r.id for r in rows])
    appointments: dict[int, Appointment] = {}
    for a in sorted(booked, key=lambda a: a.starts_at):
        appointments.setdefault(a.session_number, a)

    def local(at: datetime) -> str:
        return at.astimezone(zone).strftime(DAY_TIME)

    dates: dict[int, str] = {}
    openable: list[int] = []
    for planned in plan.schedule["sessions"]:
        number = int(planned["number"] if "number" in planned else planned["session"])
        mine = [r for r in rows if r.session_number == number]
        held = next((r for r in reversed(mine) if r.state != "stopped_early"), None)
        ended = next(
            (r for r in reversed(mine) if states[r.id].dosing_started_at is not None), None
        )
        appointment = appointments.get(number)
        if held is not None:
            start = states[held.id].dosing_started_at or held.created_at
            word = "given" if held.state == "discharged" else STATE_WORDS.get(held.state)
            dates[number] = f"{local(start)} · {word or held.state}"
            continue
        openable.append(number)  # never opened, or every opening of it ended early
        if appointment is not None:
            dates[number] = f"booked {local(appointment.starts_at)}"
        elif ended is not None:
            dates[number] = f"{local(states[ended.id].dosing_started_at or ended.created_at)}"
            dates[number] += " · ended early"
        elif number in placed:
            dates[number] = placed[number]
        elif planned.get("date"):
            day = date.fromisoformat(str(planned["date"]))
            closed = hours.closed_because(day) if hours is not None else None
            why = f" ({closed}: cannot be booked as planned)" if closed else ""
            dates[number] = f"planned {day.strftime(DAY)}{why}"
        else:
            dates[number] = "not booked"
    return CourseSessions(dates=dates, openable=openable)
