"""Pages of research: consent on the chart, the export from the dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.research import service
from ketacare.web.deps import DbSession, FormFields, Now, actor_of, page_permission

router = APIRouter(include_in_schema=False)


@router.post("/patients/{patient_id}/research-consent")
def consent_page(
    request: Request,
    form: FormFields,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("patient:write"),
) -> Response:
    """Record a decision from the chart; a refusal is shown by the error page."""
    service.record_consent(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        decision=str(form.get("decision") or ""),
        note=str(form.get("note") or ""),
        now=at,
    )
    return RedirectResponse(f"/patients/{patient_id}#research-h", status_code=303)


@router.get("/research/export.zip")
def export_page(
    request: Request,
    session: DbSession,
    at: Now,
    profile: str = "year_only",
    data_use_agreement: str = "",
    principal: Principal = page_permission("research:export"),
) -> Response:
    """The registry export, downloaded from the dashboard's form."""
    data, _ = service.export_registry(
        session=session,
        actor=actor_of(request, principal),
        profile=profile,
        now=at,
        data_use_agreement=data_use_agreement[:500] or None,
    )
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="registry-{profile}.zip"'},
    )
