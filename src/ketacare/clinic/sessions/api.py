"""JSON routes of dosing sessions: open, read, record an event, the board."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.sessions import service
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission

router = APIRouter(prefix="/api/v1", tags=["sessions"])
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class SessionOpen(BaseModel):
    session_number: int = Field(ge=1, le=1000)
    appointment_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    at: datetime | None = Field(
        default=None, description="Charting after the fact: when the session started (past only)"
    )


class EventPost(BaseModel):
    expected_seq: int = Field(ge=0, le=10**6, description="The last sequence number you saw")
    event: dict[str, Any] = Field(
        description="kind and fields, e.g. {'kind': 'vitals', 'sbp_mmhg': 128, 'dbp_mmhg': 76}"
    )


@router.post("/plans/{plan_id}/sessions", status_code=201)
def open_session(
    request: Request,
    plan_id: Id,
    data: SessionOpen,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("session:write"),
) -> dict[str, Any]:
    """Open a dosing session of a signed plan."""
    row = service.open_session(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        plan_id=plan_id,
        session_number=data.session_number,
        now=at,
        appointment_id=data.appointment_id,
        opened_at=data.at,
    )
    return service.view(row=row, state=service.state_of(session=session, session_id=row.id), now=at)


@router.get("/sessions/board")
def board(
    request: Request,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("session:read"),
) -> list[dict[str, Any]]:
    """Every active chair at a glance."""
    out = []
    for r in service.board(session=session, actor=actor_of(request, principal), now=at):
        v = service.view(row=r.session, state=r.state, now=at, include_events=False)
        out.append(
            {
                "session_id": r.session.id,
                "chair": r.chair,
                "patient_id": r.patient.id,
                "patient": f"{r.patient.family_name}, {r.patient.given_name}",
                "state": v["state"],
                "next_check": v["next_check"],
                "overdue": v["overdue"],
                "open_alerts": len(v["open_alerts"]),
                "elapsed_s": v["timers"].get("since_check_in"),
            }
        )
    return out


@router.get("/sessions/{session_id}")
def read_session(
    request: Request,
    session_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("session:read"),
) -> dict[str, Any]:
    """The session as derived from its log."""
    row = service.get_session(session=session, session_id=session_id)
    from ketacare.clinic.audit import service as audit

    audit.record(
        session=session,
        actor=actor_of(request, principal),
        action="read",
        resource_type="session",
        resource_id=row.id,
        patient_id=row.patient_id,
        at=at,
    )
    return service.view(row=row, state=service.state_of(session=session, session_id=row.id), now=at)


@router.post("/sessions/{session_id}/events", status_code=201)
def record_event(
    request: Request,
    session_id: Id,
    data: EventPost,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("session:write"),
) -> dict[str, Any]:
    """Record vitals, a rate change, a check... (refused if someone else wrote first)."""
    # held here so the service finds it in the session's identity map (which only
    # keeps unchanged rows while someone holds them): one SELECT, not two
    row = service.get_session(session=session, session_id=session_id)
    state = service.record(
        session=session,
        actor=actor_of(request, principal),
        session_id=session_id,
        data=data.event,
        expected_seq=data.expected_seq,
        now=at,
    )
    # the answer carries the new state, not the whole log (GET the session for that)
    answer = service.view(row=row, state=state, now=at, include_events=False)
    # committed here, in this thread: each chair posts vitals every few minutes, and
    # the thread-pool hop of committing after the route costs more than the commit
    session.commit()
    return answer
