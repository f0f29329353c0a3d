"""JSON routes of research: a patient's registry consent, and the registry export."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ketacare.clinic.research import schemas, service
from ketacare.web.deps import Call, Id, api_request

router = APIRouter(prefix="/api/v1", tags=["research"])


@router.post(
    "/patients/{patient_id}/research-consent", response_model=schemas.ConsentRead, status_code=201
)
def record_consent(
    patient_id: Id,
    data: schemas.ConsentIn,
    call: Call = api_request("patient:write"),
) -> object:
    """Record that the patient granted or withdrew consent to the research registry."""
    return call.do(
        service.record_consent, patient_id=patient_id, decision=data.decision, note=data.note
    )


@router.get("/patients/{patient_id}/research-consent", response_model=list[schemas.ConsentRead])
def consent_history(
    patient_id: Id,
    call: Call = api_request("patient:read"),
) -> object:
    """The patient's decisions on the registry, newest first (the newest holds)."""
    call.own(patient_id)
    return call.do(service.read_consents, patient_id=patient_id)


@router.get(
    "/research/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The export (zip)"}},
)
def export(
    profile: Annotated[Literal["year_only", "limited"], Query()] = "year_only",
    data_use_agreement: Annotated[str | None, Query(max_length=500)] = None,
    call: Call = api_request("research:export"),
) -> Response:
    """The research registry of consenting patients, without identifiers (zip of CSVs).

    ``year_only``: events carry their year and order only. ``limited``: whole days from
    the first dose, a limited data set: name the data use agreement."""
    data, _ = call.do(
        service.export_registry, profile=profile, data_use_agreement=data_use_agreement
    )
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="registry-{profile}.zip"'},
    )
