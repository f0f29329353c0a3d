"""Pages of the audit trail (administrators): paged, filtered, exported as CSV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.audit import service, trail
from ketacare.core.errors import InvalidInput
from ketacare.web.page_call import PageCall, page_call
from ketacare.web.render import optional_date

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100

Text = Annotated[str, Query(max_length=64)]


@dataclass(frozen=True, slots=True)
class FilterForm:
    """The trail's filters as typed in the page's form (the query string)."""

    user: Text = ""
    patient_id: Text = ""
    action: Text = ""
    start: Annotated[str, Query(alias="from", max_length=10)] = ""
    end: Annotated[str, Query(alias="to", max_length=10)] = ""

    def typed(self) -> dict[str, str]:
        """The form's fields as typed, by their names in the query string."""
        return {
            "user": self.user,
            "patient_id": self.patient_id,
            "action": self.action,
            "from": self.start,
            "to": self.end,
        }

    def filters(self) -> trail.TrailFilters:
        """The checked filters (:class:`InvalidInput` naming the field that is wrong)."""
        pid = self.patient_id.strip()
        if pid and not (pid.isdigit() and 1 <= int(pid) <= 2**31 - 1):
            raise InvalidInput(f"patient {pid!r} is not a patient id: use a whole number from 1")
        filters = trail.TrailFilters(
            username=self.user.strip() or None,
            patient_id=int(pid) if pid else None,
            action=self.action.strip() or None,
            date_from=optional_date(self.start, "from"),
            date_to=optional_date(self.end, "to"),
        )
        if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
            raise InvalidInput(
                f"the date range ends ({filters.date_to}) before it starts ({filters.date_from})"
            )
        return filters


Filters = Annotated[FilterForm, Depends()]


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    form: Filters,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    verify: bool = False,
    call: PageCall = page_call("audit:read"),
) -> Response:
    """The trail newest first, a page at a time, with filters; the chain checked on request."""
    typed = form.typed()
    try:
        filters = form.filters()
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
def audit_csv(form: Filters, call: PageCall = page_call("audit:read")) -> Response:
    """Every event the filters match, as CSV (the export itself is audited)."""
    filters = form.filters()
    body = call.do(trail.export_csv, filters=filters, zone=call.settings.zone)
    stamp = call.now.astimezone(call.settings.zone).strftime("%Y%m%d-%H%M")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
