"""Login, tokens, CSRF, password changes and account administration."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.demo import DEMO_PASSWORD


def test_login_sets_an_httponly_samesite_cookie_and_passwords_are_argon2(
    client: Any, app: Any
) -> None:
    r = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = client.post(
        "/login",
        data={"username": "nurse", "password": DEMO_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/patients"
    cookie = r.headers["set-cookie"].lower()
    assert "kc_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http on loopback
    with app.state.ctx.sessions() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "nurse"))
    assert stored.startswith("$argon2id$") and DEMO_PASSWORD not in stored


def test_secure_cookie_behind_https(app: Any) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(app, base_url="https://testserver")
    r = client.get("/login")
    assert "secure" in r.headers["set-cookie"].lower()
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = client.post(
        "/login",
        data={"username": "nurse", "password": DEMO_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "secure" in r.headers["set-cookie"].lower()


def test_form_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
    client: Any, login_page: Any, login_api: Any
) -> None:
    csrf = login_page("nurse")
    before = client.get("/api/v1/patients/1", headers=login_api("nurse")).json()
    for data in ({"weight_kg": "71"}, {"weight_kg": "71", "csrf_token": "forged"}):
        r = client.post("/patients/1/weights", data=data)
        assert r.status_code == 403
        assert "security token" in r.text
    after = client.get("/api/v1/patients/1", headers=login_api("nurse")).json()
    assert after["weights"] == before["weights"]
    r = client.post(
        "/patients/1/weights", data={"weight_kg": "71", "csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303


def test_login_form_needs_its_csrf_cookie(client: Any) -> None:
    r = client.post(
        "/login",
        data={"username": "nurse", "password": DEMO_PASSWORD, "csrf_token": "made-up"},
        follow_redirects=False,
    )
    assert r.status_code == 403


def test_unknown_user_and_wrong_password_get_the_same_answer(client: Any) -> None:
    a = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "x" * 12})
    b = client.post("/api/v1/auth/token", data={"username": "nurse", "password": "x" * 12})
    assert a.status_code == b.status_code == 401
    assert a.json()["detail"] == b.json()["detail"] == "wrong username or password"


def test_logout_revokes_the_session(client: Any, login_page: Any) -> None:
    csrf = login_page("nurse")
    assert client.get("/patients", follow_redirects=False).status_code == 200
    r = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.clear()
    assert client.get("/patients", follow_redirects=False).status_code == 303


def test_a_stolen_cookie_is_useless_after_logout(client: Any, login_page: Any) -> None:
    csrf = login_page("nurse")
    stolen = client.cookies.get("kc_session")
    client.post("/logout", data={"csrf_token": csrf})
    client.cookies.set("kc_session", stolen)
    assert client.get("/patients", follow_redirects=False).status_code == 303


def test_admin_creates_an_account_and_bad_usernames_are_refused(
    client: Any, login_api: Any
) -> None:
    headers = login_api("admin")
    r = client.post(
        "/api/v1/users",
        headers=headers,
        json={
            "username": "nurse2",
            "full_name": "Second Nurse",
            "role": "nurse",
            "password": "a-long-password",
        },
    )
    assert r.status_code == 201 and r.json()["role"] == "nurse"
    r = client.post(
        "/api/v1/users",
        headers=headers,
        json={
            "username": "Bad Name!",
            "full_name": "x",
            "role": "nurse",
            "password": "a-long-password",
        },
    )
    assert r.status_code == 422 and "username" in r.json()["detail"]
    r = client.post(
        "/api/v1/users",
        headers=headers,
        json={
            "username": "nurse3",
            "full_name": "x",
            "role": "surgeon",
            "password": "a-long-password",
        },
    )
    assert r.status_code == 422 and "allowed admin, physician" in r.json()["detail"]
    r = client.post(
        "/api/v1/users",
        headers=headers,
        json={
            "username": "nurse2",
            "full_name": "x",
            "role": "nurse",
            "password": "a-long-password",
        },
    )
    assert r.status_code == 409


def test_password_change_ends_other_sessions(client: Any, login_page: Any, login_api: Any) -> None:
    token = login_api("nurse")
    csrf = login_page("nurse")
    r = client.post(
        "/account/password",
        data={"current": "wrong", "new": "a-new-password-1", "csrf_token": csrf},
    )
    assert r.status_code == 422 and "current password is wrong" in r.text
    r = client.post(
        "/account/password",
        data={"current": DEMO_PASSWORD, "new": "a-new-password-1", "csrf_token": csrf},
    )
    assert r.status_code == 200 and "Password changed." in r.text
    assert client.get("/patients", follow_redirects=False).status_code == 200  # this session
    assert client.get("/api/v1/users/me", headers=token).status_code == 401  # the old token
    assert (
        client.post(
            "/api/v1/auth/token", data={"username": "nurse", "password": "a-new-password-1"}
        ).status_code
        == 200
    )


def test_admin_deactivates_and_resets_accounts(
    client: Any, login_page: Any, login_api: Any, app: Any
) -> None:
    nurse_token = login_api("nurse")
    csrf = login_page("admin")
    with app.state.ctx.sessions() as session:
        nurse_id = session.scalar(select(User.id).where(User.username == "nurse"))
        admin_id = session.scalar(select(User.id).where(User.username == "admin"))
    r = client.post(
        f"/admin/users/{nurse_id}",
        data={"action": "deactivate", "confirmed": "yes", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get("/api/v1/users/me", headers=nurse_token).status_code == 401
    assert (
        client.post(
            "/api/v1/auth/token", data={"username": "nurse", "password": DEMO_PASSWORD}
        ).status_code
        == 401
    )
    r = client.post(f"/admin/users/{admin_id}", data={"action": "deactivate", "csrf_token": csrf})
    assert r.status_code == 422 and "your own account" in r.text
    client.post(f"/admin/users/{nurse_id}", data={"action": "activate", "csrf_token": csrf})
    r = client.post(
        f"/admin/users/{nurse_id}",
        data={"action": "reset", "password": "short", "csrf_token": csrf},
    )
    assert r.status_code == 422 and "at least 12 characters" in r.text
    client.post(
        f"/admin/users/{nurse_id}",
        data={"action": "reset", "password": "reset-by-admin-1", "csrf_token": csrf},
    )
    assert (
        client.post(
            "/api/v1/auth/token", data={"username": "nurse", "password": "reset-by-admin-1"}
        ).status_code
        == 200
    )


def test_the_holder_of_a_token_revokes_it(client: Any, app: Any, login_api: Any) -> None:
    token = login_api("nurse")
    other = login_api("nurse")
    assert client.get("/api/v1/users/me", headers=token).status_code == 200
    r = client.delete("/api/v1/auth/token", headers=token)
    assert r.status_code == 204 and r.content == b""
    assert client.get("/api/v1/users/me", headers=token).status_code == 401
    assert client.delete("/api/v1/auth/token", headers=token).status_code == 401
    assert client.get("/api/v1/users/me", headers=other).status_code == 200  # only that one


#: RFC 9106 (Biryukov, Dinu, Khovratovich, Josefsson 2021, "Argon2 Memory-Hard Function for
#: Password Hashing and Proof-of-Work Applications", https://www.rfc-editor.org/rfc/rfc9106
#: section 4): "If much less memory is available, a uniformly safe option is Argon2id with
#: t=3 iterations, p=4 lanes, m=2^(16) (64 MiB of RAM)".
RFC_9106_SECOND_OPTION = {"time_cost": 3, "memory_kib": 2**16, "parallelism": 4}
#: OWASP Password Storage Cheat Sheet (https://cheatsheetseries.owasp.org/cheatsheets/
#: Password_Storage_Cheat_Sheet.html, "Argon2id"): the minimum is m=19 MiB (19456 KiB), t=2, p=1.
OWASP_MINIMUM = {"time_cost": 2, "memory_kib": 19456, "parallelism": 1}


def test_production_password_hashing_defaults_are_rfc_9106_argon2id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The suite hashes cheaply (conftest); an operator's defaults are the recommended ones."""
    from ketacare.clinic.accounts.service import hash_password, password_hasher
    from ketacare.infra.settings import load_settings

    for name in ("TIME_COST", "MEMORY_KIB", "PARALLELISM"):
        monkeypatch.delenv(f"KETACARE_PASSWORD_HASH_{name}", raising=False)
    settings = load_settings()
    configured = {
        "time_cost": settings.password_hash_time_cost,
        "memory_kib": settings.password_hash_memory_kib,
        "parallelism": settings.password_hash_parallelism,
    }
    assert configured == RFC_9106_SECOND_OPTION
    assert configured["memory_kib"] >= OWASP_MINIMUM["memory_kib"]
    assert configured["time_cost"] >= OWASP_MINIMUM["time_cost"]
    stored = hash_password("a-real-password", settings=settings)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert password_hasher(settings).verify(stored, "a-real-password")


def test_a_hash_of_other_parameters_verifies_and_is_due_a_rehash_to_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hash of other parameters still verifies and is due a rehash to the configured ones."""
    from ketacare.clinic.accounts.service import hash_password, password_hasher
    from ketacare.infra.settings import load_settings

    cheap = load_settings()
    stored = hash_password("a-test-password", settings=cheap)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    other = load_settings(password_hash_time_cost=2, password_hash_memory_kib=16)
    assert password_hasher(other).verify(stored, "a-test-password")
    assert password_hasher(other).check_needs_rehash(stored)
    assert not password_hasher(cheap).check_needs_rehash(stored)


def test_argon2_memory_below_8_kib_a_lane_is_refused() -> None:
    from pydantic import ValidationError

    from ketacare.infra.settings import load_settings

    with pytest.raises(ValidationError, match="at least 8 KiB per lane"):
        load_settings(password_hash_memory_kib=16, password_hash_parallelism=4)


def test_a_login_rehashes_a_password_stored_with_other_parameters(client: Any, app: Any) -> None:
    from ketacare.clinic.accounts.service import hash_password
    from ketacare.infra.settings import load_settings

    older = hash_password(
        "ketacare-demo-clinic",
        settings=load_settings(password_hash_time_cost=2, password_hash_memory_kib=16),
    )
    assert older.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    with app.state.ctx.sessions() as session, session.begin():
        session.get(User, _user_id(session, "nurse")).password_hash = older
    r = client.post(
        "/api/v1/auth/token", data={"username": "nurse", "password": "ketacare-demo-clinic"}
    )
    assert r.status_code == 200
    with app.state.ctx.sessions() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "nurse"))
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")  # the settings' (conftest) values


def _user_id(session: Any, username: str) -> int:
    return int(session.scalar(select(User.id).where(User.username == username)))
