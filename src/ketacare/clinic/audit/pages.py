"""Pages of the audit trail (administrators)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.audit import service
from ketacare.web.page_call import PageCall, page_call

router = APIRouter(include_in_schema=False)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(patient_id: int | None = None, call: PageCall = page_call("audit:read")) -> Response:
    events = service.recent(session=call.session, limit=300, patient_id=patient_id)
    report = service.verify(session=call.session)
    return call.render(
        "audit/log.html", {"events": events, "report": report, "patient_id": patient_id}
    )
