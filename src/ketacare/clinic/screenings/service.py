"""Screen a patient from their record: the decision, its reasons and sources, and sign-off.

The input document is assembled from the record (age, sex, conditions, active
medications and allergies, the latest instrument results) plus what the clinician
enters (treatment, history, pregnancy, vitals, liver tests). The document and the
decision are kept exactly as used, with the rule-set version; a physician signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from ketacare.clinic.assessments.service import latest_by_instrument
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.screenings.orm import Screening, treatment_words
from ketacare.core.errors import InvalidInput
from ketacare.core.instruments import screening_instrument_ids
from ketacare.core.screening import SitePolicy, screen_document
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict
from ketacare.infra.policy import screening_policy
from ketacare.infra.settings import Settings

#: instruments whose latest result feeds the screening (``screenings`` in each instrument's
#: data file)
SCREENING_INSTRUMENTS = screening_instrument_ids("eligibility")


def site_policy(settings: Settings) -> SitePolicy | None:
    """The clinic's screening policy (``KETACARE_SITE_POLICY_FILE``), when configured."""
    return screening_policy(settings)


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
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="screening",
        patient_id=patient_id,
        detail={"decision": decision.decision, "ruleset": row.ruleset_version},
    )


def get_screening(*, session: Session, screening_id: int) -> Screening:
    return existing(session, Screening, screening_id, "screening")


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
        .where(
            Screening.patient_id == row.patient_id,
            Screening.molecule == row.molecule,
            Screening.route == row.route,
        )
        .order_by(Screening.id.desc())
        .limit(1)
    )
    if newest != row.id:
        raise Conflict(
            f"screening {screening_id} is not the newest for {treatment_label(row)} "
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
    # only the same treatment's screening is replaced: another molecule or route keeps its own
    for older in session.scalars(
        select(Screening).where(
            Screening.patient_id == row.patient_id,
            Screening.molecule == row.molecule,
            Screening.route == row.route,
            Screening.status == "signed",
        )
    ):
        older.status = "superseded"
        older.superseded_at = now
        older.superseded_by = row.id
    session.flush()  # the older one leaves the in-force index before this one enters it
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
        detail={
            "decision": row.decision,
            "molecule": row.molecule,
            "route": row.route,
            "valid_until": valid_until.isoformat(),
        },
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
    return audit.read_list(
        rows, patient_id, session=session, actor=actor, at=now, resource_type="screening"
    )


#: decisions that let a plan of the screened treatment go ahead once a physician has
#: signed them (a physician-review decision is signed with a note saying what was reviewed)
ALLOWING = ("eligible", "eligible_with_precautions", "physician_review")


def treatment_label(row: Screening | tuple[str, str]) -> str:
    """'ketamine by IV infusion': the treatment a screening covers, in clinical words."""
    return row.treatment if isinstance(row, Screening) else treatment_words(*row)


def valid_screening(
    *, session: Session, patient_id: int, molecule: str, route: str, today: date
) -> Screening | None:
    """The signed screening in force today for this molecule and route, if any.

    Each treatment has its own: an esketamine nasal-spray screening never stands in
    for a racemic IV one, nor ends it.
    """
    in_force_today = _signed(patient_id, molecule, route).where(Screening.valid_until >= today)
    return session.scalar(in_force_today.limit(1))


def _signed(patient_id: int, molecule: str, route: str) -> Select[Screening]:
    """The patient's signed screenings for one molecule and route, newest first."""
    return (
        select(Screening)
        .where(
            Screening.patient_id == patient_id,
            Screening.molecule == molecule,
            Screening.route == route,
            Screening.status == "signed",
        )
        .order_by(Screening.id.desc())
    )


# Built once (the chart reads it on every request).
_IN_FORCE = (
    select(Screening)
    .where(
        Screening.patient_id == bindparam("patient_id"),
        Screening.status == "signed",
        Screening.valid_until >= bindparam("today"),
    )
    .order_by(Screening.molecule, Screening.route)
)


def in_force(*, session: Session, patient_id: int, today: date) -> list[Screening]:
    """Every signed screening in force today, one per molecule and route (for the chart)."""
    return list(session.scalars(_IN_FORCE, {"patient_id": patient_id, "today": today}))


@dataclass(frozen=True, slots=True)
class Coverage:
    """Whether the record holds a screening that allows a treatment at a moment.

    ``problem`` is None when it does; otherwise it says, in clinical words, what is
    missing. ``screening`` is the signed one found (also when it no longer holds).
    """

    molecule: str
    route: str
    screening: Screening | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """One line for the session log or a page: what was read from the record."""
        s = self.screening
        if s is None or s.valid_until is None or s.signed_at is None:
            return str(self.problem)
        return (
            f"screening {s.id} for {treatment_label(s)}: {s.decision.replace('_', ' ')}, "
            f"signed {s.signed_at.date().isoformat()}, in force until "
            f"{s.valid_until.isoformat()}"
        )


def coverage(
    *, session: Session, patient_id: int, molecule: str, route: str, at: datetime
) -> Coverage:
    """Read from the record whether a signed screening allows this treatment at ``at``.

    It must be signed (not a draft, not superseded), not expired on ``at``'s day, and
    its decision must allow the treatment. Nobody ticks this: it is what the plan's
    signature and each session's start rely on. (A dose charted after the fact is
    checked on its own day; as for the plan's signature, the screening's signing time
    is not compared with it.)
    """
    what = treatment_label((molecule, route))
    latest = session.scalar(_signed(patient_id, molecule, route).limit(1))
    day = at.date()
    problem = None
    if latest is None or latest.signed_at is None or latest.valid_until is None:
        problem = (
            f"no signed screening for {what} is in force: screen the patient for this "
            "treatment and have a physician sign it"
        )
    elif latest.valid_until < day:
        problem = (
            f"the screening for {what} expired on {latest.valid_until.isoformat()}: screen "
            "the patient again and have a physician sign it"
        )
    elif latest.decision not in ALLOWING:
        problem = f"the screening in force for {what} says {latest.decision.replace('_', ' ')}"
    return Coverage(molecule, route, latest, problem)


def form_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """The clinician's part of a screening from an API body (already shape-checked)."""
    return {k: v for k, v in data.items() if v is not None}
