"""Appends in one transaction reuse the head they wrote, and nothing else does.

The first append of a transaction takes the chain's lock and reads the head; the next
appends of the same transaction chain onto the row it wrote without reading again. A
savepoint rolled back, or a new transaction, reads the head again: the chain stays whole
however the transactions end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select

from ketacare.clinic.audit import service as audit
from ketacare.clinic.audit.orm import AuditEvent

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ACTOR = audit.Actor(user_id=None, username="tester", role="system")


def _append(session: Any, n: int) -> None:
    audit.record(
        session=session, actor=ACTOR, action="read", resource_type="probe", resource_id=n, at=AT
    )


def _probes(session: Any) -> list[tuple[str, str, str]]:
    rows = session.execute(
        select(AuditEvent.resource_id, AuditEvent.prev_hash, AuditEvent.hash)
        .where(AuditEvent.resource_type == "probe")
        .order_by(AuditEvent.id)
    ).all()
    return [tuple(r) for r in rows]


class Statements:
    """The SQL a block of code sends (to count the head lookups)."""

    def __init__(self, engine: Any) -> None:
        self.seen: list[str] = []
        self.engine = engine

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._keep)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._keep)

    def _keep(self, _c: Any, _cur: Any, statement: str, *_: Any) -> None:
        self.seen.append(" ".join(statement.split()))

    def count(self, fragment: str) -> int:
        return sum(fragment in s for s in self.seen)


HEAD_LOOKUP = "SELECT audit_events.hash FROM audit_events ORDER BY audit_events.id DESC"


def test_appends_in_one_transaction_read_the_head_once_and_chain(app: Any) -> None:
    with Statements(app.state.engine) as sql, app.state.ctx.sessions() as session:
        head = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
        before = sql.count(HEAD_LOOKUP)
        for n in range(3):
            _append(session, n)
        session.commit()
        assert sql.count(HEAD_LOOKUP) - before == 1
        if app.state.engine.dialect.name == "postgresql":
            assert sql.count("pg_advisory_xact_lock") == 1
    with app.state.ctx.sessions() as session:
        rows = _probes(session)
        assert [r[0] for r in rows] == ["0", "1", "2"]
        assert rows[0][1] == head  # the first chains onto the stored head
        assert rows[1][1] == rows[0][2] and rows[2][1] == rows[1][2]
        assert audit.verify(session=session).ok


def test_a_rolled_back_savepoint_does_not_leave_a_stale_head(app: Any) -> None:
    with app.state.ctx.sessions() as session:
        _append(session, 1)
        savepoint = session.begin_nested()
        _append(session, 2)  # rolled back below: the head is row 1 again
        savepoint.rollback()
        _append(session, 3)
        with session.begin_nested():
            _append(session, 4)  # kept: a released savepoint's row stays the head
        _append(session, 5)
        session.commit()
    with app.state.ctx.sessions() as session:
        rows = _probes(session)
        assert [r[0] for r in rows] == ["1", "3", "4", "5"]
        assert rows[1][1] == rows[0][2]
        assert rows[2][1] == rows[1][2] and rows[3][1] == rows[2][2]
        assert audit.verify(session=session).ok


def test_a_new_transaction_reads_the_head_another_session_moved(app: Any) -> None:
    sessions = app.state.ctx.sessions
    with sessions() as mine, sessions() as other:
        _append(mine, 1)
        mine.commit()
        _append(other, 2)  # another writer appends between two transactions of mine
        other.commit()
        _append(mine, 3)
        mine.rollback()  # a rolled-back transaction leaves nothing to chain onto
        _append(mine, 4)
        mine.commit()
    with sessions() as session:
        rows = _probes(session)
        assert [r[0] for r in rows] == ["1", "2", "4"]
        assert rows[1][1] == rows[0][2] and rows[2][1] == rows[1][2]
        assert audit.verify(session=session).ok
