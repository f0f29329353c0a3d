"""Pages of the audit trail (administrators)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.audit import service
from ketacare.web.deps import Ctx, DbSession, page_permission
from ketacare.web.render import page

router = APIRouter(include_in_schema=False)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    patient_id: int | None = None,
    _: Principal = page_permission("audit:read"),
) -> Response:
    events = service.recent(session=session, limit=300, patient_id=patient_id)
    report = service.verify(session=session)
    return page(
        request,
        ctx,
        "audit/log.html",
        {"events": events, "report": report, "patient_id": patient_id},
    )
