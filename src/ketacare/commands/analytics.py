"""CLI commands of the clinic dashboard: ``ketacare analytics refresh``.

The dashboard reads a per-patient outcome summary that follows each patient's new
scores; this command rebuilds it for the whole clinic, e.g. after the clinic changes
``KETACARE_OUTCOME_LOSS_CONFIRMATIONS``, corrects diagnoses or plans, or on first use.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ketacare.commands.common import emit_json, fail
from ketacare.core.errors import KetacareError

analytics_app = typer.Typer(help="The clinic dashboard's outcome summary.", no_args_is_help=True)


@analytics_app.command("refresh")
def refresh(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Rebuild every patient's outcome summary (one transaction; readers see the old until done)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ketacare.clinic.analytics import service
    from ketacare.clinic.audit.service import Actor
    from ketacare.infra.clock import utc_now
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work
    from ketacare.infra.migrate import ensure_current
    from ketacare.infra.settings import load_settings

    settings = load_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        ensure_current(engine)
        from ketacare.clinic.demo_policy import settings_for

        with make_sessionmaker(engine)() as session:  # a demo: its example policy
            settings = settings_for(settings, session=session)
        k = settings.outcome_loss_confirmations
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        console = Console(stderr=True)
        with (
            Progress(*columns, console=console, disable=json_out) as progress,
            unit_of_work(make_sessionmaker(engine)) as session,
        ):
            task = progress.add_task("patients judged", total=None)

            def step(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = service.refresh_clinic(
                session=session,
                actor=Actor(None, "cli", "system"),
                now=utc_now(),
                loss_confirmations=k,
                progress=step,
            )
    except KetacareError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    if json_out:
        emit_json(
            {
                "patients": report.patients,
                "rows": report.rows,
                "seconds": round(report.seconds, 3),
                "loss_confirmations": report.loss_confirmations,
            }
        )
        return
    setting = "unset (durability not computed)" if k is None else str(k)
    typer.echo(
        f"outcome summary rebuilt: {report.patients} treated patients, {report.rows} rows in "
        f"{report.seconds:.1f} s; loss confirmations {setting}"
    )


def register(app: typer.Typer) -> None:
    """Add the dashboard's commands to the ``ketacare`` app."""
    app.add_typer(analytics_app, name="analytics")
