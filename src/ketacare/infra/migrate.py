"""Schema migrations (Alembic) and the check that refuses a schema that is behind."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

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
    """The newest migration in the code."""
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
