"""Installation facts: whether this database holds the demo clinic."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from ketacare.clinic.system.orm import AppMeta


def is_demo(*, session: Session) -> bool:
    """Whether ``ketacare demo`` seeded this database."""
    row = session.get(AppMeta, "demo")
    return row is not None and row.value == "true"


def mark_demo(*, session: Session) -> None:
    """Mark the database as a demo: its server binds to loopback only."""
    row = session.get(AppMeta, "demo")
    if row is None:
        session.add(AppMeta(key="demo", value="true"))
    else:
        row.value = "true"


def ping(*, session: Session) -> bool:
    """Whether the database answers."""
    return session.execute(text("SELECT 1")).scalar() == 1
