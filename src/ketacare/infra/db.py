"""Database engine, declarative base and unit of work.

SQLite is the embedded default (WAL, foreign keys enforced, write transactions
serialised with ``BEGIN IMMEDIATE`` so the audit chain never forks);
PostgreSQL is used when ``KETACARE_DATABASE_URL`` names one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from ketacare.infra.errors import NotFound

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every table; each domain's ``orm.py`` owns its tables."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    Naive datetimes are refused: a clinical timestamp without a zone is a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for ``url`` with the pragmas ketacare relies on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(Path(path))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def _create_private(path: Path) -> None:
    """Create a new database file readable by its owner only (SQLite gives its WAL and
    shared-memory files the same mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Every request that touches patient data also appends to the audit chain,
        # so take the write lock up front: no stale snapshot, no forked chain.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(
    engine: Engine, *, info: dict[str, object] | None = None
) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (handy for rendering).

    ``info`` is copied into every session's ``Session.info`` (e.g. the audit key).
    """
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True, info=info)


Row = TypeVar("Row")


def existing(session: Session, model: type[Row], key: int, what: str) -> Row:
    """The row of ``model`` with primary key ``key``, or NotFound naming it.

    One message for every record a request names and the database does not hold
    ("plan 7 does not exist"), whichever domain asks.
    """
    row = session.get(model, key)
    if row is None:
        raise NotFound(f"{what} {key} does not exist")
    return row


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


#: What a driver says, and what it means for the operator (first match wins).
_FAILURES = (
    (
        ("readonly database", "read-only transaction", "read only transaction", "read-only file"),
        "the database is read-only: ketacare cannot record anything (check the file's or the "
        "server's write permission, or a standby server)",
    ),
    (
        ("disk is full", "no space left", "could not extend file", "disk full"),
        "the disk holding the database is full: nothing can be recorded until space is freed",
    ),
    (
        ("database is locked",),
        "the database stayed locked by another writer for too long: try again",
    ),
    (
        (
            "connection refused",
            "could not connect",
            "connection failed",
            "server closed the connection",
            "terminating connection",
            "connection is closed",
            "unable to open database file",
            "the database system is shutting down",
            "the database system is starting up",
            "no such host",
            "timeout expired",
            "consuming input failed",
        ),
        "the database cannot be reached: is the database server running?",
    ),
)


def database_failure(exc: BaseException) -> str | None:
    """What an operator should know about a driver error that is not the request's fault
    (database down, read-only, disk full), or None for any other error."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    text_ = str(exc.orig if exc.orig is not None else exc).lower()
    for needles, meaning in _FAILURES:
        if any(needle in text_ for needle in needles):
            return meaning
    if exc.connection_invalidated:
        return "the database connection was lost: is the database server running?"
    return None


def probe(engine: Engine) -> str | None:
    """A real read and write, rolled back: None when both work, else what is wrong.

    Writes a row into ``app_meta`` (a table every schema has) and rolls it back.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as conn:
            with conn.begin() as tx:
                conn.execute(text("SELECT count(*) FROM alembic_version")).scalar()
                conn.execute(
                    text("INSERT INTO app_meta (key, value) VALUES ('ready-probe', 'probe')")
                )
                tx.rollback()
    except DBAPIError as exc:
        return database_failure(exc) or f"the database refused a write: {_first_line(exc)}"
    return None


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]
