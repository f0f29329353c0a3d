"""JSON routes of dosing sessions: open, read, record an event, the board."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ketacare.clinic.sessions import service
from ketacare.clinic.sessions.board import board as sessions_board
from ketacare.clinic.sessions.schemas import SessionView
from ketacare.clinic.sessions.view import view
from ketacare.clinic.stock import accounting as stock
from ketacare.web.answers import OBJECT, json_answer
from ketacare.web.deps import ApiCall, Authenticated, Call, Id, api_call, api_request, body_schema

router = APIRouter(prefix="/api/v1", tags=["sessions"])


class SessionOpen(BaseModel):
    session_number: int = Field(ge=1, le=1000)
    appointment_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    at: datetime | None = Field(
        default=None, description="Charting after the fact: when the session started (past only)"
    )
    off_schedule_reason: str | None = Field(
        default=None,
        max_length=2000,
        description="Why the session opens on another day than its booking (required then)",
    )
    chair_id: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The chair it is given on (default: its booking's chair, else none)",
    )


class EventPost(BaseModel):
    expected_seq: int = Field(ge=0, le=10**6, description="The last sequence number you saw")
    event: dict[str, Any] = Field(
        description="kind and fields, e.g. {'kind': 'vitals', 'sbp_mmhg': 128, 'dbp_mmhg': 76}"
    )


@router.post("/plans/{plan_id}/sessions", status_code=201)
def open_session(
    plan_id: Id,
    data: SessionOpen,
    call: Call = api_request("session:write"),
) -> dict[str, Any]:
    """Open a dosing session of a signed plan."""
    row = call.do(
        service.open_session,
        settings=call.settings,
        plan_id=plan_id,
        session_number=data.session_number,
        appointment_id=data.appointment_id,
        opened_at=data.at,
        off_schedule_reason=data.off_schedule_reason,
        chair_id=data.chair_id,
    )
    state = service.state_of(session=call.session, session_id=row.id)
    shown = cast(dict[str, Any], view(row=row, state=state, now=call.now))
    # opened on another day than booked: the booked day and the reason given
    return shown | {
        "booked_day": row.booked_day.isoformat() if row.booked_day else None,
        "off_schedule_reason": row.off_schedule_reason,
    }


@router.get("/sessions/board")
def board(
    call: Call = api_request("session:read"),
) -> list[dict[str, Any]]:
    """Every active chair at a glance."""
    out = []
    for r in call.do(sessions_board):
        v = view(row=r.session, state=r.state, now=call.now, include_events=False)
        out.append(
            {
                "session_id": r.session.id,
                "chair": r.chair,
                "patient_id": r.patient.id,
                "patient": f"{r.patient.family_name}, {r.patient.given_name}",
                "state": v["state"],
                "next_check": v["next_check"],
                "overdue": v["overdue"],
                "behind": v["behind"],
                "open_alerts": len(v["open_alerts"]),
                "news2_latest": v["news2_latest"],
                "elapsed_s": v["timers"].get("since_check_in"),
            }
        )
    return out


@router.get("/sessions/{session_id}")
def read_session(
    session_id: Id,
    call: Call = api_request("session:read"),
) -> dict[str, Any]:
    """The session as derived from its log."""
    row = service.get_session(session=call.session, session_id=session_id)
    call.do(service.record_read, row=row)
    state = service.state_of(session=call.session, session_id=row.id)
    return cast(dict[str, Any], view(row=row, state=state, now=call.now))


@router.post(
    "/sessions/{session_id}/events",
    status_code=201,
    response_model=None,
    responses={201: {"description": "The session's new state", "content": OBJECT}},
    openapi_extra=body_schema(EventPost),
)
async def record_event(session_id: Id, call: ApiCall = api_call("session:write")) -> Response:
    """Record vitals, a rate change, a check... (refused if someone else wrote first).

    Every chair posts vitals every few minutes, so this route does its work in one
    thread-pool hop (:class:`~ketacare.web.deps.ApiCall`).
    """

    def work(auth: Authenticated) -> SessionView:
        data = auth.body(EventPost)
        # controlled-substance stock: no close while drug is unaccounted for, and the lot
        # checked at the chair is a lot drawn for the session
        stock.refuse_chair_entry(
            session=auth.session, dosing_session_id=session_id, event=data.event, now=auth.now
        )
        row, state = service.record_entry(
            session=auth.session,
            actor=auth.actor,
            session_id=session_id,
            data=data.event,
            expected_seq=data.expected_seq,
            now=auth.now,
        )
        # the answer carries the new state, not the whole log (GET the session for that)
        return view(row=row, state=state, now=auth.now, include_events=False)

    return json_answer(await call.run(work), status_code=201)
