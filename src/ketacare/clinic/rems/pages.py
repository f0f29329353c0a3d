"""Pages of the REMS: the sites' certifications, and the patient's enrolment from the chart."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.rems import service
from ketacare.core.errors import InvalidInput
from ketacare.core.rems import rules
from ketacare.web.deps import Ctx, DbSession, FormFields, Now, actor_of, page_permission
from ketacare.web.render import page

router = APIRouter(include_in_schema=False)


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None


@router.get("/rems", response_class=HTMLResponse)
def rems_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("rems:read"),  # noqa: ARG001
) -> Response:
    """The sites' certifications and the Patient Monitoring Form's fields with sources."""
    return page(
        request,
        ctx,
        "rems/index.html",
        {
            "records": service.certifications(session=session),
            "certified": service.certified_sites(session=session, on=at.date()),
            "rules": rules(),
        },
    )


@router.post("/rems/certifications")
def certify_page(
    request: Request,
    form: FormFields,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("rems:certify"),
) -> Response:
    service.record_certification(
        session=session,
        actor=actor_of(request, principal),
        site=str(form.get("site") or ""),
        identifier=str(form.get("identifier") or ""),
        certified_on=_date(str(form.get("certified_on") or ""), "certified_on"),
        status=str(form.get("status") or "certified"),
        now=at,
    )
    return RedirectResponse("/rems", status_code=303)


@router.post("/patients/{patient_id}/rems-enrolment")
def enrol_page(
    request: Request,
    form: FormFields,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("rems:write"),
) -> Response:
    service.record_enrolment(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        identifier=str(form.get("identifier") or ""),
        enrolled_on=_date(str(form.get("enrolled_on") or ""), "enrolled_on"),
        now=at,
    )
    return RedirectResponse(f"/patients/{patient_id}#rems-h", status_code=303)
