"""Use cases of the patient record. Every read and write is audited; nothing is deleted.

Plausibility bounds below are data-entry checks of the product (a typo guard),
not clinical limits: 20-350 kg, 50-260 cm, born after 1900 and not in the future.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any, TypeVar, cast

from sqlalchemy import bindparam, func, inspect, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients import schemas
from ketacare.clinic.patients.identity import duplicate_message, possible_duplicates
from ketacare.clinic.patients.orm import Allergy, BodyMeasurement, Condition, Medication, Patient
from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.terminology import icd10cm_display, normalise_icd10cm, normalise_rxcui
from ketacare.infra.addresses import one_email_address
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict, NotFound, PossibleDuplicate, RecordRetired

WEIGHT_KG = (20.0, 350.0)
HEIGHT_CM = (50.0, 260.0)
EARLIEST_BIRTH = date(1900, 1, 1)
STATUSES = {
    "condition": ("active", "resolved", "entered-in-error"),
    "medication": ("active", "stopped", "entered-in-error"),
    "allergy": ("active", "inactive", "entered-in-error"),
    "weight": ("final", "entered-in-error"),
}


def check_weight(weight_kg: float) -> float:
    """A plausible body weight in kg."""
    if not (WEIGHT_KG[0] <= weight_kg <= WEIGHT_KG[1]):
        raise OutOfRange("weight_kg", weight_kg, f"{WEIGHT_KG[0]:g} to {WEIGHT_KG[1]:g} kg")
    return float(weight_kg)


def check_height(height_cm: float | None) -> float | None:
    """A plausible height in cm (or none)."""
    if height_cm is not None and not (HEIGHT_CM[0] <= height_cm <= HEIGHT_CM[1]):
        raise OutOfRange("height_cm", height_cm, f"{HEIGHT_CM[0]:g} to {HEIGHT_CM[1]:g} cm")
    return height_cm


def check_birth_date(birth_date: date, today: date) -> date:
    """A birth date between 1900-01-01 and today."""
    if not (EARLIEST_BIRTH <= birth_date <= today):
        raise OutOfRange(
            "birth_date", birth_date.isoformat(), f"{EARLIEST_BIRTH.isoformat()} to today"
        )
    return birth_date


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def _email(text: str | None) -> str | None:
    email = _clean(text)
    return None if email is None else one_email_address(email)


def create_patient(
    *, session: Session, actor: audit.Actor, data: schemas.PatientCreate, now: datetime
) -> Patient:
    """Register a patient (with a first weight if given).

    An MRN already on record is refused; a name and birth date (or an MRN differing only in
    case) matching a record not retired is refused as a :class:`PossibleDuplicate` naming
    those records, unless ``data.confirm_duplicate``.
    """
    check_birth_date(data.birth_date, now.date())
    if data.weight_kg is not None:
        check_weight(data.weight_kg)
    check_height(data.height_cm)
    if data.height_cm is not None and data.weight_kg is None:
        raise InvalidInput("height_cm needs weight_kg measured with it")
    mrn = _clean(data.mrn)
    if mrn:
        same = session.scalar(select(Patient).where(Patient.mrn == mrn))
        if same is not None:
            retired = " (retired as entered in error)" if same.retired_at else ""
            raise Conflict(
                f"a patient with MRN {mrn} already exists: patient {same.id}{retired}; "
                "an MRN is unique"
            )
    if not data.confirm_duplicate:
        matches = possible_duplicates(
            session=session,
            given_name=data.given_name,
            family_name=data.family_name,
            birth_date=data.birth_date,
            mrn=mrn,
        )
        if matches:
            raise PossibleDuplicate(
                duplicate_message(matches), matches=tuple(p.id for p in matches)
            )
    patient = Patient(
        mrn=mrn or f"TMP-{now.timestamp():.6f}",
        given_name=data.given_name.strip(),
        family_name=data.family_name.strip(),
        birth_date=data.birth_date,
        sex=data.sex,
        phone=_clean(data.phone),
        email=_email(data.email),
        address=_clean(data.address),
        created_at=now,
        created_by=actor.user_id,
    )
    session.add(patient)
    session.flush()
    if not mrn:
        patient.mrn = f"KC{patient.id:06d}"
    audit.record(
        session=session,
        actor=actor,
        action="create",
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
        at=now,
    )
    if data.weight_kg is not None:
        add_weight(
            session=session,
            actor=actor,
            patient_id=patient.id,
            data=schemas.WeightCreate(weight_kg=data.weight_kg, height_cm=data.height_cm),
            now=now,
        )
    return patient


def list_patients(
    *,
    session: Session,
    actor: audit.Actor,
    now: datetime,
    search: str | None = None,
    only_patient_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Patient], int]:
    """Patients matching a name or MRN search, by family name (audited as a list read)."""
    query = select(Patient)
    if only_patient_id is not None:
        query = query.where(Patient.id == only_patient_id)
    else:  # a record retired as entered in error stays reachable by its id only
        query = query.where(Patient.retired_at.is_(None))
    term = (search or "").strip()
    if term:
        like = f"%{term.lower()}%"
        query = query.where(
            or_(
                func.lower(Patient.family_name).like(like),
                func.lower(Patient.given_name).like(like),
                func.lower(Patient.mrn).like(like),
            )
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        session.scalars(
            query.order_by(Patient.family_name, Patient.given_name, Patient.id)
            .limit(limit)
            .offset(offset)
        )
    )
    audit.record(
        session=session,
        actor=actor,
        action="list",
        resource_type="patient",
        at=now,
        detail={"search": term[:100], "returned": [p.id for p in rows]},
    )
    return rows, total


def get_patient(*, session: Session, patient_id: int) -> Patient:
    """The patient, or :class:`NotFound` (not audited: callers audit their read)."""
    return existing(session, Patient, patient_id, "patient")


def retire_patient(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    reason: str,
    zone: tzinfo,
    now: datetime,
) -> Patient:
    """Retire a record entered in error (a duplicate, the wrong person), with a reason.

    The record is kept whole and stays readable by its id, with who retired it, when and
    why; it leaves the patient list, the search and the clinic dashboard, every later
    write against it is refused (:class:`RecordRetired`), and its chair bookings and
    therapy sessions still to come are cancelled with the reason (therapy sessions dated
    after today in the clinic's ``zone``). The retirement is audited.
    """
    patient = get_patient(session=session, patient_id=patient_id)
    if patient.retired_at is not None:
        raise RecordRetired(
            f"patient {patient_id} was already retired as entered in error on "
            f"{patient.retired_at.date().isoformat()}"
        )
    why = reason.strip()
    if not 3 <= len(why) <= 1000:
        raise InvalidInput(
            "reason is required to retire a record: say why it was entered in error "
            "(3 to 1000 characters)"
        )
    # its bookings to come would hold chairs for a person who is not this one (cancelled
    # first: a retired record takes no more writes)
    from ketacare.clinic.plans import booking, therapy  # plans read patients: imported on use

    booking.cancel_for_retired_record(
        session=session, actor=actor, patient_id=patient.id, reason=why, now=now
    )
    therapy.cancel_for_retired_record(
        session=session,
        actor=actor,
        patient_id=patient.id,
        reason=why,
        today=now.astimezone(zone).date(),
        now=now,
    )
    patient.retired_at = now
    patient.retired_by = actor.user_id
    patient.retired_reason = why
    patient.version += 1
    audit.record(
        session=session,
        actor=actor,
        action="retire",
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
        at=now,
        detail={"status": "entered-in-error", "reason": why[:500]},
    )
    _diagnosis_changed(session=session, patient_id=patient.id, now=now)  # leaves the dashboard
    return patient


def current_weight(patient: Patient) -> BodyMeasurement | None:
    """The latest valid weight measurement."""
    valid = [w for w in patient.weights if w.status == "final"]
    return max(valid, key=lambda w: (w.measured_at, w.id)) if valid else None


def read_chart(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime
) -> schemas.PatientChart:
    """The whole record of one patient, with its amendment history (audited read)."""
    patient = get_patient(session=session, patient_id=patient_id)
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
        at=now,
    )
    return chart_of(session=session, patient=patient)


# The record's lists, each read by a statement built once, in the order of the
# relationship it fills (a lazy load of each costs several times the query).
_LISTS = tuple(
    (name, select(kind).where(kind.patient_id == bindparam("patient_id")).order_by(order))
    for name, kind, order in (
        ("weights", BodyMeasurement, BodyMeasurement.measured_at),
        ("conditions", Condition, Condition.id),
        ("medications", Medication, Medication.id),
        ("allergies", Allergy, Allergy.id),
    )
)


def _load_lists(session: Session, patient: Patient) -> None:
    """Fill the record's lists not loaded yet (as their relationships would load them)."""
    unloaded = inspect(patient).unloaded
    which = {"patient_id": patient.id}
    for name, statement in _LISTS:
        if name in unloaded:
            set_committed_value(patient, name, list(session.scalars(statement, which)))


def chart_of(*, session: Session, patient: Patient) -> schemas.PatientChart:
    """Assemble the chart of a patient already read."""
    _load_lists(session, patient)
    latest = current_weight(patient)
    read = schemas.PatientRead.model_validate(patient, from_attributes=True)
    read.current_weight_kg = latest.weight_kg if latest else None
    read.current_weight_measured_at = latest.measured_at if latest else None
    return schemas.PatientChart(
        patient=read,
        weights=[schemas.WeightRead.model_validate(w) for w in patient.weights],
        conditions=[schemas.ConditionRead.model_validate(c) for c in patient.conditions],
        medications=[schemas.MedicationRead.model_validate(m) for m in patient.medications],
        allergies=[schemas.AllergyRead.model_validate(a) for a in patient.allergies],
        amendments=[
            schemas.AmendmentRead.model_validate(a)
            for a in audit.history(session=session, patient_id=patient.id)
        ],
    )


def amend_patient(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    data: schemas.PatientAmend,
    now: datetime,
) -> Patient:
    """Correct demographics or contact, keeping the values before (optimistic concurrency)."""
    patient = get_patient(session=session, patient_id=patient_id)
    if data.version != patient.version:
        raise Conflict(
            f"patient {patient_id} was changed by someone else (now version {patient.version}, "
            f"you edited version {data.version}): reload and apply your correction again"
        )
    changes: dict[str, Any] = data.model_dump(exclude={"reason", "version"}, exclude_unset=True)
    if "birth_date" in changes and changes["birth_date"] is not None:
        check_birth_date(changes["birth_date"], now.date())
    for required in ("given_name", "family_name", "birth_date", "sex"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be emptied")
    changes = {k: _clean(v) if isinstance(v, str) else v for k, v in changes.items()}
    if "email" in changes:
        changes["email"] = _email(changes["email"])
    changes = {k: v for k, v in changes.items() if getattr(patient, k) != v}
    if not changes:
        raise InvalidInput("the correction changes nothing")
    before = {k: getattr(patient, k) for k in changes}
    for key, value in changes.items():
        setattr(patient, key, value)
    patient.version += 1
    audit.amend(
        session=session,
        actor=actor,
        resource_type="patient",
        resource_id=patient.id,
        patient_id=patient.id,
        before=before,
        after=changes,
        reason=data.reason.strip(),
        at=now,
    )
    return patient


def add_weight(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    data: schemas.WeightCreate,
    now: datetime,
) -> BodyMeasurement:
    """Record a measured weight (and height)."""
    get_patient(session=session, patient_id=patient_id)
    measured_at = data.measured_at or now
    if measured_at.tzinfo is None:
        raise InvalidInput("measured_at needs a time zone (e.g. 2026-03-01T09:30:00+00:00)")
    if measured_at > now:
        raise InvalidInput(f"measured_at {measured_at.isoformat()} is in the future")
    row = BodyMeasurement(
        patient_id=patient_id,
        weight_kg=check_weight(data.weight_kg),
        height_cm=check_height(data.height_cm),
        measured_at=measured_at,
        recorded_by=actor.user_id,
    )
    return _stored(session, actor, "weight", row, now)


def add_condition(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    data: schemas.ConditionCreate,
    now: datetime,
) -> Condition:
    """Record a diagnosis by its ICD-10-CM code."""
    get_patient(session=session, patient_id=patient_id)
    code = normalise_icd10cm(data.icd10_code)
    display = _clean(data.display) or icd10cm_display(code)
    if display is None:
        raise InvalidInput(f"ICD-10-CM code {code} is not in ketacare's list: give its display")
    if data.onset_date is not None and data.onset_date > now.date():
        raise InvalidInput(f"onset_date {data.onset_date.isoformat()} is in the future")
    row = Condition(
        patient_id=patient_id,
        icd10_code=code,
        display=display,
        onset_date=data.onset_date,
        recorded_at=now,
        recorded_by=actor.user_id,
    )
    _stored(session, actor, "condition", row, now)
    _diagnosis_changed(session=session, patient_id=patient_id, now=now)
    return row


def add_medication(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    data: schemas.MedicationCreate,
    now: datetime,
) -> Medication:
    """Record a current medication (RxNorm code when known)."""
    get_patient(session=session, patient_id=patient_id)
    code = _clean(data.rxnorm_code)
    rxcui = normalise_rxcui(code) if code else None
    row = Medication(
        patient_id=patient_id,
        name=data.name.strip(),
        rxnorm_code=rxcui,
        dose_text=_clean(data.dose_text),
        recorded_at=now,
        recorded_by=actor.user_id,
    )
    return _stored(session, actor, "medication", row, now)


def add_allergy(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    data: schemas.AllergyCreate,
    now: datetime,
) -> Allergy:
    """Record an allergy or intolerance."""
    get_patient(session=session, patient_id=patient_id)
    row = Allergy(
        patient_id=patient_id,
        substance=data.substance.strip(),
        reaction=_clean(data.reaction),
        severity=data.severity,
        recorded_at=now,
        recorded_by=actor.user_id,
    )
    return _stored(session, actor, "allergy", row, now)


_ENTRY_TABLES: dict[str, type[Condition] | type[Medication] | type[Allergy] | type[BodyMeasurement]]
_ENTRY_TABLES = {
    "condition": Condition,
    "medication": Medication,
    "allergy": Allergy,
    "weight": BodyMeasurement,
}


def change_status(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    kind: str,
    entry_id: int,
    data: schemas.StatusChange,
    now: datetime,
) -> object:
    """Retire or mark an entry entered-in-error, with a reason; the entry stays visible."""
    if kind not in _ENTRY_TABLES:
        raise InvalidInput(f"unknown entry kind {kind!r}: allowed {', '.join(_ENTRY_TABLES)}")
    allowed = STATUSES[kind]
    if data.status not in allowed:
        raise InvalidInput(
            f"status {data.status!r} is not allowed for a {kind}: {', '.join(allowed)}"
        )
    row = cast(
        "Condition | Medication | Allergy | BodyMeasurement | None",
        session.get(_ENTRY_TABLES[kind], entry_id),
    )
    if row is None or row.patient_id != patient_id:
        raise NotFound(f"{kind} {entry_id} of patient {patient_id} does not exist")
    if row.status == data.status:
        raise InvalidInput(f"{kind} {entry_id} is already {data.status}")
    before = {"status": row.status}
    row.status = data.status
    audit.amend(
        session=session,
        actor=actor,
        resource_type=kind,
        resource_id=entry_id,
        patient_id=patient_id,
        before=before,
        after={"status": data.status},
        reason=data.reason.strip(),
        at=now,
    )
    if kind == "condition":
        _diagnosis_changed(session=session, patient_id=patient_id, now=now)
    return row


def _diagnosis_changed(*, session: Session, patient_id: int, now: datetime) -> None:
    """The clinic dashboard groups patients by diagnosis: keep its summary current."""
    from ketacare.clinic.analytics import service as analytics

    session.flush()
    analytics.refresh_patient(session=session, patient_id=patient_id, now=now)


_Entry = TypeVar("_Entry", Condition, Medication, Allergy, BodyMeasurement)


def _stored(session: Session, actor: audit.Actor, kind: str, row: _Entry, now: datetime) -> _Entry:
    """A new entry of the chart stored, its creation audited."""
    return audit.stored(
        row, session=session, actor=actor, at=now, resource_type=kind, patient_id=row.patient_id
    )


def export_fhir(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime
) -> dict[str, object]:
    """The whole record as a FHIR R4 Bundle (type collection); the export is audited."""
    from ketacare.clinic.assessments import service as assessments
    from ketacare.fhir.bundle import patient_bundle

    patient = get_patient(session=session, patient_id=patient_id)
    audit.read_patient(
        patient_id,
        session=session,
        actor=actor,
        at=now,
        resource_type="patient",
        detail={"format": "fhir-r4-bundle"},
        action="export",
    )
    return patient_bundle(
        patient=patient,
        conditions=patient.conditions,
        medications=patient.medications,
        allergies=patient.allergies,
        measurements=patient.weights,
        assessments=assessments.of_patient(session=session, patient_id=patient_id),
        generated_at=now,
    )
