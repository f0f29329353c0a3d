"""Pages of research: consent on the chart, the export from the dashboard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from ketacare.clinic.research import schemas, service
from ketacare.web.page_call import PageCall, page_call

router = APIRouter(include_in_schema=False)


@router.post("/patients/{patient_id}/research-consent")
def consent_page(patient_id: int, call: PageCall = page_call("patient:write")) -> Response:
    """Record a decision from the chart; a refusal is shown by the error page."""
    data = call.parse(schemas.ConsentIn)
    call.do(service.record_consent, patient_id=patient_id, decision=data.decision, note=data.note)
    return call.redirect(f"/patients/{patient_id}#research-h")


@router.post("/patients/{patient_id}/research-consent/withdraw")
def withdraw_page(
    patient_id: int, call: PageCall = page_call("research_consent:withdraw")
) -> Response:
    """A patient withdraws their own registry consent from their record."""
    call.own(patient_id)
    call.do(service.withdraw_own, patient_id=patient_id)
    return call.redirect(f"/patients/{patient_id}#research-h")


@router.get("/research/export.zip")
def export_page(
    profile: str = "year_only",
    data_use_agreement: str = "",
    call: PageCall = page_call("research:export"),
) -> Response:
    """The registry export, downloaded from the dashboard's form."""
    from ketacare.clinic.analytics.pages import dashboard_again

    def zipped(found: tuple[bytes, Any]) -> Response:
        return Response(
            found[0],
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="registry-{profile}.zip"'},
        )

    # refused (a limited export without its data use agreement): the dashboard and its
    # export form again, with the reason, not a bare error page
    return call.attempt(
        lambda: call.do(
            service.export_registry,
            profile=profile,
            data_use_agreement=data_use_agreement[:500] or None,
        ),
        done=zipped,
        again=lambda refused: dashboard_again(call, refused),
    )
