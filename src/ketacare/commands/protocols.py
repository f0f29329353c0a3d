"""CLI commands of the protocols domain: ``ketacare protocols`` and ``ketacare plan preview``.

Options are read as text and parsed here so that every bad input, including a
malformed number, exits 2 with one line on stderr.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ketacare.commands.common import emit_json, fail, run_guarded

if TYPE_CHECKING:
    from ketacare.core.protocols import Plan, Protocol, ProtocolLibrary, SitePolicy

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.")]
DirsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--protocols-dir",
        help="A directory of the clinic's own protocol files (*.toml); repeatable.",
    ),
]


def _number(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        fail(f"{option} must be a number, got {text!r}")
    if not math.isfinite(value):
        fail(f"{option} must be a finite number, got {text!r}")
    return value


def _library(dirs: list[Path] | None) -> ProtocolLibrary:
    from ketacare.core.protocols import load_library

    library: ProtocolLibrary = run_guarded(load_library, clinic_dirs=tuple(dirs or ()))
    return library


PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--site-policy",
        help="The clinic's protocol policy (TOML): values for limits no source gives "
        "(default: KETACARE_PROTOCOL_POLICY_FILE when set).",
    ),
]


def cli_protocol_policy(path: Path | None, library: ProtocolLibrary) -> SitePolicy:
    """The protocol policy from --site-policy, else KETACARE_PROTOCOL_POLICY_FILE, else none."""
    from ketacare.core.protocols import SitePolicy, load_site_policy

    if path is None:
        configured = os.environ.get("KETACARE_PROTOCOL_POLICY_FILE", "").strip()
        path = Path(configured) if configured else None
    if path is None:
        return SitePolicy()
    policy: SitePolicy = run_guarded(load_site_policy, path=path, library=library)
    return policy


def _usability(protocol: Protocol, policy: SitePolicy) -> dict[str, object]:
    """Whether a plan can be built under the protocol, and if not why (unset hard limits)."""
    from ketacare.core.protocols import unset_ceiling_reason, unset_ceilings

    unset = unset_ceilings(protocol=protocol, site_policy=policy)
    return {
        "usable": not unset,
        "hard_limits_not_set": [r.key for r in unset],
        "reason": unset_ceiling_reason(protocol_id=protocol.id, unset=unset) if unset else None,
    }


def _protocol_row(protocol: Protocol, policy: SitePolicy) -> dict[str, object]:
    source = protocol.primary_source
    return {
        "id": protocol.id,
        "title": protocol.title,
        "status": protocol.status,
        "origin": protocol.origin,
        "molecule": protocol.molecule,
        "route": protocol.route,
        "indications": [{"code": i.code, "display": i.display} for i in protocol.indications],
        "source": {
            "label": source.label,
            "citation": source.citation,
            "doi": source.doi,
            "url": source.url,
        },
        "sources": [s.label for s in protocol.sources],
        **_usability(protocol, policy),
    }


def _indication_text(protocol: Protocol) -> str:
    codes = [i.code for i in protocol.indications]
    shown = ", ".join(codes[:3])
    return f"{shown} (+{len(codes) - 3})" if len(codes) > 3 else shown


def protocols_command(
    json_output: JsonOption = False,
    protocols_dir: DirsOption = None,
    site_policy: PolicyOption = None,
) -> None:
    """List the protocol library: id, title, indication, route, source, and whether a
    plan can be built under it (every hard limit set by its source or the protocol policy)."""
    library = _library(protocols_dir)
    policy = cli_protocol_policy(site_policy, library)
    if json_output:
        emit_json({"protocols": [_protocol_row(p, policy) for p in library.protocols]})
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Protocol library")
    table.add_column("id", no_wrap=True)
    for column in ("title", "indication (ICD-10-CM)", "route", "source", "usable"):
        table.add_column(column)
    reasons = []
    for protocol in library.protocols:
        usable = _usability(protocol, policy)
        if usable["reason"]:
            reasons.append(str(usable["reason"]))
        source = protocol.primary_source
        doi = f" doi:{source.doi}" if source.doi else ""
        table.add_row(
            protocol.id,
            protocol.title + (" [clinic]" if protocol.origin == "clinic" else ""),
            _indication_text(protocol),
            protocol.route,
            f"{source.label}{doi}",
            "yes" if usable["usable"] else "NO (hard limit not set)",
        )
    console = Console()
    console.print(table)
    for reason in reasons:
        console.print(f"[bold red]not usable:[/bold red] {escape(reason)}", soft_wrap=True)


def _show(value: float | None, digits: str = "") -> str:
    return "-" if value is None else f"{value:g}{digits}"


def _print_plan(plan: Plan) -> None:
    from rich.console import Console
    from rich.table import Table

    from ketacare.core.protocols.limits import review_lines

    console = Console()
    concentration = (
        f", bag {plan.concentration_mg_per_ml:g} mg/mL" if plan.concentration_mg_per_ml else ""
    )
    console.print(
        f"[bold]{plan.protocol_id}[/bold]: {plan.protocol_title}\n"
        f"weight {plan.weight_kg:g} kg; {plan.order}{concentration}"
    )
    table = Table(title="Sessions")
    for column in ("#", "day", "date", "phase", "dose mg", "mg/h", "mL/h", "hours"):
        table.add_column(column, justify="right" if column not in ("date", "phase") else "left")
    for s in plan.sessions:
        table.add_row(
            str(s.number),
            str(s.day),
            s.date.isoformat() if s.date else "-",
            s.phase,
            _show(s.dose_mg),
            _show(s.rate_mg_per_h),
            _show(s.rate_ml_per_h),
            _show(s.duration_h),
        )
    console.print(table)
    console.print(f"total dose {plan.total_dose_mg:g} mg; rounding: {plan.rounding}")
    limits = Table(title="Limits")
    for column in ("limit", "level", "value", "basis", "source"):
        limits.add_column(column)
    for bound in plan.limits:
        value = "not configured" if bound.value is None else f"{bound.value:g} {bound.unit}"
        limits.add_row(bound.key, bound.level, value, bound.basis, bound.source or bound.text)
    console.print(limits)
    if plan.requires_review:
        console.print(
            "[bold]this plan requires a documented reason and a co-signature, for:[/bold]"
        )
        for line in review_lines(findings=plan.soft_findings, not_configured=plan.not_configured):
            console.print(f"[yellow]-[/yellow] {line}")
    for note in plan.notes:
        console.print(f"note: {note}")


def preview_command(
    protocol: Annotated[str | None, typer.Option("--protocol", help="Protocol id.")] = None,
    weight: Annotated[str | None, typer.Option("--weight", help="Weight in kg (20-350).")] = None,
    bag_mg: Annotated[str | None, typer.Option("--bag-mg", help="Bag content in mg.")] = None,
    bag_ml: Annotated[str | None, typer.Option("--bag-ml", help="Bag volume in mL.")] = None,
    dose_mg_per_kg_per_h: Annotated[
        str | None,
        typer.Option("--dose-mg-per-kg-per-h", help="Override: infusion rate in mg/kg/h."),
    ] = None,
    dose_mg: Annotated[
        str | None, typer.Option("--dose-mg", help="Override: dose per session in mg.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="Date of the first session (YYYY-MM-DD).")
    ] = None,
    site_policy: PolicyOption = None,
    protocols_dir: DirsOption = None,
    json_output: JsonOption = False,
) -> None:
    """Preview a plan: sessions, rates in mg/h and mL/h, cumulative dose and limit checks.

    A dose above a hard limit exits 2 and prints nothing. A protocol whose hard
    ceilings the clinic has not set also exits 2, naming each unset limit on
    stderr; its preview is still printed (``"usable": false`` and
    ``hard_limits_not_set`` in the JSON) so the clinic can see what it would set.
    """
    from ketacare.core.protocols import preview_plan

    if protocol is None:
        fail("--protocol is required (see `ketacare protocols` for the ids)")
    if weight is None:
        fail("--weight is required (kg)")
    if dose_mg_per_kg_per_h is not None and dose_mg is not None:
        fail("give either --dose-mg-per-kg-per-h or --dose-mg, not both")
    if (bag_mg is None) != (bag_ml is None):
        fail("give both --bag-mg and --bag-ml, or neither")
    start_date = None
    if start is not None:
        try:
            start_date = dt.date.fromisoformat(start)
        except ValueError:
            fail(f"--start must be a date as YYYY-MM-DD, got {start!r}")
    library = _library(protocols_dir)
    policy = cli_protocol_policy(site_policy, library)
    chosen = run_guarded(library.get, protocol_id=protocol)
    plan: Plan = run_guarded(
        preview_plan,
        protocol=chosen,
        weight_kg=_number(weight, "--weight"),
        bag_mg=_number(bag_mg, "--bag-mg"),
        bag_ml=_number(bag_ml, "--bag-ml"),
        dose_mg_per_kg_per_h=_number(dose_mg_per_kg_per_h, "--dose-mg-per-kg-per-h"),
        dose_mg=_number(dose_mg, "--dose-mg"),
        start=start_date,
        site_policy=policy,
    )
    if json_output:
        emit_json(plan.to_dict())
    else:
        _print_plan(plan)
    if not plan.usable:
        # fail closed: the preview is printed for information, but the command refuses
        fail(f"{plan.not_usable_reason} (preview only: no plan can be signed under it)")


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `ketacare` app."""
    app.command("protocols")(protocols_command)
    plan_app = typer.Typer(help="Treatment plans.", no_args_is_help=True)
    plan_app.command("preview")(preview_command)
    app.add_typer(plan_app, name="plan")
