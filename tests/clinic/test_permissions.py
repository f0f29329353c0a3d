"""Every route declares one permission, and each role gets exactly what the table says."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from ketacare.infra.permissions import PERMISSIONS, Role, Scope, allowed

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/token"),
    ("GET", "/login"),
    ("POST", "/login"),
    # the second step of a login: the pending login's own cookie is the credential
    ("GET", "/login/totp"),
    ("POST", "/login/totp"),
    # single sign-on: the provider's signed ID token (and the login's own state cookie)
    ("GET", "/login/oidc"),
    ("GET", "/login/oidc/callback"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/docs"),
    ("GET", "/api/docs/oauth2-redirect"),
    # a patient's single-use self-report link: the unguessable token is the credential
    ("GET", "/r/{token}"),
    ("POST", "/r/{token}/{instrument_id}"),
}
OWN_PATIENT_ID = 1  # the demo's patient1 account is linked to the first demo patient


def permission_of(route: APIRoute) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(dependant: Any) -> None:
        for dep in dependant.dependencies:
            call = dep.call
            if hasattr(call, "permission"):
                found.append((call.permission, call.kind))
            walk(dep)

    walk(route.dependant)
    return found


def _walk(items: Any) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in items:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x)
            found += _walk(route.original_router.routes)
        elif hasattr(route, "routes"):
            found += _walk(route.routes)
    return found


def routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    out = []
    for route in _walk(app.routes):
        for method in sorted(route.methods - {"HEAD"}):
            out.append((method, route.path, route))
    return out


def test_the_walk_finds_every_route(app: Any) -> None:
    found = routes(app)
    assert len(found) > 80  # guards the two tests below against walking nothing
    assert (
        "GET",
        "/patients/{patient_id}",
    ) == found[[f[:2] for f in found].index(("GET", "/patients/{patient_id}"))][:2]


def test_every_route_declares_exactly_one_known_permission(app: Any) -> None:
    problems = []
    for method, path, route in routes(app):
        perms = permission_of(route)
        if (method, path) in PUBLIC:
            if perms:
                problems.append(f"{method} {path} is public but declares {perms}")
            continue
        if len(perms) != 1:
            problems.append(f"{method} {path} declares {len(perms)} permissions: {perms}")
        elif perms[0][0] not in PERMISSIONS:
            problems.append(f"{method} {path} uses unknown permission {perms[0][0]}")
    assert problems == []


def _fill(path: str) -> str:
    path = path.replace("{patient_id}", str(OWN_PATIENT_ID))
    path = path.replace("{kind}", "conditions" if path.startswith("/api") else "condition")
    return re.sub(r"\{[a-z_]+\}", "1", path)


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_gets_exactly_what_the_table_says(
    app: Any, client: Any, login_api: Any, login_page: Any, role: str
) -> None:
    username = "patient1" if role == "patient" else role
    bearer = login_api(username)
    csrf = login_page(username)
    mismatches = []
    for method, path, route in routes(app):
        perms = permission_of(route)
        if not perms:
            continue
        permission, kind = perms[0]
        url = _fill(path)
        headers = dict(bearer) if kind == "api" else {"X-CSRF-Token": csrf}
        response = client.request(
            method,
            url,
            headers=headers,
            json={} if kind == "api" and method != "GET" else None,
            data={} if kind == "page" and method != "GET" else None,
            follow_redirects=False,
        )
        expected_allowed = allowed(permission, role)
        got_forbidden = response.status_code == 403
        if response.status_code == 401:
            mismatches.append(f"{method} {url}: 401 for a logged-in {role}")
        elif expected_allowed == got_forbidden:
            mismatches.append(
                f"{method} {url} ({permission}): {role} got {response.status_code}, "
                f"table says {'allowed' if expected_allowed else 'forbidden'}"
            )
        if method == "POST" and path == "/logout":
            csrf = login_page(username)  # logging out ended the session: log in again
        if method == "DELETE" and path == "/api/v1/auth/token":
            bearer = login_api(username)  # the token revoked itself: a new one
        if path.startswith(("/account/sessions/", "/api/v1/auth/sessions")) and method in (
            "POST",
            "DELETE",
        ):  # ending one's sessions (session 1 may be this one, or all): log in again
            bearer = login_api(username)
            csrf = login_page(username)
    assert mismatches == []


def test_patient_scope_is_own_record_only(client: Any, login_api: Any) -> None:
    assert PERMISSIONS["patient:read"][Role.PATIENT] is Scope.OWN
    headers = login_api("patient1")
    assert client.get(f"/api/v1/patients/{OWN_PATIENT_ID}", headers=headers).status_code == 200
    other = client.get("/api/v1/patients/2", headers=headers)
    assert other.status_code == 403
    assert other.json()["detail"] == "a patient account can open only its own record"
    listed = client.get("/api/v1/patients", headers=headers).json()
    assert [p["id"] for p in listed["items"]] == [OWN_PATIENT_ID]


def test_no_token_means_401_on_the_api_and_login_redirect_on_pages(client: Any) -> None:
    r = client.get("/api/v1/patients")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/patients/1", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/patients/1"
