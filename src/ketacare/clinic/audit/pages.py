"""Pages of the audit trail (administrators): paged, filtered, exported as CSV."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.audit import service, trail
from ketacare.core.errors import InvalidInput
from ketacare.web.page_call import PageCall, page_call

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100


def _day(text: str, what: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None


def _filters(user: str, patient_id: str, action: str, start: str, end: str) -> trail.TrailFilters:
    pid = patient_id.strip()
    if pid and not (pid.isdigit() and 1 <= int(pid) <= 2**31 - 1):
        raise InvalidInput(f"patient {pid!r} is not a patient id: use a whole number from 1")
    filters = trail.TrailFilters(
        username=user.strip() or None,
        patient_id=int(pid) if pid else None,
        action=action.strip() or None,
        date_from=_day(start, "from"),
        date_to=_day(end, "to"),
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput(
            f"the date range ends ({filters.date_to}) before it starts ({filters.date_from})"
        )
    return filters


Text = Annotated[str, Query(max_length=64)]


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    user: Text = "",
    patient_id: Text = "",
    action: Text = "",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    verify: bool = False,
    call: PageCall = page_call("audit:read"),
) -> Response:
    """The trail newest first, a page at a time, with filters; the chain checked on request."""
    typed = {"user": user, "patient_id": patient_id, "action": action, "from": start, "to": end}
    try:
        filters = _filters(user, patient_id, action, start, end)
    except InvalidInput as exc:
        return _refused(call, typed, str(exc))
    page = trail.trail(
        session=call.session,
        filters=filters,
        zone=call.settings.zone,
        limit=PAGE_SIZE,
        before=before,
        after=after,
    )
    query = filters.query()
    return call.render(
        "audit/log.html",
        {
            "page": page,
            "form": typed,
            "actions": trail.actions_seen(session=call.session),
            "report": service.verify(session=call.session) if verify else None,
            "filtered": bool(query),
            "newer_url": _url(query, after=page.newer) if page.newer else None,
            "older_url": _url(query, before=page.older) if page.older else None,
            "newest_url": _url(query) if page.newer else None,
            "csv_url": "/admin/audit.csv" + (f"?{urlencode(query)}" if query else ""),
            "verify_url": _url({**query, "verify": "1"}),
        },
    )


def _refused(call: PageCall, typed: dict[str, str], message: str) -> Response:
    return call.render(
        "audit/log.html",
        {
            "page": None,
            "form": typed,
            "actions": trail.actions_seen(session=call.session),
            "error": message,
        },
        status_code=422,
    )


def _url(query: dict[str, str], **cursor: object) -> str:
    params = {**query, **{k: str(v) for k, v in cursor.items()}}
    return "/admin/audit" + (f"?{urlencode(params)}" if params else "")


@router.get("/admin/audit.csv")
def audit_csv(
    user: Text = "",
    patient_id: Text = "",
    action: Text = "",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
    call: PageCall = page_call("audit:read"),
) -> Response:
    """Every event the filters match, as CSV (the export itself is audited)."""
    filters = _filters(user, patient_id, action, start, end)
    body = call.do(trail.export_csv, filters=filters, zone=call.settings.zone)
    stamp = call.now.astimezone(call.settings.zone).strftime("%Y%m%d-%H%M")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
