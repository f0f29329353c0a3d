"""The REMS records and the gate on esketamine nasal spray plans and sessions.

A dose of a treatment the REMS governs (``core/rems/data/spravato-rems.toml``) is planned
and given only when a clinic site holds a REMS certification as a treatment setting
(identifier and date) and the patient is enrolled (identifier and date), both dated no
later than the day of the dose. Every record is audited; none is changed or deleted.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.rems.orm import RemsCertification, RemsEnrolment
from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.rems import rules

STATUSES = ("certified", "ended")


def _text(value: str, what: str, limit: int) -> str:
    text = " ".join(value.split())
    if not text:
        raise InvalidInput(f"{what} is required")
    if len(text) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    return text


def record_certification(
    *,
    session: Session,
    actor: audit.Actor,
    site: str,
    identifier: str,
    certified_on: date,
    now: datetime,
    status: str = "certified",
) -> RemsCertification:
    """Record a site's certification (or, with ``status='ended'``, its end)."""
    if status not in STATUSES:
        raise UnknownItem("certification status", status, STATUSES)
    if certified_on > now.date():
        raise InvalidInput(f"certified_on {certified_on} is in the future")
    row = RemsCertification(
        site=_text(site, "site", 200),
        status=status,
        identifier=_text(identifier, "identifier", 100),
        certified_on=certified_on,
        recorded_at=now,
        recorded_by=actor.user_id,
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="rems_certification",
        detail={"site": row.site, "status": status, "identifier": row.identifier},
    )


def record_enrolment(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    identifier: str,
    enrolled_on: date,
    now: datetime,
) -> RemsEnrolment:
    """Record the patient's REMS enrolment (the newest record holds)."""
    get_patient(session=session, patient_id=patient_id)
    if enrolled_on > now.date():
        raise InvalidInput(f"enrolled_on {enrolled_on} is in the future")
    row = RemsEnrolment(
        patient_id=patient_id,
        identifier=_text(identifier, "identifier", 100),
        enrolled_on=enrolled_on,
        recorded_at=now,
        recorded_by=actor.user_id,
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="rems_enrolment",
        patient_id=patient_id,
        detail={"identifier": row.identifier},
    )


def certifications(*, session: Session) -> list[RemsCertification]:
    """Every certification record, newest first."""
    return list(
        session.scalars(
            select(RemsCertification).order_by(
                RemsCertification.recorded_at.desc(), RemsCertification.id.desc()
            )
        )
    )


def certified_sites(*, session: Session, on: date) -> dict[str, RemsCertification]:
    """The sites whose newest record is a certification dated on or before ``on``."""
    newest: dict[str, RemsCertification] = {}
    for row in reversed(certifications(session=session)):
        newest[row.site] = row
    return {
        site: row
        for site, row in newest.items()
        if row.status == "certified" and row.certified_on <= on
    }


# Built once (the chart reads it on every request).
_NEWEST = (
    select(RemsEnrolment)
    .where(RemsEnrolment.patient_id == bindparam("patient_id"))
    .order_by(RemsEnrolment.recorded_at.desc(), RemsEnrolment.id.desc())
    .limit(1)
)


def enrolment(*, session: Session, patient_id: int) -> RemsEnrolment | None:
    """The patient's newest enrolment record."""
    return session.scalar(_NEWEST, {"patient_id": patient_id})


def read_enrolment(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime
) -> RemsEnrolment | None:
    """The patient's newest enrolment record (an audited read)."""
    get_patient(session=session, patient_id=patient_id)
    audit.read_patient(
        patient_id, session=session, actor=actor, at=now, resource_type="rems_enrolment"
    )
    return enrolment(session=session, patient_id=patient_id)


def rems_problem(
    *, session: Session, patient_id: int, molecule: str, route: str, on: date
) -> str | None:
    """Why a dose of (molecule, route) on ``on`` may not be planned or given under the REMS
    (None: the REMS does not govern it, or the setting and the patient are on record)."""
    r = rules()
    if not r.governs(molecule=molecule, route=route):
        return None
    problems = []
    if not certified_sites(session=session, on=on):
        problems.append(
            "no clinic site holds a REMS certification as a treatment setting: record the "
            "site's certification (identifier and date) under REMS"
        )
    enrolled = enrolment(session=session, patient_id=patient_id)
    if enrolled is None:
        problems.append(
            "the patient is not enrolled in the REMS: record the enrolment (identifier and "
            "date) on the chart"
        )
    elif enrolled.enrolled_on > on:
        problems.append(f"the patient's REMS enrolment starts {enrolled.enrolled_on}")
    return f"{r.name}: " + "; ".join(problems) if problems else None
