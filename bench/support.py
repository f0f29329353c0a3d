"""What the benchmarks share: loopback ports and throw-away PostgreSQL databases.

Imported by the scripts beside it (``python bench/NAME.py`` puts this folder first on
the import path). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def loopback_postgres(url: str) -> Any:
    """``url`` as a psycopg URL, refused unless it is PostgreSQL on 127.0.0.1."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise SystemExit(f"--postgres-url must be a postgresql URL, not {parsed.drivername}")
    if parsed.host != HOST:
        raise SystemExit(f"--postgres-url must point at {HOST} (got host {parsed.host!r})")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@contextmanager
def postgres_database(
    server_url: str, *, prepare: Callable[[str], None] | None = None
) -> Iterator[str]:
    """A new database on the server (``prepare(url)`` run on it first); dropped afterwards."""
    from sqlalchemy import create_engine, text

    base = loopback_postgres(server_url)
    name = f"kc_bench_{secrets.token_hex(4)}"
    admin = create_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = base.set(database=name).render_as_string(hide_password=False)
            if prepare is not None:
                prepare(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
