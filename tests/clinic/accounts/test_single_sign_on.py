"""OpenID Connect single sign-on against a real OpenID provider.

The provider is the certified ``oidc-provider`` npm package, started by this module on
127.0.0.1 (tests/oidc_provider.mjs) with one client and one test account; its own login
and consent forms are filled as a browser would. Nothing here is a mock: ketacare
discovers the provider, sends the browser there with state, nonce and an S256 code
challenge, exchanges the code with the verifier, and checks the signed ID token.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import REQUIRE_ALL, free_port, page_login
from ketacare.clinic.accounts import service as accounts
from ketacare.clinic.accounts.orm import RoleRequest, User
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tests" / "oidc_provider.mjs"
CALLBACK = "http://testserver/login/oidc/callback"
SECRET = "sso-test-client-secret-0123456789"
ACCOUNT = {
    "sub": "a1b2c3-dr-sso",
    "preferred_username": "dr.sso",
    "name": "Dr Sam Single-Sign-On",
    "groups": ["staff", "clinic-physicians"],
}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider").is_dir():
        if REQUIRE_ALL:
            pytest.fail("node and the oidc-provider package are needed (npm install)")
        pytest.skip("node or node_modules/oidc-provider missing (npm install)")
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "REDIRECT_URI": CALLBACK,
        "CLIENT_SECRET": SECRET,
        "ACCOUNT": json.dumps(ACCOUNT),
    }
    proc = subprocess.Popen(
        [node, str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until it listens (or dies)
        if not line.startswith("ready "):
            proc.kill()
            raise RuntimeError(f"the OpenID provider did not start: {line} {proc.stderr.read()}")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def sso(settings: Any, clock: Any, provider: str) -> Iterator[Any]:
    """Build an app with single sign-on at ``provider`` and the given extra settings."""
    from ketacare.app import create_app

    clock.now = datetime.now(UTC)  # the provider's tokens carry the real time
    apps: list[Any] = []

    def make(**extra: Any) -> Any:
        app = create_app(
            settings.model_copy(
                update={
                    "oidc_issuer": provider,
                    "oidc_client_id": "ketacare",
                    "oidc_client_secret": SECRET,
                    "oidc_scopes": "openid profile groups",
                    "oidc_groups_claim": "groups",
                    "oidc_role_map": {"clinic-physicians": "physician", "clinic-nurses": "nurse"},
                    **extra,
                }
            ),
            clock=clock,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.engine.dispose()


def sign_in(browser: TestClient, next_path: str = "") -> httpx.Response:
    """Start at ketacare, sign in at the provider's own forms, come back; the last answer."""
    r = browser.get(
        "/login/oidc" + (f"?next={next_path}" if next_path else ""), follow_redirects=False
    )
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["state"] and query["nonce"] and query["response_type"] == ["code"]
    with httpx.Client(timeout=10) as idp:
        for _ in range(12):
            if url.startswith(CALLBACK):
                parts = urlsplit(url)
                return browser.get(f"{parts.path}?{parts.query}", follow_redirects=False)
            r = idp.get(url)
            while r.status_code in (302, 303) and not r.headers["location"].startswith(CALLBACK):
                r = idp.get(urljoin(url, r.headers["location"]))
            if r.status_code in (302, 303):
                url = r.headers["location"]
                continue
            assert r.status_code == 200, r.text
            action = urljoin(url, re.search(r'action="([^"]+)"', r.text).group(1))
            prompt = re.search(r'name="prompt" value="([^"]+)"', r.text).group(1)
            fields = {"prompt": prompt}
            if prompt == "login":
                fields |= {"login": ACCOUNT["sub"], "password": "any"}
            r = idp.post(action, data=fields)
            assert r.status_code in (302, 303), r.text
            url = urljoin(action, r.headers["location"])
    raise AssertionError("the sign-in did not come back to ketacare")


def _events(app: Any, action: str) -> list[AuditEvent]:
    with app.state.ctx.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _make_account(app: Any, role: str, clock: Any) -> None:
    with app.state.ctx.sessions() as session, session.begin():
        accounts.create_user(
            session=session,
            username="dr.sso",
            full_name="Dr Sam",
            role=role,
            password="harbour-lantern-9",
            now=clock.now,
            settings=app.state.ctx.settings,
        )


def test_an_existing_account_signs_in(sso: Any, clock: Any) -> None:
    app = sso()
    _make_account(app, "nurse", clock)
    browser = TestClient(app)
    login = browser.get("/login")
    assert 'data-testid="sso-login"' in login.text
    r = sign_in(browser, next_path="/account")
    assert r.status_code == 303 and r.headers["location"] == "/account", r.text
    page = browser.get("/account")
    assert page.status_code == 200 and "dr.sso" in page.text
    (event,) = [e for e in _events(app, "login") if e.username == "dr.sso"]
    assert event.detail == {"method": "oidc"} and event.role == "nurse"  # role kept from ketacare


def test_no_account_and_no_provisioning_is_refused(sso: Any) -> None:
    app = sso()
    r = sign_in(TestClient(app))
    assert r.status_code == 401 and "no ketacare account is named &#39;dr.sso&#39;" in r.text
    assert len(_events(app, "sso_no_account")) == 1
    with app.state.ctx.sessions() as session:
        assert session.scalar(select(User).where(User.username == "dr.sso")) is None


def test_a_provisioned_physician_waits_for_approval(sso: Any) -> None:
    app = sso(oidc_provision=True)
    browser = TestClient(app)
    r = sign_in(browser)
    assert r.status_code == 401 and "waits for approval" in r.text
    with app.state.ctx.sessions() as session:
        user = session.scalars(select(User).where(User.username == "dr.sso")).one()
        assert (user.role, user.role_approved, user.full_name) == (
            "physician",
            False,
            "Dr Sam Single-Sign-On",
        )
        (request,) = session.scalars(select(RoleRequest)).all()
        assert request.role == "physician" and request.requested_by_id is None
    # a physician approves (the second person); the next sign-in opens the account
    doctor = TestClient(app)
    csrf = page_login(doctor, "physician")
    r = doctor.post(f"/approvals/{request.id}", data={"action": "approve", "csrf_token": csrf})
    assert r.status_code == 200
    r = sign_in(browser)
    assert r.status_code == 303 and r.headers["location"] == "/patients"
    assert browser.get("/patients").status_code == 200


def test_a_forged_or_replayed_callback_is_refused(sso: Any) -> None:
    app = sso()
    browser = TestClient(app)
    r = browser.get("/login/oidc/callback?code=made-up&state=made-up", follow_redirects=False)
    assert r.status_code == 401 and "not started here" in r.text
    browser.get("/login/oidc", follow_redirects=False)  # a real start: the state cookie
    r = browser.get("/login/oidc/callback?code=made-up&state=other", follow_redirects=False)
    assert r.status_code == 401 and "state does not match" in r.text


def test_staff_passwords_can_be_turned_off(sso: Any) -> None:
    app = sso(local_passwords_for_staff=False)
    client = TestClient(app)
    r = client.post("/api/v1/auth/token", data={"username": "nurse", "password": DEMO_PASSWORD})
    assert r.status_code == 401 and "single sign-on" in r.json()["detail"]
    r = client.post("/api/v1/auth/token", data={"username": "nurse", "password": "wrong-one-123"})
    assert r.status_code == 401 and "wrong username or password" in r.json()["detail"]
    r = client.post("/api/v1/auth/token", data={"username": "patient1", "password": DEMO_PASSWORD})
    assert r.status_code == 200  # patients keep their passwords
    assert len(_events(app, "login_password_off")) == 1


def test_sign_on_is_off_unless_configured(app: Any) -> None:
    client = TestClient(app)
    assert client.get("/login/oidc", follow_redirects=False).status_code == 404
    assert "sso-login" not in client.get("/login").text
