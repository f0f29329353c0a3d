"""Request body limit, trusted proxies for the audited address, HSTS over https."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from ketacare.clinic.audit.orm import AuditEvent


def _last_addr(app: Any) -> str | None:
    with app.state.ctx.sessions() as session:
        return session.scalars(
            select(AuditEvent.remote_addr).order_by(AuditEvent.id.desc())
        ).first()


def test_a_body_above_the_limit_is_refused_with_413(client: TestClient, login_api: Any) -> None:
    headers = login_api("nurse")
    big = '{"weight_kg": 58.0, "pad": "' + "x" * (1024 * 1024) + '"}'
    r = client.post(
        "/api/v1/patients/3/weights",
        headers={**headers, "content-type": "application/json"},
        content=big,
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert "larger than 1048576 bytes" in r.json()["detail"]
    r = client.post("/api/v1/patients/3/weights", headers=headers, json={"weight_kg": 58.0})
    assert r.status_code == 201


def test_forwarded_address_only_from_a_trusted_proxy_and_hsts_over_https(
    app: Any, client: TestClient, login_api: Any, settings: Any
) -> None:
    from ketacare.app import create_app

    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    headers = login_api("nurse")
    r = client.get("/api/v1/patients/1", headers={**headers, **forwarded})
    assert r.status_code == 200 and "strict-transport-security" not in r.headers
    assert _last_addr(app) == "testclient"  # not trusted: the peer is audited

    behind = create_app(
        settings.model_copy(update={"trusted_proxies": ["testclient"]}), clock=app.state.ctx.clock
    )
    proxied = TestClient(behind)
    r = proxied.get("/api/v1/patients/1", headers={**headers, **forwarded})
    assert r.status_code == 200
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    assert _last_addr(behind) == "203.0.113.7"
    r = proxied.get("/healthz", headers={"X-Forwarded-Proto": "http"})
    assert "strict-transport-security" not in r.headers
    behind.state.engine.dispose()
