"""Research consent and the registry export.

A patient enters an export only while their newest consent decision is ``granted``; a
withdrawal holds for every export after it. The export (:func:`export_registry`) is a
zip of three CSV tables and a README, built by the core
(:func:`ketacare.core.research.deidentify`) from what the record holds. Codes are drawn
at random for each export and kept nowhere, and the patients are shuffled, so neither
the codes nor the order of the rows lead back to a record. Every export is audited with
the patients it holds (the audit trail is the clinic's, not the recipient's).
"""

from __future__ import annotations

import csv
import io
import secrets
import zipfile
from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ketacare.clinic.assessments.orm import Assessment
from ketacare.clinic.audit import service as audit
from ketacare.clinic.outcomes.record import SIDE_EFFECTS
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.research.orm import ResearchConsent
from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.sessions.doses import doses_given
from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.research import (
    PROFILES,
    PatientRecord,
    ScoreRecord,
    SessionRecord,
    deidentify,
    rules,
)
from ketacare.infra.errors import Conflict

DECISIONS = ("granted", "withdrawn")
COLUMNS = {
    "patients": ("code", "sex", "age_at_first_dose", "first_dose_year", "conditions"),
    "sessions": (
        "code",
        "session",
        "year",
        "day",
        "molecule",
        "route",
        "mg",
        "mg_per_kg",
        "adverse",
    ),
    "scores": ("code", "instrument", "total", "after_session", "year", "day"),
}


def record_consent(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    decision: str,
    note: str,
    now: datetime,
) -> ResearchConsent:
    """Record a patient's decision on the registry (the newest one holds)."""
    get_patient(session=session, patient_id=patient_id)
    if decision not in DECISIONS:
        raise UnknownItem("consent decision", decision, DECISIONS)
    if not note.strip():
        raise InvalidInput(
            "note is required: say which consent form (and version) the patient signed, "
            "or how the withdrawal was made"
        )
    row = ResearchConsent(
        patient_id=patient_id,
        decision=decision,
        note=note.strip()[:2000],
        recorded_at=now,
        recorded_by=actor.user_id,
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="research_consent",
        patient_id=patient_id,
        detail={"decision": decision},
    )


def withdraw_own(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime
) -> ResearchConsent:
    """The patient withdraws their registry consent themselves; every export after this
    leaves them out. Only a consent in force can be withdrawn."""
    history = consent_history(session=session, patient_id=patient_id)
    if not history or history[0].decision != "granted":
        raise Conflict(
            f"patient {patient_id} has no research consent in force to withdraw "
            f"(newest decision: {history[0].decision if history else 'none recorded'})"
        )
    return record_consent(
        session=session,
        actor=actor,
        patient_id=patient_id,
        decision="withdrawn",
        note="withdrawn by the patient from their own record",
        now=now,
    )


def read_consents(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime
) -> list[ResearchConsent]:
    """:func:`consent_history` for someone who reads it: the read is audited."""
    get_patient(session=session, patient_id=patient_id)
    audit.read_patient(
        patient_id, session=session, actor=actor, at=now, resource_type="research_consent"
    )
    return consent_history(session=session, patient_id=patient_id)


# Built once (the chart reads it on every request).
_HISTORY = (
    select(ResearchConsent)
    .where(ResearchConsent.patient_id == bindparam("patient_id"))
    .order_by(ResearchConsent.recorded_at.desc(), ResearchConsent.id.desc())
)


def consent_history(*, session: Session, patient_id: int) -> list[ResearchConsent]:
    """Every decision of the patient, newest first."""
    return list(session.scalars(_HISTORY, {"patient_id": patient_id}))


def consenting_patients(*, session: Session) -> list[int]:
    """The patients whose newest decision is ``granted``."""
    newest: dict[int, str] = {}
    for patient_id, decision in session.execute(
        select(ResearchConsent.patient_id, ResearchConsent.decision).order_by(
            ResearchConsent.recorded_at, ResearchConsent.id
        )
    ):
        newest[patient_id] = decision
    return sorted(pid for pid, decision in newest.items() if decision == "granted")


def _record(session: Session, patient: Patient, now: datetime) -> PatientRecord:
    given = []
    for dose in doses_given(session=session, patient_id=patient.id, now=now):
        state = sessions.state_of(session=session, session_id=dose.session_id)
        adverse = sorted(
            {f"alert_{a.source}" for a in state.alerts}
            | {k for k in SIDE_EFFECTS if any(getattr(s, k) is True for s in state.side_effects)}
            | (
                {"stopped_for_adverse_effect"}
                if state.stop is not None and state.stop.reason == "adverse_effect"
                else set()
            )
        )
        given.append(
            SessionRecord(
                at=dose.at,
                molecule=dose.molecule,
                route=dose.route,
                mg=dose.mg,
                mg_per_kg=dose.mg_per_kg,
                adverse=tuple(adverse),
            )
        )
    scores = tuple(
        ScoreRecord(at=a.completed_at.astimezone(UTC), instrument=a.instrument_id, total=a.total)
        for a in session.scalars(
            select(Assessment).where(
                Assessment.patient_id == patient.id,
                Assessment.status == "final",
                Assessment.total.is_not(None),
            )
        )
        if a.total is not None
    )
    return PatientRecord(
        patient_id=patient.id,
        birth_date=patient.birth_date,
        sex=patient.sex,
        conditions=tuple(c.icd10_code for c in patient.conditions if c.status == "active"),
        sessions=tuple(given),
        scores=scores,
    )


def export_registry(
    *,
    session: Session,
    actor: audit.Actor,
    profile: str,
    now: datetime,
    data_use_agreement: str | None = None,
) -> tuple[bytes, int]:
    """The zip of the export and how many patients it holds (an audited export)."""
    if profile not in PROFILES:
        raise UnknownItem("export profile", profile, PROFILES)
    dua = (data_use_agreement or "").strip()
    if profile == "limited" and not dua:
        raise InvalidInput(
            "the 'limited' profile exports day counts (a limited data set): give the "
            "reference of the data use agreement with the recipient"
        )
    ids = consenting_patients(session=session)
    secrets.SystemRandom().shuffle(ids)
    codes: dict[int, str] = {}
    for pid in ids:
        while (code := f"R{secrets.token_hex(4).upper()}") in codes.values():
            pass
        codes[pid] = code
    records = [_record(session, get_patient(session=session, patient_id=pid), now) for pid in ids]
    rows = deidentify(records, codes=codes, profile=profile)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for table, columns in COLUMNS.items():
            shown = [c for c in columns if c != "day" or profile == "limited"]
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=shown, lineterminator="\n")
            writer.writeheader()
            for r in rows:
                if r.table == table:
                    writer.writerow({k: r.values.get(k) for k in shown})
            z.writestr(f"{table}.csv", text.getvalue())
        z.writestr("README.txt", _readme(profile, len(ids), dua, now))
    audit.record(
        session=session,
        actor=actor,
        action="export",
        resource_type="registry",
        at=now,
        detail={"profile": profile, "patients": sorted(ids), "data_use_agreement": dua or None},
    )
    return buffer.getvalue(), len(ids)


def _readme(profile: str, count: int, dua: str, now: datetime) -> str:
    r = rules()
    chosen = r.profiles[profile]
    lines = [
        "ketacare research registry export",
        f"exported in {now.year}: {count} consenting patient(s)",
        f"profile: {profile} - {chosen['title']}",
        chosen["note"],
        *([f"data use agreement: {dua}"] if dua else []),
        "",
        "patients.csv: code (drawn at random for this export), sex, age at the first dose in",
        f"  whole years ({r.top_label} for {r.top_coded_at_years} and older), year of the first "
        "dose, ICD-10-CM codes",
        "sessions.csv: each session in which dosing started, numbered in order; mg delivered",
        "  (from the session log) and mg/kg; adverse events as kinds",
        "scores.csv: final instrument totals; after_session = sessions given before the score",
        "",
        "Rules and their sources:",
        *[f"- {s['citation']} ({s['url']})" for s in r.sources.values()],
    ]
    return "\n".join(lines) + "\n"
