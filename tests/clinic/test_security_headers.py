"""Every answer carries the security headers; data answers are never cached."""

from __future__ import annotations

from typing import Any


def _has_security_headers(headers: Any) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    csp = headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline scripts
    assert directives["frame-ancestors"] == "'none'"


def test_pages_and_api_answers_carry_the_headers_and_are_not_cached(
    client: Any, login_api: Any
) -> None:
    login = client.get("/login")
    assert login.status_code == 200
    _has_security_headers(login.headers)
    assert login.headers["cache-control"] == "no-store"
    r = client.get("/api/v1/patients", headers=login_api("nurse"))
    assert r.status_code == 200
    _has_security_headers(r.headers)
    assert r.headers["cache-control"] == "no-store"
    # an error answer too
    r = client.get("/api/v1/patients")
    assert r.status_code == 401
    _has_security_headers(r.headers)
    assert r.headers["cache-control"] == "no-store"


def test_static_files_may_be_cached_but_keep_the_other_headers(client: Any) -> None:
    r = client.get("/static/app.css")
    assert r.status_code == 200
    _has_security_headers(r.headers)
    assert "no-store" not in r.headers.get("cache-control", "")
    assert len(r.headers.get_list("x-frame-options")) == 1
