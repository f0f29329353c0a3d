"""JSON routes of the clinic dashboard: aggregate outcomes and durability curves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.analytics import schemas, service
from ketacare.clinic.plans import dosing
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission

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


def _run(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal,
    *,
    curves: bool,
    started_from: str | None,
    started_to: str | None,
    condition: str | None,
    protocol: str | None,
    lost_after_days: str | None,
    split: str | None,
) -> service.Dashboard:
    filters = service.parse_filters(
        started_from=started_from,
        started_to=started_to,
        condition=condition,
        protocol=protocol,
        lost_after_days=lost_after_days,
        split=split,
    )
    titles = {p.id: p.title for p in dosing.library(ctx.settings).protocols}
    return service.dashboard(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        filters=filters,
        now=at,
        protocol_titles=titles,
        curves=curves,
    )


@router.get("/outcomes", response_model=schemas.OutcomesOut)
def outcomes(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    started_from: StartedFrom = None,
    started_to: StartedTo = None,
    condition: ConditionQ = None,
    protocol: ProtocolQ = None,
    lost_after_days: LostAfter = None,
    split: SplitQ = None,
    principal: Principal = api_permission("analytics:read"),
) -> schemas.OutcomesOut:
    """Response and remission rates with denominators, completeness and lost to follow-up."""
    found = _run(
        request,
        ctx,
        session,
        at,
        principal,
        curves=False,
        started_from=started_from,
        started_to=started_to,
        condition=condition,
        protocol=protocol,
        lost_after_days=lost_after_days,
        split=split,
    )
    return schemas.OutcomesOut.of(found)


@router.get("/durability", response_model=schemas.DurabilityOut)
def durability(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    started_from: StartedFrom = None,
    started_to: StartedTo = None,
    condition: ConditionQ = None,
    protocol: ProtocolQ = None,
    lost_after_days: LostAfter = None,
    split: SplitQ = None,
    principal: Principal = api_permission("analytics:read"),
) -> schemas.DurabilityOut:
    """Kaplan-Meier curves (days from first response to a confirmed loss) with bands."""
    found = _run(
        request,
        ctx,
        session,
        at,
        principal,
        curves=True,
        started_from=started_from,
        started_to=started_to,
        condition=condition,
        protocol=protocol,
        lost_after_days=lost_after_days,
        split=split,
    )
    return schemas.DurabilityOut.of(found)
