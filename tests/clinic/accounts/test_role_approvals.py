"""Separation of duties: a clinical role is granted by two people.

An administrator asks (a new account with a clinical role, or a change of role); a
second administrator or a physician approves; until then the account cannot log in (new)
or keeps its role (a change). Nobody changes or decides their own role, and the
administrator who asked cannot approve. The system's own accounts (demo seeding) are
created directly.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from ketacare.clinic.accounts import service as accounts
from ketacare.clinic.accounts.orm import RoleRequest, User
from ketacare.clinic.audit.orm import AuditEvent

PASSWORD = "harbour-lantern-9"


def _new(client: TestClient, admin: dict[str, str], username: str, role: str) -> Any:
    return client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": username,
            "full_name": username.title(),
            "role": role,
            "password": PASSWORD,
        },
    )


def _login(client: TestClient, username: str) -> Any:
    return client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})


def _bearer(client: TestClient, username: str) -> dict[str, str]:
    r = _login(client, username)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _pending(client: TestClient, approver: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get("/api/v1/role-requests", headers=approver)
    assert r.status_code == 200, r.text
    return list(r.json())


def _events(app: Any, action: str) -> list[AuditEvent]:
    with app.state.ctx.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _role(client: TestClient, username: str) -> str:
    return str(client.get("/api/v1/users/me", headers=_bearer(client, username)).json()["role"])


def test_a_new_clinical_account_waits_for_a_physician(
    app: Any, client: TestClient, login_api: Any
) -> None:
    admin, physician = login_api("admin"), login_api("physician")
    r = _new(client, admin, "nurse2", "nurse")
    assert r.status_code == 201 and r.json()["role_approved"] is False
    refused = _login(client, "nurse2")
    assert refused.status_code == 401 and "waits for approval" in refused.json()["detail"]
    (pending,) = _pending(client, physician)
    assert pending["role"] == "nurse" and pending["previous_role"] is None
    # the administrator who asked cannot approve; a nurse cannot decide at all
    r = client.post(f"/api/v1/role-requests/{pending['id']}/approve", headers=admin)
    assert r.status_code == 403 and "who asked cannot approve" in r.json()["detail"]
    r = client.post(f"/api/v1/role-requests/{pending['id']}/approve", headers=login_api("nurse"))
    assert r.status_code == 403
    assert _login(client, "nurse2").status_code == 401  # nothing changed
    r = client.post(f"/api/v1/role-requests/{pending['id']}/approve", headers=physician)
    assert r.status_code == 200 and r.json()["outcome"] == "approved"
    assert _role(client, "nurse2") == "nurse"
    assert _pending(client, physician) == []
    (asked,) = _events(app, "role_request")
    (approved,) = _events(app, "role_approve")
    assert asked.username == "admin" and asked.detail["role"] == "nurse"
    assert approved.username == "physician"
    assert approved.detail["requested_by_id"] == asked.user_id


def test_a_second_administrator_may_approve(client: TestClient, login_api: Any) -> None:
    admin = login_api("admin")
    r = _new(client, admin, "admin2", "admin")  # not a clinical role: created at once
    assert r.status_code == 201 and r.json()["role_approved"] is True
    admin2 = _bearer(client, "admin2")
    assert _new(client, admin, "therapist2", "therapist").status_code == 201
    (pending,) = _pending(client, admin2)
    r = client.post(f"/api/v1/role-requests/{pending['id']}/approve", headers=admin2)
    assert r.status_code == 200
    assert _role(client, "therapist2") == "therapist"


def test_raising_a_role_waits_and_a_rejection_keeps_the_old_one(
    app: Any, client: TestClient, login_api: Any
) -> None:
    admin, physician = login_api("admin"), login_api("physician")
    _new(client, admin, "nurse2", "nurse")
    client.post(
        f"/api/v1/role-requests/{_pending(client, physician)[0]['id']}/approve", headers=physician
    )
    nurse2 = _bearer(client, "nurse2")
    uid = client.get("/api/v1/users/me", headers=nurse2).json()["id"]
    r = client.post(f"/api/v1/users/{uid}/role", headers=admin, json={"role": "physician"})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "nurse"
    assert r.json()["pending"]["role"] == "physician"
    assert r.json()["pending"]["previous_role"] == "nurse"
    assert client.get("/api/v1/users/me", headers=nurse2).json()["role"] == "nurse"
    # one request at a time
    again = client.post(f"/api/v1/users/{uid}/role", headers=admin, json={"role": "therapist"})
    assert again.status_code == 409
    request_id = r.json()["pending"]["id"]
    no_reason = client.post(
        f"/api/v1/role-requests/{request_id}/reject", headers=physician, json={"reason": " "}
    )
    assert no_reason.status_code == 422 and "needs a reason" in no_reason.json()["detail"]
    r = client.post(
        f"/api/v1/role-requests/{request_id}/reject",
        headers=physician,
        json={"reason": "no medical licence on file"},
    )
    assert r.status_code == 200 and r.json()["outcome"] == "rejected"
    assert client.get("/api/v1/users/me", headers=nurse2).json()["role"] == "nurse"
    (rejected,) = _events(app, "role_reject")
    assert rejected.detail["reason"] == "no medical licence on file"
    # decided once: a late approval is refused
    late = client.post(f"/api/v1/role-requests/{request_id}/approve", headers=physician)
    assert late.status_code == 404


def test_nobody_changes_or_decides_their_own_role(client: TestClient, login_api: Any) -> None:
    admin = login_api("admin")
    me = client.get("/api/v1/users/me", headers=admin).json()["id"]
    r = client.post(f"/api/v1/users/{me}/role", headers=admin, json={"role": "physician"})
    assert r.status_code == 403 and "own role" in r.json()["detail"]
    _new(client, admin, "admin2", "admin")
    admin2 = _bearer(client, "admin2")
    uid2 = client.get("/api/v1/users/me", headers=admin2).json()["id"]
    r = client.post(f"/api/v1/users/{uid2}/role", headers=admin, json={"role": "physician"})
    request_id = r.json()["pending"]["id"]
    r = client.post(f"/api/v1/role-requests/{request_id}/approve", headers=admin2)
    assert r.status_code == 403 and "own account" in r.json()["detail"]


def test_an_admin_account_never_holds_a_clinical_role_too(
    client: TestClient, login_api: Any
) -> None:
    admin, physician = login_api("admin"), login_api("physician")
    _new(client, admin, "admin2", "admin")
    admin2 = _bearer(client, "admin2")
    uid2 = client.get("/api/v1/users/me", headers=admin2).json()["id"]
    r = client.post(f"/api/v1/users/{uid2}/role", headers=admin, json={"role": "physician"})
    client.post(f"/api/v1/role-requests/{r.json()['pending']['id']}/approve", headers=physician)
    # the physician role replaced admin: the account no longer administers accounts
    assert client.get("/api/v1/users/me", headers=admin2).json()["role"] == "physician"
    assert client.get("/api/v1/users", headers=admin2).status_code == 403


def test_a_non_clinical_role_changes_at_once(app: Any, client: TestClient, login_api: Any) -> None:
    admin, nurse = login_api("admin"), login_api("nurse")
    uid = client.get("/api/v1/users/me", headers=nurse).json()["id"]
    r = client.post(f"/api/v1/users/{uid}/role", headers=admin, json={"role": "researcher"})
    assert r.status_code == 200 and r.json()["pending"] is None
    assert client.get("/api/v1/users/me", headers=nurse).json()["role"] == "researcher"
    (changed,) = _events(app, "role_change")
    assert changed.detail == {"role": "researcher", "previous": "nurse"}
    bad = client.post(f"/api/v1/users/{uid}/role", headers=admin, json={"role": "patient"})
    assert bad.status_code == 422


def test_a_rejected_new_account_stays_unable_to_log_in(client: TestClient, login_api: Any) -> None:
    admin, physician = login_api("admin"), login_api("physician")
    _new(client, admin, "therapist2", "therapist")
    (pending,) = _pending(client, physician)
    client.post(
        f"/api/v1/role-requests/{pending['id']}/reject",
        headers=physician,
        json={"reason": "not hired"},
    )
    assert _login(client, "therapist2").status_code == 401
    users = client.get("/api/v1/users", headers=admin).json()
    uid = next(u["id"] for u in users if u["username"] == "therapist2")
    # activating does not go around it
    assert client.post(
        f"/api/v1/users/{uid}/role", headers=admin, json={"role": "therapist"}
    ).json()["pending"]
    assert _login(client, "therapist2").status_code == 401


def test_the_pages_ask_and_approve(app: Any, client: TestClient, login_api: Any) -> None:
    from conftest import page_login

    admin_page = TestClient(app)
    csrf = page_login(admin_page, "admin")
    nurse = login_api("nurse")
    uid = client.get("/api/v1/users/me", headers=nurse).json()["id"]
    r = admin_page.post(
        f"/admin/users/{uid}/role",
        data={"role": "therapist", "confirmed": "yes", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "role requests" in admin_page.get("/admin/users").text
    doctor = TestClient(app)
    csrf_doctor = page_login(doctor, "physician")
    page = doctor.get("/approvals")
    assert page.status_code == 200
    (request_id,) = re.findall(r'data-request="(\d+)"', page.text)
    r = doctor.post(
        f"/approvals/{request_id}",
        data={"action": "approve", "csrf_token": csrf_doctor},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get("/api/v1/users/me", headers=nurse).json()["role"] == "therapist"
    assert "No role request is waiting" in doctor.get("/approvals").text
    assert TestClient(app).get("/approvals", follow_redirects=False).status_code == 303
    nurse_page = TestClient(app)
    page_login(nurse_page, "nurse")
    assert nurse_page.get("/approvals").status_code == 403


def test_the_seeded_accounts_were_created_directly(app: Any, settings: Any, clock: Any) -> None:
    with app.state.ctx.sessions() as session:
        seeded = session.scalars(select(User).where(User.role.in_(["physician", "nurse"]))).all()
        assert seeded and all(u.role_approved for u in seeded)
        assert session.scalars(select(RoleRequest)).all() == []
        # the system actor (seeding, the operator's CLI) creates a clinical account at once
        user = accounts.create_user(
            session=session,
            username="locum",
            full_name="Dr Locum",
            role="physician",
            password=PASSWORD,
            now=clock.now,
            settings=settings,
        )
        assert user.role_approved is True
        session.rollback()
