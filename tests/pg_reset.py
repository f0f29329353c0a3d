"""A used PostgreSQL test database restored to the copy of the template it started as.

``CREATE DATABASE … TEMPLATE`` takes the server 0.13 s on an idle machine and up to
0.9 s with the suite running (it copies the whole catalog), more than many tests
themselves. A database a test has used is restored instead, in about 25 ms: every table
emptied and refilled with the rows the fresh copy held, every sequence set back to where
it stood. That is only sound when the test changed rows and nothing else, so the
schema's fingerprint (relations, columns, constraints, triggers and rules and whether
they are enabled, sequences' settings, policies, types, functions, privileges, owners,
large objects, database settings) is compared with the fresh copy's first; a database
whose fingerprint differs is dropped instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: what a test could change besides rows; a difference means the database is dropped
FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, ';' ORDER BY item), '')) FROM (
  SELECT 'c:' || n.nspname || '.' || c.relname || ':' || c.relkind::text || ':'
         || c.relnatts::text || ':' || coalesce(c.relacl::text, '') || ':'
         || c.relrowsecurity::text || ':' || c.relforcerowsecurity::text || ':'
         || c.relpersistence::text || ':' || c.relowner::regrole::text AS item
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  UNION ALL
  SELECT 'a:' || a.attrelid::regclass::text || '.' || a.attname || ':' || a.atttypid::text
         || ':' || a.atttypmod::text || ':' || a.attnotnull::text || ':'
         || a.attidentity::text || ':' || a.attgenerated::text || ':'
         || a.attcollation::text || ':' || coalesce(a.attacl::text, '') || ':'
         || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'k:' || conrelid::regclass::text || '.' || conname || ':' || contype::text || ':'
         || convalidated::text || ':' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 't:' || tgrelid::regclass::text || '.' || tgname || ':' || tgenabled::text
    FROM pg_trigger
  UNION ALL
  SELECT 'w:' || ev_class::regclass::text || '.' || rulename || ':' || ev_enabled::text
         || ':' || md5(ev_action::text) FROM pg_rewrite
   WHERE ev_class IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
  UNION ALL
  SELECT 's:' || seqrelid::regclass::text || ':' || seqstart::text || ':'
         || seqincrement::text || ':' || seqmin::text || ':' || seqmax::text || ':'
         || seqcycle::text FROM pg_sequence
  UNION ALL
  SELECT 'o:' || polrelid::regclass::text || '.' || polname FROM pg_policy
  UNION ALL
  SELECT 'y:' || t.typname || ':' || t.typtype::text || ':'
         || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                        FROM pg_enum WHERE enumtypid = t.oid), '')
    FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'p:' || p.oid::regprocedure::text || ':' || md5(p.prosrc)
    FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'n:' || nspname || ':' || coalesce(nspacl::text, '') FROM pg_namespace
   WHERE nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%'
  UNION ALL
  SELECT 'x:' || extname || ':' || extversion FROM pg_extension
  UNION ALL
  SELECT 'e:' || evtname || ':' || evtenabled::text FROM pg_event_trigger
  UNION ALL
  SELECT 'u:' || pubname FROM pg_publication
  UNION ALL
  SELECT 'l:' || count(*)::text FROM pg_largeobject_metadata
  UNION ALL
  SELECT 'b:' || coalesce(datacl::text, '') FROM pg_database
   WHERE datname = current_database()
  UNION ALL
  SELECT 'r:' || coalesce(setrole::text, '') || ':' || array_to_string(setconfig, ',')
    FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
   WHERE d.datname = current_database()
  UNION ALL
  SELECT 'd:' || coalesce(defaclrole::text, '') || ':' || defaclobjtype::text || ':'
         || defaclacl::text FROM pg_default_acl
) AS schema_items
"""


@dataclass(frozen=True)
class Snapshot:
    """What a fresh copy of a template holds: its rows, its sequences, its schema."""

    tables: tuple[str, ...]
    rows: dict[str, bytes]
    sequences: str
    fingerprint: str


def take(conn: Any) -> Snapshot:
    """The snapshot of the fresh database ``conn`` is connected to (autocommit)."""
    tables = tuple(
        row[0]
        for row in conn.execute(
            "SELECT format('%I', tablename) FROM pg_tables WHERE schemaname = 'public' "
            "ORDER BY tablename"
        )
    )
    rows: dict[str, bytes] = {}
    for table in tables:
        data = bytearray()
        with conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
            for chunk in copy:
                data += chunk
        if data:
            rows[table] = bytes(data)
    settings = []
    for (name,) in conn.execute(
        "SELECT format('%I', sequencename) FROM pg_sequences WHERE schemaname = 'public' "
        "ORDER BY sequencename"
    ).fetchall():
        last, called = conn.execute(f"SELECT last_value, is_called FROM {name}").fetchone()
        settings.append(f"setval('{name}', {last}, {str(called).lower()})")
    sequences = "SELECT " + ", ".join(settings) if settings else "SELECT 1"
    return Snapshot(tables, rows, sequences, conn.execute(FINGERPRINT).fetchone()[0])


def restore(conn: Any, snapshot: Snapshot) -> bool:
    """Restore the database ``conn`` is connected to (autocommit) to ``snapshot``; False,
    with nothing changed, when its schema is no longer the snapshot's or another
    connection to it would not end.

    The restored rows follow the dead ones in each table; with autovacuum off on the test
    servers nothing reclaims that space during a run, so new rows still come after them,
    in insertion order as on a fresh copy.
    """
    conn.execute(  # each waits up to 5 s for the backend to be gone
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    others = conn.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()[0]
    if others or conn.execute(FINGERPRINT).fetchone()[0] != snapshot.fingerprint:
        return False
    with conn.transaction():
        # append-only tables refuse DELETE through triggers, and foreign keys are
        # triggers too: a replica session fires neither while the rows are replaced
        conn.execute("SET LOCAL session_replication_role = replica")
        for table in snapshot.tables:
            conn.execute(f"DELETE FROM {table}")
        for table, data in snapshot.rows.items():
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                copy.write(data)
        conn.execute(snapshot.sequences)
    return True
