"""Schema migrations (Alembic) and the check that refuses a schema that is behind."""

from __future__ import annotations

import os
from functools import cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from ketacare.infra.errors import SchemaBehind
from ketacare.infra.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at ketacare's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration in the code.

    Reading it loads every migration script (about 0.1 s), and the app asks at each start;
    the answer is kept for as long as the scripts' folder lists the same files with the
    same modification times.
    """
    versions = MIGRATIONS_DIR / "versions"
    scripts = (e for e in os.scandir(versions) if e.name.endswith(".py"))
    listing = tuple(sorted((e.name, e.stat().st_mtime_ns) for e in scripts))
    return _head_of(listing)


@cache
def _head_of(listing: tuple[tuple[str, int], ...]) -> str:
    del listing  # the key only: what the folder held when the head was read
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the database to the newest schema; returns (before, after)."""
    before = current_revision(engine)
    config = alembic_config(str(engine.url))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return before, head_revision()


def ensure_current(engine: Engine) -> None:
    """Refuse to run on a database whose schema is behind the code."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaBehind(
            f"the database schema is at {current or 'empty'} but this version of ketacare "
            f"needs {head}: run `ketacare db upgrade` (make run does it for you)"
        )


def app_role(app_url: str, owner_url: str) -> str | None:
    """The PostgreSQL role the app connects as, when it is not the owner that migrates."""
    if not owner_url or not app_url.startswith("postgresql"):
        return None
    app_user, owner_user = make_url(app_url).username, make_url(owner_url).username
    return app_user if app_user and app_user != owner_user else None


def grant_app_role(engine: Engine, *, role: str, append_only: tuple[str, ...]) -> None:
    """Let ``role`` read and write the schema's tables, but only read and insert
    ``append_only`` ones, and only read ``alembic_version``; run as the owner.

    Not being the owner, the role cannot alter, disable or drop the triggers that
    keep the append-only tables so, nor truncate them.
    """
    quoted = engine.dialect.identifier_preparer.quote
    who = quoted(role)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {who}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {who}",
    ]
    statements += [
        f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {quoted(t)} FROM {who}"
        for t in append_only
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
