"""The keyed audit chain and its anchors: what an owner of the database can no longer hide.

Each attack is done the way someone holding the database would do it (drop the
append-only triggers, then change rows), and checked against what `audit verify`
and the anchors must say.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audit_key_env import TEST_AUDIT_KEY_FILE
from ketacare.clinic.audit import anchors, service
from ketacare.clinic.audit.anchors import AnchorRefused, read_anchors, write_anchor
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.infra.errors import AuditKeyMissing
from ketacare.infra.settings import load_settings

KEY = bytes.fromhex(TEST_AUDIT_KEY_FILE.read_text().strip())
FIELDS = (
    "at",
    "user_id",
    "username",
    "role",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "remote_addr",
    "detail",
    "prev_hash",
)


def _canonical(row: Any) -> bytes:
    """The row's canonical JSON, written out here independently of the service."""
    doc = {k: getattr(row, k) for k in FIELDS}
    doc["at"] = row.at.isoformat(timespec="microseconds")
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def _unprotect(engine: Any) -> None:
    with engine.begin() as conn:
        for event in ("update", "delete"):
            suffix = " ON audit_events" if engine.dialect.name == "postgresql" else ""
            conn.execute(text(f"DROP TRIGGER audit_events_no_{event}{suffix}"))


def _rows(session: Session) -> list[Any]:
    return list(session.execute(select(AuditEvent.__table__).order_by(AuditEvent.id)).all())


def _rechain(engine: Any, *, from_index: int, sign: Any, change: dict[str, Any]) -> None:
    """Change row ``from_index`` and recompute every later hash with ``sign``."""
    with Session(engine) as session, session.begin():
        rows = _rows(session)
        previous = rows[from_index - 1].hash if from_index else "0" * 64
        for i, row in enumerate(rows[from_index:]):
            values = {k: getattr(row, k) for k in FIELDS}
            if i == 0:
                values.update(change)
            values["prev_hash"] = previous
            fake = type("Row", (), values)
            new_hash = sign(_canonical(fake))
            session.execute(
                text(
                    "UPDATE audit_events SET username = :u, prev_hash = :p, hash = :h WHERE id = :i"
                ),
                {"u": values["username"], "p": previous, "h": new_hash, "i": row.id},
            )
            previous = new_hash


def _with_key(payload: bytes) -> str:
    return hmac.new(KEY, payload, hashlib.sha256).hexdigest()


def _guessed_key(payload: bytes) -> str:
    return hmac.new(b"x" * 32, payload, hashlib.sha256).hexdigest()


def _plain(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def test_each_row_is_an_hmac_sha256_under_the_key_file(app: Any) -> None:
    with app.state.ctx.sessions() as session:
        rows = _rows(session)
    assert len(rows) > 50
    for row in rows:
        assert row.hash == _with_key(_canonical(row))
        assert row.hash != _plain(_canonical(row))


def test_a_rechained_rewrite_needs_the_key_and_is_caught_by_an_anchor(
    app: Any, tmp_path: Path
) -> None:
    sessions, engine, clock = app.state.ctx.sessions, app.state.engine, app.state.ctx.clock
    with sessions() as session:
        anchor = write_anchor(session=session, directory=tmp_path, now=clock())
    _unprotect(engine)
    # without the key: rewrite event 10 and recompute the later hashes in plain SHA-256
    _rechain(engine, from_index=10, sign=_plain, change={"username": "mallory"})
    with sessions() as session:
        report = service.verify(session=session)
    assert not report.ok and report.rows == 10
    assert "unkeyed hash after the keyed chain began" in (report.problem or "")
    # ... or with a guessed key: "altered"
    _rechain(engine, from_index=10, sign=_guessed_key, change={"username": "mallory"})
    with sessions() as session:
        report = service.verify(session=session)
    assert not report.ok and "altered" in (report.problem or "")
    # an insider holding the key makes a chain that verifies on its own ...
    _rechain(engine, from_index=10, sign=_with_key, change={"username": "mallory"})
    with sessions() as session:
        assert service.verify(session=session).ok
        report, problems = anchors.verify_against(session=session, log_=read_anchors(tmp_path, KEY))
    # ... but not one that matches the anchor taken before
    assert report.ok
    assert problems == [
        f"event {anchor.head_id} differs from the one the anchor of {anchor.at} saw: "
        "the chain was rewritten after it was anchored"
    ]


def test_tail_truncation_and_a_wiped_table_are_caught_by_an_anchor(
    app: Any, tmp_path: Path
) -> None:
    sessions, engine, clock = app.state.ctx.sessions, app.state.engine, app.state.ctx.clock
    with sessions() as session:
        anchor = write_anchor(session=session, directory=tmp_path, now=clock())
        last_ids = [r.id for r in _rows(session)][-3:]
    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id >= :i"), {"i": last_ids[0]})
    log = read_anchors(tmp_path, KEY)
    with sessions() as session:
        alone = service.verify(session=session)
        report, problems = anchors.verify_against(session=session, log_=log)
    assert alone.ok and alone.rows == anchor.count - 3  # the shorter chain is whole...
    assert problems == [  # ...but 3 events short of the anchor
        f"the trail holds {anchor.count - 3} events (up to event {last_ids[0] - 1}) but the "
        f"anchor of {anchor.at} saw {anchor.count} (up to event {last_ids[-1]}): "
        "3 events are missing from its end"
    ]
    # a new anchor is refused while the trail does not match the last one
    with sessions() as session, pytest.raises(AnchorRefused, match="no longer matches"):
        write_anchor(session=session, directory=tmp_path, now=clock())
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))
    with sessions() as session:
        alone = service.verify(session=session)
        _, problems = anchors.verify_against(session=session, log_=log)
    assert alone.ok and alone.rows == 0
    assert problems == [
        f"the audit trail is empty, but the anchor of {anchor.at} saw {anchor.count} events "
        "(the trail was wiped)"
    ]


def test_anchors_are_signed_chained_and_private(app: Any, tmp_path: Path, client: Any) -> None:
    sessions, clock = app.state.ctx.sessions, app.state.ctx.clock
    with sessions() as session:
        write_anchor(session=session, directory=tmp_path, now=clock())
    client.get("/api/v1/patients/1", headers=_token(client))  # one more event
    with sessions() as session:
        second = write_anchor(session=session, directory=tmp_path, now=clock())
    path = tmp_path / anchors.ANCHOR_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    log = read_anchors(tmp_path, KEY)
    assert log.problems == () and log.latest == second
    assert second.count > log.anchors[0].count and second.prev == log.anchors[0].sig
    # an edited count, a removed first line, another key: each named
    edited = json.loads(lines[1]) | {"count": 1}
    path.write_text(lines[0] + "\n" + json.dumps(edited) + "\n")
    assert "signature does not match" in read_anchors(tmp_path, KEY).problems[0]
    path.write_text(lines[1] + "\n")
    assert "does not follow the line before it" in read_anchors(tmp_path, KEY).problems[0]
    assert "signature" in read_anchors(tmp_path, b"k" * 32).problems[0]


def _token(client: Any) -> dict[str, str]:
    r = client.post(
        "/api/v1/auth/token", data={"username": "nurse", "password": "ketacare-demo-clinic"}
    )
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_rows_from_before_the_key_are_pinned_by_the_first_keyed_row(app: Any) -> None:
    """An installation upgraded from the unkeyed chain: old rows stay as they are."""
    sessions, engine = app.state.ctx.sessions, app.state.engine
    _unprotect(engine)
    _rechain(engine, from_index=0, sign=_plain, change={})  # as the first version wrote them
    with sessions() as session:
        legacy = service.verify(session=session)
    assert legacy.ok and legacy.legacy_rows == legacy.rows > 50
    client_rows = legacy.rows
    with sessions() as session, session.begin():  # the upgraded app appends keyed rows
        service.record(
            session=session,
            actor=service.SYSTEM,
            action="read",
            resource_type="patient",
            at=app.state.ctx.clock(),
        )
    with sessions() as session:
        report = service.verify(session=session)
    assert report.ok and (report.rows, report.legacy_rows) == (client_rows + 1, client_rows)
    # rewriting an old row and recomputing the unkeyed hashes breaks at the first keyed row
    with Session(engine) as session:
        rows = _rows(session)
    with engine.begin() as conn:
        previous = rows[4].hash
        for row in rows[5:client_rows]:
            values = {k: getattr(row, k) for k in FIELDS} | {"prev_hash": previous}
            if row.id == rows[5].id:
                values["username"] = "mallory"
            new = _plain(_canonical(type("Row", (), values)))
            conn.execute(
                text("UPDATE audit_events SET username=:u, prev_hash=:p, hash=:h WHERE id=:i"),
                {"u": values["username"], "p": previous, "h": new, "i": row.id},
            )
            previous = new
        conn.execute(
            text("UPDATE audit_events SET prev_hash=:p WHERE id=:i"),
            {"p": previous, "i": rows[client_rows].id},
        )
    with sessions() as session:
        report = service.verify(session=session)
    assert not report.ok and report.first_broken_id == rows[client_rows].id
    assert "altered" in (report.problem or "")


def test_production_refuses_to_start_without_a_private_key_file(
    tmp_path: Path, settings: Any
) -> None:
    from ketacare.app import create_app

    base = settings.model_dump() | {"var_dir": tmp_path / "var"}
    with pytest.raises(AuditKeyMissing, match="production mode needs an audit key"):
        create_app(load_settings(**(base | {"production": True, "audit_key_file": None})))
    loose = tmp_path / "loose.key"
    loose.write_text("ab" * 32)
    os.chmod(loose, 0o644)
    with pytest.raises(AuditKeyMissing, match=r"readable by others: chmod 600"):
        create_app(load_settings(**(base | {"production": True, "audit_key_file": loose})))
    short = tmp_path / "short.key"
    short.write_text("abcd")
    with pytest.raises(AuditKeyMissing, match="at least 64 hex characters"):
        load_settings(**(base | {"audit_key_file": short})).effective_audit_key()
    # outside production a key is generated once, readable by its owner only
    generated = load_settings(**(base | {"audit_key_file": None})).effective_audit_key()
    path = tmp_path / "var" / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(generated) == 32
    assert load_settings(**(base | {"audit_key_file": None})).effective_audit_key() == generated


def test_the_server_anchors_on_its_schedule(settings: Any, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from ketacare.app import create_app

    folder = tmp_path / "anchors"
    app = create_app(settings.model_copy(update={"audit_anchor_dir": folder}))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        for _ in range(100):
            if (folder / anchors.ANCHOR_FILE).exists():
                break
            time.sleep(0.05)
    log = read_anchors(folder, KEY)
    assert log.problems == () and len(log.anchors) == 1 and log.latest.count > 50
    app.state.engine.dispose()


def test_cli_verify_anchor_and_a_truncated_tail(tmp_path: Path) -> None:
    from ketacare.infra.db import make_engine

    env = {"KETACARE_VAR_DIR": str(tmp_path), "KETACARE_DATABASE_URL": ""}
    run_cli("db", "upgrade", env=env)
    run_cli("demo", "--no-history", env=env)
    r = run_cli("audit", "verify", env=env)
    engine = make_engine(f"sqlite:///{tmp_path / 'ketacare.sqlite3'}")
    with Session(engine) as session:
        rows = _rows(session)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == [
        f"audit trail intact: {len(rows)} events, every link verified",
        f"head {rows[-1].hash} (event {rows[-1].id})",
    ]
    folder = tmp_path / "anchors"
    r = run_cli("audit", "anchor", "--to", str(folder), env=env)
    assert r.returncode == 0 and f"anchored {len(rows)} events" in r.stdout
    _unprotect(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id > :i"), {"i": rows[-3].id})
    engine.dispose()
    r = run_cli("audit", "verify", env=env)
    assert r.returncode == 0  # the chain alone cannot tell
    r = run_cli("audit", "verify", "--anchors", str(folder), "--json", env=env)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["rows"] == len(rows) - 2
    assert doc["anchors"]["problems"][0].endswith("2 events are missing from its end")
    r = run_cli("audit", "anchor", "--to", str(folder), env=env)
    assert r.returncode == 1 and "no anchor written" in r.stderr
    r = run_cli("audit", "keygen", "--out", str(tmp_path / "k" / "audit.key"), env=env)
    assert r.returncode == 0
    assert stat.S_IMODE((tmp_path / "k" / "audit.key").stat().st_mode) == 0o600
    r = run_cli("audit", "keygen", "--out", str(tmp_path / "k" / "audit.key"), env=env)
    assert r.returncode == 2 and "never overwritten" in r.stderr


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ketacare.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )
