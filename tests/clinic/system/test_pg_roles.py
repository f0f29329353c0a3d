"""PostgreSQL with two roles: the owner migrates, the app may only read and insert audit rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from ketacare.clinic.audit import service as audit
from ketacare.infra.migrate import app_role, grant_app_role

pytestmark = pytest.mark.postgres

APP_ROLE = "kc_app"


@pytest.fixture
def two_roles(postgres: Any, db_url: str) -> Iterator[tuple[str, str]]:
    """(owner URL, app URL) of a fresh demo database; the owner is the cluster's superuser."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL roles")
    with psycopg.connect(postgres.url().replace("+psycopg", ""), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        if not exists:
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
    yield db_url, db_url.replace("//postgres@", f"//{APP_ROLE}@")


def _refused(app_url: str, sql: str) -> str:
    with psycopg.connect(app_url.replace("+psycopg", ""), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(sql)
    return str(caught.value)


def test_the_app_role_cannot_change_or_unprotect_the_audit_trail(
    two_roles: tuple[str, str], settings: Any
) -> None:
    from ketacare.app import create_app
    from ketacare.commands.clinic import APPEND_ONLY_TABLES
    from ketacare.infra.db import make_engine

    owner_url, app_url = two_roles
    assert app_role(app_url, owner_url) == APP_ROLE
    owner = make_engine(owner_url)
    grant_app_role(owner, role=APP_ROLE, append_only=APPEND_ONLY_TABLES)
    owner.dispose()

    # what a tamperer holding the app's credentials would try, each refused by PostgreSQL
    attempts = {
        "ALTER TABLE audit_events DISABLE TRIGGER ALL": "must be owner",
        "DROP TRIGGER audit_events_no_delete ON audit_events": "must be owner",
        "DELETE FROM audit_events WHERE id = 1": "permission denied",
        "UPDATE audit_events SET username = 'mallory' WHERE id = 1": "permission denied",
        "TRUNCATE audit_events": "permission denied",
        "SET session_replication_role = replica": "permission denied",
        "DROP TABLE audit_events": "must be owner",
        "UPDATE alembic_version SET version_num = '0001'": "permission denied",
    }
    for sql, expected in attempts.items():
        assert expected in _refused(app_url, sql), sql

    # ... and the app itself serves, writes and verifies as that role
    app = create_app(settings.model_copy(update={"database_url": app_url}))
    client = TestClient(app)
    r = client.post(
        "/api/v1/auth/token", data={"username": "nurse", "password": "ketacare-demo-clinic"}
    )
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = client.post("/api/v1/patients/3/weights", headers=headers, json={"weight_kg": 58.0})
    assert r.status_code == 201, r.text
    with app.state.ctx.sessions() as session:
        assert audit.verify(session=session).ok
    app.state.engine.dispose()
