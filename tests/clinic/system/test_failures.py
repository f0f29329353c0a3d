"""Failures that say what is wrong: database stopped, read-only; readiness; refusal to start."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from ketacare.infra.errors import DatabaseUnavailable
from ketacare.infra.settings import load_settings

PROBLEM = "application/problem+json"


def _token(client: TestClient) -> dict[str, str]:
    r = client.post(
        "/api/v1/auth/token", data={"username": "nurse", "password": "ketacare-demo-clinic"}
    )
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only=ON")  # SQLite answers as for a read-only file


@pytest.fixture
def sqlite_read_only() -> Iterator[None]:
    """Every SQLite connection opened meanwhile is read-only (the tests run as root, for
    whom a chmod 0444 file stays writable)."""
    event.listen(Engine, "connect", _query_only)
    yield
    event.remove(Engine, "connect", _query_only)


def _assert_503(r: Any, words: str) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert words in body["detail"] and "Traceback" not in r.text
    assert body["status"] == 503


def test_ready_when_the_database_reads_and_writes(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_read_only_sqlite_answers_503_and_is_not_ready(
    app: Any, client: TestClient, settings: Any, caplog: pytest.LogCaptureFixture, request: Any
) -> None:
    if not settings.effective_database_url.startswith("sqlite"):
        pytest.skip("SQLite read-only file")
    headers = _token(client)
    request.getfixturevalue("sqlite_read_only")
    app.state.engine.dispose()  # new connections from here on
    caplog.set_level(logging.ERROR, logger="ketacare")
    r = client.post("/api/v1/patients/3/weights", headers=headers, json={"weight_kg": 58.0})
    _assert_503(r, "the database is read-only")
    records = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(records) == 1 and records[0].exc_info is None
    assert "POST /api/v1/patients/3/weights" in records[0].getMessage()
    _assert_503(client.get("/readyz"), "read-only")
    from ketacare.app import create_app

    with pytest.raises(DatabaseUnavailable, match="cannot start on .*the database is read-only"):
        create_app(settings)


def test_read_only_postgresql_answers_503_and_refuses_to_start(
    app: Any, client: TestClient, settings: Any
) -> None:
    if not settings.effective_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL read-only")
    from conftest import _admin

    headers = _token(client)
    name = settings.effective_database_url.rsplit("/", 1)[1]
    _admin(
        settings.effective_database_url,
        f"ALTER DATABASE {name} SET default_transaction_read_only = on",
    )
    app.state.engine.dispose()
    r = client.post("/api/v1/patients/3/weights", headers=headers, json={"weight_kg": 58.0})
    _assert_503(r, "the database is read-only")
    _assert_503(client.get("/readyz"), "read-only")
    from ketacare.app import create_app

    with pytest.raises(DatabaseUnavailable, match="cannot start on .*the database is read-only"):
        create_app(settings)


@pytest.mark.postgres
def test_postgresql_stopped_answers_503_then_the_app_refuses_to_start(tmp_path: Path) -> None:
    from conftest import REQUIRE_ALL, PostgresServer, _admin, _migrate_and_seed
    from ketacare.app import create_app

    try:
        server = PostgresServer()  # its own server: this test stops it
    except Exception as exc:  # noqa: BLE001 - no binaries: as the shared fixture does
        if REQUIRE_ALL:
            raise
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        _admin(server.url(), "CREATE DATABASE kc_stop")
        url = server.url("kc_stop")
        _migrate_and_seed(url)
        config = load_settings(database_url=url, var_dir=tmp_path, secret_key="t" * 40)
        app = create_app(config)
        client = TestClient(app)
        headers = _token(client)
        assert client.get("/readyz").status_code == 200
    finally:
        server.stop()
    r = client.post("/api/v1/patients/3/weights", headers=headers, json={"weight_kg": 58.0})
    _assert_503(r, "the database cannot be reached")
    _assert_503(client.get("/readyz"), "cannot be reached")
    assert client.get("/healthz").status_code == 503
    r = client.get("/api/v1/patients/3", headers=headers)
    _assert_503(r, "is the database server running?")
    app.state.engine.dispose()
    with pytest.raises(DatabaseUnavailable, match="cannot start on .*cannot be reached"):
        create_app(config)
