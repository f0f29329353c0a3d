"""CLI command of the screening domain: ``ketacare screen FILE.json [--json] [--schema]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ketacare.commands.common import emit_json, fail, read_json_file, run_guarded

if TYPE_CHECKING:
    from ketacare.core.screening import ScreeningDecision, SitePolicy

DECISION_TEXT = {
    "eligible": "ELIGIBLE",
    "eligible_with_precautions": "ELIGIBLE WITH PRECAUTIONS",
    "physician_review": "PHYSICIAN REVIEW NEEDED",
    "not_eligible": "NOT ELIGIBLE",
}


def _read_policy(path: Path | None) -> SitePolicy | None:
    from ketacare.core.screening import parse_site_policy

    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read site policy {path}: {exc.strerror or exc}")
    policy: SitePolicy = run_guarded(parse_site_policy, text, name=str(path))
    return policy


def _print_text(decision: ScreeningDecision) -> None:
    d = decision
    typer.echo(f"Decision: {DECISION_TEXT[d.decision]}")
    typer.echo(
        f"Treatment: {d.treatment.molecule} {d.treatment.route} ({d.treatment.setting}); "
        f"rules {d.ruleset_id} {d.ruleset_version}"
    )
    if d.reasons:
        typer.echo("Reasons:")
        for r in d.reasons:
            typer.echo(f"  [{r.severity}] {r.rule}: {r.message}")
            typer.echo(f"      source: {r.source}")
    if d.missing:
        typer.echo("Missing to decide:")
        for m in d.missing:
            typer.echo(f"  - {m.item}: {m.message} (needed by {', '.join(m.needed_by)})")
    if d.safeguards:
        typer.echo("Safeguards the plan must carry:")
        for s in d.safeguards:
            typer.echo(f"  - {s.text} (because: {', '.join(s.triggered_by)})")
    if d.policies:
        label = d.site_policy_name or "none given"
        typer.echo(f"Site policies (policy file: {label}):")
        for p in d.policies:
            value = "UNSET" if p.value is None else f"{p.value:g}"
            typer.echo(f"  - {p.key} = {value} [{p.status}] {p.detail}")


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `ketacare` app."""

    @app.command("screen")
    def screen_command(
        file: Path | None = typer.Argument(
            None, help="Screening input (JSON); see --schema.", show_default=False
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
        schema: bool = typer.Option(False, "--schema", help="Print the input JSON Schema."),
        policy: Path | None = typer.Option(
            None, "--policy", help="Site policy file (TOML, table [site_policy])."
        ),
    ) -> None:
        """Screen a patient for ketamine or esketamine treatment."""
        from ketacare.core.screening import input_schema, screen_document

        if schema:
            typer.echo(json.dumps(input_schema(), indent=2, ensure_ascii=False))
            return
        if file is None:
            fail("give the screening input FILE.json (or --schema to see its format)")
        site_policy = _read_policy(policy)
        doc = read_json_file(file, "screening input")
        decision: ScreeningDecision = run_guarded(screen_document, doc, policy=site_policy)
        if as_json:
            emit_json(decision.to_dict())
        else:
            _print_text(decision)
