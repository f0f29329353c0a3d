"""JSON routes of safeguards: a patient's cumulative dose."""

from __future__ import annotations

from fastapi import APIRouter

from ketacare.clinic.safeguards import schemas, service
from ketacare.web.deps import Call, Id, api_request

router = APIRouter(prefix="/api/v1", tags=["safeguards"])


@router.get("/patients/{patient_id}/cumulative-dose", response_model=schemas.CumulativeDose)
def cumulative_dose(
    patient_id: Id,
    call: Call = api_request("session:read"),
) -> schemas.CumulativeDose:
    """What the patient has been given, per molecule: rolling totals (7, 30 and 365 days
    and ever), per course and per session, against the clinic's caps when it sets any."""
    return schemas.CumulativeDose.of(
        call.do(service.cumulative_dose, settings=call.settings, patient_id=patient_id)
    )


@router.post("/plans/{plan_id}/take-home", response_model=schemas.TakeHomeRead, status_code=201)
def dispense(
    plan_id: Id,
    data: schemas.TakeHomeIn,
    call: Call = api_request("takehome:dispense"),
) -> schemas.TakeHomeRead:
    """Dispense a take-home supply under a signed oral, sublingual or intranasal plan,
    drawn from the stock lot it names.

    Refused until the clinic sets its take-home limits; refused above them, for
    esketamine, and where the screening requires no take-home doses; an early refill
    beyond the clinic's tolerance needs a reason. Once the clinic keeps stock of the
    molecule the lot is required; refused: a lot of another molecule or of a form the
    route does not take, expired, too little on hand, mg not what its units hold."""
    row = call.do(service.dispense, settings=call.settings, plan_id=plan_id, **data.model_dump())
    return schemas.TakeHomeRead.of(service.dispense_row(session=call.session, dispense_id=row.id))


@router.get("/patients/{patient_id}/take-home", response_model=list[schemas.TakeHomeRead])
def take_home_supplies(
    patient_id: Id,
    call: Call = api_request("session:read"),
) -> list[schemas.TakeHomeRead]:
    """Every take-home supply of the patient, voided ones included, oldest first."""
    rows = call.do(service.dispenses, patient_id=patient_id)
    return [schemas.TakeHomeRead.of(r) for r in rows]


@router.post("/take-home/{dispense_id}/void", response_model=schemas.TakeHomeRead)
def void(
    dispense_id: Id,
    data: schemas.VoidIn,
    call: Call = api_request("takehome:dispense"),
) -> schemas.TakeHomeRead:
    """Void a supply entered in error (it stays on record, marked void, with the reason);
    its draw from stock is voided in the ledger."""
    call.do(service.void_dispense, dispense_id=dispense_id, reason=data.reason)
    return schemas.TakeHomeRead.of(
        service.dispense_row(session=call.session, dispense_id=dispense_id)
    )
