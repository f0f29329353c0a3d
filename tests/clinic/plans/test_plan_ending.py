"""Ending a plan early: a reason, and a page saying what will change before it does.

A physician pressed "Apply" on the plan page with its pre-selected "complete" and the
plan of 12 sessions, none given, was completed at once and its bookings cancelled.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from plan_helpers import _signed, book_thursday_and_friday


def _state(app: Any, plan_id: int) -> tuple[str, str | None, list[str]]:
    """The plan's status and end reason, and its bookings' statuses (read on their own)."""
    from ketacare.clinic.plans.orm import Appointment, Plan

    with app.state.ctx.sessions() as session:
        plan = session.get(Plan, plan_id)
        assert plan is not None
        booked = session.scalars(
            select(Appointment.status)
            .where(Appointment.plan_id == plan_id)
            .order_by(Appointment.id)
        ).all()
        return plan.status, plan.end_reason, list(booked)


def test_completing_a_course_with_sessions_not_given_needs_a_reason(
    app: Any, client: Any, clinic: dict[str, Any]
) -> None:
    team = clinic["team"]
    plan = _signed(client, clinic)
    planned = len(plan["schedule"]["sessions"])
    book_thursday_and_friday(client, clinic, plan["id"])
    url = f"/api/v1/plans/{plan['id']}/status"
    assert client.post(url, headers=team["physician"], json={"action": "activate"}).is_success
    for reason in ("", "  ", "ok"):
        r = client.post(
            url, headers=team["physician"], json={"action": "complete", "reason": reason}
        )
        assert r.status_code == 422, r.text
        assert f"has 0 of its {planned} sessions given" in r.json()["detail"]
        assert "needs a reason" in r.json()["detail"]
    assert _state(app, plan["id"]) == ("active", None, ["booked", "booked"])
    r = client.post(
        url,
        headers=team["physician"],
        json={"action": "complete", "reason": "patient moved abroad"},
    )
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    assert _state(app, plan["id"]) == ("completed", "patient moved abroad", ["cancelled"] * 2)


def test_the_plan_page_chooses_no_ending_and_confirms_one_before_it_is_made(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    from ketacare.clinic.audit.orm import AuditEvent

    plan = _signed(client, clinic)
    planned = len(plan["schedule"]["sessions"])
    first, second = book_thursday_and_friday(client, clinic, plan["id"])
    csrf = login_page("physician")
    page = client.get(f"/plans/{plan['id']}").text
    form = re.search(r'<select name="action"[^>]*>(.*?)</select>', page, re.S)
    assert form and " required" in form.group(0)
    assert re.findall(r"<option[^>]*selected[^>]*>([^<]*)<", form.group(1)) == ["— choose —"]
    url = f"/plans/{plan['id']}/status"

    def post(**data: str) -> Any:
        return client.post(url, data={"csrf_token": csrf, **data}, follow_redirects=False)

    assert post(action="activate").status_code == 303  # no ending: nothing to confirm
    # nothing chosen, or an early completion without a reason: refused, nothing changed
    r = post(action="", reason="")
    assert r.status_code == 422 and "action" in r.text
    r = post(action="complete", reason="")
    assert r.status_code == 422
    assert f"has 0 of its {planned} sessions given" in r.text and "needs a reason" in r.text
    assert _state(app, plan["id"]) == ("active", None, ["booked", "booked"])
    # with a reason: the confirmation page first, and still nothing changed
    with app.state.ctx.sessions() as session:
        reads_before = len(
            session.scalars(select(AuditEvent).where(AuditEvent.action == "read")).all()
        )
    r = post(action="complete", reason="patient moved abroad")
    assert r.status_code == 200 and 'data-testid="confirm-end"' in r.text
    assert f"0 of its {planned} sessions" in r.text and "The course ends early" in r.text
    assert "These 2 bookings still to come will be cancelled" in r.text
    assert r.text.count("<li>session ") == 2 and "Reason: patient moved abroad" in r.text
    assert 'name="confirmed" value="yes"' in r.text
    assert _state(app, plan["id"]) == ("active", None, ["booked", "booked"])
    with app.state.ctx.sessions() as session:
        reads = session.scalars(select(AuditEvent).where(AuditEvent.action == "read")).all()
        assert len(reads) == reads_before + 1 and reads[-1].resource_type == "plan"
    # confirmed: completed, and each booking to come cancelled with the reason
    r = post(action="complete", reason="patient moved abroad", confirmed="yes")
    assert r.status_code == 303 and r.headers["location"] == f"/plans/{plan['id']}"
    assert _state(app, plan["id"]) == ("completed", "patient moved abroad", ["cancelled"] * 2)
    history = client.get(f"/api/v1/appointments/{second}", headers=clinic["team"]["nurse"]).json()[
        "history"
    ]
    assert history[-1]["reason"] == "plan completed: patient moved abroad"


def test_stopping_from_the_page_is_confirmed_too(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    plan = _signed(client, clinic)
    book_thursday_and_friday(client, clinic, plan["id"])
    csrf = login_page("physician")
    url = f"/plans/{plan['id']}/status"
    r = client.post(url, data={"csrf_token": csrf, "action": "stop", "reason": ""})
    assert r.status_code == 422 and "stopping a plan needs a reason" in r.text
    r = client.post(url, data={"csrf_token": csrf, "action": "stop", "reason": "hypertension"})
    assert r.status_code == 200 and "Stop plan" in r.text and "The course ends early" in r.text
    assert _state(app, plan["id"]) == ("signed", None, ["booked", "booked"])
    r = client.post(
        url,
        data={"csrf_token": csrf, "action": "stop", "reason": "hypertension", "confirmed": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _state(app, plan["id"]) == ("stopped", "hypertension", ["cancelled"] * 2)
