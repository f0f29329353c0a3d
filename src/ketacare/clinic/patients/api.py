"""JSON routes of the patient record."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ketacare.clinic.patients import schemas, service
from ketacare.infra.permissions import Scope, check
from ketacare.web.deps import Call, Id, api_request

router = APIRouter(prefix="/api/v1", tags=["patients"])


@router.get("/patients", response_model=schemas.PatientsPage)
def list_patients(
    search: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    call: Call = api_request("patient:read"),
) -> schemas.PatientsPage:
    """Patients by name or MRN (a patient account sees only itself)."""
    own = check("patient:read", call.principal.role) is Scope.OWN
    rows, total = call.do(
        service.list_patients,
        search=search,
        only_patient_id=(call.principal.patient_id or -1) if own else None,
        limit=limit,
        offset=offset,
    )
    return schemas.PatientsPage(
        items=[schemas.PatientSummary.model_validate(p) for p in rows], total=total
    )


@router.post("/patients", response_model=schemas.PatientRead, status_code=201)
def create_patient(
    data: schemas.PatientCreate,
    call: Call = api_request("patient:create"),
) -> schemas.PatientRead:
    """Register a patient.

    A name and birth date (normalised: case, accents, spaces) or an MRN (ignoring case)
    matching a record already registered answers 409 with the matching ids in
    ``duplicates``; send ``confirm_duplicate: true`` to register a different person
    anyway. An MRN already on record is always refused (409).
    """
    patient = call.do(service.create_patient, data=data)
    return service.chart_of(session=call.session, patient=patient).patient


@router.get("/patients/{patient_id}", response_model=schemas.PatientChart)
def read_patient(
    patient_id: Id,
    call: Call = api_request("patient:read"),
) -> schemas.PatientChart:
    """The whole record of one patient."""
    call.own(patient_id)
    return call.do(service.read_chart, patient_id=patient_id)


@router.post("/patients/{patient_id}/retire", response_model=schemas.PatientRead)
def retire_patient(
    patient_id: Id,
    data: schemas.RetireRequest,
    call: Call = api_request("patient:retire"),
) -> schemas.PatientRead:
    """Retire a record entered in error, with a reason: kept and readable by its id,
    hidden from the list, the search and the dashboard; later writes are refused (409)."""
    patient = call.do(
        service.retire_patient,
        patient_id=patient_id,
        reason=data.reason,
        zone=call.settings.zone,
    )
    return service.chart_of(session=call.session, patient=patient).patient


@router.patch("/patients/{patient_id}", response_model=schemas.PatientRead)
def amend_patient(
    patient_id: Id,
    data: schemas.PatientAmend,
    call: Call = api_request("patient:write"),
) -> schemas.PatientRead:
    """Correct demographics or contact; the values before stay in the history."""
    patient = call.do(service.amend_patient, patient_id=patient_id, data=data)
    return service.chart_of(session=call.session, patient=patient).patient


@router.post("/patients/{patient_id}/weights", response_model=schemas.WeightRead, status_code=201)
def add_weight(
    patient_id: Id,
    data: schemas.WeightCreate,
    call: Call = api_request("patient:write"),
) -> object:
    """Record a measured weight."""
    return call.do(service.add_weight, patient_id=patient_id, data=data)


@router.post(
    "/patients/{patient_id}/conditions", response_model=schemas.ConditionRead, status_code=201
)
def add_condition(
    patient_id: Id,
    data: schemas.ConditionCreate,
    call: Call = api_request("patient:write"),
) -> object:
    """Record a diagnosis (ICD-10-CM)."""
    return call.do(service.add_condition, patient_id=patient_id, data=data)


@router.post(
    "/patients/{patient_id}/medications", response_model=schemas.MedicationRead, status_code=201
)
def add_medication(
    patient_id: Id,
    data: schemas.MedicationCreate,
    call: Call = api_request("patient:write"),
) -> object:
    """Record a current medication."""
    return call.do(service.add_medication, patient_id=patient_id, data=data)


@router.post(
    "/patients/{patient_id}/allergies", response_model=schemas.AllergyRead, status_code=201
)
def add_allergy(
    patient_id: Id,
    data: schemas.AllergyCreate,
    call: Call = api_request("patient:write"),
) -> object:
    """Record an allergy."""
    return call.do(service.add_allergy, patient_id=patient_id, data=data)


@router.post("/patients/{patient_id}/{kind}/{entry_id}/status", status_code=200)
def change_status(
    patient_id: Id,
    kind: Literal["conditions", "medications", "allergies", "weights"],
    entry_id: Id,
    data: schemas.StatusChange,
    call: Call = api_request("patient:write"),
) -> dict[str, object]:
    """Retire an entry or mark it entered-in-error (with a reason); it is never deleted."""
    singular = {
        "conditions": "condition",
        "medications": "medication",
        "allergies": "allergy",
        "weights": "weight",
    }[kind]
    call.do(
        service.change_status, patient_id=patient_id, kind=singular, entry_id=entry_id, data=data
    )
    return {"id": entry_id, "kind": singular, "status": data.status}


@router.get("/patients/{patient_id}/fhir")
def export_fhir(
    patient_id: Id,
    call: Call = api_request("patient:read"),
) -> dict[str, object]:
    """The whole record as a FHIR R4 Bundle (type collection)."""
    call.own(patient_id)
    return call.do(service.export_fhir, patient_id=patient_id)


@router.get("/patients/{patient_id}/history", response_model=list[schemas.AmendmentRead])
def read_history(
    patient_id: Id,
    call: Call = api_request("patient:read"),
) -> list[schemas.AmendmentRead]:
    """Every amendment of the record, with values before and after."""
    call.own(patient_id)
    chart = call.do(service.read_chart, patient_id=patient_id)
    return chart.amendments
