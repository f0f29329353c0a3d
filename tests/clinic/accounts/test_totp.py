"""The TOTP second factor: required for physicians and admins by default, on pages and
for API tokens; recovery codes work once; another admin resets it with a reason.

Codes are computed here as an authenticator app would (``pyotp`` from the secret the
enrolment page shows, at the app clock's time), and checked once against RFC 6238's own
test vector.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.demo import DEMO_PASSWORD
from ketacare.infra.settings import Settings

DEFAULT_ROLES = Settings.model_fields["totp_required_roles"].default


@pytest.fixture
def mfa_app(settings: Any, clock: Any) -> Any:
    """The app with the shipped default: admins and physicians need a second factor."""
    from ketacare.app import create_app

    assert DEFAULT_ROLES == "admin,physician"
    app = create_app(
        settings.model_copy(update={"totp_required_roles": DEFAULT_ROLES}), clock=clock
    )
    yield app
    app.state.engine.dispose()


def _token(client: TestClient, username: str, totp: str | None = None) -> Any:
    data = {"username": username, "password": DEMO_PASSWORD}
    if totp is not None:
        data["totp"] = totp
    return client.post("/api/v1/auth/token", data=data)


def _password_step(client: TestClient, username: str) -> Any:
    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    return client.post(
        "/login",
        data={"username": username, "password": DEMO_PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def enrol(client: TestClient, username: str, now: datetime) -> tuple[str, list[str]]:
    """Log in with the password, enrol on the page; returns the secret and recovery codes."""
    r = _password_step(client, username)
    assert r.status_code == 303 and r.headers["location"] == "/account/totp"
    page = client.get("/account/totp")
    secret = re.search(r'data-testid="totp-secret">([^<]+)<', page.text).group(1)
    secret = secret.replace(" ", "")
    r = client.post(
        "/account/totp",
        data={
            "action": "enrol",
            "code": pyotp.TOTP(secret).at(now),
            "csrf_token": _csrf(page.text),
        },
    )
    assert r.status_code == 200, r.text
    codes = re.findall(r"<li><code>([A-Z0-9-]+)</code></li>", r.text)
    return secret, codes


def test_the_rfc_6238_test_vector() -> None:
    """RFC 6238 Appendix B, SHA-1, T = 59 s: 94287082 (8 digits); 6 digits: 287082."""
    from types import SimpleNamespace

    from ketacare.clinic.accounts.totp import _check_totp

    secret = base64.b32encode(b"12345678901234567890").decode()
    user = SimpleNamespace(totp_last_step=None)
    at = datetime(1970, 1, 1, 0, 0, 59, tzinfo=UTC)
    assert _check_totp(user, secret, "287082", at)  # type: ignore[arg-type]
    assert not _check_totp(user, secret, "287082", at)  # the same step, again: refused


def test_a_physician_without_a_second_factor_gets_no_token_and_must_enrol(mfa_app: Any) -> None:
    client = TestClient(mfa_app)
    r = _token(client, "physician")
    assert r.status_code == 401 and "enrol an authenticator app" in r.json()["detail"]
    assert _token(client, "admin").status_code == 401
    # roles that do not need one keep the plain contract
    assert _token(client, "nurse").status_code == 200
    # on pages the password leads to enrolment, and nothing else opens until then
    r = _password_step(client, "physician")
    assert r.headers["location"] == "/account/totp"
    r = client.get("/patients/1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account/totp"
    assert "Scan this code" in client.get("/account/totp").text
    assert 'src="data:image/svg+xml' in client.get("/account/totp").text


def test_totp_is_asked_at_login_on_pages_and_for_tokens(mfa_app: Any, clock: Any) -> None:
    secret, codes = enrol(TestClient(mfa_app), "physician", clock.now)
    assert len(codes) == 10 and len(set(codes)) == 10
    totp = pyotp.TOTP(secret)
    clock.now += timedelta(seconds=30)  # the next step (the enrolment code is spent)
    client = TestClient(mfa_app)
    r = _token(client, "physician")
    assert r.status_code == 401 and "form field totp" in r.json()["detail"]
    wrong = f"{(int(totp.at(clock.now)) + 1) % 1_000_000:06d}"
    r = _token(client, "physician", wrong)
    assert r.status_code == 401 and "wrong authenticator code" in r.json()["detail"]
    r = _token(client, "physician", totp.at(clock.now))
    assert r.status_code == 200
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/api/v1/patients/1", headers=bearer).status_code == 200
    # the same code is never accepted twice
    assert _token(client, "physician", totp.at(clock.now)).status_code == 401
    # the page: password, then the code
    clock.now += timedelta(seconds=30)
    browser = TestClient(mfa_app)
    r = _password_step(browser, "physician")
    assert r.status_code == 303 and r.headers["location"].startswith("/login/totp")
    assert browser.get("/patients", follow_redirects=False).status_code == 303  # not yet in
    form = browser.get("/login/totp")
    r = browser.post(
        "/login/totp",
        data={"code": totp.at(clock.now), "csrf_token": _csrf(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/patients"
    assert browser.get("/patients", follow_redirects=False).status_code == 200
    with mfa_app.state.ctx.sessions() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.detail)
            .where(AuditEvent.username == "physician", AuditEvent.resource_type == "auth")
            .order_by(AuditEvent.id)
        ).all()
    actions = [a for a, _ in rows]
    assert "totp_failed" in actions and actions[-1] == "login"
    assert rows[-1][1] == {"second_factor": "totp"}


def test_a_recovery_code_works_once(mfa_app: Any, clock: Any) -> None:
    _, codes = enrol(TestClient(mfa_app), "physician", clock.now)
    client = TestClient(mfa_app)
    assert _token(client, "physician", codes[3]).status_code == 200
    assert _token(client, "physician", codes[3]).status_code == 401  # spent
    assert _token(client, "physician", codes[4].lower()).status_code == 200  # any case
    with mfa_app.state.ctx.sessions() as session:
        stored = session.execute(select(User.totp_secret)).all()
        from ketacare.clinic.accounts.orm import RecoveryCode

        hashes = session.scalars(select(RecoveryCode.code_hash)).all()
    assert stored and not any(codes[0] in h or codes[0].replace("-", "") in h for h in hashes)


def test_a_wrong_code_is_throttled_like_a_wrong_password(mfa_app: Any, clock: Any) -> None:
    enrol(TestClient(mfa_app), "physician", clock.now)
    client = TestClient(mfa_app)
    codes = [_token(client, "physician", "000000").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]


def test_another_admin_resets_a_second_factor_with_a_reason(mfa_app: Any, clock: Any) -> None:
    enrol(TestClient(mfa_app), "physician", clock.now)
    secret, _ = enrol(TestClient(mfa_app), "admin", clock.now)
    clock.now += timedelta(seconds=30)
    admin = TestClient(mfa_app)
    _password_step(admin, "admin")
    form = admin.get("/login/totp")
    admin.post(
        "/login/totp",
        data={"code": pyotp.TOTP(secret).at(clock.now), "csrf_token": _csrf(form.text)},
    )
    users = admin.get("/admin/users")
    csrf = _csrf(users.text)
    with mfa_app.state.ctx.sessions() as session:
        ids = dict(session.execute(select(User.username, User.id)).all())
    r = admin.post(
        f"/admin/users/{ids['physician']}",
        data={"action": "reset_totp", "reason": "", "csrf_token": csrf},
    )
    assert r.status_code == 422 and "reason" in r.text
    r = admin.post(
        f"/admin/users/{ids['admin']}",
        data={"action": "reset_totp", "reason": "lost phone", "csrf_token": csrf},
    )
    assert r.status_code == 422 and "another administrator" in r.text
    r = admin.post(
        f"/admin/users/{ids['physician']}",
        data={"action": "reset_totp", "reason": "phone lost on 2 March", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    # the physician enrols again at the next login
    assert _password_step(TestClient(mfa_app), "physician").headers["location"] == "/account/totp"
    with mfa_app.state.ctx.sessions() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "totp_reset")).one()
    assert event.username == "admin" and event.resource_id == str(ids["physician"])
    assert event.detail == {"reason": "phone lost on 2 March"}


def test_a_site_setting_extends_the_requirement_to_all_staff(settings: Any, clock: Any) -> None:
    from ketacare.app import create_app

    everyone = "admin,physician,nurse,therapist,researcher"
    app = create_app(settings.model_copy(update={"totp_required_roles": everyone}), clock=clock)
    try:
        client = TestClient(app)
        assert _token(client, "nurse").status_code == 401
        assert _token(client, "patient1").status_code == 200
    finally:
        app.state.engine.dispose()


def test_unknown_roles_in_the_setting_are_refused(tmp_path: Any) -> None:
    from pydantic import ValidationError

    from ketacare.infra.settings import load_settings

    with pytest.raises(ValidationError, match="unknown role.*surgeon.*allowed admin"):
        load_settings(var_dir=tmp_path, totp_required_roles="physician,surgeon")
