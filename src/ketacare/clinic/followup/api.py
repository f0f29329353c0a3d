"""JSON routes of follow-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from ketacare.clinic.followup import schedules, schemas, senders, service
from ketacare.clinic.followup.orm import SelfReportLink
from ketacare.clinic.plans.service import get_plan
from ketacare.infra.permissions import Role
from ketacare.web.deps import Call, Id, api_request, ensure_patient_scope

router = APIRouter(prefix="/api/v1", tags=["follow-up"])


@router.post(
    "/patients/{patient_id}/self-report-links", response_model=schemas.LinkCreated, status_code=201
)
def create_link(
    patient_id: Id,
    data: schemas.LinkCreate,
    call: Call = api_request("followup:write"),
) -> schemas.LinkCreated:
    """A single-use link for the patient to fill questionnaires on a phone."""
    link, url = _issue(
        call,
        service.create_link,
        patient_id=patient_id,
        instruments=data.instruments,
        valid_hours=data.valid_hours,
        channel=data.channel,
    )
    return schemas.LinkCreated.of(link, url)


def _issue(
    call: Call, issue: Callable[..., tuple[SelfReportLink, str]], **values: Any
) -> tuple[SelfReportLink, str]:
    """A link issued by the service ``issue`` for this server's address: the link and its URL."""
    base = str(call.request.base_url).rstrip("/")
    link, token = call.do(
        issue,
        base_url=base,
        zone=call.settings.zone,
        sendable=senders.sendable(call.settings),
        **values,
    )
    return link, f"{base}/r/{token}"


def plan_due_read(found: schedules.PlanDue) -> schemas.PlanDueRead:
    """A plan line's evaluated schedule in its API shape."""
    items = []
    for s in found.status.items:
        o = s.occurrence
        items.append(
            schemas.ItemStatusRead(
                instrument=s.item.instrument,
                when=s.item.when,
                description=s.item.describe(),
                status=s.status,
                reason=s.reason,
                occurrence=None
                if o is None
                else schemas.OccurrenceRead(
                    key=o.key,
                    label=o.label,
                    opens_at=o.opens_at,
                    overdue_at=o.overdue_at,
                    closes_at=o.closes_at,
                    satisfied_at=o.satisfied_at,
                ),
                next_due_at=s.next_due_at,
            )
        )
    return schemas.PlanDueRead(
        plan_id=found.plan.id,
        schedule_id=found.schedule.id,
        schedule_plan_id=found.schedule.plan_id,
        schedule_version=found.schedule.version,
        stops_at=found.status.stops_at,
        stop_reason=found.status.stop_reason,
        items=items,
    )


@router.get("/plans/{plan_id}/outcome-schedule", response_model=schemas.PlanScheduleRead)
def read_schedule(
    plan_id: Id,
    call: Call = api_request("outcome_schedule:read"),
) -> schemas.PlanScheduleRead:
    """The plan's outcome schedule (its own or inherited), its versions, and what is due."""
    plan = get_plan(
        session=call.session, plan_id=plan_id, patient_view=call.principal.role is Role.PATIENT
    )
    ensure_patient_scope(call.principal, "outcome_schedule:read", plan.patient_id)
    plan, current, rows = call.do(schedules.read_schedule, plan_id=plan_id)
    found = (
        schedules.evaluate_plan(session=call.session, plan=plan, now=call.now) if current else None
    )
    return schemas.PlanScheduleRead(
        plan_id=plan.id,
        current=schemas.ScheduleRead.model_validate(current) if current else None,
        inherited_from_plan=current.plan_id if current and current.plan_id != plan.id else None,
        versions=[schemas.ScheduleRead.model_validate(r) for r in rows],
        due=plan_due_read(found) if found else None,
    )


@router.post(
    "/plans/{plan_id}/outcome-schedule", response_model=schemas.ScheduleRead, status_code=201
)
def set_schedule(
    plan_id: Id,
    data: schemas.ScheduleSet,
    call: Call = api_request("outcome_schedule:write"),
) -> schemas.ScheduleRead:
    """Set or replace the plan's outcome schedule (a new version; the old one is kept)."""
    row = call.do(schedules.set_schedule, plan_id=plan_id, spec=data.schedule, reason=data.reason)
    return schemas.ScheduleRead.model_validate(row)


@router.get("/patients/{patient_id}/due-questionnaires", response_model=list[schemas.PlanDueRead])
def due_for_patient(
    patient_id: Id,
    call: Call = api_request("outcome_schedule:read"),
) -> list[schemas.PlanDueRead]:
    """Every scheduled plan of the patient with each item's status now."""
    call.own(patient_id)
    found = call.do(schedules.due_for_patient, patient_id=patient_id)
    return [plan_due_read(f) for f in found]


@router.post(
    "/patients/{patient_id}/due-questionnaires/link",
    response_model=schemas.DueLinkCreated,
    status_code=201,
)
def link_for_due(
    patient_id: Id,
    data: schemas.DueLinkCreate,
    call: Call = api_request("followup:write"),
) -> schemas.DueLinkCreated:
    """A single-use link for exactly what is due now (409 when nothing is)."""
    link, url = _issue(
        call,
        schedules.link_for_due,
        patient_id=patient_id,
        valid_hours=data.valid_hours,
        channel=data.channel,
    )
    return schemas.DueLinkCreated.of(link, url, occurrences=list(link.occurrences or []))


@router.get("/due-questionnaires", response_model=list[schemas.OverviewRead])
def overview(
    call: Call = api_request("followup:read"),
) -> list[schemas.OverviewRead]:
    """Patients with questionnaires due or overdue now, most overdue first."""
    rows = call.do(schedules.overview)
    return [
        schemas.OverviewRead(
            patient_id=r.patient.id,
            name=f"{r.patient.family_name}, {r.patient.given_name}",
            due=r.due,
            overdue=r.overdue,
            items=[
                schemas.OverviewItem(
                    plan_id=plan_id,
                    instrument=s.item.instrument,
                    status=s.status,
                    label=s.occurrence.label if s.occurrence else "",
                    reason=s.reason,
                )
                for plan_id, s in r.items
            ],
        )
        for r in rows
    ]
