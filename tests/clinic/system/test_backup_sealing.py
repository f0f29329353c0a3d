"""Backups sealed with a key kept outside the database: restored only with that key."""

from __future__ import annotations

import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from audit_key_env import TEST_AUDIT_KEY_FILE
from ketacare.clinic.system.backup import BackupRefused, Manifest, backup, restore
from ketacare.clinic.system.sealing import CHUNK, SealBroken, open_sealed, seal
from ketacare.infra.db import make_engine
from server_process import cli, server_env

KEY = bytes.fromhex(TEST_AUDIT_KEY_FILE.read_text().strip())
BACKUP_KEY = secrets.token_bytes(32)


@pytest.fixture
def empty_target(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the same backend, to restore into."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'ketacare.sqlite3'}"
        return
    from conftest import _admin

    server = request.getfixturevalue("postgres")
    name = f"kc_sealed_{os.getpid()}_{time.monotonic_ns()}"
    _admin(server.url(), f"CREATE DATABASE {name}")
    yield server.url(name)
    _admin(server.url(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _weights(url: str) -> set[tuple[int, float]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, weight_kg FROM body_measurements")).all()
    engine.dispose()
    return {(int(i), float(w)) for i, w in rows}


def _empty(url: str) -> bool:
    if url.startswith("sqlite"):
        return not Path(url.removeprefix("sqlite:///")).exists()
    engine = make_engine(url)
    with engine.connect() as conn:
        tables = conn.execute(
            text("SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")
        ).scalar_one()
    engine.dispose()
    return tables == 0


def test_a_sealed_backup_hides_its_data_and_restores_only_with_its_key(
    app: Any, client: Any, login_api: Any, settings: Any, tmp_path: Path, empty_target: str
) -> None:
    nurse = login_api("nurse")
    r = client.post("/api/v1/patients/2/weights", headers=nurse, json={"weight_kg": 77.7})
    assert r.status_code == 201
    url = settings.effective_database_url
    folder = backup(
        url=url, out=tmp_path / "b", key=KEY, now=app.state.ctx.clock(), backup_key=BACKUP_KEY
    )
    manifest = Manifest.read(folder)
    assert manifest.sealed and manifest.file.endswith(".sealed") and manifest.plain_sha256
    assert {p.name for p in folder.iterdir()} == {"manifest.json", manifest.file}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    sealed = (folder / manifest.file).read_bytes()
    for plain in (b"SQLite format 3", b"PGDMP", b"body_measurements", b"Amsterdam"):
        assert plain not in sealed

    # without the key, or with another, nothing is restored
    with pytest.raises(BackupRefused, match="is sealed: set KETACARE_BACKUP_KEY_FILE"):
        restore(source=folder, url=empty_target, key=KEY, now=app.state.ctx.clock())
    with pytest.raises(BackupRefused, match="cannot be opened with this backup key"):
        restore(
            source=folder,
            url=empty_target,
            key=KEY,
            now=app.state.ctx.clock(),
            backup_key=secrets.token_bytes(32),
        )
    assert _empty(empty_target)

    report = restore(
        source=folder, url=empty_target, key=KEY, now=app.state.ctx.clock(), backup_key=BACKUP_KEY
    )
    assert report.audit_ok and report.audit_count == manifest.audit_count
    assert _weights(empty_target) == _weights(url)
    assert (int(r.json()["id"]), 77.7) in _weights(empty_target)


def test_a_sealed_file_altered_reordered_or_cut_short_does_not_open(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(2 * CHUNK + 1000))  # three parts
    sealed = tmp_path / "sealed"
    seal(plain, sealed, BACKUP_KEY)
    opened = tmp_path / "opened"
    open_sealed(sealed, opened, BACKUP_KEY)
    assert opened.read_bytes() == plain.read_bytes()

    data = sealed.read_bytes()
    part = 4 + CHUNK + 16  # one sealed part with its length
    header = len(data) - 2 * part - (4 + 1000 + 16)
    variants = {
        "flipped": data[:100] + bytes([data[100] ^ 1]) + data[101:],
        "cut": data[: header + 2 * part],  # the last part dropped
        "reordered": data[:header]
        + data[header + part : header + 2 * part]
        + data[header : header + part]
        + data[header + 2 * part :],
        "extended": data + b"x",
    }
    for name, altered in variants.items():
        path = tmp_path / f"altered-{name}"
        path.write_bytes(altered)
        with pytest.raises(SealBroken):
            open_sealed(path, tmp_path / f"out-{name}", BACKUP_KEY)


def test_the_cli_seals_with_the_key_file_and_refuses_one_kept_among_the_backups(
    db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the command's key handling is the same on both databases")
    key_file = tmp_path / "keys" / "backup.key"
    key_file.parent.mkdir()
    key_file.write_text(BACKUP_KEY.hex() + "\n")
    env = server_env(db_url, tmp_path / "var", KETACARE_BACKUP_KEY_FILE=str(key_file))
    done = cli(env, "backup", "--out", str(tmp_path / "backups"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sealed with the backup key" in done.stdout
    (folder,) = (tmp_path / "backups").iterdir()
    assert Manifest.read(folder).sealed

    inside = server_env(db_url, tmp_path / "var", KETACARE_BACKUP_KEY_FILE=str(key_file))
    refused = cli(inside, "backup", "--out", str(tmp_path / "keys"))
    assert refused.returncode == 1
    assert "lies under the backup folder" in refused.stderr + refused.stdout
    assert list((tmp_path / "keys").iterdir()) == [key_file]

    key_file.write_text("too short\n")
    bad = cli(env, "backup", "--out", str(tmp_path / "backups"))
    assert bad.returncode == 1 and "exactly 64 hex characters" in bad.stderr + bad.stdout
