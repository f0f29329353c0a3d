"""Screen a patient from their record: the decision, its reasons and sources, and sign-off.

The input document is assembled from the record (age, sex, conditions, active
medications and allergies, the latest instrument results) plus what the clinician
enters (treatment, history, pregnancy, vitals, liver tests). The document and the
decision are kept exactly as used, with the rule-set version; a physician signs.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.assessments.service import latest_by_instrument
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.screenings.orm import Screening
from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.screening import SitePolicy, parse_site_policy, screen_document
from ketacare.infra.errors import Conflict, NotFound

#: instruments whose latest result feeds the screening
SCREENING_INSTRUMENTS = ("ort", "dast10", "auditc", "phq9", "cssrs_screener", "gad7")


@lru_cache(maxsize=8)
def _policy_from(path: str, mtime: float) -> SitePolicy:
    del mtime  # part of the cache key: a changed file is read again
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"site policy file {path}: {exc}") from None
    return parse_site_policy(text, name=path)


def site_policy(path: Path | None) -> SitePolicy | None:
    """The clinic's site policy, or None when the clinic has not configured one."""
    if path is None:
        return None
    return _policy_from(str(path), Path(path).stat().st_mtime if Path(path).exists() else 0.0)


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def build_document(
    *, session: Session, patient: Patient, form: dict[str, Any], today: date
) -> dict[str, Any]:
    """The screening input document: the record's facts plus the clinician's entries."""
    doc: dict[str, Any] = {
        "patient": {"age_years": _age(patient.birth_date, today)},
        "treatment": form["treatment"],
        "conditions": [
            {"code": c.icd10_code, "display": c.display}
            for c in patient.conditions
            if c.status == "active"
        ],
        "medications": [{"name": m.name} for m in patient.medications if m.status == "active"],
        "allergies": [a.substance for a in patient.allergies if a.status == "active"],
        "screened_on": today.isoformat(),
    }
    if patient.sex in ("female", "male"):
        doc["patient"]["sex"] = patient.sex
    for key in ("history", "vitals", "labs", "pregnancy_status", "breastfeeding"):
        if form.get(key) not in (None, {}, []):
            doc[key] = form[key]
    latest = latest_by_instrument(session=session, patient_id=patient.id)
    doc["instruments"] = [
        {
            "instrument": a.instrument_id,
            "total": a.total,
            "band": a.band,
            "flags": list(a.flags),
            "version": a.instrument_version,
            # item answers: a total alone does not say how PHQ-9 item 9 was answered
            "items": {k: v for k, v in a.answers.items() if isinstance(v, int | float)},
        }
        for key, a in sorted(latest.items())
        if key in SCREENING_INSTRUMENTS
    ]
    return doc


def run_screening(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    form: dict[str, Any],
    now: datetime,
    policy: SitePolicy | None,
) -> Screening:
    """Screen the patient now and keep the input and decision as a draft for sign-off."""
    patient = get_patient(session=session, patient_id=patient_id)
    if "treatment" not in form:
        raise InvalidInput("treatment is required: molecule and route")
    doc = build_document(session=session, patient=patient, form=form, today=now.date())
    decision = screen_document(doc, policy=policy)
    result = decision.to_dict()
    row = Screening(
        patient_id=patient_id,
        input=doc,
        result=result,
        decision=decision.decision,
        ruleset_version=f"{decision.ruleset_id} {decision.ruleset_version}",
        molecule=str(doc["treatment"].get("molecule")),
        route=str(doc["treatment"].get("route")),
        created_at=now,
        created_by=actor.user_id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="create",
        resource_type="screening",
        resource_id=row.id,
        patient_id=patient_id,
        at=now,
        detail={"decision": decision.decision, "ruleset": row.ruleset_version},
    )
    return row


def get_screening(*, session: Session, screening_id: int) -> Screening:
    row = session.get(Screening, screening_id)
    if row is None:
        raise NotFound(f"screening {screening_id} does not exist")
    return row


def sign(
    *,
    session: Session,
    actor: audit.Actor,
    screening_id: int,
    note: str,
    valid_until: date | None,
    now: datetime,
    policy: SitePolicy | None,
) -> Screening:
    """A physician signs the decision; validity comes from site policy or the physician."""
    row = get_screening(session=session, screening_id=screening_id)
    if row.status != "draft":
        raise Conflict(f"screening {screening_id} is already {row.status}")
    newest = session.scalar(
        select(Screening.id)
        .where(Screening.patient_id == row.patient_id)
        .order_by(Screening.id.desc())
        .limit(1)
    )
    if newest != row.id:
        raise Conflict(
            f"screening {screening_id} is not the newest for this patient "
            f"(screening {newest} is): sign the newest, or screen again"
        )
    if row.created_at.date() != now.date():
        raise Conflict(
            f"screening {screening_id} was made on {row.created_at.date()}: screen "
            "again today before signing"
        )
    days = policy.get("screening_valid_days") if policy else None
    if valid_until is None and days is not None:
        valid_until = now.date() + timedelta(days=int(days))
    if valid_until is None:
        raise InvalidInput(
            "valid_until is required: the site policy sets no screening validity period "
            "(screening_valid_days), so the signing physician says until when it holds"
        )
    if valid_until < now.date():
        raise InvalidInput(f"valid_until {valid_until.isoformat()} is in the past")
    if row.decision == "physician_review" and len(note.strip()) < 3:
        raise InvalidInput(
            "a decision needing physician review is signed with a note saying what was reviewed"
        )
    for older in session.scalars(
        select(Screening).where(
            Screening.patient_id == row.patient_id, Screening.status == "signed"
        )
    ):
        older.status = "superseded"
    row.status = "signed"
    row.signed_at = now
    row.signed_by = actor.user_id
    row.sign_note = note.strip() or None
    row.valid_until = valid_until
    audit.record(
        session=session,
        actor=actor,
        action="sign",
        resource_type="screening",
        resource_id=row.id,
        patient_id=row.patient_id,
        at=now,
        detail={"decision": row.decision, "valid_until": valid_until.isoformat()},
    )
    return row


def list_screenings(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime
) -> list[Screening]:
    """A patient's screenings, newest first (audited read)."""
    get_patient(session=session, patient_id=patient_id)
    rows = list(
        session.scalars(
            select(Screening)
            .where(Screening.patient_id == patient_id)
            .order_by(Screening.id.desc())
        )
    )
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="screening",
        patient_id=patient_id,
        at=now,
        detail={"count": len(rows)},
    )
    return rows


def valid_screening(*, session: Session, patient_id: int, today: date) -> Screening | None:
    """The signed screening in force today, if any (what later steps check)."""
    return session.scalar(
        select(Screening)
        .where(
            Screening.patient_id == patient_id,
            Screening.status == "signed",
            Screening.valid_until >= today,
        )
        .order_by(Screening.id.desc())
        .limit(1)
    )


def form_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """The clinician's part of a screening from an API body (already shape-checked)."""
    return {k: v for k, v in data.items() if v is not None}
