"""JSON routes of the audit trail (administrators)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response

from ketacare.clinic.audit import schemas, service, trail
from ketacare.web.deps import Call, api_request

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", response_model=list[schemas.AuditEventRead])
def list_events(
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    patient_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    user: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    call: Call = api_request("audit:read"),
) -> list[object]:
    """Audit events newest first, with the trail page's filters (all together).

    ``user`` is the account's name, ``action`` the recorded action (``denied`` for
    refusals), ``from`` and ``to`` days of the clinic's time zone (both included).
    ``before`` pages back from an event id; the ``Link`` header (``rel="next"``) gives
    the next older page. Each page read is itself recorded in the trail (an export).
    """
    filters = trail.TrailFilters(
        username=user,
        patient_id=patient_id,
        action=action,
        date_from=date_from,
        date_to=date_to,
    )
    page = call.do(
        trail.read_page,
        filters=filters,
        zone=call.settings.zone,
        limit=limit,
        before=before,
    )
    if page.older is not None:
        query = {**filters.query(), "limit": str(limit), "before": str(page.older)}
        response.headers["Link"] = f'</api/v1/audit?{urlencode(query)}>; rel="next"'
    return list(page.events)


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
