"""The Patient Monitoring Form of each esketamine nasal spray session, and the
submission queue.

The form is built from the session's record (:func:`ketacare.core.rems.form.build_form`):
the replayed log (devices, lots, vitals, discharge), the patient, the certified site and
the answers recorded for the form. It is marked ready only when nothing is missing, and
submitted only once ready (date, route, confirmation reference). The queue lists every
session of a REMS-governed plan in which a device was used, due the REMS's days after the
treatment date in the clinic's time zone. Every read and write is audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit import service as audit
from ketacare.clinic.documents import Document, Identity, Letterhead, render_pdf
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans.dosing import library
from ketacare.clinic.plans.orm import Plan
from ketacare.clinic.rems.orm import RemsFormEntry
from ketacare.clinic.rems.service import certified_sites
from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.sessions.orm import DosingSession
from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.rems import rules
from ketacare.core.rems.form import (
    ANSWERS,
    BpReading,
    FormFacts,
    MonitoringForm,
    build_form,
    due_date,
    queue_status,
)
from ketacare.core.sessions import SelfAdministration
from ketacare.infra.errors import Conflict, NotFound
from ketacare.infra.settings import Settings


def _governed(settings: Settings) -> set[str]:
    lib = library(settings)
    r = rules()
    return {
        pid
        for pid in lib.ids
        if r.governs(
            molecule=lib.get(protocol_id=pid).molecule, route=lib.get(protocol_id=pid).route
        )
    }


def _row(session: Session, settings: Settings, session_id: int) -> DosingSession:
    row = sessions.get_session(session=session, session_id=session_id)
    plan = session.get(Plan, row.plan_id)
    if plan is None or plan.protocol_id not in _governed(settings):
        raise NotFound(f"session {session_id} is not under the {rules().name}: it has no form")
    return row


def _entries(session: Session, session_id: int, kind: str) -> list[RemsFormEntry]:
    return list(
        session.scalars(
            select(RemsFormEntry)
            .where(RemsFormEntry.session_id == session_id, RemsFormEntry.kind == kind)
            .order_by(RemsFormEntry.recorded_at, RemsFormEntry.id)
        )
    )


def answers_of(*, session: Session, session_id: int) -> dict[str, Any]:
    found = _entries(session, session_id, "answers")
    return dict(found[-1].data) if found else {}


def facts(*, session: Session, settings: Settings, session_id: int) -> FormFacts:
    """What the record holds for the session's form."""
    row = _row(session, settings, session_id)
    state = sessions.state_of(session=session, session_id=session_id)
    patient = get_patient(session=session, patient_id=row.patient_id)
    devices = [e for e in state.effective if isinstance(e, SelfAdministration)]
    first = min((e.at for e in devices), default=None)
    lot = state.checks.get("medication_lot")
    provider = None
    if state.discharge is not None:
        user = session.scalar(select(User).where(User.username == state.discharge.by))
        provider = user.full_name if user else state.discharge.by
    sites = certified_sites(
        session=session, on=(first or state.scheduled_at).astimezone(settings.zone).date()
    )
    return FormFacts(
        patient_given=patient.given_name,
        patient_family=patient.family_name,
        patient_birth_date=patient.birth_date,
        patient_sex=patient.sex,
        provider_name=provider,
        setting=", ".join(sorted(sites)) or None,
        first_device_at=first,
        devices=sum(e.devices or 0 for e in devices),
        device_mg=state.setup.device_mg,
        lots=(lot.detail.strip(),) if lot is not None and lot.ok and lot.detail.strip() else (),
        blood_pressures=tuple(
            BpReading(at=v.at, sbp=v.sbp_mmhg, dbp=v.dbp_mmhg)
            for v in state.vitals
            if v.sbp_mmhg is not None and v.dbp_mmhg is not None
        ),
        spo2=tuple((v.at, v.spo2_pct) for v in state.vitals if v.spo2_pct is not None),
        discharged_at=state.discharge.at if state.discharge is not None else None,
        answers=answers_of(session=session, session_id=session_id),
    )


def monitoring_form(
    *, session: Session, actor: audit.Actor, settings: Settings, session_id: int, now: datetime
) -> MonitoringForm:
    """The session's form as the record holds it now (an audited read)."""
    found = facts(session=session, settings=settings, session_id=session_id)
    row = sessions.get_session(session=session, session_id=session_id)
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="rems_form",
        resource_id=session_id,
        patient_id=row.patient_id,
        at=now,
    )
    return build_form(found, zone=settings.zone)


def _check_answers(given: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in given.items():
        if name not in ANSWERS:
            raise UnknownItem("form answer", name, tuple(ANSWERS))
        kind = ANSWERS[name]
        if value is None:
            continue
        if kind == "yes_no" and value not in (True, False):
            raise InvalidInput(f"{name} must be true or false")
        if kind == "text" and (not isinstance(value, str) or len(value) > 200):
            raise InvalidInput(f"{name} must be text of at most 200 characters")
        if kind == "minutes" and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1440
        ):
            raise InvalidInput(f"{name} must be whole minutes from 0 to 1440")
        if kind == "yes_no_time":
            if not isinstance(value, Mapping) or value.get("present") not in (True, False):
                raise InvalidInput(f"{name} must be {{'present': true|false, 'at': 'HH:MM'}}")
            at = value.get("at")
            at = at.strip()[:40] if isinstance(at, str) else ""
            if value["present"] and not at:
                raise InvalidInput(f"{name}: say when (the time) it was observed")
            value = {"present": value["present"], "at": at}
        clean[name] = value
    return clean


def _record(
    session: Session,
    actor: audit.Actor,
    session_id: int,
    kind: str,
    data: dict[str, Any],
    now: datetime,
) -> RemsFormEntry:
    row = sessions.get_session(session=session, session_id=session_id)
    entry = RemsFormEntry(
        session_id=session_id, kind=kind, data=data, recorded_at=now, recorded_by=actor.user_id
    )
    return audit.stored(
        entry,
        session=session,
        actor=actor,
        at=now,
        resource_type=f"rems_form_{kind}",
        patient_id=row.patient_id,
        detail={k: v for k, v in data.items() if k != "items"},
        resource_id=session_id,
    )


def record_answers(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    session_id: int,
    answers: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Record answers the log does not hold (merged over the earlier ones); all of them."""
    _row(session, settings, session_id)
    if _entries(session, session_id, "submitted"):
        raise Conflict(f"the form of session {session_id} was submitted: it is not changed")
    merged = {**answers_of(session=session, session_id=session_id), **_check_answers(answers)}
    _record(session, actor, session_id, "answers", merged, now)
    return merged


def mark_ready(
    *, session: Session, actor: audit.Actor, settings: Settings, session_id: int, now: datetime
) -> MonitoringForm:
    """Mark the form ready to submit; refused, listing each missing item and where to
    record it, while anything is missing."""
    form = build_form(
        facts(session=session, settings=settings, session_id=session_id), zone=settings.zone
    )
    if not form.complete:
        raise InvalidInput(
            "the form is not complete: "
            + "; ".join(f"{name} (record it in {where})" for name, where in form.missing)
        )
    _record(session, actor, session_id, "ready", {"items": [list(i) for i in form.items]}, now)
    return form


def mark_submitted(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    session_id: int,
    submitted_on: date,
    route: str,
    reference: str,
    now: datetime,
) -> RemsFormEntry:
    """Record that the ready form was submitted (date, route, confirmation reference)."""
    _row(session, settings, session_id)
    if not _entries(session, session_id, "ready"):
        raise Conflict(f"the form of session {session_id} is not marked ready yet")
    if _entries(session, session_id, "submitted"):
        raise Conflict(f"the form of session {session_id} is already marked submitted")
    if route not in rules().routes:
        raise UnknownItem("submission route", route, rules().routes)
    if not reference.strip():
        raise InvalidInput("reference is required: the confirmation the REMS gave")
    if submitted_on > now.astimezone(settings.zone).date():
        raise InvalidInput(f"submitted_on {submitted_on} is in the future")
    return _record(
        session,
        actor,
        session_id,
        "submitted",
        {"on": submitted_on.isoformat(), "route": route, "reference": reference.strip()[:200]},
        now,
    )


@dataclass(frozen=True, slots=True)
class QueueRow:
    session_id: int
    patient_id: int
    patient: str
    treated_on: date
    due: date
    status: str
    ready: bool
    submitted_on: str | None
    route: str | None
    reference: str | None


def queue(
    *, session: Session, actor: audit.Actor, settings: Settings, now: datetime
) -> list[QueueRow]:
    """Every esketamine nasal spray session in which a device was used: due, overdue or
    submitted (oldest due first); an audited read."""
    zone: ZoneInfo = settings.zone
    today = now.astimezone(zone).date()
    governed = _governed(settings)
    rows = session.execute(
        select(DosingSession.id, DosingSession.patient_id)
        .join(Plan, Plan.id == DosingSession.plan_id)
        .where(Plan.protocol_id.in_(governed))
        .order_by(DosingSession.id)
    ).all()
    out = []
    for session_id, patient_id in rows:
        state = sessions.state_of(session=session, session_id=session_id)
        first = min(
            (e.at for e in state.effective if isinstance(e, SelfAdministration)), default=None
        )
        if first is None:
            continue
        treated = first.astimezone(zone).date()
        submitted = _entries(session, session_id, "submitted")
        done = submitted[-1].data if submitted else None
        patient = get_patient(session=session, patient_id=patient_id)
        due = due_date(treated_on=treated)
        out.append(
            QueueRow(
                session_id=session_id,
                patient_id=patient_id,
                patient=f"{patient.family_name}, {patient.given_name}",
                treated_on=treated,
                due=due,
                status=queue_status(due=due, today=today, submitted=done is not None),
                ready=bool(_entries(session, session_id, "ready")),
                submitted_on=done["on"] if done else None,
                route=done["route"] if done else None,
                reference=done["reference"] if done else None,
            )
        )
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="rems_queue",
        at=now,
        detail={"sessions": [r.session_id for r in out]},
    )
    return sorted(out, key=lambda r: (r.status == "submitted", r.due, r.session_id))


def queue_csv(rows: list[QueueRow]) -> str:
    """The queue as CSV (one row per session)."""
    text = io.StringIO()
    names = list(QueueRow.__dataclass_fields__)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    for r in rows:
        writer.writerow([getattr(r, n) for n in names])
    return text.getvalue()


#: how the document names a field's status (the data file's words)
STATUS_WORDS = {"form-2021": "on the 11/2021 form", "unconfirmed": "unconfirmed"}


def form_pdf(
    *, session: Session, actor: audit.Actor, settings: Settings, session_id: int, now: datetime
) -> bytes:
    """The form as A4 PDF (an audited read): each item, its value, how far its field is
    confirmed, and what is missing, with the clinic's letterhead and the patient."""
    form = monitoring_form(
        session=session, actor=actor, settings=settings, session_id=session_id, now=now
    )
    row = sessions.get_session(session=session, session_id=session_id)
    patient = get_patient(session=session, patient_id=row.patient_id)
    r = rules()
    return render_pdf(
        Document(
            template="rems/form_document.html",
            title="Patient Monitoring Form",
            letterhead=Letterhead.of(settings),
            patient=Identity.of(patient),
            zone=settings.zone,
            generated_at=now,
            values={
                "rems_name": r.name,
                "session_id": session_id,
                "form": form,
                "labels": {name: label for name, label, _, _ in form.items},
                "status_words": STATUS_WORDS,
                "submit_within_days": r.submit_within_days,
                "sources": r.sources,
            },
        )
    )


def form_fhir(
    *, session: Session, actor: audit.Actor, settings: Settings, session_id: int, now: datetime
) -> dict[str, Any]:
    """The form as a FHIR R4 collection Bundle: its Questionnaire and the session's
    QuestionnaireResponse (an audited read)."""
    from ketacare.fhir.rems import form_questionnaire, form_response

    form = monitoring_form(
        session=session, actor=actor, settings=settings, session_id=session_id, now=now
    )
    row = sessions.get_session(session=session, session_id=session_id)
    response = form_response(
        form,
        response_id=f"rems-form-{session_id}",
        subject=f"Patient/patient-{row.patient_id}",
        authored=now.isoformat(),
    )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": now.isoformat(),
        "entry": [{"resource": form_questionnaire(form)}, {"resource": response}],
    }
