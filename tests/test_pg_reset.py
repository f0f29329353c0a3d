"""A used PostgreSQL test database restored to its fresh copy, or refused (tests/pg_reset.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import pg_reset
from conftest import TEMPLATE

pytestmark = pytest.mark.postgres

_names = (f"kc_reset_{n}" for n in itertools.count(1))


@pytest.fixture
def copy_db(postgres: Any) -> Iterator[psycopg.Connection[Any]]:
    """A new copy of the worker's template and an autocommit connection to it."""
    if postgres is None:
        pytest.skip("PostgreSQL not available (see the notice at the end of the run)")
    name = next(_names)
    admin = postgres.url().replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        with psycopg.connect(postgres.url(name).replace("+psycopg", ""), autocommit=True) as c:
            yield c
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _everything(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Every table's rows in order and every sequence's position: an independent read."""
    out: dict[str, Any] = {}
    for (table,) in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    ).fetchall():
        out[table] = sorted(map(repr, conn.execute(f'SELECT * FROM "{table}"').fetchall()))
    out["sequences"] = conn.execute(
        "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
    ).fetchall()
    return out


def test_rows_and_sequences_come_back_even_in_append_only_tables(
    copy_db: psycopg.Connection[Any],
) -> None:
    before = _everything(copy_db)
    snapshot = pg_reset.take(copy_db)
    copy_db.execute(
        "INSERT INTO patients (mrn, given_name, family_name, birth_date, sex, created_at, version) "
        "VALUES ('T-1', 'Test', 'Reset', '1980-01-01', 'female', now(), 1)"
    )
    copy_db.execute("UPDATE users SET full_name = 'Changed' WHERE username = 'nurse'")
    copy_db.execute("SELECT nextval('audit_events_id_seq')")
    changed = _everything(copy_db)
    assert changed != before
    assert pg_reset.restore(copy_db, snapshot) is True
    assert _everything(copy_db) == before
    # the append-only triggers are in force again once the restore is done
    with pytest.raises(psycopg.errors.RaiseException):
        copy_db.execute("DELETE FROM audit_events")


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE patients ADD COLUMN extra text",
        "ALTER TABLE audit_events DISABLE TRIGGER USER",
        "CREATE TABLE leftover (id int)",
        "GRANT SELECT ON patients TO PUBLIC",
        "ALTER TABLE plans DISABLE TRIGGER ALL",  # its foreign keys' internal triggers
        "ALTER SEQUENCE patients_id_seq INCREMENT BY 5",
        "CREATE RULE quiet AS ON INSERT TO chairs DO INSTEAD NOTHING",
        "SELECT lo_create(0)",
    ],
)
def test_a_changed_schema_is_refused_and_left_as_it_is(
    copy_db: psycopg.Connection[Any], change: str
) -> None:
    snapshot = pg_reset.take(copy_db)
    copy_db.execute("INSERT INTO chairs (name, active) VALUES ('Reset chair', true)")
    copy_db.execute(change)
    kept = _everything(copy_db)
    assert pg_reset.restore(copy_db, snapshot) is False
    assert _everything(copy_db) == kept  # nothing was restored
