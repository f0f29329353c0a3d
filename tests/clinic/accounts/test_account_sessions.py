"""Sessions: an idle timeout for page sessions, the holder's list of sessions and tokens,
ending one of them, and "log out everywhere"; each audited.

The idle limit is the settings' default (30 minutes: OWASP ASVS 4.0.3 item 3.3.2, level 2;
NIST SP 800-63B section 4.2.3); the times below step a settable clock around it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import page_login
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.demo import DEMO_PASSWORD
from ketacare.infra.settings import Settings

DEFAULT_IDLE = Settings.model_fields["idle_timeout_minutes"].default


@pytest.fixture
def app(settings: Any, clock: Any) -> Any:
    """The app with the shipped default idle timeout (the suite's settings turn it off)."""
    from ketacare.app import create_app

    application = create_app(
        settings.model_copy(update={"idle_timeout_minutes": DEFAULT_IDLE}), clock=clock
    )
    yield application
    application.state.engine.dispose()


def _browser(app: Any, username: str, agent: str = "TestBrowser/1.0") -> tuple[TestClient, str]:
    browser = TestClient(app, headers={"user-agent": agent})
    return browser, page_login(browser, username)


def _token(app: Any, username: str, agent: str = "clinic-sync/2.1") -> dict[str, str]:
    r = TestClient(app, headers={"user-agent": agent}).post(
        "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _opens(browser: TestClient, path: str = "/patients") -> bool:
    r = browser.get(path, follow_redirects=False)
    assert r.status_code in (200, 303), r.status_code
    return r.status_code == 200


def _audit(app: Any, action: str) -> list[AuditEvent]:
    with app.state.ctx.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_the_default_idle_timeout_is_thirty_minutes() -> None:
    assert DEFAULT_IDLE == 30


def test_a_page_session_ends_after_thirty_idle_minutes(app: Any, clock: Any) -> None:
    browser, _ = _browser(app, "nurse")
    start = clock.now
    clock.now = start + timedelta(minutes=29)
    assert _opens(browser)  # used at 29 minutes: the idle time starts again
    clock.now = start + timedelta(minutes=29 + 30)
    assert _opens(browser)  # exactly 30 idle minutes: still open
    clock.now = start + timedelta(minutes=29 + 30 + 31)
    r = browser.get("/patients", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_background_refreshes_do_not_keep_a_session_open(app: Any, clock: Any) -> None:
    browser, _ = _browser(app, "nurse")
    start = clock.now
    for minutes in (10, 20, 30):  # the alert badge refreshes by itself
        clock.now = start + timedelta(minutes=minutes)
        r = browser.get("/alerts/count", headers={"X-Ketacare-Background": "1"})
        assert r.status_code == 200
    clock.now = start + timedelta(minutes=31)
    assert not _opens(browser)


def test_api_tokens_have_no_idle_timeout(app: Any, clock: Any) -> None:
    headers = _token(app, "nurse")
    clock.now += timedelta(hours=7)  # idle 7 hours, within the 8-hour lifetime
    assert TestClient(app).get("/api/v1/users/me", headers=headers).status_code == 200


def test_the_idle_timeout_can_be_turned_off(settings: Any, clock: Any) -> None:
    from ketacare.app import create_app

    app = create_app(settings.model_copy(update={"idle_timeout_minutes": 0}), clock=clock)
    try:
        browser, _ = _browser(app, "nurse")
        clock.now += timedelta(hours=7)
        assert _opens(browser)
    finally:
        app.state.engine.dispose()


def test_the_sessions_page_lists_sessions_and_tokens(app: Any, clock: Any) -> None:
    browser, _ = _browser(app, "physician", agent="Firefox/140.0")
    clock.now += timedelta(minutes=5)
    _token(app, "physician", agent="clinic-sync/2.1")
    _token(app, "nurse", agent="someone-else/1.0")  # another account: not listed
    clock.now += timedelta(minutes=5)
    page = browser.get("/account/sessions")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-session="(\d+)">(.*?)</tr>', page.text, re.S)
    assert len(rows) == 2
    text = " ".join(body for _, body in rows)
    assert "Firefox/140.0" in text and "clinic-sync/2.1" in text
    assert "someone-else" not in text
    assert "testclient" in text  # the address TestClient reports
    # opened 10:00 and 10:05 UTC, shown in the clinic's zone (Amsterdam, UTC+1 in March)
    assert "2026-03-02 11:00" in text and "2026-03-02 11:05" in text
    assert "(this one)" in text


def test_ending_a_token_from_the_page(app: Any) -> None:
    browser, csrf = _browser(app, "physician")
    headers = _token(app, "physician")
    api = TestClient(app)
    listed = api.get("/api/v1/auth/sessions", headers=headers).json()
    assert {s["kind"] for s in listed} == {"cookie", "bearer"}
    token_id = next(s["id"] for s in listed if s["current"])
    r = browser.post(
        f"/account/sessions/{token_id}/revoke",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/account/sessions"
    assert api.get("/api/v1/users/me", headers=headers).status_code == 401
    assert _opens(browser)  # the page session stays
    (event,) = _audit(app, "session_revoke")
    assert event.username == "physician"
    assert event.detail == {"session_id": token_id, "kind": "bearer"}


def test_another_persons_session_cannot_be_ended(app: Any) -> None:
    victim = _token(app, "physician")
    api = TestClient(app)
    victim_id = api.get("/api/v1/auth/sessions", headers=victim).json()[0]["id"]
    nurse, csrf = _browser(app, "nurse")
    r = nurse.post(f"/account/sessions/{victim_id}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 422
    assert "not one of your sessions" in r.text
    r = api.delete(f"/api/v1/auth/sessions/{victim_id}", headers=_token(app, "nurse"))
    assert r.status_code == 422
    assert api.get("/api/v1/users/me", headers=victim).status_code == 200
    assert _audit(app, "session_revoke") == []


def test_log_out_everywhere_ends_every_session_and_token(app: Any) -> None:
    first, csrf = _browser(app, "nurse")
    second, _ = _browser(app, "nurse")
    token = _token(app, "nurse")
    other = _token(app, "physician")
    r = first.post(
        "/account/sessions/revoke-all", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not _opens(first) and not _opens(second)
    api = TestClient(app)
    assert api.get("/api/v1/users/me", headers=token).status_code == 401
    assert api.get("/api/v1/users/me", headers=other).status_code == 200  # not the nurse's
    (event,) = _audit(app, "logout_all")
    assert event.username == "nurse" and event.detail == {"ended": 3}


def test_log_out_everywhere_through_the_api(app: Any) -> None:
    browser, _ = _browser(app, "nurse")
    token = _token(app, "nurse")
    api = TestClient(app)
    assert api.delete("/api/v1/auth/sessions", headers=token).status_code == 204
    assert api.get("/api/v1/users/me", headers=token).status_code == 401
    assert not _opens(browser)
    assert _audit(app, "logout_all")[0].detail == {"ended": 2}
