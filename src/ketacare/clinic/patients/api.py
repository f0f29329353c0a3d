"""JSON routes of the patient record."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.patients import schemas, service
from ketacare.infra.permissions import Scope, check
from ketacare.web.deps import DbSession, Now, actor_of, api_permission, ensure_patient_scope

router = APIRouter(prefix="/api/v1", tags=["patients"])
PatientId = Annotated[int, Path(ge=1, le=2**31 - 1)]
EntryId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/patients", response_model=schemas.PatientsPage)
def list_patients(
    request: Request,
    session: DbSession,
    at: Now,
    search: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    principal: Principal = api_permission("patient:read"),
) -> schemas.PatientsPage:
    """Patients by name or MRN (a patient account sees only itself)."""
    own = check("patient:read", principal.role) is Scope.OWN
    rows, total = service.list_patients(
        session=session,
        actor=actor_of(request, principal),
        now=at,
        search=search,
        only_patient_id=(principal.patient_id or -1) if own else None,
        limit=limit,
        offset=offset,
    )
    return schemas.PatientsPage(
        items=[schemas.PatientSummary.model_validate(p) for p in rows], total=total
    )


@router.post("/patients", response_model=schemas.PatientRead, status_code=201)
def create_patient(
    request: Request,
    data: schemas.PatientCreate,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:create"),
) -> schemas.PatientRead:
    """Register a patient."""
    patient = service.create_patient(
        session=session, actor=actor_of(request, principal), data=data, now=at
    )
    return service.chart_of(session=session, patient=patient).patient


@router.get("/patients/{patient_id}", response_model=schemas.PatientChart)
def read_patient(
    request: Request,
    patient_id: PatientId,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:read"),
) -> schemas.PatientChart:
    """The whole record of one patient."""
    ensure_patient_scope(principal, "patient:read", patient_id)
    return service.read_chart(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )


@router.patch("/patients/{patient_id}", response_model=schemas.PatientRead)
def amend_patient(
    request: Request,
    patient_id: PatientId,
    data: schemas.PatientAmend,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:write"),
) -> schemas.PatientRead:
    """Correct demographics or contact; the values before stay in the history."""
    patient = service.amend_patient(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        data=data,
        now=at,
    )
    return service.chart_of(session=session, patient=patient).patient


@router.post("/patients/{patient_id}/weights", response_model=schemas.WeightRead, status_code=201)
def add_weight(
    request: Request,
    patient_id: PatientId,
    data: schemas.WeightCreate,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:write"),
) -> object:
    """Record a measured weight."""
    return service.add_weight(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        data=data,
        now=at,
    )


@router.post(
    "/patients/{patient_id}/conditions", response_model=schemas.ConditionRead, status_code=201
)
def add_condition(
    request: Request,
    patient_id: PatientId,
    data: schemas.ConditionCreate,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:write"),
) -> object:
    """Record a diagnosis (ICD-10-CM)."""
    return service.add_condition(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        data=data,
        now=at,
    )


@router.post(
    "/patients/{patient_id}/medications", response_model=schemas.MedicationRead, status_code=201
)
def add_medication(
    request: Request,
    patient_id: PatientId,
    data: schemas.MedicationCreate,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:write"),
) -> object:
    """Record a current medication."""
    return service.add_medication(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        data=data,
        now=at,
    )


@router.post(
    "/patients/{patient_id}/allergies", response_model=schemas.AllergyRead, status_code=201
)
def add_allergy(
    request: Request,
    patient_id: PatientId,
    data: schemas.AllergyCreate,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:write"),
) -> object:
    """Record an allergy."""
    return service.add_allergy(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        data=data,
        now=at,
    )


@router.post("/patients/{patient_id}/{kind}/{entry_id}/status", status_code=200)
def change_status(
    request: Request,
    patient_id: PatientId,
    kind: Literal["conditions", "medications", "allergies", "weights"],
    entry_id: EntryId,
    data: schemas.StatusChange,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:write"),
) -> dict[str, object]:
    """Retire an entry or mark it entered-in-error (with a reason); it is never deleted."""
    singular = {
        "conditions": "condition",
        "medications": "medication",
        "allergies": "allergy",
        "weights": "weight",
    }[kind]
    service.change_status(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        kind=singular,
        entry_id=entry_id,
        data=data,
        now=at,
    )
    return {"id": entry_id, "kind": singular, "status": data.status}


@router.get("/patients/{patient_id}/fhir")
def export_fhir(
    request: Request,
    patient_id: PatientId,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:read"),
) -> dict[str, object]:
    """The whole record as a FHIR R4 Bundle (type collection)."""
    ensure_patient_scope(principal, "patient:read", patient_id)
    return service.export_fhir(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )


@router.get("/patients/{patient_id}/history", response_model=list[schemas.AmendmentRead])
def read_history(
    request: Request,
    patient_id: PatientId,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:read"),
) -> list[schemas.AmendmentRead]:
    """Every amendment of the record, with values before and after."""
    ensure_patient_scope(principal, "patient:read", patient_id)
    chart = service.read_chart(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )
    return chart.amendments
