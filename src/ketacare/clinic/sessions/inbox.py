"""Session alerts mirrored to the responsible clinician's inbox, and acknowledged at the chair.

A new alert at a chair raises an inbox alert at once; one acknowledged at the chair
(with the action taken) closes its inbox alert. While the session is still at a
chair its alerts are acknowledged there only, never from the inbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.assessments.orm import ClinicalAlert
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.sessions.cache import state_for
from ketacare.clinic.sessions.orm import DosingSession
from ketacare.clinic.sessions.words import alert_text
from ketacare.core.sessions import ALERT_ACTIONS, FINAL_STATES, SessionState
from ketacare.infra.errors import Conflict

if TYPE_CHECKING:
    from ketacare.clinic.sessions.log import SessionHead

ALERT_KINDS = frozenset({"vitals", "side_effects", "acknowledge_alert", "amendment"})
"""Entries after which the session's alerts are mirrored to the clinician's inbox."""


def sync_inbox(
    *,
    session: Session,
    actor: audit.Actor,
    head: SessionHead,
    state: SessionState,
    now: datetime,
) -> None:
    """Mirror the session's alerts to the responsible clinician's inbox (the one PHQ-9 item 9
    alerts use): a new alert raises an inbox alert at once; one acknowledged at the chair
    closes its inbox alert with the action taken."""
    rows = {
        a.session_alert: a
        for a in session.scalars(select(ClinicalAlert).where(ClinicalAlert.session_id == head.id))
    }
    recipient = None
    for alert in state.alerts:
        row = rows.get(alert.id)
        if row is None and alert.is_open:
            if recipient is None:
                recipient = session.get(Patient, head.patient_id)
            row = ClinicalAlert(
                patient_id=head.patient_id,
                kind="session_vitals",
                message=f"Session {head.id} (plan {head.plan_id}): {alert_text(alert)}",
                routes_to=None,
                recipient_id=recipient.responsible_clinician_id if recipient else None,
                raised_at=now,
                session_id=head.id,
                session_alert=alert.id,
            )
            audit.stored(
                row,
                session=session,
                actor=actor,
                at=now,
                resource_type="clinical_alert",
                patient_id=head.patient_id,
                detail={"kind": "session_vitals", "session": head.id, "alert": alert.id},
                action="alert",
            )
        elif row is not None and not alert.is_open and row.acknowledged_at is None:
            ack = alert.acknowledgement
            assert ack is not None
            row.acknowledged_at = now
            row.acknowledged_by = actor.user_id
            row.action = f"at the chair: {ack.action.replace('_', ' ')}" + (
                f" ({ack.note})" if ack.note else ""
            )


def acknowledged_at_the_chair(*, session: Session, alert: ClinicalAlert) -> bool:
    """True when the inbox alert mirrors a session alert still open at a chair in use.

    Such an alert is acknowledged at the chair only, with the action taken there
    (continue, reduce rate, pause, stop, call physician): the acknowledgement is an
    entry of the session's log, which is what the discharge rule and the chair read;
    an inbox note would close the inbox while the chair still shows the alert open,
    or clear the chair's alert with nobody at the chair having acted. Once the
    session has ended (ended early with the alert open) the chair can no longer
    record it, and the inbox acknowledgement is the record of the follow-up.
    """
    if alert.session_id is None or alert.session_alert is None:
        return False
    row = session.get(DosingSession, alert.session_id)
    if row is None or row.state in FINAL_STATES:
        return False
    state = state_for(session=session, row=row)
    return any(a.id == alert.session_alert and a.is_open for a in state.alerts)


def refuse_inbox_acknowledgement(*, session: Session, alert: ClinicalAlert) -> None:
    """Refuse to acknowledge from the inbox a session alert open at the chair (see
    :func:`acknowledged_at_the_chair`); nothing is stored.

    Raises
    ------
    Conflict
        Naming the session, where to acknowledge it and the actions to choose from.
    """
    if acknowledged_at_the_chair(session=session, alert=alert):
        actions = ", ".join(a.replace("_", " ") for a in ALERT_ACTIONS)
        raise Conflict(
            f"this alert is open at the chair of session {alert.session_id}: acknowledge it "
            f"there with the action taken ({actions}) at /sessions/{alert.session_id} "
            f"(API: POST /api/v1/sessions/{alert.session_id}/events with kind "
            "acknowledge_alert); the inbox closes with it"
        )
