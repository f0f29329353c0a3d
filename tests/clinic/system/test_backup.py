"""Backups taken while the app writes, restores, and what a restore lacks against an anchor."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from audit_key_env import TEST_AUDIT_KEY_FILE
from ketacare.clinic.audit.anchors import write_anchor
from ketacare.clinic.system.backup import BackupRefused, Manifest, backup, restore
from ketacare.infra.db import make_engine
from ketacare.infra.migrate import alembic_config, head_revision

KEY = bytes.fromhex(TEST_AUDIT_KEY_FILE.read_text().strip())


@pytest.fixture
def empty_target(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the same backend, to restore into."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'ketacare.sqlite3'}"
        return
    from conftest import _admin

    server = request.getfixturevalue("postgres")
    name = f"kc_restore_{os.getpid()}_{time.monotonic_ns()}"
    _admin(server.url(), f"CREATE DATABASE {name}")
    yield server.url(name)
    _admin(server.url(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _weight_ids(url: str) -> set[int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = {int(i) for i in conn.execute(text("SELECT id FROM body_measurements")).scalars()}
    engine.dispose()
    return ids


def test_backup_while_the_app_writes_then_restore_keeps_every_acknowledged_write(
    app: Any, client: Any, login_api: Any, settings: Any, tmp_path: Path, empty_target: str
) -> None:
    headers = login_api("nurse")
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer() -> None:  # a nurse recording weights, as fast as the app acknowledges them
        i = 0
        while not stop.is_set():
            r = client.post(
                f"/api/v1/patients/{1 + i % 3}/weights",
                headers=headers,
                json={"weight_kg": 50 + (i % 300) / 10},
            )
            assert r.status_code == 201, r.text
            acknowledged.append(int(r.json()["id"]))
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(acknowledged) < 100:
            time.sleep(0.01)
        before = list(acknowledged)  # acknowledged before the backup began
        folder = backup(
            url=settings.effective_database_url,
            out=tmp_path / "b",
            key=KEY,
            now=app.state.ctx.clock(),
        )
        during = len(acknowledged) - len(before)
        time.sleep(0.2)  # writes go on after the backup
    finally:
        stop.set()
        thread.join()
    manifest = Manifest.read(folder)
    assert during > 0 or settings.effective_database_url.startswith("postgresql")
    assert {p.name for p in folder.iterdir()} == {"manifest.json", manifest.file}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    report = restore(source=folder, url=empty_target, key=KEY, now=app.state.ctx.clock())
    restored = _weight_ids(empty_target)
    seeded = len(_weight_ids(settings.effective_database_url)) - len(acknowledged)
    missing = set(before) - restored
    print(
        f"\n[{empty_target.split(':')[0]}] acknowledged before the backup {len(before)}, "
        f"present after restore {len(set(before) & restored)}; acknowledged while it ran "
        f"{during}; total acknowledged {len(acknowledged)}; in the backup "
        f"{len(restored) - seeded}"
    )
    assert missing == set()
    # the backup is one consistent moment: its rows are exactly the manifest's
    assert len(restored) == manifest.tables["body_measurements"]
    assert report.audit_ok and report.audit_count == manifest.audit_count
    assert report.audit_head == manifest.audit_head
    # one writer, one moment: the backup holds a prefix of the acknowledged writes
    assert set(acknowledged) & restored == set(acknowledged[: len(set(acknowledged) & restored)])


def test_an_older_backup_reports_the_events_it_lacks_against_the_latest_anchor(
    app: Any, client: Any, login_api: Any, settings: Any, tmp_path: Path, empty_target: str
) -> None:
    url = settings.effective_database_url
    folder = backup(url=url, out=tmp_path / "b", key=KEY, now=app.state.ctx.clock())
    manifest = Manifest.read(folder)
    headers = login_api("nurse")
    for pid in (1, 2, 3, 1, 2):  # reads are audited too
        assert client.get(f"/api/v1/patients/{pid}", headers=headers).status_code == 200
    with app.state.ctx.sessions() as session:
        anchor = write_anchor(
            session=session, directory=tmp_path / "anchors", now=app.state.ctx.clock()
        )
    engine = make_engine(url)
    with engine.connect() as conn:  # counted here, straight from the live table
        later = conn.execute(
            text("SELECT count(*) FROM audit_events WHERE id > :i"), {"i": manifest.audit_head_id}
        ).scalar_one()
    engine.dispose()
    assert later >= 6  # the token, five reads

    report = restore(
        source=folder,
        url=empty_target,
        key=KEY,
        now=app.state.ctx.clock(),
        anchors_dir=tmp_path / "anchors",
    )
    assert report.audit_ok and report.audit_count == manifest.audit_count
    assert (report.anchor_at, report.anchor_count) == (anchor.at, anchor.count)
    assert report.missing_events == later
    assert report.anchor_problems == [
        f"the trail holds {manifest.audit_count} events (up to event {manifest.audit_head_id}) "
        f"but the anchor of {anchor.at} saw {anchor.count} (up to event {anchor.head_id}): "
        f"{later} events are missing from its end"
    ]


def _sqlite_at(path: Path, revision: str) -> str:
    from alembic import command

    url = f"sqlite:///{path}"
    engine = make_engine(url)
    config = alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()
    return url


def test_restore_refuses_newer_damaged_or_occupied_and_migrates_an_older_one(
    tmp_path: Path,
) -> None:
    from ketacare.clinic.system.backup import _known_revisions

    now = __import__("datetime").datetime(2026, 3, 2, 9, 0, tzinfo=__import__("datetime").UTC)
    head = head_revision()
    previous = sorted(_known_revisions() - {head})[-1]
    older = backup(
        url=_sqlite_at(tmp_path / "old.sqlite3", previous), out=tmp_path / "b", key=KEY, now=now
    )
    assert Manifest.read(older).schema_revision == previous
    report = restore(source=older, url=f"sqlite:///{tmp_path / 'r1.sqlite3'}", key=KEY, now=now)
    assert (report.revision_before, report.revision_after) == (previous, head)
    with sqlite3.connect(tmp_path / "r1.sqlite3") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (head,)
    assert stat.S_IMODE((tmp_path / "r1.sqlite3").stat().st_mode) == 0o600

    newer_db = tmp_path / "new.sqlite3"
    _sqlite_at(newer_db, head)
    with sqlite3.connect(newer_db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    newer = backup(url=f"sqlite:///{newer_db}", out=tmp_path / "b2", key=KEY, now=now)
    target = tmp_path / "r2.sqlite3"
    with pytest.raises(
        BackupRefused, match=f"schema revision 9999 is newer than this ketacare's {head}"
    ):
        restore(source=newer, url=f"sqlite:///{target}", key=KEY, now=now)
    assert not target.exists()  # nothing written on refusal

    damaged = Manifest.read(older)
    data = older / damaged.file
    blob = bytearray(data.read_bytes())
    blob[5000] ^= 0xFF
    data.write_bytes(bytes(blob))
    with pytest.raises(BackupRefused, match="does not match its manifest's SHA-256"):
        restore(source=older, url=f"sqlite:///{target}", key=KEY, now=now)

    again = backup(
        url=f"sqlite:///{tmp_path / 'old.sqlite3'}", out=tmp_path / "b3", key=KEY, now=now
    )
    with pytest.raises(
        BackupRefused, match="already holds a database: stop the server and pass --replace"
    ):
        restore(source=again, url=f"sqlite:///{tmp_path / 'r1.sqlite3'}", key=KEY, now=now)


def test_cli_backup_and_restore_with_replace(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ketacare.cli import app
    from ketacare.clinic import demo
    from ketacare.infra.db import make_sessionmaker, unit_of_work
    from ketacare.infra.settings import load_settings

    url = _sqlite_at(tmp_path / "var" / "ketacare.sqlite3", "head")
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        demo.seed(
            session=session,
            now=dt.datetime.now(dt.UTC),
            settings=load_settings(database_url=url),
        )
    engine.dispose()
    env = {"KETACARE_VAR_DIR": str(tmp_path / "var"), "KETACARE_DATABASE_URL": ""}
    runner = CliRunner()
    r = runner.invoke(app, ["backup", "--out", str(tmp_path / "b"), "--json"], env=env)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["manifest"]["audit_verified"] is True and doc["manifest"]["tables"]["patients"] > 0
    r = runner.invoke(app, ["restore", doc["folder"]], env=env)
    assert r.exit_code == 1 and "pass --replace" in r.output
    r = runner.invoke(app, ["restore", doc["folder"], "--replace"], env=env)
    assert r.exit_code == 0, r.output
    assert "the database before the restore is kept at" in r.stdout
    kept = list((tmp_path / "var").glob("ketacare.sqlite3.before-restore-*"))
    assert len(kept) == 1 and kept[0].stat().st_size > 0
