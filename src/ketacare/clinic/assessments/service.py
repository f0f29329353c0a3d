"""Record scored instruments; raise a safety alert to the responsible clinician at once.

Safety flags (:data:`ALERT_FLAGS`) are the flags the instrument sources say need
immediate follow-up: a PHQ-9 item 9 answer above 0 (follow-up regardless of the
total, routed to the C-SSRS screener) and a moderate or high C-SSRS screener risk.
An item 9 left blank is unknown, not "no": it alerts the clinician to ask it
(:data:`UNANSWERED_FLAGS`), worded as unanswered, never as positive; so does a C-SSRS
question left blank that could decide the risk level (each instrument's data file says
which blanks alert).

A form with a required item blank is refused (:class:`IncompleteAnswers`, nothing
stored) unless the clinic accepts partial answers; the caller then rolls back and calls
:func:`refuse_incomplete`, which audits the refused attempt and raises the alerts its
answers call for (a blank or positive item 9 must reach the clinician even though the
form was not kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.analytics import service as analytics
from ketacare.clinic.assessments.orm import Assessment, ClinicalAlert
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.service import get_patient
from ketacare.core.instruments import (
    IncompleteAnswers,
    ScoreResult,
    get_instrument,
    list_instruments,
    require_complete,
    score,
    self_report_ids,
)
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict, Forbidden

#: Flags raised by a safety item left blank (``unanswered`` in the instrument's data file).
UNANSWERED_FLAGS = frozenset(
    f.id for i in list_instruments() for f in i.flags if f.unanswered is not None
)
ALERT_FLAGS = frozenset(
    {"phq9_item9_positive", "cssrs_high_risk", "cssrs_moderate_risk", *UNANSWERED_FLAGS}
)

#: Questionnaires a patient fills about themselves (``self_report`` in each instrument's
#: data file); the rest (risk tools, criteria, discharge scores) are clinician instruments
#: and a patient account cannot submit them.
SELF_REPORT = self_report_ids()
SEX_CODE = {"female": "F", "male": "M"}


def record_assessment(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    instrument_id: str,
    answers: Sequence[object] | Mapping[str, object],
    context: str,
    source: str,
    now: datetime,
    accept_partial: bool = False,
    alert_once_since: datetime | None = None,
) -> tuple[Assessment, list[ClinicalAlert]]:
    """Score and store one instrument; alerts for its safety flags go out in the same step.

    A required item left blank raises :class:`IncompleteAnswers` before anything is
    written, unless ``accept_partial`` (the clinic's setting): then the form is kept with
    ``missing`` listing the blanks and no total. ``alert_once_since`` (a self-report
    link's creation) keeps an unanswered-item alert to one per link while it is open.
    """
    patient = get_patient(session=session, patient_id=patient_id)
    if source == "patient" and instrument_id not in SELF_REPORT:
        raise Forbidden(
            f"{instrument_id} is a clinician instrument: a patient may fill "
            f"{', '.join(SELF_REPORT)}"
        )
    result = score(instrument_id, answers, sex=SEX_CODE.get(patient.sex))
    if not accept_partial:
        require_complete(get_instrument(instrument_id), result)
    row = Assessment(
        patient_id=patient_id,
        instrument_id=result.instrument,
        instrument_version=result.version,
        answers=dict(result.answers),
        total=None if result.total is None else float(result.total),
        band=result.band,
        flags=list(result.flags),
        subscores=dict(result.subscores),
        missing=list(result.missing),
        context=context,
        source=source,
        completed_at=now,
        entered_by=actor.user_id,
    )
    audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="assessment",
        patient_id=patient_id,
        detail={
            "instrument": result.instrument,
            "flags": list(result.flags),
            **({"incomplete": list(result.missing)} if result.missing else {}),
        },
    )
    alerts = _raise_alerts(
        session=session,
        actor=actor,
        patient_id=patient_id,
        recipient_id=patient.responsible_clinician_id,
        result=result,
        assessment_id=row.id,
        now=now,
        once_since=alert_once_since,
    )
    _close_answered(session=session, actor=actor, row=row, now=now)
    if analytics.follows(result.instrument):
        # keep the clinic dashboard's per-patient summary in step with the record
        analytics.refresh_patient(session=session, patient_id=patient_id, now=now)
    return row, alerts


def _close_answered(
    *, session: Session, actor: audit.Actor, row: Assessment, now: datetime
) -> None:
    """Close the patient's open "item left unanswered" alerts whose item this assessment
    answers: what they asked for ("ask it now") is done, and a positive answer raised its
    own alert above. Closed with the assessment named, never deleted (audited)."""
    instrument = get_instrument(row.instrument_id)
    for flag in instrument.flags:
        item = flag.unanswered
        if item is None or row.answers.get(item) is None or item in row.missing:
            continue
        open_alerts = session.scalars(
            select(ClinicalAlert).where(
                ClinicalAlert.patient_id == row.patient_id,
                ClinicalAlert.kind == flag.id,
                ClinicalAlert.acknowledged_at.is_(None),
                ClinicalAlert.raised_at <= now,
            )
        )
        number = next(n for n, it in enumerate(instrument.items, 1) if it.id == item)
        for alert in open_alerts:
            _close(
                alert,
                session=session,
                actor=actor,
                by=actor.user_id if row.source == "staff" else None,
                action=(
                    f"answered: item {number} is {row.answers[item]} on the "
                    f"{instrument.short_title} of assessment {row.id} "
                    f"({'entered by staff' if row.source == 'staff' else 'self-reported'}); "
                    "closed when it was recorded"
                ),
                now=now,
                detail={"closed_by_assessment": row.id, "item": item},
            )


def _close(
    alert: ClinicalAlert,
    *,
    session: Session,
    actor: audit.Actor,
    by: int | None,
    action: str,
    now: datetime,
    detail: dict[str, object] | None = None,
) -> None:
    """Close ``alert`` with what was done (kept, never deleted; audited)."""
    alert.acknowledged_at = now
    alert.acknowledged_by = by
    alert.action = action
    audit.record(
        session=session,
        actor=actor,
        action="acknowledge",
        resource_type="clinical_alert",
        resource_id=alert.id,
        patient_id=alert.patient_id,
        at=now,
        detail=detail,
    )


def refuse_incomplete(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    error: IncompleteAnswers,
    now: datetime,
    once_since: datetime | None = None,
) -> list[ClinicalAlert]:
    """After a form refused for blank required items (and rolled back): audit the attempt
    and raise the alerts its answers call for.

    The form is not kept, but what it showed is not dropped: a blank item 9 asks the
    clinician to ask it, and a positive item 9 next to another blank still alerts.
    """
    patient = get_patient(session=session, patient_id=patient_id)
    audit.record(
        session=session,
        actor=actor,
        action="refuse",
        resource_type="assessment",
        patient_id=patient_id,
        at=now,
        detail={
            "instrument": error.instrument.id,
            "unanswered": [u.item for u in error.unanswered],
            "flags": list(error.result.flags),
        },
    )
    return _raise_alerts(
        session=session,
        actor=actor,
        patient_id=patient_id,
        recipient_id=patient.responsible_clinician_id,
        result=error.result,
        assessment_id=None,
        now=now,
        once_since=once_since,
    )


def _raise_alerts(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    recipient_id: int | None,
    result: ScoreResult,
    assessment_id: int | None,
    now: datetime,
    once_since: datetime | None,
) -> list[ClinicalAlert]:
    alerts = []
    details = {str(d.get("id")): d for d in result.flag_details}
    for flag in result.flags:
        if flag not in ALERT_FLAGS:
            continue
        if flag in UNANSWERED_FLAGS and once_since is not None:
            already = session.scalar(
                select(ClinicalAlert.id).where(
                    ClinicalAlert.patient_id == patient_id,
                    ClinicalAlert.kind == flag,
                    ClinicalAlert.acknowledged_at.is_(None),
                    ClinicalAlert.raised_at >= once_since,
                )
            )
            if already is not None:
                continue
        detail = details.get(flag, {})
        alert = ClinicalAlert(
            patient_id=patient_id,
            kind=flag,
            message=str(detail.get("message") or flag),
            routes_to=detail.get("routes_to"),
            assessment_id=assessment_id,
            recipient_id=recipient_id,
            raised_at=now,
        )
        audit.stored(
            alert,
            session=session,
            actor=actor,
            at=now,
            resource_type="clinical_alert",
            patient_id=patient_id,
            detail={
                "kind": flag,
                "recipient_id": alert.recipient_id,
                **({"assessment_id": assessment_id} if assessment_id else {"refused": True}),
            },
            action="alert",
        )
        alerts.append(alert)
    return alerts


def list_assessments(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    now: datetime,
    instrument_id: str | None = None,
) -> list[Assessment]:
    """A patient's assessments, newest first (audited read)."""
    get_patient(session=session, patient_id=patient_id)
    query = select(Assessment).where(Assessment.patient_id == patient_id)
    if instrument_id:
        query = query.where(Assessment.instrument_id == instrument_id)
    rows = list(
        session.scalars(query.order_by(Assessment.completed_at.desc(), Assessment.id.desc()))
    )
    return audit.read_list(
        rows, patient_id, session=session, actor=actor, at=now, resource_type="assessment"
    )


def latest_by_instrument(*, session: Session, patient_id: int) -> dict[str, Assessment]:
    """The newest complete, final assessment of each instrument (callers audit their read).

    Incomplete results (no total and no band) never replace a complete one, and a
    clinician instrument counts only when staff entered it.
    """
    rows = session.scalars(
        select(Assessment)
        .where(Assessment.patient_id == patient_id, Assessment.status == "final")
        .order_by(Assessment.completed_at, Assessment.id)
    )
    latest: dict[str, Assessment] = {}
    for row in rows:
        if row.total is None and row.band is None:
            continue
        if row.source == "patient" and row.instrument_id not in SELF_REPORT:
            continue
        latest[row.instrument_id] = row
    return latest


def open_alerts(
    *, session: Session, user_id: int | None = None, patient_id: int | None = None
) -> list[ClinicalAlert]:
    """Unacknowledged alerts for this user: addressed to them, to no one in particular, or to
    an account that is no longer active (so no alert is ever left with nobody to see it)."""
    query = select(ClinicalAlert).where(ClinicalAlert.acknowledged_at.is_(None))
    if user_id is not None:
        inactive = select(User.id).where(User.is_active.is_(False))
        query = query.where(
            or_(
                ClinicalAlert.recipient_id == user_id,
                ClinicalAlert.recipient_id.is_(None),
                ClinicalAlert.recipient_id.in_(inactive),
            )
        )
    if patient_id is not None:
        query = query.where(ClinicalAlert.patient_id == patient_id)
    return list(session.scalars(query.order_by(ClinicalAlert.raised_at.desc())))


def read_open_alerts(
    *, session: Session, actor: audit.Actor, user_id: int | None, now: datetime
) -> list[ClinicalAlert]:
    """:func:`open_alerts` for someone who reads them: each read is audited."""
    alerts = open_alerts(session=session, user_id=user_id)
    for alert in alerts:
        audit.read_row(alert, session=session, actor=actor, at=now, resource_type="clinical_alert")
    return alerts


def patient_open_alerts(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    now: datetime,
    except_session: int | None = None,
    audited: bool = True,
) -> list[ClinicalAlert]:
    """The patient's alerts nobody has acknowledged yet, whoever they are routed to, other
    than ``except_session``'s own (the chair shows those): a questionnaire's suicide-risk
    item or an earlier session's alert must be in front of whoever opens the chart, the
    plan, a therapy session or the chair, not only in the inbox of the one it is routed
    to. Each read is audited unless ``audited`` is false (the chair's own refresh, whose
    first load was audited)."""
    alerts = [
        a
        for a in open_alerts(session=session, patient_id=patient_id)
        if except_session is None or a.session_id != except_session
    ]
    if audited:
        for alert in alerts:
            audit.read_row(
                alert, session=session, actor=actor, at=now, resource_type="clinical_alert"
            )
    return alerts


def of_patient(*, session: Session, patient_id: int) -> list[Assessment]:
    """Every assessment of a patient, oldest first (callers audit their read)."""
    return list(
        session.scalars(
            select(Assessment).where(Assessment.patient_id == patient_id).order_by(Assessment.id)
        )
    )


def acknowledge(
    *, session: Session, actor: audit.Actor, alert_id: int, action: str, now: datetime
) -> ClinicalAlert:
    """Close an alert with what was done about it."""
    alert = existing(session, ClinicalAlert, alert_id, "alert")
    if alert.acknowledged_at is not None:
        raise Conflict(f"alert {alert_id} was already acknowledged")
    if alert.session_id is not None:
        from ketacare.clinic.sessions.inbox import refuse_inbox_acknowledgement

        refuse_inbox_acknowledgement(session=session, alert=alert)
    _close(alert, session=session, actor=actor, by=actor.user_id, action=action.strip(), now=now)
    return alert


def responsible_name(*, session: Session, user_id: int | None) -> str | None:
    """The display name of a responsible clinician."""
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return user.full_name if user else None


def instrument_for_form(instrument_id: str) -> object:
    """The instrument definition a form renders (raises UnknownItem)."""
    return get_instrument(instrument_id)
