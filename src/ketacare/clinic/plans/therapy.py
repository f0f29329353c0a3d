"""Psychotherapy around the doses: preparation and integration sessions, their notes.

A plan may require a documented preparation session before its first dose
(:func:`preparation_done`); the therapist's structured note with a risk concern
raises an alert for the patient's responsible clinician.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.assessments.orm import ClinicalAlert
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans.ending import MIN_REASON
from ketacare.clinic.plans.orm import Plan, TherapySession
from ketacare.clinic.plans.service import get_plan
from ketacare.core.errors import InvalidInput
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict, Forbidden

#: the consent program of therapy sessions (core/consent/data/programs.toml)
PROGRAM = "psychotherapy"

NOTE_FIELDS = ("goals", "what_came_up", "integration_steps", "risk_check")


def article(word: str) -> str:
    """The article of a session kind in an alert's sentence.

    >>> article("integration"), article("preparation")
    ('an', 'a')
    """
    return "an" if word[:1].lower() in "aeiou" else "a"


def add_therapy(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    kind: str,
    therapist_id: int,
    planned_date: date | None,
    now: datetime,
) -> TherapySession:
    """Plan a preparation or integration session with a therapist."""
    plan = get_plan(session=session, plan_id=plan_id)
    if not kind:
        raise InvalidInput("therapy kind is missing: choose preparation or integration")
    if kind not in ("preparation", "integration"):
        raise InvalidInput(f"therapy kind {kind!r}: allowed preparation, integration")
    therapist = session.get(User, therapist_id)
    if therapist is None or therapist.role != "therapist":
        raise InvalidInput(f"user {therapist_id} is not a therapist")
    row = TherapySession(
        plan_id=plan_id,
        patient_id=plan.patient_id,
        kind=kind,
        therapist_id=therapist_id,
        planned_date=planned_date,
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="therapy_session",
        patient_id=plan.patient_id,
    )


def document_therapy(
    *,
    session: Session,
    actor: audit.Actor,
    therapy_id: int,
    note: dict[str, str],
    risk_concern: bool,
    zone: ZoneInfo,
    now: datetime,
) -> TherapySession:
    """The therapist's structured note; a risk concern alerts the responsible clinician.

    A session planned for a day is documented on or after that day (the clinic's day in
    ``zone``): a note is not filed ahead of the session it records."""
    row = existing(session, TherapySession, therapy_id, "therapy session")
    if actor.user_id != row.therapist_id:
        raise Forbidden("only the assigned therapist documents this session")
    if row.status == "documented":
        raise Conflict(f"therapy session {therapy_id} is already documented")
    if row.status == "cancelled":
        raise Conflict(f"therapy session {therapy_id} was cancelled: {row.cancel_reason}")
    today = now.astimezone(zone).date()
    if row.planned_date is not None and row.planned_date > today:
        raise InvalidInput(
            f"therapy session {therapy_id} is planned for {row.planned_date:%a %d %b %Y}: it can "
            f"be documented on or after that day (today is {today:%a %d %b %Y} in the clinic); "
            "held on another day, move it to that day first"
        )
    empty = [f for f in NOTE_FIELDS if not str(note.get(f, "")).strip()]
    if empty:
        raise InvalidInput(f"the note needs every part: {', '.join(empty)} missing")
    # a session that was held is documented all the same; the record says whether the
    # patient's consent to psychotherapy was in force when it was
    consent = psychotherapy_consent_problem(session=session, patient_id=row.patient_id)
    row.note = {f: str(note[f]).strip() for f in NOTE_FIELDS} | {
        "risk_concern": risk_concern,
        "consent": "in force" if consent is None else consent,
    }
    row.status = "documented"
    row.documented_at = now
    row.documented_by = actor.user_id
    if risk_concern:
        patient = get_patient(session=session, patient_id=row.patient_id)
        session.add(
            ClinicalAlert(
                patient_id=row.patient_id,
                kind="therapy_risk_concern",
                message="Therapist raised a risk concern after "
                f"{article(row.kind)} {row.kind} session: {row.note['risk_check']}",
                recipient_id=patient.responsible_clinician_id,
                raised_at=now,
            )
        )
    audit.record(
        session=session,
        actor=actor,
        action="document",
        resource_type="therapy_session",
        resource_id=row.id,
        patient_id=row.patient_id,
        at=now,
        detail={"risk_concern": risk_concern, "consent_in_force": consent is None},
    )
    return row


def psychotherapy_consent_problem(*, session: Session, patient_id: int) -> str | None:
    """Why the patient's consent to psychotherapy alongside ketamine is not in force."""
    from ketacare.clinic.consent.service import program_problem

    return program_problem(session=session, patient_id=patient_id, program_id=PROGRAM)


def move_therapy(
    *,
    session: Session,
    actor: audit.Actor,
    therapy_id: int,
    planned_date: date,
    reason: str,
    now: datetime,
) -> TherapySession:
    """The assigned therapist moves a planned session to the day it is (or was) held,
    earlier or later, with the reason; the day before and the reason are kept as an
    amendment of the record (a note is then filed on or after the new day)."""
    row = existing(session, TherapySession, therapy_id, "therapy session")
    if actor.user_id != row.therapist_id:
        raise Forbidden("only the assigned therapist moves this session")
    if row.status != "planned":
        raise Conflict(f"therapy session {therapy_id} is {row.status}: only a planned one moves")
    if len(reason.strip()) < MIN_REASON:
        raise InvalidInput("moving a therapy session needs a reason (why it is held that day)")
    if planned_date == row.planned_date:
        raise InvalidInput(
            f"therapy session {therapy_id} is already planned for {planned_date:%a %d %b %Y}"
        )
    before = {"planned_date": row.planned_date}
    row.planned_date = planned_date
    audit.amend(
        session=session,
        actor=actor,
        resource_type="therapy_session",
        resource_id=row.id,
        patient_id=row.patient_id,
        before=before,
        after={"planned_date": planned_date},
        reason=reason.strip(),
        at=now,
    )
    return row


def cancel_for_retired_record(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    reason: str,
    today: date,
    now: datetime,
) -> list[int]:
    """Cancel every therapy session of a record retired as entered in error that is still
    to come (planned, not documented, dated after ``today``, the clinic's day), each with
    the retirement's reason kept on the row (status ``cancelled``) and audited; sessions
    held or documented, dated today or before, or undated, are left as they are. The
    cancelled sessions' ids."""
    rows = list(
        session.scalars(
            select(TherapySession)
            .where(
                TherapySession.patient_id == patient_id,
                TherapySession.status == "planned",
                TherapySession.planned_date > today,
            )
            .order_by(TherapySession.id)
        )
    )
    text = f"the patient's record was retired as entered in error: {reason}"[:500]
    for row in rows:
        row.status = "cancelled"
        row.cancelled_at = now
        row.cancelled_by = actor.user_id
        row.cancel_reason = text
        audit.record(
            session=session,
            actor=actor,
            action="cancel",
            resource_type="therapy_session",
            resource_id=row.id,
            patient_id=row.patient_id,
            at=now,
            detail={"reason": text},
        )
    session.flush()
    return [row.id for row in rows]


def preparation_done(*, session: Session, plan: Plan) -> bool:
    """Whether a required preparation session has been documented (doses wait for it)."""
    if not plan.preparation_required:
        return True
    return (
        session.scalar(
            select(TherapySession.id)
            .where(
                TherapySession.plan_id == plan.id,
                TherapySession.kind == "preparation",
                TherapySession.status == "documented",
            )
            .limit(1)
        )
        is not None
    )


def read_therapy(
    *, session: Session, actor: audit.Actor, therapy_id: int, now: datetime
) -> TherapySession:
    """One therapy session (audited read)."""
    row = existing(session, TherapySession, therapy_id, "therapy session")
    audit.read_row(row, session=session, actor=actor, at=now, resource_type="therapy_session")
    return row


def therapy_between(
    *, session: Session, actor: audit.Actor, first: date, last: date, now: datetime
) -> list[TherapySession]:
    """Therapy sessions planned from ``first`` to ``last``, not cancelled (the calendar;
    each read audited)."""
    rows = list(
        session.scalars(
            select(TherapySession)
            .where(
                TherapySession.planned_date >= first,
                TherapySession.planned_date <= last,
                TherapySession.status != "cancelled",  # cancelled: no longer on the calendar
            )
            .order_by(TherapySession.planned_date, TherapySession.id)
        )
    )
    for row in rows:
        audit.read_row(row, session=session, actor=actor, at=now, resource_type="therapy_session")
    return rows
