"""JSON routes of screenings."""

from __future__ import annotations

from fastapi import APIRouter

from ketacare.clinic.screenings import schemas, service
from ketacare.web.deps import Call, Id, api_request

router = APIRouter(prefix="/api/v1", tags=["screenings"])


@router.post(
    "/patients/{patient_id}/screenings", response_model=schemas.ScreeningRead, status_code=201
)
def create_screening(
    patient_id: Id,
    data: schemas.ScreeningCreate,
    call: Call = api_request("screening:run"),
) -> object:
    """Screen the patient from the record plus these entries; a draft awaiting sign-off."""
    return call.do(
        service.run_screening,
        patient_id=patient_id,
        form=data.model_dump(exclude_none=True),
        policy=service.site_policy(call.settings),
    )


@router.get("/patients/{patient_id}/screenings", response_model=list[schemas.ScreeningRead])
def list_screenings(
    patient_id: Id,
    call: Call = api_request("screening:read"),
) -> list[object]:
    """A patient's screenings, newest first."""
    return list(call.do(service.list_screenings, patient_id=patient_id))


@router.post("/screenings/{screening_id}/sign", response_model=schemas.ScreeningRead)
def sign_screening(
    screening_id: Id,
    data: schemas.SignOff,
    call: Call = api_request("screening:sign"),
) -> object:
    """A physician signs the decision."""
    return call.do(
        service.sign,
        screening_id=screening_id,
        note=data.note,
        valid_until=data.valid_until,
        policy=service.site_policy(call.settings),
    )
