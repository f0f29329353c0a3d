"""CLI commands of controlled-substance stock: ``ketacare inventory report``.

The inventory at a date (21 CFR 1304.11) per site and lot, replayed from the ledger;
the database and domain modules are imported inside the command, not at start-up.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer

from ketacare.commands.common import emit_json, fail
from ketacare.core.errors import KetacareError

inventory_app = typer.Typer(help="Controlled-substance inventory.", no_args_is_help=True)


def _instant(text: str, zone: str) -> datetime:
    """``YYYY-MM-DD``: the close of that day in the clinic's time zone; or an ISO instant."""
    from zoneinfo import ZoneInfo

    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            close = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone))
            return close - timedelta(microseconds=1)
        at = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at {text!r} is not a date (YYYY-MM-DD) or an ISO time with a zone")
    if at.tzinfo is None:
        fail(f"--at {text!r} has no time zone: give a date, or a time with its offset")
    return at


@inventory_app.command("report")
def report(
    at: Annotated[
        str,
        typer.Option("--at", help="A date (its close, in the clinic's time zone) or an ISO time"),
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV (one row per lot)")] = False,
    pdf_out: Annotated[
        Path | None,
        typer.Option("--pdf", help="Also write the inventory typeset as PDF to this file"),
    ] = None,
) -> None:
    """The inventory at a date per site and lot: units and mg on hand, and the totals."""
    from ketacare.clinic.audit.service import Actor
    from ketacare.clinic.stock import documents, reading, reports
    from ketacare.infra.clock import utc_now
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work
    from ketacare.infra.migrate import ensure_current
    from ketacare.infra.settings import load_settings

    settings = load_settings()
    when = _instant(at, settings.timezone)
    engine = make_engine(settings.effective_database_url)
    try:
        ensure_current(engine)
        with unit_of_work(make_sessionmaker(engine)) as session:
            book = reading.ledger(session=session)
            lots = reports.inventory(entries=book.entries, at=when, library=book.library)
            reading.read_audited(
                session=session,
                actor=Actor(None, "cli", "system"),
                what="stock_report_inventory",
                now=utc_now(),
                detail={"at": when.isoformat(), "format": "json" if json_out else "text"},
            )
            if pdf_out is not None:
                pdf = documents.read_inventory_pdf(
                    session=session,
                    actor=Actor(None, "cli", "system"),
                    at=when,
                    day=date.fromisoformat(at) if len(at) == 10 else None,
                    paper=documents.Paper.of(settings),
                    now=utc_now(),
                )
                try:
                    pdf_out.write_bytes(pdf)
                except OSError as exc:
                    fail(f"--pdf {str(pdf_out)!r} cannot be written: {exc.strerror}")
    except KetacareError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    document = reports.inventory_json(lots, when)
    if json_out:
        emit_json(document)
        return
    if csv_out:
        typer.echo(reports.to_csv(document["lots"]), nl=False)
        return
    typer.echo(f"inventory at {when.isoformat()}")
    for row in document["lots"]:
        typer.echo(
            f"  {row['site']}  {row['product']}  lot {row['lot']} (exp {row['expiry']}): "
            f"{row['units_on_hand']} units, {row['mg_on_hand']:g} mg"
        )
    totals = document["totals"]
    typer.echo(f"total: {totals['units_on_hand']} units, {totals['mg_on_hand']:g} mg")
    if pdf_out is not None:
        typer.echo(f"PDF written to {pdf_out}")


def register(app: typer.Typer) -> None:
    """Add the inventory commands to the ``ketacare`` app."""
    app.add_typer(inventory_app, name="inventory")
