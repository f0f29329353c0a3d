"""CLI commands of the clinic shell: serve, demo, db upgrade, user create, outbox, reports."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ketacare.commands.common import emit_json, fail, require_suffix, write_output
from ketacare.core.errors import KetacareError
from ketacare.infra.clock import utc_now

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from ketacare.infra.settings import Settings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
outbox_app = typer.Typer(help="Reminders waiting to be sent.", no_args_is_help=True)
report_app = typer.Typer(help="Reports.", no_args_is_help=True)
export_app = typer.Typer(help="Exports for research.", no_args_is_help=True)
followup_app = typer.Typer(
    help="Outcome schedules: reminders for what is due.", no_args_is_help=True
)


@report_app.command("patient")
def report_patient(
    patient_id: Annotated[int, typer.Argument(min=1, help="The patient's id")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the PDF")],
) -> None:
    """Write a patient's progress report (PDF) for a referring physician or an insurer."""
    from ketacare.clinic.audit.service import Actor
    from ketacare.clinic.documents import Letterhead
    from ketacare.clinic.outcomes.policy import booster_rules
    from ketacare.clinic.outcomes.report import progress_report

    require_suffix(path=out, option="--out", suffix=".pdf")
    with _work() as (settings, session):
        data = progress_report(
            session=session,
            actor=Actor(None, "cli", "system"),
            patient_id=patient_id,
            now=utc_now(),
            zone=settings.zone,
            loss_confirmations=settings.outcome_loss_confirmations,
            booster_rules=booster_rules(settings),
            letterhead=Letterhead.of(settings),
        )
    write_output(path=out, data=data)
    typer.echo(f"wrote {out} ({len(data)} bytes)")


@export_app.command("registry")
def export_registry(
    out: Annotated[Path, typer.Option("--out", help="Where to write the zip of CSV tables")],
    profile: Annotated[
        str, typer.Option("--profile", help="year_only (years and order) or limited (days)")
    ] = "year_only",
    data_use_agreement: Annotated[
        str | None,
        typer.Option("--dua", help="The data use agreement (required by the limited profile)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Write the research registry of consenting patients without identifiers."""
    from ketacare.clinic.audit.service import Actor
    from ketacare.clinic.research.service import export_registry as build

    require_suffix(path=out, option="--out", suffix=".zip")
    with _work() as (_, session):
        data, count = build(
            session=session,
            actor=Actor(None, "cli", "system"),
            profile=profile,
            now=utc_now(),
            data_use_agreement=data_use_agreement,
        )
    write_output(path=out, data=data)
    if as_json:
        emit_json({"out": str(out), "patients": count, "profile": profile, "bytes": len(data)})
    else:
        typer.echo(f"wrote {out}: {count} consenting patient(s), profile {profile}")


def _sessions() -> tuple[Settings, Engine, sessionmaker[Session]]:
    from ketacare.clinic.demo_policy import settings_for
    from ketacare.infra.db import make_engine, make_sessionmaker
    from ketacare.infra.settings import load_settings

    settings = load_settings()
    engine = make_engine(settings.effective_database_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:  # a demo database: the policy its server applies
        settings = settings_for(settings, session=session)
    return settings, engine, sessions


@contextmanager
def _work() -> Iterator[tuple[Settings, Session]]:
    """The clinic's settings and one unit of work on a schema that is current.

    A refusal (:class:`KetacareError`) from the schema check or from the work done
    inside is the one-line exit 2, after the unit of work has rolled back.
    """
    from ketacare.infra.db import unit_of_work
    from ketacare.infra.migrate import ensure_current

    settings, engine, sessions = _sessions()
    try:
        ensure_current(engine)
        with unit_of_work(sessions) as session:
            yield settings, session
    except KetacareError as exc:
        fail(str(exc))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (KETACARE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (KETACARE_PORT)")] = None,
) -> None:
    """Serve the web app and the JSON API."""
    import uvicorn

    from ketacare.app import create_app
    from ketacare.infra.settings import load_settings

    settings = load_settings()
    host = host or settings.host
    port = port or settings.port
    try:
        app = create_app(settings)
    except KetacareError as exc:
        fail(str(exc))
    if app.state.demo and not _is_loopback(host):
        fail(f"this database holds the demo clinic: it is served on 127.0.0.1 only, not {host}")
    _warm_population_loops()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


def _warm_population_loops() -> None:
    """Compile the population engine's loops into numba's on-disk cache, in a process of
    its own at low priority, while the server starts.

    ``make setup`` does it once for a checkout; an installation made otherwise would
    make the first person who asks for a population band wait about 20 s for the
    compiler. With the cache already filled the child only loads it (about 1 s). The
    server never waits for it: a band asked for before it is done compiles on its own.
    """
    import os
    import subprocess
    import sys

    if _population_loops_cached():
        return
    code = "from ketacare.core.pharmacology.kernel import warm; warm()"
    try:
        subprocess.Popen(  # our own interpreter and a fixed statement
            [sys.executable, "-c", code],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.nice(10),  # before uvicorn starts any thread
        )
    except OSError:
        pass  # a band then compiles on first use


def _population_loops_cached(source: Path | None = None) -> bool:
    """Whether numba's cache beside the loops' module (``source``) already holds both
    entry points, written after the module last changed: a process then loads them in
    about 1 s on first use, and a child that only loads them would be work for nothing.

    Anything unexpected (no such folder, another cache location) answers no, and the
    child is started as before.
    """
    import sys
    from importlib.util import find_spec

    if source is None:
        spec = find_spec("ketacare.core.pharmacology.kernel")
        if spec is None or spec.origin is None:
            return False
        source = Path(spec.origin)
    cache = source.parent / "__pycache__"
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    numba = find_spec("numba")
    try:
        changed = source.stat().st_mtime
        if numba is not None and numba.origin is not None:  # an upgraded numba recompiles
            changed = max(changed, Path(numba.origin).stat().st_mtime)
        return all(
            any(
                index.stat().st_mtime >= changed
                for index in cache.glob(f"kernel.{name}-*.{python}.nbi")
            )
            for name in ("fill_rows", "band_rows")
        )
    except OSError:
        return False


KEEP_ALIVE_S = 75
"""Seconds an idle connection is kept open. uvicorn's 5 s default equals the chairs'
polling period, so a tablet's next request could race the server closing its connection;
75 s is what common reverse proxies (nginx) keep."""


def demo(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Seed only an empty database")
    ] = False,
    history: Annotated[
        bool,
        typer.Option(
            "--history/--no-history",
            help="30 patients with months of care (default), or only the accounts and "
            "eight patients (quick, for scripts and tests)",
        ),
    ] = True,
) -> None:
    """Seed the demo clinic (synthetic patients and demo accounts) and print the logins."""
    from ketacare.clinic import demo as demo_data
    from ketacare.clinic.accounts import service as accounts
    from ketacare.clinic.system import service as system
    from ketacare.infra.db import unit_of_work
    from ketacare.infra.migrate import ensure_current
    from ketacare.infra.settings import load_settings

    settings, engine, sessions = _sessions()
    try:
        ensure_current(engine)
    except KetacareError as exc:
        fail(str(exc))
    with unit_of_work(sessions) as session:
        if accounts.count_users(session=session) > 0:
            if not if_empty:
                fail("the database already has accounts: the demo is seeded only once")
            if not system.is_demo(session=session):
                typer.echo("The database already has accounts; no demo seeded.")
                return
            logins = demo_data.logins(session=session)
            typer.echo("Demo clinic already seeded.")
        else:
            started = time.perf_counter()
            logins = demo_data.seed(
                session=session, now=utc_now(), settings=settings, history=history
            )
            if history:
                typer.echo(
                    "Seeded the demo clinic: 30 synthetic patients with months of care, "
                    "under the demo's EXAMPLE site policy (not clinical recommendations) "
                    f"in {time.perf_counter() - started:.1f} s."
                )
            else:
                typer.echo("Seeded the demo clinic (accounts and eight synthetic patients).")
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Demo logins (demo database: served on 127.0.0.1 only)")
    for column in ("username", "password", "role"):
        table.add_column(column)
    for row in logins:
        table.add_row(*row)
    Console().print(table)
    required = sorted(load_settings().totp_roles)
    if required:
        typer.echo(
            f"Roles {', '.join(required)} enrol an authenticator app (TOTP) at their first "
            "login: keep the recovery codes shown then."
        )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema to this version of ketacare."""
    from ketacare.infra.db import make_engine
    from ketacare.infra.migrate import app_role, grant_app_role, upgrade
    from ketacare.infra.policy import check_site_policy
    from ketacare.infra.settings import load_settings

    settings = load_settings()
    engine = make_engine(settings.migration_database_url or settings.effective_database_url)
    before, after = upgrade(engine)
    where = settings.effective_database_url.split("@")[-1]
    typer.echo(f"database {where}: schema {before or 'empty'} -> {after}")
    role = app_role(settings.effective_database_url, settings.migration_database_url)
    if role:
        grant_app_role(engine, role=role, append_only=APPEND_ONLY_TABLES)
        typer.echo(f"app role {role}: reads and writes; audit_events read and insert only")
    try:
        check_site_policy(settings)  # the app would refuse to start: say so now
    except KetacareError as exc:
        fail(f"the schema is upgraded, but the app will not start: {exc}")


#: Tables the app's PostgreSQL role may only read and insert.
APPEND_ONLY_TABLES = ("audit_events",)


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[str, typer.Option(help="admin|physician|nurse|therapist|researcher|patient")],
    full_name: Annotated[str, typer.Option(help="Name shown in the app")] = "",
    patient_id: Annotated[
        int | None, typer.Option(help="Patient record (patient accounts)")
    ] = None,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="KETACARE_NEW_PASSWORD",
            help="Prompted when not given",
        ),
    ] = "",
) -> None:
    """Create an account."""
    from ketacare.clinic.accounts import service as accounts

    with _work() as (settings, session):
        user = accounts.create_user(
            session=session,
            username=username,
            full_name=full_name or username,
            role=role,
            password=password,
            patient_id=patient_id,
            now=utc_now(),
            settings=settings,
        )
        typer.echo(f"created {user.role} account {user.username} (id {user.id})")


@outbox_app.command("send")
def outbox_send(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many")] = 500,
) -> None:
    """Send pending reminders, each by its own channel: files (var/outbox), email through
    the configured mail server. Exits 1 when a message failed, or waits for a channel with
    no sender here (it is left unsent, never marked sent)."""
    from rich.console import Console
    from rich.progress import Progress

    from ketacare.clinic.followup import senders as channels
    from ketacare.clinic.followup import service as followup
    from ketacare.infra.db import unit_of_work
    from ketacare.infra.migrate import ensure_current

    settings, engine, sessions = _sessions()
    try:
        ensure_current(engine)
    except KetacareError as exc:
        fail(str(exc))
    senders = channels.configured(settings)
    sent: dict[str, int] = dict.fromkeys(senders, 0)
    skipped = failed = 0
    with sessions() as session:
        kinds = followup.pending(session=session, limit=limit, channels=senders)
    ids = list(kinds)
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not ids) as progress:
        task = progress.add_task("Sending reminders", total=len(ids))
        for message_id in ids:
            progress.advance(task)
            with unit_of_work(sessions) as session:  # claim first, in its own transaction
                won = followup.claim(session=session, message_id=message_id, now=utc_now())
            if not won:
                skipped += 1
                continue
            channel = kinds[message_id]
            with unit_of_work(sessions) as session:
                if followup.deliver(
                    session=session, message_id=message_id, sender=senders[channel], now=utc_now()
                ):
                    sent[channel] += 1
                else:
                    failed += 1
    with sessions() as session:
        unsendable = followup.waiting(session=session, sendable=senders)
        stopped = [
            (m.id, m.channel, m.error or "claimed, never sent or failed: the sender stopped")
            for m in followup.not_sent(session=session, now=utc_now())
        ]
    by = ", ".join(f"{n} by {c} ({senders[c]})" for c, n in sent.items() if n)
    typer.echo(
        f"sent {sum(sent.values())} message(s){': ' + by if by else ''}; "
        f"{skipped} taken by another sender"
    )
    for channel, count in unsendable.items():
        console.print(
            f"[red]{count} {channel} message(s) wait in the outbox, not sent: "
            f"{channels.why_not(channel)}[/red]"
        )
    if stopped:
        console.print(
            f"[red]{len(stopped)} message(s) not sent ({failed} failed in this run); none is "
            "retried by itself: fix the cause, then `ketacare outbox retry ID`[/red]"
        )
        for message_id, channel, error in stopped:
            console.print(f"[red]  message {message_id} ({channel}): {error}[/red]")
    if unsendable or stopped:
        raise typer.Exit(1)


@outbox_app.command("retry")
def outbox_retry(
    message_ids: Annotated[list[int], typer.Argument(help="The messages to send again")],
) -> None:
    """Put messages that were not sent (failed, or left by a sender that stopped) back in
    the queue, once their cause is fixed; the next `outbox send` sends them."""
    from ketacare.clinic.audit.service import SYSTEM
    from ketacare.clinic.followup import service as followup

    with _work() as (_settings, session):  # one refusal: none released, exit 2
        for message_id in message_ids:
            followup.release(session=session, actor=SYSTEM, message_id=message_id, now=utc_now())
    typer.echo(f"{len(message_ids)} message(s) back in the queue")


@followup_app.command("remind")
def followup_remind(
    base_url: Annotated[
        str, typer.Option(help="The address patients open links at, e.g. https://clinic.example")
    ] = "http://127.0.0.1:8000",
    channel: Annotated[
        str, typer.Option(help="email, sms, or file (demo: the outbox writes files)")
    ] = "file",
    valid_hours: Annotated[
        float, typer.Option(min=0.1, max=24 * 14, help="How long each link works")
    ] = 72,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Queue one reminder per due or overdue questionnaire occurrence, never twice.

    Each patient with a scheduled plan is visited in its own transaction; an
    occurrence already in the outbox is skipped. Send the queue with `outbox send`.
    """
    from rich.console import Console
    from rich.progress import Progress

    from ketacare.clinic.audit.service import SYSTEM
    from ketacare.clinic.followup import reminders, schedules, senders
    from ketacare.clinic.followup import service as followup
    from ketacare.infra.db import unit_of_work
    from ketacare.infra.migrate import ensure_current

    if channel not in schedules.CHANNELS:
        fail(f"--channel {channel!r}: allowed {', '.join(schedules.CHANNELS)}")
    if not base_url.startswith(("http://", "https://")):
        fail(f"--base-url {base_url!r} must start with http:// or https://")
    settings, engine, sessions = _sessions()
    sendable = senders.sendable(settings)
    if channel not in sendable:
        fail(f"--channel {channel}: {followup.unsendable(channel, sendable)}")
    try:
        ensure_current(engine)
    except KetacareError as exc:
        fail(str(exc))
    with sessions() as session:
        patient_ids = reminders.patients_to_remind(session=session)
    totals = {"patients": len(patient_ids), "queued": 0, "already_queued": 0, "no_address": 0}
    with Progress(console=Console(stderr=True), disable=json_output) as progress:
        task = progress.add_task("Reminders", total=len(patient_ids))
        for patient_id in patient_ids:
            with unit_of_work(sessions) as session:
                result = reminders.remind_patient(
                    session=session,
                    actor=SYSTEM,
                    patient_id=patient_id,
                    now=utc_now(),
                    base_url=base_url.rstrip("/"),
                    zone=settings.zone,
                    valid_hours=valid_hours,
                    channel=channel,
                    sendable=sendable,
                )
            totals["queued"] += result.queued
            totals["already_queued"] += result.already_queued
            totals["no_address"] += result.no_address
            progress.advance(task)
    if json_output:
        emit_json(totals)
        return
    typer.echo(
        f"queued {totals['queued']} reminder(s) for {totals['patients']} patient(s); "
        f"{totals['already_queued']} already queued; {totals['no_address']} without an address"
    )
    if totals["no_address"]:
        Console(stderr=True).print(
            f"[yellow]{totals['no_address']} due questionnaire(s) get no reminder: the patient "
            f"has no {'phone' if channel == 'sms' else 'email'} on record (see the chart's "
            "due questionnaires, and give those links in person)[/yellow]"
        )


def register(app: typer.Typer) -> None:
    """Add the clinic shell's commands to the ``ketacare`` app."""
    app.command()(serve)
    app.command()(demo)
    app.add_typer(db_app, name="db")
    app.add_typer(user_app, name="user")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(report_app, name="report")
    app.add_typer(export_app, name="export")
    app.add_typer(followup_app, name="followup")
