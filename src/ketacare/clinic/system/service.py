"""Installation facts: whether this database holds the demo clinic."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from ketacare.clinic.system.orm import AppMeta


def is_demo(*, session: Session) -> bool:
    """Whether ``ketacare demo`` seeded this database."""
    row = session.get(AppMeta, "demo")
    return row is not None and row.value == "true"


def mark_demo(*, session: Session, example_policy: bool = False) -> None:
    """Mark the database as a demo: its server binds to loopback only.

    ``example_policy``: the demo's clinical history was made under the demo's EXAMPLE
    site policy (:mod:`ketacare.clinic.demo_policy`), which its server and commands then
    apply wherever the operator set no policy of their own.
    """
    for key, wanted in (("demo", True), ("demo_example_policy", example_policy)):
        if not wanted:
            continue
        row = session.get(AppMeta, key)
        if row is None:
            session.add(AppMeta(key=key, value="true"))
        else:
            row.value = "true"


def uses_example_policy(*, session: Session) -> bool:
    """Whether this demo database runs under the demo's EXAMPLE site policy."""
    row = session.get(AppMeta, "demo_example_policy")
    return row is not None and row.value == "true" and is_demo(session=session)


def ping(*, session: Session) -> bool:
    """Whether the database answers."""
    return session.execute(text("SELECT 1")).scalar() == 1
