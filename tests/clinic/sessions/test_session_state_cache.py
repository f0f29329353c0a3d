"""The per-process cache of replayed session states never shows what was not committed.

A write moves the cached state on by one entry instead of replaying the log; these tests
check the cache against the ways it could go wrong: another process writing the same
session, a transaction rolled back after its write, and two databases in one process.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ketacare.clinic.audit import service as audit
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.sessions import cache, service
from ketacare.core.sessions import replay
from ketacare.infra.db import make_engine, make_sessionmaker
from plan_helpers import _signed

NURSE = audit.Actor(user_id=None, username="nurse-elsewhere", role="nurse")


@pytest.fixture
def opened(client: Any, clinic: dict[str, Any]) -> dict[str, Any]:
    plan = _signed(client, clinic)
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sessions",
        headers=clinic["team"]["nurse"],
        json={"session_number": 1},
    )
    assert r.status_code == 201, r.text
    return {**clinic, "sid": r.json()["id"], "session_plan": plan["id"]}


def _post(client: Any, opened: dict[str, Any], event: dict[str, Any], seq: int) -> Any:
    return client.post(
        f"/api/v1/sessions/{opened['sid']}/events",
        headers=opened["team"]["nurse"],
        json={"expected_seq": seq, "event": event},
    )


def _read(client: Any, opened: dict[str, Any]) -> dict[str, Any]:
    r = client.get(f"/api/v1/sessions/{opened['sid']}", headers=opened["team"]["nurse"])
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _write_elsewhere(app: Any, opened: dict[str, Any], data: dict[str, Any], at: Any) -> None:
    """Entry 3, written by a second server process: its own engine, hence its own cache."""
    engine = make_engine(app.state.ctx.settings.database_url)
    try:
        with make_sessionmaker(engine).begin() as other:
            service.record(
                session=other,
                actor=NURSE,
                session_id=opened["sid"],
                data=data,
                expected_seq=2,
                now=at,
            )
    finally:
        engine.dispose()


def test_entries_written_by_another_process_are_read_and_applied(
    app: Any, client: Any, opened: dict[str, Any], clock: Any
) -> None:
    assert _post(client, opened, {"kind": "check_in"}, 1).status_code == 201
    _write_elsewhere(app, opened, {"kind": "vitals", "spo2_pct": 97, "hr_per_min": 80}, at=clock())
    # this process still caches the state at entry 2: a write naming 2 is stale...
    stale = _post(client, opened, {"kind": "vitals", "spo2_pct": 96}, 2)
    assert stale.status_code == 409, stale.text
    # ...and one naming 3 lands on top of the other process's entry
    r = _post(client, opened, {"kind": "vitals", "spo2_pct": 95}, 3)
    assert r.status_code == 201, r.text
    seen = _read(client, opened)
    assert seen["last_seq"] == 4
    assert [e["kind"] for e in seen["events"]] == ["scheduled", "check_in", "vitals", "vitals"]
    assert [e.get("spo2_pct") for e in seen["events"][2:]] == [97, 95]
    assert seen["events"][2]["by"] == "nurse-elsewhere"


def test_a_rolled_back_write_never_reaches_the_cache(
    app: Any, client: Any, opened: dict[str, Any], clock: Any
) -> None:
    assert _post(client, opened, {"kind": "check_in"}, 1).status_code == 201
    factory = app.state.ctx.sessions
    with factory() as s:
        service.record(
            session=s,
            actor=NURSE,
            session_id=opened["sid"],
            data={"kind": "vitals", "spo2_pct": 91},
            expected_seq=2,
            now=clock(),
        )
        s.rollback()  # e.g. a later step of the request failed
    clock.now += timedelta(minutes=1)
    # entry 3 is still free; another process writes it, and its entry is what is shown
    # (a cache that kept the rolled-back state would now match the row's sequence number)
    _write_elsewhere(app, opened, {"kind": "vitals", "spo2_pct": 99}, at=clock())
    seen = _read(client, opened)
    assert seen["last_seq"] == 3
    assert seen["events"][2]["spo2_pct"] == 99
    # and the cached state is the replay of the stored log, entry for entry
    with factory() as s:
        cached = service.state_of(session=s, session_id=opened["sid"])
        fresh = replay(cache.events_of(session=s, session_id=opened["sid"]))
        assert cached == fresh


def test_the_board_is_one_audited_read(
    app: Any, client: Any, opened: dict[str, Any], clock: Any
) -> None:
    r = client.get("/api/v1/sessions/board", headers=opened["team"]["nurse"])
    assert r.status_code == 200, r.text
    assert [row["session_id"] for row in r.json()] == [opened["sid"]]
    with app.state.ctx.sessions() as s:
        row = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert (row.action, row.resource_type, row.username) == ("read", "board", "nurse")
        assert row.detail == {"sessions": [opened["sid"]], "patients": [opened["pid"]]}


def test_two_writers_at_the_same_moment_one_lands_the_other_is_refused(
    app: Any, client: Any, opened: dict[str, Any], clock: Any
) -> None:
    """Both saw entry 2; the second waits on the first and is refused once it commits."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers before they read (BEGIN IMMEDIATE)")
    import threading

    from ketacare.core.sessions import StaleSession

    assert _post(client, opened, {"kind": "check_in"}, 1).status_code == 201
    engine = make_engine(app.state.ctx.settings.database_url)
    outcome: dict[str, Any] = {}
    try:
        first = make_sessionmaker(engine)()
        second = make_sessionmaker(engine)()
        # both read the session at entry 2 before either writes
        service.get_session(session=first, session_id=opened["sid"])
        service.get_session(session=second, session_id=opened["sid"])
        service.record(
            session=first,
            actor=NURSE,
            session_id=opened["sid"],
            data={"kind": "vitals", "spo2_pct": 97},
            expected_seq=2,
            now=clock(),
        )

        def write_second() -> None:
            try:
                service.record(
                    session=second,
                    actor=NURSE,
                    session_id=opened["sid"],
                    data={"kind": "vitals", "spo2_pct": 88},
                    expected_seq=2,
                    now=clock(),
                )
                second.commit()
                outcome["second"] = "stored"
            except StaleSession as exc:
                second.rollback()
                outcome["second"] = exc
            finally:
                second.close()

        writer = threading.Thread(target=write_second)
        writer.start()
        writer.join(timeout=1.0)
        assert writer.is_alive(), "the second writer should wait for the first"
        first.commit()
        first.close()
        writer.join(timeout=30)
    finally:
        engine.dispose()
    assert isinstance(outcome["second"], StaleSession), outcome
    assert "you saw entry 2, it now has entry 3 (vitals by nurse-elsewhere" in str(
        outcome["second"]
    )
    seen = _read(client, opened)
    assert seen["last_seq"] == 3
    assert [e.get("spo2_pct") for e in seen["events"][2:]] == [97]


def test_a_write_on_the_cached_state_claims_the_row_without_reading_it(
    app: Any, client: Any, opened: dict[str, Any]
) -> None:
    """The chair's next vitals, on the state this process cached: no read of the row."""
    from sqlalchemy import event as sa_event

    assert _post(client, opened, {"kind": "check_in"}, 1).status_code == 201
    seen: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()).lower())

    engine = app.state.engine
    sa_event.listen(engine, "before_cursor_execute", log)
    try:
        r = _post(client, opened, {"kind": "vitals", "spo2_pct": 97}, 2)
    finally:
        sa_event.remove(engine, "before_cursor_execute", log)
    assert r.status_code == 201, r.text
    assert r.json()["last_seq"] == 3 and r.json()["plan_id"] == opened["session_plan"]
    on_sessions = [s for s in seen if "dosing_sessions" in s]
    assert len(on_sessions) == 1 and on_sessions[0].startswith("update dosing_sessions")
    assert "returning" in on_sessions[0]


def test_a_refusal_on_an_outdated_cached_state_is_not_trusted(
    app: Any, client: Any, opened: dict[str, Any], clock: Any
) -> None:
    """Another process moved the session on: the writer is told it is stale, not that
    its entry is illegal in a state the session has left."""
    assert _post(client, opened, {"kind": "check_in"}, 1).status_code == 201
    _write_elsewhere(app, opened, {"kind": "vitals", "spo2_pct": 97}, at=clock())
    # this process cached entry 2 (checked in), where a discharge is illegal
    r = _post(client, opened, {"kind": "discharge", "instructions": "no driving for 24 h"}, 2)
    assert r.status_code == 409, r.text
    assert "you saw entry 2, it now has entry 3 (vitals by nurse-elsewhere" in r.json()["detail"]


def test_many_states_at_once_equal_each_replayed_from_its_log(
    app: Any, client: Any, opened: dict[str, Any], clock: Any
) -> None:
    """``states_of`` gives each session the state its whole log replays to, whether the
    cache holds it current, holds an older state (entries another process wrote since),
    or holds nothing; an unknown id is refused."""
    from ketacare.clinic.sessions.orm import SessionEvent
    from ketacare.core.sessions import event_from_dict
    from ketacare.infra.errors import NotFound

    nurse = opened["team"]["nurse"]
    assert _post(client, opened, {"kind": "check_in"}, 1).status_code == 201
    second = client.post(
        f"/api/v1/plans/{opened['session_plan']}/sessions",
        headers=nurse,
        json={"session_number": 2, "off_schedule_reason": "two chairs in one test"},
    )
    assert second.status_code == 201, second.text
    sid, other = opened["sid"], second.json()["id"]
    # the first is cached at entry 2 while another process writes entry 3
    _write_elsewhere(app, opened, {"kind": "vitals", "spo2_pct": 97, "hr_per_min": 80}, at=clock())

    def replayed(session: Any, session_id: int) -> Any:
        rows = session.scalars(
            select(SessionEvent.data)
            .where(SessionEvent.session_id == session_id)
            .order_by(SessionEvent.seq)
        )
        return replay(tuple(event_from_dict(d) for d in rows))

    with app.state.ctx.sessions() as session:
        assert cache.cache_for(session).get(sid).last_seq == 2  # older than the log
        cache.cache_for(session)._states.pop(other, None)  # noqa: SLF001  (not cached)
        states = service.states_of(session=session, session_ids=[other, sid])
        assert states == {sid: replayed(session, sid), other: replayed(session, other)}
        assert states[sid].last_seq == 3 and states[sid].state == "pre_dose_checks"
        assert states[other].last_seq == 1
        with pytest.raises(NotFound, match="session 999999 does not exist"):
            service.states_of(session=session, session_ids=[sid, 999999])
