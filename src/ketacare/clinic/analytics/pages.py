"""The clinic dashboard page: rates by condition and protocol, durability, completeness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.analytics import filters as filtering
from ketacare.clinic.analytics import service
from ketacare.clinic.analytics.reference import statistics
from ketacare.clinic.plans import dosing
from ketacare.core.errors import InvalidInput
from ketacare.web.page_call import PageCall, Refusal, page_call

router = APIRouter(include_in_schema=False)

FIELDS = ("started_from", "started_to", "condition", "protocol", "lost_after_days", "split")


def chart_data(found: service.Dashboard) -> list[dict[str, Any]]:
    """The curves for ``static/dashboard.js`` (read from a JSON block: no inline script)."""
    return [
        {
            "id": r.definition.id,
            "title": r.definition.short,
            "still": "still in remission"
            if r.definition.role == "remission"
            else "still responding",
            "since": f"days since the first {r.definition.role}",
            "curves": [
                {
                    "label": c.label,
                    "overall": c.key is None,
                    "time": c.km.time.tolist(),
                    "survival": c.km.survival.tolist(),
                    "lower": c.km.lower.tolist(),
                    "upper": c.km.upper.tolist(),
                }
                for c in r.curves
            ],
        }
        for r in found.results
    ]


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(call: PageCall = page_call("analytics:read")) -> Response:
    """Aggregates over the clinic's treated patients (the read is audited, no patient named)."""
    return dashboard_again(call)


def dashboard_again(call: PageCall, refused: Refusal | None = None) -> Response:
    """The dashboard; with ``refused``, a form posted from it (the registry export) is
    shown refused with its reason above the figures."""
    raw = {name: call.request.query_params.get(name) for name in FIELDS}
    clinic_window = filtering.clinic_lost_after_days(call.settings)
    values = {k: (v or "") for k, v in raw.items()}
    if not values["lost_after_days"] and clinic_window:
        values["lost_after_days"] = str(clinic_window)
    common = {
        "q": values,
        "clinic_window": clinic_window,
        "methods": statistics(),
        "rules": (service.COHORT_ENTRY_RULE, service.CONDITION_RULE, service.PROTOCOL_RULE),
    }
    try:
        filters = filtering.parse_filters(**raw)
    except InvalidInput as exc:
        return call.render(
            "analytics/dashboard.html",
            {**common, "error": str(exc), "found": None},
            status_code=422,
        )
    titles = {p.id: p.title for p in dosing.library(call.settings).protocols}
    found = call.do(
        service.dashboard, settings=call.settings, filters=filters, protocol_titles=titles
    )
    return call.render(
        "analytics/dashboard.html",
        {**common, "found": found, "charts": chart_data(found)},
        refused=refused,
    )
