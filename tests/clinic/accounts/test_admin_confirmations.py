"""Account administration: no destructive default, confirmation before deactivation and role
changes (a server-rendered step, no script needed), a new account's role chosen."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ketacare.clinic.accounts.orm import User


def _user(app: Any, username: str) -> User:
    with app.state.ctx.sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        session.expunge(user)
        return user


def test_the_action_menu_starts_on_no_action_and_an_empty_choice_is_refused(
    client: Any, login_page: Any, app: Any
) -> None:
    csrf = login_page("admin")
    page = client.get("/admin/users").text
    assert '<option value="" selected>— choose an action —</option>' in page
    assert '<option value="" selected>— choose a role —</option>' in page
    nurse = _user(app, "nurse")
    r = client.post(f"/admin/users/{nurse.id}", data={"action": "", "csrf_token": csrf})
    assert r.status_code == 422
    assert "choose an action in the account&#39;s menu" in r.text
    assert _user(app, "nurse").is_active


def test_deactivation_asks_for_confirmation_and_does_nothing_until_confirmed(
    client: Any, login_page: Any, login_api: Any, app: Any
) -> None:
    token = login_api("nurse")
    csrf = login_page("admin")
    nurse = _user(app, "nurse")
    r = client.post(f"/admin/users/{nurse.id}", data={"action": "deactivate", "csrf_token": csrf})
    assert r.status_code == 200
    assert 'data-testid="confirm-deactivate"' in r.text
    assert nurse.full_name in r.text and "deactivate the account" in r.text
    assert 'name="confirmed" value="yes"' in r.text
    assert 'href="/admin/users">Cancel: change nothing' in r.text
    assert _user(app, "nurse").is_active  # nothing changed yet
    assert client.get("/api/v1/users/me", headers=token).status_code == 200
    with app.state.ctx.sessions() as session:
        from ketacare.clinic.audit.orm import AuditEvent

        assert not session.scalars(
            select(AuditEvent).where(AuditEvent.action == "deactivate")
        ).all()

    r = client.post(
        f"/admin/users/{nurse.id}",
        data={"action": "deactivate", "confirmed": "yes", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert not _user(app, "nurse").is_active
    assert client.get("/api/v1/users/me", headers=token).status_code == 401


def test_deactivating_oneself_is_refused_before_the_confirmation(
    client: Any, login_page: Any, app: Any
) -> None:
    csrf = login_page("admin")
    admin = _user(app, "admin")
    r = client.post(f"/admin/users/{admin.id}", data={"action": "deactivate", "csrf_token": csrf})
    assert r.status_code == 422 and "your own account" in r.text


def test_a_role_change_asks_for_confirmation_with_the_change(
    client: Any, login_page: Any, app: Any
) -> None:
    csrf = login_page("admin")
    researcher = _user(app, "researcher")
    r = client.post(
        f"/admin/users/{researcher.id}/role", data={"role": "admin", "csrf_token": csrf}
    )
    assert r.status_code == 200
    assert 'data-testid="confirm-role"' in r.text
    assert "change the role from researcher to admin" in r.text
    assert researcher.full_name in r.text
    assert _user(app, "researcher").role == "researcher"
    r = client.post(
        f"/admin/users/{researcher.id}/role",
        data={"role": "admin", "confirmed": "yes", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _user(app, "researcher").role == "admin"
    # an unknown or empty role is refused with what is allowed, nothing changed
    r = client.post(f"/admin/users/{researcher.id}/role", data={"role": "", "csrf_token": csrf})
    assert r.status_code == 422
    assert "choose the new role of researcher: one of admin, physician" in r.text


def test_a_new_account_needs_a_role_chosen(client: Any, login_page: Any, app: Any) -> None:
    csrf = login_page("admin")
    form = {
        "username": "newcomer",
        "full_name": "New Comer",
        "password": "amber-quarry-sextant-41",
        "csrf_token": csrf,
    }
    r = client.post("/admin/users", data=form)
    assert r.status_code == 422
    assert "role is required: choose the new account&#39;s role" in r.text
    assert 'value="newcomer"' in r.text  # the form kept
    with app.state.ctx.sessions() as session:
        assert session.scalar(select(User).where(User.username == "newcomer")) is None
    r = client.post("/admin/users", data={**form, "role": "researcher"}, follow_redirects=False)
    assert r.status_code == 303
    assert _user(app, "newcomer").role == "researcher"


def test_an_administrator_is_offered_no_change_of_their_own_role(
    client: Any, login_page: Any, app: Any
) -> None:
    """The server refuses a change of one's own role; the page offers none on one's own
    row (and says who changes it), while every other staff row keeps its form."""
    login_page("admin")
    page = client.get("/admin/users").text
    admin, nurse = _user(app, "admin"), _user(app, "nurse")
    assert f'action="/admin/users/{admin.id}/role"' not in page
    assert f'action="/admin/users/{nurse.id}/role"' in page
    own = page.split('data-testid="own-role">')[1].split("</small>")[0]
    assert own == "(your own: another administrator changes it)"
