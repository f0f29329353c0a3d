"""JSON routes of the audit trail (administrators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ketacare.clinic.audit import schemas, service
from ketacare.web.deps import Call, api_request

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", response_model=list[schemas.AuditEventRead])
def list_events(
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    patient_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    call: Call = api_request("audit:read"),
) -> list[object]:
    """The newest audit events, optionally for one patient."""
    return list(service.recent(session=call.session, limit=limit, patient_id=patient_id))


@router.get("/audit/verify", response_model=schemas.ChainReportRead)
def verify_chain(call: Call = api_request("audit:read")) -> schemas.ChainReportRead:
    """Check the keyed hash chain: the count, the head hash, or the first broken link."""
    report = service.verify(session=call.session)
    return schemas.ChainReportRead(
        ok=report.ok,
        rows=report.rows,
        first_broken_id=report.first_broken_id,
        problem=report.problem,
        head=report.head,
        head_id=report.head_id,
        legacy_rows=report.legacy_rows,
    )
