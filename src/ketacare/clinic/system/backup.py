"""Backups and restores of the whole database, each with a manifest that proves it.

SQLite is copied through its online backup API (a consistent snapshot that includes
what is still in the WAL, taken while the server keeps writing); PostgreSQL through
``pg_dump`` in custom format, inside one exported snapshot so that the manifest's
counts and audit head describe exactly what was dumped. A backup is a folder
``ketacare-<UTC time>/`` holding the data file and ``manifest.json`` (time, backend,
schema revision, row counts per table, the audit chain's count and head, the data
file's SHA-256); it is checked after writing. Every file is created 0600.

A restore refuses a backup from a newer schema, a damaged file or a database that
already holds data; it runs the migrations on an older backup, checks the counts
against the manifest, verifies the audit chain and reports what the restored
database lacks compared with the latest anchor.

With a backup key (``KETACARE_BACKUP_KEY_FILE``, kept outside the database and the
backups) the data file is sealed (:mod:`ketacare.clinic.system.sealing`, AES-256-GCM)
once verified, and the plain copy removed; the manifest (no patient data: counts and
hashes) stays readable, and names the plain file's SHA-256 too.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ketacare import __version__
from ketacare.clinic.audit import anchors as anchoring
from ketacare.clinic.audit import service as audit
from ketacare.clinic.system import sealing
from ketacare.core.errors import KetacareError
from ketacare.infra.db import make_engine
from ketacare.infra.migrate import alembic_config, head_revision, upgrade

MANIFEST = "manifest.json"
SQLITE_FILE = "ketacare.sqlite3"
PG_FILE = "ketacare.pgdump"
FORMAT = 1

Step = Callable[[str], None]


class BackupRefused(KetacareError):
    """A backup or restore was not done: the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds, written beside it as ``manifest.json``."""

    created_at: str
    backend: str
    file: str
    sha256: str
    bytes: int
    schema_revision: str | None
    ketacare_version: str
    tables: dict[str, int]
    audit_count: int
    audit_head: str
    audit_head_id: int | None
    audit_verified: bool
    format: int = FORMAT
    #: the data file is sealed with the backup key; ``plain_sha256`` is the content's
    sealed: bool = False
    plain_sha256: str | None = None

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(**doc)
        except FileNotFoundError:
            raise BackupRefused(f"{folder} is not a ketacare backup (no {MANIFEST})") from None
        except (ValueError, TypeError) as exc:
            raise BackupRefused(f"{path} is damaged or not a ketacare manifest: {exc}") from None


def _quiet(_: str) -> None:
    return None


# ---------------------------------------------------------------- common parts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _private_dir(parent: Path, now: datetime) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    folder = parent / f"ketacare-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
    folder.mkdir(mode=0o700)
    return folder


def _private_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    path = folder / MANIFEST
    _private_file(path)
    path.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n")


def _counts(conn: Connection) -> dict[str, int]:
    names = sorted(inspect(conn).get_table_names())
    return {
        name: int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())
        for name in names
    }


def _revision(conn: Connection) -> str | None:
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _audit_of(conn: Connection, key: bytes) -> audit.ChainReport:
    with Session(bind=conn) as session:
        return audit.verify(session=session, key=key)


# ---------------------------------------------------------------- backup


def backup(
    *,
    url: str,
    out: Path,
    key: bytes,
    now: datetime,
    step: Step = _quiet,
    backup_key: bytes | None = None,
) -> Path:
    """Back up the database at ``url`` into a new folder under ``out``; returns the folder.

    ``backup_key``: seal the data file with it (the plain copy is removed)."""
    folder = _private_dir(out, now)
    try:
        if url.startswith("sqlite"):
            manifest = _backup_sqlite(url, folder, key, now, step)
        else:
            manifest = _backup_postgres(url, folder, key, now, step)
        if backup_key is not None:
            step("sealing the data file with the backup key")
            manifest = _sealed(folder, manifest, backup_key)
        _write_manifest(folder, manifest)
        step("checking the backup against its manifest")
        check_backup(folder, backup_key=backup_key)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # never leave a half-written backup
        raise
    return folder


def _sealed(folder: Path, manifest: Manifest, backup_key: bytes) -> Manifest:
    plain = folder / manifest.file
    target = folder / f"{manifest.file}.sealed"
    sealing.seal(plain, target, backup_key)
    plain.unlink()
    return dataclasses.replace(
        manifest,
        file=target.name,
        sha256=_sha256(target),
        bytes=target.stat().st_size,
        sealed=True,
        plain_sha256=manifest.sha256,
    )


def _sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "")


def _backup_sqlite(url: str, folder: Path, key: bytes, now: datetime, step: Step) -> Manifest:
    source_path = _sqlite_path(url)
    if not source_path.is_file():
        raise BackupRefused(f"no SQLite database at {source_path}")
    target = folder / SQLITE_FILE
    _private_file(target)
    step(f"copying {source_path} (online backup)")
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # one step: a consistent snapshot, WAL content included
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    step("verifying the copy (integrity, audit chain, row counts)")
    engine = make_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as conn:
            integrity = conn.execute(text("PRAGMA integrity_check")).scalar()
            if integrity != "ok":
                raise BackupRefused(f"the copy fails SQLite's integrity check: {integrity}")
            manifest = _manifest(conn, "sqlite", target, key, now)
    finally:
        engine.dispose()
    with sqlite3.connect(target) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    return _with_file(manifest, target)


def _manifest(conn: Connection, backend: str, data: Path, key: bytes, now: datetime) -> Manifest:
    report = _audit_of(conn, key)
    if not report.ok:
        raise BackupRefused(
            f"the audit trail is broken at event {report.first_broken_id}: {report.problem} "
            "(backing up a broken trail would hide it; run `ketacare audit verify`)"
        )
    return Manifest(
        created_at=now.isoformat(timespec="seconds"),
        backend=backend,
        file=data.name,
        sha256="",
        bytes=0,
        schema_revision=_revision(conn),
        ketacare_version=__version__,
        tables=_counts(conn),
        audit_count=report.rows,
        audit_head=report.head,
        audit_head_id=report.head_id,
        audit_verified=True,
    )


def _with_file(manifest: Manifest, data: Path) -> Manifest:
    values = asdict(manifest) | {"sha256": _sha256(data), "bytes": data.stat().st_size}
    return Manifest(**values)


def pg_tool(name: str) -> str:
    """The newest installed ``pg_dump``/``pg_restore`` (it must be at least the server's)."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise BackupRefused(
            f"{name} not found: install PostgreSQL's client (Debian: postgresql-client)"
        )
    return path


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment carrying it."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run(args: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupRefused(f"{what} failed: {last}")
    return done


def _backup_postgres(url: str, folder: Path, key: bytes, now: datetime, step: Step) -> Manifest:
    target = folder / PG_FILE
    _private_file(target)
    engine = make_engine(url)
    try:
        # one snapshot for the counts, the audit head and pg_dump
        with engine.connect().execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        ) as conn:
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            step("verifying the audit chain and counting rows (in the dump's snapshot)")
            manifest = _manifest(conn, "postgresql", target, key, now)
            step("pg_dump (custom format)")
            uri, env = _libpq(url)
            _run(
                [
                    pg_tool("pg_dump"),
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    f"--dbname={uri}",
                ],
                env,
                "pg_dump",
            )
            conn.rollback()
    finally:
        engine.dispose()
    return _with_file(manifest, target)


@contextmanager
def _plain_data(folder: Path, manifest: Manifest, backup_key: bytes | None) -> Iterator[Path]:
    """The backup's data file in plain: itself, or opened from its seal into a private
    temporary folder that is removed afterwards."""
    data = folder / manifest.file
    if not manifest.sealed:
        yield data
        return
    if backup_key is None:
        raise BackupRefused(
            f"{data} is sealed: set KETACARE_BACKUP_KEY_FILE to the backup key it was sealed with"
        )
    scratch = Path(tempfile.mkdtemp(prefix="ketacare-restore-"))  # 0700
    try:
        plain = scratch / manifest.file.removesuffix(".sealed")
        try:
            sealing.open_sealed(data, plain, backup_key)
        except sealing.SealBroken as exc:
            raise BackupRefused(str(exc)) from None
        if _sha256(plain) != manifest.plain_sha256:
            raise BackupRefused(f"{data} opened, but its content does not match the manifest")
        yield plain
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_backup(folder: Path, *, backup_key: bytes | None = None) -> Manifest:
    """Check a backup folder: its manifest, the data file's checksum and readability (a
    sealed one is opened when ``backup_key`` is given)."""
    manifest = Manifest.read(folder)
    data = folder / manifest.file
    if not data.is_file():
        raise BackupRefused(f"the backup's data file {data} is missing")
    if _sha256(data) != manifest.sha256:
        raise BackupRefused(f"{data} does not match its manifest's SHA-256 (damaged or altered)")
    if manifest.sealed and backup_key is None:
        return manifest  # the checksum is all that can be checked without the key
    with _plain_data(folder, manifest, backup_key) as plain:
        _check_readable(manifest, plain)
    return manifest


def _check_readable(manifest: Manifest, data: Path) -> None:
    if manifest.backend == "postgresql":
        listing = _run(
            [pg_tool("pg_restore"), "--list", str(data)], dict(os.environ), "pg_restore --list"
        )
        missing = [t for t in manifest.tables if f"TABLE DATA public {t} " not in listing.stdout]
        if missing:
            raise BackupRefused(f"the dump lacks the data of {', '.join(missing)}")


# ---------------------------------------------------------------- restore


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What a restore did and what the restored database lacks."""

    backup: Manifest
    revision_before: str | None
    revision_after: str
    audit_count: int
    audit_head: str
    audit_ok: bool
    anchor_at: str | None = None
    anchor_count: int | None = None
    missing_events: int | None = None
    anchor_problems: list[str] = field(default_factory=list)
    moved_aside: str | None = None


def _known_revisions() -> set[str]:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {script.revision for script in scripts.walk_revisions()}


def restore(
    *,
    source: Path,
    url: str,
    key: bytes,
    now: datetime,
    anchors_dir: Path | None = None,
    replace: bool = False,
    step: Step = _quiet,
    backup_key: bytes | None = None,
) -> RestoreReport:
    """Restore the backup folder ``source`` into the (empty) database at ``url``
    (``backup_key``: the key a sealed backup was sealed with)."""
    step("checking the backup")
    manifest = check_backup(source, backup_key=backup_key)
    if manifest.sealed and backup_key is None:
        raise BackupRefused(
            f"{source / manifest.file} is sealed: set KETACARE_BACKUP_KEY_FILE to the "
            "backup key it was sealed with"
        )
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    if manifest.backend != backend:
        raise BackupRefused(f"a {manifest.backend} backup cannot be restored into {backend}")
    head = head_revision()
    if manifest.schema_revision is not None and manifest.schema_revision not in _known_revisions():
        raise BackupRefused(
            f"the backup's schema revision {manifest.schema_revision} is newer than this "
            f"ketacare's {head} (ketacare {__version__}): restore it with ketacare "
            f"{manifest.ketacare_version} or later"
        )
    moved = None
    with _plain_data(source, manifest, backup_key) as data:
        if backend == "sqlite":
            moved = _restore_sqlite(data, _sqlite_path(url), replace, now, step)
        else:
            _restore_postgres(data, url, step)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            step("checking the restored rows against the manifest")
            counts, revision = _counts(conn), _revision(conn)
        if counts != manifest.tables or revision != manifest.schema_revision:
            differ = sorted(
                t
                for t in manifest.tables.keys() | counts.keys()
                if manifest.tables.get(t) != counts.get(t)
            )
            raise BackupRefused(
                "the restored database does not match the backup's manifest "
                f"(tables differing: {', '.join(differ) or 'none'}; revision {revision})"
            )
        if revision != head:
            step(f"migrating the schema {revision or 'empty'} -> {head}")
            upgrade(engine)
        with engine.connect() as conn:
            step("verifying the audit chain")
            with Session(bind=conn) as session:
                if anchors_dir is not None:
                    log = anchoring.read_anchors(anchors_dir, key)
                    report, problems = anchoring.verify_against(session=session, log_=log, key=key)
                else:
                    log, report, problems = None, audit.verify(session=session, key=key), []
    finally:
        engine.dispose()
    latest = log.latest if log is not None else None
    return RestoreReport(
        backup=manifest,
        revision_before=manifest.schema_revision,
        revision_after=head,
        audit_count=report.rows,
        audit_head=report.head,
        audit_ok=report.ok,
        anchor_at=latest.at if latest else None,
        anchor_count=latest.count if latest else None,
        missing_events=max(latest.count - report.rows, 0) if latest else None,
        anchor_problems=problems,
        moved_aside=moved,
    )


def _restore_sqlite(
    data: Path, target: Path, replace: bool, now: datetime, step: Step
) -> str | None:
    moved = None
    if target.exists() and target.stat().st_size > 0:
        if not replace:
            raise BackupRefused(
                f"{target} already holds a database: stop the server and pass --replace to "
                "move it aside (it is kept, never deleted), or restore to another file"
            )
        with sqlite3.connect(target, timeout=30) as conn:  # fold the WAL into the file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        aside = target.with_name(f"{target.name}.before-restore-{now.strftime('%Y%m%dT%H%M%SZ')}")
        os.replace(target, aside)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)  # empty after the checkpoint
        moved = str(aside)
    step(f"copying the backup into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".restoring")
    partial.unlink(missing_ok=True)
    _private_file(partial)
    source = sqlite3.connect(f"file:{data}?mode=ro", uri=True)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    os.replace(partial, target)
    return moved


def _restore_postgres(data: Path, url: str, step: Step) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    finally:
        engine.dispose()
    if tables:
        where = make_url(url).database
        raise BackupRefused(
            f"the database {where} already holds {len(tables)} tables: restore into an empty "
            "database (createdb as the owner role) and point KETACARE_DATABASE_URL at it"
        )
    step("pg_restore (one transaction)")
    uri, env = _libpq(url)
    _run(
        [
            pg_tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={uri}",
            str(data),
        ],
        env,
        "pg_restore",
    )


def describe(report: RestoreReport) -> dict[str, Any]:
    """The restore report as one JSON document."""
    return {
        "backup": asdict(report.backup),
        "schema": {"before": report.revision_before, "after": report.revision_after},
        "audit": {"count": report.audit_count, "head": report.audit_head, "ok": report.audit_ok},
        "anchor": None
        if report.anchor_at is None
        else {
            "at": report.anchor_at,
            "count": report.anchor_count,
            "missing_events": report.missing_events,
            "problems": report.anchor_problems,
        },
        "moved_aside": report.moved_aside,
    }
