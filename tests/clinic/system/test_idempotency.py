"""Idempotency-Key on API writes: a replay gets the first answer and writes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ketacare.clinic.patients.orm import BodyMeasurement
from ketacare.clinic.sessions.orm import SessionEvent
from ketacare.clinic.system.orm import IdempotencyKey
from plan_helpers import MONITORING_ORDER, _signed

WEIGHTS = "/api/v1/patients/3/weights"


def _count(app: Any, model: Any, *where: Any) -> int:
    with app.state.ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _weights(app: Any) -> int:
    return _count(app, BodyMeasurement, BodyMeasurement.patient_id == 3)


def test_a_replayed_weight_is_stored_once_and_answered_as_the_first_time(
    app: Any, client: Any, login_api: Any
) -> None:
    nurse = {**login_api("nurse"), "Idempotency-Key": "7b0c1a52-weight-1"}
    before = _weights(app)
    first = client.post(WEIGHTS, headers=nurse, json={"weight_kg": 61.5})
    assert first.status_code == 201, first.text
    again = client.post(WEIGHTS, headers=nurse, json={"weight_kg": 61.5})
    assert again.status_code == 201
    assert again.json() == first.json() and again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert _weights(app) == before + 1
    (row,) = _rows(app)
    assert row.route == "POST /api/v1/patients/3/weights" and row.status == 201
    # without a key, the same body is a new measurement
    plain = client.post(WEIGHTS, headers=login_api("nurse"), json={"weight_kg": 61.5})
    assert plain.status_code == 201 and plain.json()["id"] != first.json()["id"]
    assert _weights(app) == before + 2


def _rows(app: Any) -> list[IdempotencyKey]:
    with app.state.ctx.sessions() as session:
        return list(session.scalars(select(IdempotencyKey)))


def test_a_key_reused_with_another_body_or_route_is_refused_and_stores_nothing(
    app: Any, client: Any, login_api: Any
) -> None:
    nurse = {**login_api("nurse"), "Idempotency-Key": "key-2"}
    assert client.post(WEIGHTS, headers=nurse, json={"weight_kg": 70}).status_code == 201
    stored = _weights(app)
    other = client.post(WEIGHTS, headers=nurse, json={"weight_kg": 71})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert "first sent with a different body" in other.json()["detail"]
    elsewhere = client.post("/api/v1/patients/4/weights", headers=nurse, json={"weight_kg": 70})
    assert elsewhere.status_code == 422
    assert "first used for POST /api/v1/patients/3/weights" in elsewhere.json()["detail"]
    assert _weights(app) == stored
    assert len(_rows(app)) == 1


def test_keys_belong_to_one_account_and_a_refused_write_keeps_no_key(
    app: Any, client: Any, login_api: Any
) -> None:
    before = _weights(app)
    nurse = {**login_api("nurse"), "Idempotency-Key": "shared"}
    physician = {**login_api("physician"), "Idempotency-Key": "shared"}
    assert client.post(WEIGHTS, headers=nurse, json={"weight_kg": 60}).status_code == 201
    assert client.post(WEIGHTS, headers=physician, json={"weight_kg": 60}).status_code == 201
    assert _weights(app) == before + 2
    # refused (out of range): the key is not kept, so a corrected retry is a new request
    bad = {**login_api("nurse"), "Idempotency-Key": "bad-then-good"}
    assert client.post(WEIGHTS, headers=bad, json={"weight_kg": 5000}).status_code == 422
    assert len(_rows(app)) == 2
    assert client.post(WEIGHTS, headers=bad, json={"weight_kg": 62}).status_code == 201
    assert _weights(app) == before + 3


def test_a_malformed_key_is_refused_before_anything_runs(
    app: Any, client: Any, login_api: Any
) -> None:
    before = _weights(app)
    for key in ("x" * 201, "two words"):
        r = client.post(
            WEIGHTS, headers={**login_api("nurse"), "Idempotency-Key": key}, json={"weight_kg": 60}
        )
        assert r.status_code == 422 and "Idempotency-Key must be" in r.json()["detail"]
    assert _weights(app) == before and _rows(app) == []


def test_a_replayed_session_event_is_charted_once(
    app: Any, client: Any, clinic: dict[str, Any]
) -> None:
    """The chair's one-hop vitals route takes the key too."""
    plan = _signed(client, clinic, order=MONITORING_ORDER)
    nurse = clinic["team"]["nurse"]
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sessions", headers=nurse, json={"session_number": 1}
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    seq = client.get(f"/api/v1/sessions/{sid}", headers=nurse).json()["last_seq"]
    body = {"expected_seq": seq, "event": {"kind": "check_in"}}
    keyed = {**nurse, "Idempotency-Key": "check-in-1"}
    first = client.post(f"/api/v1/sessions/{sid}/events", headers=keyed, json=body)
    assert first.status_code == 201, first.text
    charted = _count(app, SessionEvent, SessionEvent.session_id == sid)
    again = client.post(f"/api/v1/sessions/{sid}/events", headers=keyed, json=body)
    assert again.status_code == 201 and again.json() == first.json()
    assert _count(app, SessionEvent, SessionEvent.session_id == sid) == charted
    # without the key, the retry is stale (the sequence moved): the key is what saves it
    stale = client.post(f"/api/v1/sessions/{sid}/events", headers=nurse, json=body)
    assert stale.status_code == 409


def test_a_key_is_kept_for_the_configured_hours_then_free_and_purged(
    app: Any, client: Any, login_api: Any, clock: Any
) -> None:
    from datetime import timedelta

    from ketacare.clinic.system import idempotency as keys

    keep = app.state.ctx.settings.idempotency_keep_hours
    assert keep == 24  # the default
    nurse = {**login_api("nurse"), "Idempotency-Key": "kept-for-a-day"}
    before = _weights(app)
    first = client.post(WEIGHTS, headers=nurse, json={"weight_kg": 61.5})
    assert first.status_code == 201, first.text
    # 23 h 59 min later: still a replay, nothing written
    clock.now += timedelta(hours=keep) - timedelta(minutes=1)
    nurse = {**login_api("nurse"), "Idempotency-Key": "kept-for-a-day"}
    again = client.post(WEIGHTS, headers=nurse, json={"weight_kg": 61.5})
    assert again.headers.get("idempotent-replayed") == "true" and _weights(app) == before + 1
    # past the hours kept the key is free again: a new request, a new measurement,
    # the expired row replaced by the new one
    clock.now += timedelta(minutes=2)
    nurse = {**login_api("nurse"), "Idempotency-Key": "kept-for-a-day"}
    later = client.post(WEIGHTS, headers=nurse, json={"weight_kg": 61.5})
    assert later.status_code == 201 and "idempotent-replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"] and _weights(app) == before + 2
    (row,) = _rows(app)
    assert row.created_at == clock.now
    # the housekeeping removes what is older than the hours kept, and only that
    other = {**login_api("nurse"), "Idempotency-Key": "another-key"}
    assert client.post(WEIGHTS, headers=other, json={"weight_kg": 62.0}).status_code == 201
    with app.state.ctx.sessions() as session, session.begin():
        removed = keys.purge(
            session=session, now=clock.now + timedelta(hours=keep), keep=timedelta(hours=keep)
        )
    assert removed == 0
    with app.state.ctx.sessions() as session, session.begin():
        removed = keys.purge(
            session=session,
            now=clock.now + timedelta(hours=keep, seconds=1),
            keep=timedelta(hours=keep),
        )
    assert removed == 2 and _rows(app) == []
    assert _weights(app) == before + 3  # the measurements themselves are untouched


def test_the_server_removes_expired_keys_when_it_starts(
    settings: Any, clock: Any, client: Any, login_api: Any, app: Any
) -> None:
    import time
    from datetime import timedelta

    from fastapi.testclient import TestClient

    from ketacare.app import create_app

    nurse = {**login_api("nurse"), "Idempotency-Key": "old-key"}
    assert client.post(WEIGHTS, headers=nurse, json={"weight_kg": 61.5}).status_code == 201
    assert len(_rows(app)) == 1
    # the same database served a day and a minute later: the key has expired
    later = create_app(settings, clock=lambda: clock.now + timedelta(hours=24, minutes=1))
    with TestClient(later):
        for _ in range(100):
            if not _rows(later):
                break
            time.sleep(0.05)
    assert _rows(later) == []
    later.state.engine.dispose()
