"""The nurses' board: every session still at a chair, at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.plans.orm import Chair
from ketacare.clinic.sessions.cache import state_for
from ketacare.clinic.sessions.orm import DosingSession
from ketacare.core.sessions import FINAL_STATES, SessionState, monitoring_schedule


@dataclass(frozen=True)
class BoardPatient:
    id: int
    family_name: str
    given_name: str


@dataclass(frozen=True)
class BoardRow:
    session: DosingSession
    patient: BoardPatient
    chair: str | None
    state: SessionState


def board(*, session: Session, actor: audit.Actor, now: datetime) -> list[BoardRow]:
    """Every session still at a chair (not discharged or ended); the read is audited.

    Three queries and one audit row, however many chairs: the board refreshes every
    few seconds on every screen at the nurses' station.
    """
    rows = list(
        session.scalars(
            select(DosingSession)
            .where(DosingSession.state.not_in(tuple(FINAL_STATES)))
            .order_by(DosingSession.id)
        )
    )
    chairs = {c.id: c.name for c in session.scalars(select(Chair))}
    names = {
        pid: BoardPatient(pid, family, given)
        for pid, family, given in session.execute(
            select(Patient.id, Patient.family_name, Patient.given_name).where(
                Patient.id.in_({row.patient_id for row in rows})
            )
        )
    }
    out = [
        BoardRow(
            session=row,
            patient=names[row.patient_id],
            chair=chairs.get(row.chair_id) if row.chair_id else None,
            state=state_for(session=session, row=row),
        )
        for row in rows
    ]
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="board",
        at=now,
        detail={"sessions": [row.id for row in rows], "patients": sorted(names)},
    )
    return out


def behind_count(*, session: Session, now: datetime) -> int:
    """How many sessions at a chair have a check overdue or stand under continuous
    monitoring: a number for the staff's alert badge on every page, naming no patient
    (so, like the alert count beside it, not an audited read of a record)."""
    rows = session.scalars(
        select(DosingSession).where(DosingSession.state.not_in(tuple(FINAL_STATES)))
    )
    return sum(
        1
        for row in rows
        if monitoring_schedule(state_for(session=session, row=row), now=now).behind
    )
