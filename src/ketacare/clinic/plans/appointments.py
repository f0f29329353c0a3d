"""Reading chair appointments: one with its history, and the calendar's between two
instants (each read audited). Booking, moving, cancelling and attendance are in
:mod:`ketacare.clinic.plans.booking`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.plans.booking import HOLDING
from ketacare.clinic.plans.orm import Appointment, AppointmentEvent
from ketacare.infra.db import existing

#: the calendar shows these: the holding ones and the no-shows (which free their place)
SHOWN = (*HOLDING, "not_attended")


def history(*, session: Session, appointment_id: int) -> list[AppointmentEvent]:
    """An appointment's events, oldest first (read with the appointment)."""
    return list(
        session.scalars(
            select(AppointmentEvent)
            .where(AppointmentEvent.appointment_id == appointment_id)
            .order_by(AppointmentEvent.id)
        )
    )


def read_appointment(
    *, session: Session, actor: audit.Actor, appointment_id: int, now: datetime
) -> tuple[Appointment, list[AppointmentEvent]]:
    """One appointment and its history (audited read)."""
    appt = existing(session, Appointment, appointment_id, "appointment")
    audit.read_row(appt, session=session, actor=actor, at=now, resource_type="appointment")
    return appt, history(session=session, appointment_id=appt.id)


def moved_ids(*, session: Session, appointment_ids: list[int]) -> set[int]:
    """Which of these appointments have been moved at least once (for the calendar)."""
    if not appointment_ids:
        return set()
    return set(
        session.scalars(
            select(AppointmentEvent.appointment_id).where(
                AppointmentEvent.appointment_id.in_(appointment_ids),
                AppointmentEvent.kind == "moved",
            )
        )
    )


def calendar(
    *, session: Session, actor: audit.Actor, start: datetime, end: datetime, now: datetime
) -> list[Appointment]:
    """Booked, attended and not attended appointments between two instants (each one's
    read audited)."""
    appointments = list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.status.in_(SHOWN),
                Appointment.starts_at < end,
                Appointment.ends_at > start,
            )
            .order_by(Appointment.starts_at)
        )
    )
    for appt in appointments:
        audit.read_row(appt, session=session, actor=actor, at=now, resource_type="appointment")
    return appointments
