"""CLI commands for operating an installation: the audit trail and its anchors, backups.

ketacare audit verify [--anchors DIR] [--json]
ketacare audit anchor --to DIR [--json]
ketacare audit keygen --out FILE
ketacare backup --out DIR [--json]
ketacare restore FROM [--anchors DIR] [--replace] [--json]
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ketacare.commands.common import emit_json, fail
from ketacare.core.errors import KetacareError
from ketacare.infra.clock import utc_now

if TYPE_CHECKING:
    from ketacare.infra.settings import Settings

audit_app = typer.Typer(help="The audit trail: verify, anchor, key.", no_args_is_help=True)


def _audit_sessions(settings: Settings) -> Any:
    from ketacare.clinic.audit.service import session_info
    from ketacare.infra.db import make_engine, make_sessionmaker
    from ketacare.infra.migrate import ensure_current

    try:
        key = settings.effective_audit_key()
        engine = make_engine(settings.effective_database_url)
        ensure_current(engine)
    except KetacareError as exc:
        fail(str(exc))
    return key, make_sessionmaker(engine, info=session_info(key))


@audit_app.command("verify")
def audit_verify(
    anchors: Annotated[
        Path | None,
        typer.Option(
            "--anchors",
            help="Folder of anchors to compare with (default: KETACARE_AUDIT_ANCHOR_DIR)",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Check the audit chain (and, with anchors, that nothing was removed or rewritten);
    print the event count and the head hash; exit 1 when something does not hold."""
    from ketacare.clinic.audit import anchors as anchoring
    from ketacare.clinic.audit import service as audit
    from ketacare.infra.settings import load_settings

    settings = load_settings()
    key, sessions = _audit_sessions(settings)
    folder = anchors or settings.audit_anchor_dir
    problems: list[str] = []
    log: anchoring.AnchorLog | None = None
    with sessions() as session:
        if folder is None:
            report = audit.verify(session=session, key=key)
        else:
            log = anchoring.read_anchors(folder, key)
            report, problems = anchoring.verify_against(session=session, log_=log, key=key)
    ok = report.ok and not problems
    if json_out:
        emit_json(
            {
                "ok": ok,
                "rows": report.rows,
                "head": report.head,
                "head_id": report.head_id,
                "legacy_rows": report.legacy_rows,
                "first_broken_id": report.first_broken_id,
                "problem": report.problem,
                "anchors": None
                if log is None
                else {
                    "file": str(log.path),
                    "checked": len(log.anchors),
                    "latest": None if log.latest is None else log.latest.at,
                    "problems": problems,
                },
            }
        )
    else:
        if report.ok:
            typer.echo(f"audit trail intact: {report.rows} events, every link verified")
            typer.echo(f"head {report.head} (event {report.head_id})")
            if report.legacy_rows:
                typer.echo(f"{report.legacy_rows} events from before the audit key (unkeyed)")
        else:
            typer.echo(
                f"audit trail BROKEN at event {report.first_broken_id}: {report.problem}",
                err=True,
            )
        if log is not None:
            if problems:
                for problem in problems:
                    typer.echo(f"ANCHOR CHECK FAILED: {problem}", err=True)
            elif log.latest is None:
                typer.echo(f"no anchors yet in {log.path}")
            else:
                typer.echo(
                    f"matches all {len(log.anchors)} anchors in {log.path} "
                    f"(latest {log.latest.at}: {log.latest.count} events)"
                )
    if not ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(
    to: Annotated[Path, typer.Option("--to", help="Folder of the anchor file (another disk)")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Verify the chain since the last anchor and append a signed checkpoint
    (count, head, time) to DIR/audit-anchors.jsonl; exit 1 if the chain does not hold."""
    from ketacare.clinic.audit.anchors import AnchorRefused, write_anchor
    from ketacare.infra.settings import load_settings

    settings = load_settings()
    key, sessions = _audit_sessions(settings)
    try:
        with sessions() as session:
            anchor = write_anchor(session=session, directory=to, now=utc_now(), key=key)
    except AnchorRefused as exc:
        fail(f"no anchor written: {exc}", code=1)
    except OSError as exc:
        fail(f"cannot write the anchor file in {to}: {exc.strerror or exc}")
    if json_out:
        emit_json(
            {"at": anchor.at, "count": anchor.count, "head": anchor.head, "head_id": anchor.head_id}
        )
    else:
        typer.echo(
            f"anchored {anchor.count} events (head {anchor.head}, event {anchor.head_id}) in {to}"
        )


@audit_app.command("keygen")
def audit_keygen(
    out: Annotated[Path, typer.Option("--out", help="The key file to create (0600)")],
) -> None:
    """Create a new audit key file (64 hex characters, readable by its owner only)."""
    from ketacare.infra.settings import write_secret_file

    try:
        write_secret_file(out, secrets.token_hex(32) + "\n")
    except FileExistsError:
        fail(f"{out} exists: an audit key is never overwritten (the chain needs it)")
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror or exc}")
    typer.echo(
        f"wrote {out}: set KETACARE_AUDIT_KEY_FILE={out}; keep a copy apart from the "
        "database and its backups"
    )


def _owner_url(settings: Settings) -> str:
    return settings.migration_database_url or settings.effective_database_url


@contextmanager
def _steps(quiet: bool) -> Iterator[Callable[[str], None]]:
    """Each long step shown as a rich spinner on stderr (nothing with --json)."""
    if quiet:
        yield lambda _message: None
        return
    from rich.console import Console

    console = Console(stderr=True, log_path=False)
    with console.status("starting") as status:

        def step(message: str) -> None:
            console.log(message)
            status.update(message)

        yield step


def backup_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to put the new backup folder in")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Back up the database while it serves (SQLite online backup, or pg_dump), with a
    manifest (time, schema, row counts, audit head), checked after writing."""
    from ketacare.clinic.system.backup import BackupRefused, Manifest, backup
    from ketacare.infra.settings import load_settings

    settings = load_settings()
    try:
        key = settings.effective_audit_key()
        backup_key = _backup_key(settings, out)
        with _steps(json_out) as step:
            folder = backup(
                url=_owner_url(settings),
                out=out,
                key=key,
                now=utc_now(),
                step=step,
                backup_key=backup_key,
            )
    except (BackupRefused, KetacareError) as exc:
        fail(f"no backup written: {exc}", code=1)
    except OSError as exc:
        fail(f"cannot write the backup under {out}: {exc.strerror or exc}", code=1)
    manifest = Manifest.read(folder)
    if json_out:
        emit_json({"folder": str(folder), "manifest": asdict(manifest)})
        return
    rows = sum(manifest.tables.values())
    typer.echo(
        f"backup {folder}: {manifest.bytes} bytes, schema {manifest.schema_revision}, "
        f"{len(manifest.tables)} tables, {rows} rows; audit {manifest.audit_count} events, "
        f"head {manifest.audit_head} (verified)"
        + ("; sealed with the backup key" if manifest.sealed else "")
    )


def _backup_key(settings: Settings, out: Path | None = None) -> bytes | None:
    """The key that seals backups (KETACARE_BACKUP_KEY_FILE), if one is set; refused if
    it lies among the backups it protects."""
    from ketacare.clinic.system.backup import BackupRefused
    from ketacare.clinic.system.sealing import read_key

    path = settings.backup_key_file
    if path is None:
        return None
    if out is not None and path.resolve().is_relative_to(out.resolve()):
        raise BackupRefused(
            f"the backup key file {path} lies under the backup folder {out}: keep it "
            "elsewhere (another disk, a password manager), or the backups protect nothing"
        )
    return read_key(path)


def restore_command(
    source: Annotated[Path, typer.Argument(help="A backup folder written by `ketacare backup`")],
    anchors: Annotated[
        Path | None,
        typer.Option(
            "--anchors", help="Anchor folder to compare with (default: KETACARE_AUDIT_ANCHOR_DIR)"
        ),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="SQLite: move the existing file aside (kept) first"),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Restore a backup into the configured (empty) database, migrate it if older, verify
    it against its manifest and the audit chain, and report what it lacks against the
    latest anchor."""
    from ketacare.clinic.system.backup import BackupRefused, describe, restore
    from ketacare.commands.clinic import APPEND_ONLY_TABLES
    from ketacare.infra.db import make_engine
    from ketacare.infra.migrate import app_role, grant_app_role
    from ketacare.infra.settings import load_settings

    settings = load_settings()
    owner = _owner_url(settings)
    try:
        key = settings.effective_audit_key()
        with _steps(json_out) as step:
            report = restore(
                source=source,
                url=owner,
                key=key,
                now=utc_now(),
                anchors_dir=anchors or settings.audit_anchor_dir,
                replace=replace,
                step=step,
                backup_key=_backup_key(settings),
            )
        role = app_role(settings.effective_database_url, settings.migration_database_url)
        if role:
            engine = make_engine(owner)
            grant_app_role(engine, role=role, append_only=APPEND_ONLY_TABLES)
            engine.dispose()
    except (BackupRefused, KetacareError) as exc:
        fail(f"not restored: {exc}", code=1)
    except OSError as exc:
        fail(f"cannot restore from {source}: {exc.strerror or exc}", code=1)
    if json_out:
        emit_json(describe(report))
    else:
        if report.moved_aside:
            typer.echo(f"the database before the restore is kept at {report.moved_aside}")
        typer.echo(
            f"restored {source} (taken {report.backup.created_at}): schema "
            f"{report.revision_before} -> {report.revision_after}; audit "
            f"{report.audit_count} events, head {report.audit_head}, "
            + ("verified" if report.audit_ok else "BROKEN")
        )
        if report.anchor_at is None:
            typer.echo("no anchor to compare with (--anchors DIR)")
        elif report.missing_events:
            typer.echo(
                f"LACKS {report.missing_events} audit events the anchor of {report.anchor_at} "
                f"saw ({report.anchor_count}): everything recorded after the backup up to "
                "then is not in this database; keep the old anchor file as evidence, move it "
                "aside and anchor again",
                err=True,
            )
        elif report.anchor_problems:
            for problem in report.anchor_problems:
                typer.echo(f"ANCHOR CHECK: {problem}", err=True)
        else:
            typer.echo(f"holds every event the latest anchor ({report.anchor_at}) saw")
    if not report.audit_ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the operations commands to the ``ketacare`` app."""
    app.add_typer(audit_app, name="audit")
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
