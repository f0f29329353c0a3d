"""CLI commands for operating an installation: the audit trail and its anchors, backups.

ketacare audit verify [--anchors DIR] [--json]
ketacare audit anchor --to DIR [--json]
ketacare audit keygen --out FILE
ketacare backup --out DIR [--json]
ketacare restore FROM [--anchors DIR] [--replace] [--json]
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from ketacare.commands.common import emit_json, fail
from ketacare.core.errors import KetacareError
from ketacare.infra.clock import utc_now
from ketacare.infra.db import make_engine, make_sessionmaker
from ketacare.infra.migrate import ensure_current
from ketacare.infra.settings import Settings, load_settings, write_secret_file

audit_app = typer.Typer(help="The audit trail: verify, anchor, key.", no_args_is_help=True)


def _audit_sessions(settings: Settings) -> Any:
    from ketacare.clinic.audit.service import session_info

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

    settings = load_settings()
    key, sessions = _audit_sessions(settings)
    folder = anchors or settings.audit_anchor_dir
    with sessions() as session:
        if folder is None:
            report, problems, log = audit.verify(session=session, key=key), [], None
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


def register(app: typer.Typer) -> None:
    """Add the operations commands to the ``ketacare`` app."""
    app.add_typer(audit_app, name="audit")
