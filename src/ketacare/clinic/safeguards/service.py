"""The cumulative dose of one patient: totals, courses, sessions and the clinic's caps.

The doses are what each session's own log says was delivered
(:func:`ketacare.clinic.sessions.service.doses_given`); the arithmetic is the core's
(:mod:`ketacare.core.safeguards`). The caps are the clinic's (its session policy); the
refusal of a session that would pass one happens where sessions are opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.sessions import service as sessions
from ketacare.core.safeguards import (
    Cumulative,
    CumulativeCap,
    Measure,
    cumulative,
    total,
)
from ketacare.infra.settings import Settings

NO_CAPS = (
    "No cap on the cumulative dose is set: no guideline gives one, so a clinic that wants "
    "one sets it in its session policy ([[cumulative_cap]]). Totals are shown without a limit."
)


@dataclass(frozen=True, slots=True)
class CapStatus:
    """One limit of one cap against the window ending now (no dose planned)."""

    cap: CumulativeCap
    measure: Measure
    current: float
    limit: float

    @property
    def remaining(self) -> float:
        """What is left before the cap (negative: already above it)."""
        return self.limit - self.current

    @property
    def reached(self) -> bool:
        """True when any further dose of this molecule would pass the cap."""
        return self.remaining <= 1e-6


@dataclass(frozen=True, slots=True)
class PatientDose:
    """What the chart shows: the core's totals, the caps and how far each one is used."""

    patient_id: int
    cumulative: Cumulative
    caps: tuple[CapStatus, ...]
    note: str | None


def cumulative_dose(
    *, session: Session, actor: audit.Actor, settings: Settings, patient_id: int, now: datetime
) -> PatientDose:
    """The patient's cumulative dose at ``now`` (an audited read of their sessions)."""
    get_patient(session=session, patient_id=patient_id)  # NotFound for an unknown id
    doses = sessions.doses_given(session=session, patient_id=patient_id, now=now)
    caps = sessions.cumulative_caps(settings)
    statuses = tuple(
        CapStatus(
            cap=cap,
            measure=measure,
            current=total(doses, molecule=cap.molecule, window_days=cap.window_days, at=now).value(
                measure
            ),
            limit=limit,
        )
        for cap in caps
        for measure, limit in cap.limits()
    )
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="cumulative_dose",
        resource_id=patient_id,
        patient_id=patient_id,
        at=now,
        detail={"sessions": [d.session_id for d in doses]},
    )
    return PatientDose(
        patient_id=patient_id,
        cumulative=cumulative(doses, at=now),
        caps=statuses,
        note=None if caps else NO_CAPS,
    )
