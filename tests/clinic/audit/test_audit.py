"""The audit trail: every patient read and write recorded, chained, append-only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from ketacare.clinic.audit import service as audit
from ketacare.clinic.audit.orm import AuditEvent


def _events(app: Any, patient_id: int) -> list[tuple[str, str, str]]:
    with app.state.ctx.sessions() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.patient_id == patient_id).order_by(AuditEvent.id)
        ).all()
        return [(r.username, r.action, r.resource_type) for r in rows]


def test_reads_and_writes_of_patient_data_are_audited(
    client: Any, app: Any, login_api: Any
) -> None:
    headers = login_api("nurse")
    seen = len(_events(app, 3))
    client.get("/api/v1/patients/3", headers=headers)
    client.post("/api/v1/patients/3/weights", headers=headers, json={"weight_kg": 58.0})
    new = _events(app, 3)[seen:]
    assert new == [("nurse", "read", "patient"), ("nurse", "create", "weight")]
    with app.state.ctx.sessions() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert last.remote_addr == "testclient"


def test_a_refused_request_leaves_no_audit_row_of_a_write(
    client: Any, app: Any, login_api: Any
) -> None:
    headers = login_api("nurse")
    seen = len(_events(app, 3))
    r = client.post("/api/v1/patients/3/weights", headers=headers, json={"weight_kg": 500})
    assert r.status_code == 422
    assert _events(app, 3)[seen:] == []


def test_chain_verifies_then_detects_a_tampered_row(app: Any, client: Any, login_api: Any) -> None:
    client.get("/api/v1/patients/1", headers=login_api("nurse"))
    with app.state.ctx.sessions() as session:
        report = audit.verify(session=session)
        assert report.ok and report.rows > 50
        target = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id).offset(10).limit(1))
    engine = app.state.engine
    # the database refuses to change the trail...
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET username = 'mallory' WHERE id = :i"), {"i": target}
        )
    # ...so a tamperer must first drop the protection, as a database owner could
    _drop_protection(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET action = 'list' WHERE id = :i"), {"i": target})
    with app.state.ctx.sessions() as session:
        report = audit.verify(session=session)
    assert not report.ok
    assert report.first_broken_id == target
    assert "altered" in report.problem


def test_chain_detects_a_removed_row(app: Any) -> None:
    engine = app.state.engine
    with app.state.ctx.sessions() as session:
        target = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id).offset(5).limit(1))
        following = session.scalar(
            select(AuditEvent.id).where(AuditEvent.id > target).order_by(AuditEvent.id).limit(1)
        )
    _drop_protection(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": target})
    with app.state.ctx.sessions() as session:
        report = audit.verify(session=session)
    assert not report.ok and report.first_broken_id == following
    assert "removed or inserted" in report.problem


def _drop_protection(engine: Any) -> None:
    with engine.begin() as conn:
        for event in ("update", "delete"):
            suffix = " ON audit_events" if engine.dialect.name == "postgresql" else ""
            conn.execute(text(f"DROP TRIGGER audit_events_no_{event}{suffix}"))


def test_api_verify_and_list_for_admin(client: Any, login_api: Any) -> None:
    headers = login_api("admin")
    r = client.get("/api/v1/audit/verify", headers=headers)
    assert r.status_code == 200 and r.json()["ok"] is True
    events = client.get("/api/v1/audit?limit=5", headers=headers).json()
    assert len(events) == 5 and events[0]["id"] > events[-1]["id"]


def _denied(app: Any) -> list[AuditEvent]:
    with app.state.ctx.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == "denied").order_by(AuditEvent.id)
            ).all()
        )


def test_a_refused_attempt_is_audited_with_who_what_and_why(
    client: Any, app: Any, login_api: Any, login_page: Any
) -> None:
    other = 2  # the demo's patient1 account is linked to patient 1
    assert _denied(app) == []
    # a patient account reaching for someone else's record (the scope check)
    r = client.get(f"/api/v1/patients/{other}", headers=login_api("patient1"))
    assert r.status_code == 403
    # a researcher asking for a patient record (the permission table)
    r = client.get("/api/v1/patients/1", headers=login_api("researcher"))
    assert r.status_code == 403
    # a page form posted without its CSRF token
    login_page("nurse")
    r = client.post("/patients/1/weights", data={"weight_kg": "70"}, follow_redirects=False)
    assert r.status_code == 403
    rows = _denied(app)
    assert [(e.username, e.role, e.patient_id, e.detail["method"]) for e in rows] == [
        ("patient1", "patient", other, "GET"),
        ("researcher", "researcher", 1, "GET"),
        ("nurse", "nurse", 1, "POST"),
    ]
    assert rows[0].detail["reason"] == "a patient account can open only its own record"
    assert rows[0].resource_id == f"/api/v1/patients/{other}"
    assert rows[1].detail["error"] == "Forbidden"
    assert rows[2].detail["error"] == "CsrfRejected"
    # the refused requests wrote nothing else, and the chain still holds
    with app.state.ctx.sessions() as session:
        assert audit.verify(session=session).ok


def test_an_allowed_request_writes_no_denied_row(client: Any, app: Any, login_api: Any) -> None:
    assert client.get("/api/v1/patients/1", headers=login_api("nurse")).status_code == 200
    assert _denied(app) == []
