"""JSON routes of the clinic dashboard: aggregate outcomes and durability curves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ketacare.clinic.analytics import filters as filtering
from ketacare.clinic.analytics import schemas, service
from ketacare.clinic.plans import dosing
from ketacare.web.deps import Call, api_request

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

StartedFrom = Annotated[
    str | None,
    Query(
        max_length=40,
        description="first day of cohort entry (YYYY-MM-DD, clinic time zone, inclusive)",
    ),
]
StartedTo = Annotated[
    str | None,
    Query(max_length=40, description="last day of cohort entry (YYYY-MM-DD, inclusive)"),
]
ConditionQ = Annotated[
    str | None,
    Query(max_length=80, description="a condition group (e.g. crps-1) or an ICD-10-CM code"),
]
ProtocolQ = Annotated[str | None, Query(max_length=80, description="a protocol id")]
LostAfter = Annotated[
    str | None,
    Query(
        max_length=40,
        description="follow-up window in days (1-36500); default: the clinic's setting",
    ),
]
SplitQ = Annotated[
    str | None, Query(max_length=40, description="curves by: none, condition or protocol")
]


def _filters(
    started_from: StartedFrom = None,
    started_to: StartedTo = None,
    condition: ConditionQ = None,
    protocol: ProtocolQ = None,
    lost_after_days: LostAfter = None,
    split: SplitQ = None,
) -> dict[str, str | None]:
    """The dashboard's filters as given in the query (checked by the service)."""
    return {
        "started_from": started_from,
        "started_to": started_to,
        "condition": condition,
        "protocol": protocol,
        "lost_after_days": lost_after_days,
        "split": split,
    }


Filters = Annotated[dict[str, str | None], Depends(_filters)]


def _run(call: Call, filters: dict[str, str | None], *, curves: bool) -> service.Dashboard:
    titles = {p.id: p.title for p in dosing.library(call.settings).protocols}
    return call.do(
        service.dashboard,
        settings=call.settings,
        filters=filtering.parse_filters(**filters),
        protocol_titles=titles,
        curves=curves,
    )


@router.get("/outcomes", response_model=schemas.OutcomesOut)
def outcomes(filters: Filters, call: Call = api_request("analytics:read")) -> schemas.OutcomesOut:
    """Response and remission rates with denominators, completeness and lost to follow-up."""
    return schemas.OutcomesOut.of(_run(call, filters, curves=False))


@router.get("/durability", response_model=schemas.DurabilityOut)
def durability(
    filters: Filters, call: Call = api_request("analytics:read")
) -> schemas.DurabilityOut:
    """Kaplan-Meier curves (days from first response to a confirmed loss) with bands."""
    return schemas.DurabilityOut.of(_run(call, filters, curves=True))
