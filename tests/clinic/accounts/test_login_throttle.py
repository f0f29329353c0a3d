"""Failed logins are throttled per (account, address) pair and per address, never locked.

The defaults (5 a minute, 10 in 15 minutes, 20 an hour, 50 a day per pair; 20 a minute
per address) are the settings' own; the worked values below follow from them by hand.
"""

from __future__ import annotations

import re
import types
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.demo import DEMO_PASSWORD

STRANGER = ("203.0.113.7", 40000)  # TEST-NET-3 documentation addresses
HOLDER = ("198.51.100.20", 40000)


def _token(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """The throttle's clock (the `limits` memory storage reads time.time())."""
    import limits.storage.memory
    import limits.strategies

    from ketacare.clinic.accounts import throttle

    clock = types.SimpleNamespace(now=1_900_000_000.0)
    fake = types.SimpleNamespace(time=lambda: clock.now)
    for module in (limits.storage.memory, limits.strategies, throttle):
        monkeypatch.setattr(module, "time", fake)
    return clock


def test_a_strangers_failed_logins_never_lock_out_the_account_holder(app: Any) -> None:
    stranger = TestClient(app, client=STRANGER)
    holder = TestClient(app, client=HOLDER)
    codes = [_token(stranger, "nurse", f"guess-{i}").status_code for i in range(30)]
    assert codes[:5] == [401] * 5
    assert set(codes[5:]) == {429}  # the stranger's pair waits; nothing is locked
    # even the right password is refused to the stranger's address for now...
    assert _token(stranger, "nurse", DEMO_PASSWORD).status_code == 429
    # ...while the holder, from another address, signs in at once
    assert _token(holder, "nurse", DEMO_PASSWORD).status_code == 200


def test_refusal_windows_grow_with_more_failures(app: Any, fake_time: Any) -> None:
    stranger = TestClient(app, client=STRANGER)
    for _ in range(5):
        assert _token(stranger, "nurse", "wrong-guess").status_code == 401
    r = _token(stranger, "nurse", "wrong-guess")
    assert r.status_code == 429
    # the fifth failure was at t0: the 5-a-minute window frees at t0 + 60 s
    assert r.headers["retry-after"] == "60"
    assert "try again in 60 seconds" in r.json()["detail"]
    fake_time.now += 61
    for _ in range(5):
        assert _token(stranger, "nurse", "wrong-guess").status_code == 401
    r = _token(stranger, "nurse", "wrong-guess")
    # ten failures in 15 minutes: the first one (61 s ago) leaves that window at 900 s
    assert r.status_code == 429 and r.headers["retry-after"] == str(900 - 61)
    fake_time.now += 900 - 61
    assert _token(stranger, "nurse", DEMO_PASSWORD).status_code == 200


def test_a_right_password_clears_its_pair(app: Any) -> None:
    holder = TestClient(app, client=HOLDER)
    for _ in range(4):
        assert _token(holder, "nurse", "typo-typo").status_code == 401
    assert _token(holder, "nurse", DEMO_PASSWORD).status_code == 200
    for _ in range(4):  # four more typos do not reach the limit: the count started again
        assert _token(holder, "nurse", "typo-typo").status_code == 401
    assert _token(holder, "nurse", DEMO_PASSWORD).status_code == 200


def test_unknown_and_known_accounts_get_identical_answers_and_the_same_work(
    app: Any, monkeypatch: pytest.MonkeyPatch, fake_time: Any
) -> None:
    verified: list[str] = []
    real_verify = PasswordHasher.verify

    def counting(self: PasswordHasher, hash_: str, password: str) -> bool:
        verified.append(password)
        return real_verify(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    answers: dict[str, list[tuple[int, str, str | None]]] = {}
    for username, addr in (("nurse", STRANGER), ("no-such-user", HOLDER)):
        client = TestClient(app, client=addr)
        verified.clear()
        answers[username] = [
            (r.status_code, r.json()["detail"], r.headers.get("retry-after"))
            for r in (_token(client, username, f"guess-{i}") for i in range(7))
        ]
        # one argon2 check per attempt that was not throttled, for both
        assert len(verified) == 5
    assert answers["nurse"] == answers["no-such-user"]
    assert [a[0] for a in answers["nurse"]] == [401] * 5 + [429] * 2


def test_one_address_spraying_many_accounts_is_refused_and_others_are_not(app: Any) -> None:
    """The review's case: 24 guesses over 6 accounts from one address."""
    sprayer = TestClient(app, client=STRANGER)
    accounts = ["admin", "physician", "nurse", "therapist", "researcher", "patient1"]
    codes = [_token(sprayer, accounts[i % 6], f"spray-{i}").status_code for i in range(24)]
    assert codes[:20] == [401] * 20  # each pair saw at most 4: only the address budget bites
    assert codes[20:] == [429] * 4
    r = _token(sprayer, "nurse", DEMO_PASSWORD)
    assert r.status_code == 429 and "from your address" in r.json()["detail"]
    assert _token(TestClient(app, client=HOLDER), "nurse", DEMO_PASSWORD).status_code == 200


def test_failed_and_throttled_attempts_are_audited_with_the_address(app: Any) -> None:
    stranger = TestClient(app, client=STRANGER)
    for i in range(6):
        _token(stranger, "nurse" if i % 2 else "ghost", "nope-nope")
    for _ in range(6):
        _token(stranger, "nurse", "nope-nope")
    with app.state.ctx.sessions() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.username, AuditEvent.remote_addr)
            .where(AuditEvent.resource_type == "auth")
            .order_by(AuditEvent.id)
        ).all()
    failed = [r for r in rows if r.action == "login_failed"]
    throttled = [r for r in rows if r.action == "login_throttled"]
    # three failures each, then nurse: two more to reach five, four throttled
    assert len(failed) == 6 + 2 and len(throttled) == 4
    assert {r.username for r in failed} == {"nurse", "ghost"}
    assert {r.remote_addr for r in failed + throttled} == {STRANGER[0]}


def test_the_login_page_says_when_to_try_again(app: Any) -> None:
    stranger = TestClient(app, client=STRANGER)
    page = stranger.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    for expected in [401] * 5 + [429]:
        r = stranger.post(
            "/login",
            data={"username": "nurse", "password": "wrong-guess", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert r.status_code == expected
    assert "too many failed logins for this account from your address" in r.text
    assert int(r.headers["retry-after"]) <= 60


def test_wrong_current_passwords_are_throttled_and_end_only_that_session(
    app: Any, client: Any, login_page: Any, login_api: Any
) -> None:
    """Whoever holds an unattended session cannot guess the password without limit."""
    other_token = login_api("nurse")
    csrf = login_page("nurse")
    wrong = {"current": "not-it", "new": "a-new-password-1", "csrf_token": csrf}
    for _ in range(4):
        r = client.post("/account/password", data=wrong)
        assert r.status_code == 422 and "current password is wrong" in r.text
    r = client.post("/account/password", data=wrong)  # the pair's fifth failure
    assert r.status_code == 429 and "too many failed logins" in r.text
    assert client.get("/patients", follow_redirects=False).status_code == 303  # ended
    assert client.get("/api/v1/users/me", headers=other_token).status_code == 200
    # the holder, from another address, still signs in
    assert _token(TestClient(app, client=HOLDER), "nurse", DEMO_PASSWORD).status_code == 200
    with app.state.ctx.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.username == "nurse", AuditEvent.resource_type == "auth"
            )
        ).all()
    assert actions.count("password_failed") == 5


def test_bad_throttle_settings_are_refused_naming_the_notation(tmp_path: Any) -> None:
    from pydantic import ValidationError

    from ketacare.infra.settings import load_settings

    with pytest.raises(ValidationError, match="5/minute;20/hour"):
        load_settings(var_dir=tmp_path, login_throttle_per_address="five a minute")
