"""CLI commands of the instruments domain: ``ketacare instruments`` and ``ketacare score``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ketacare.commands.common import emit_json, fail, parse_json_option, run_guarded

if TYPE_CHECKING:
    from ketacare.core.instruments import ScoreResult


def _library_rows() -> list[dict[str, Any]]:
    from ketacare.core.instruments import list_instruments

    rows = []
    for inst in list_instruments():
        rows.append(
            {
                "id": inst.id,
                "version": inst.version,
                "title": inst.title,
                "licence": inst.licence.case,
                "licence_holder": inst.licence.holder,
                "source": inst.primary_source.citation,
                "source_url": inst.primary_source.url,
                "scored": inst.scoring.method != "not_available",
                "needs_sex": inst.requires_sex,
                "loinc_panel": inst.loinc_panel,
                "loinc_total": inst.loinc_total,
                "items": list(inst.item_ids),
            }
        )
    return rows


def instruments_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """List the instrument library: id, version, licence, source and title."""
    rows = _library_rows()
    if json_output:
        emit_json(rows)
        return
    for row in rows:
        note = "" if row["scored"] else "  [not scored: see docs]"
        print(f"{row['id']:<16} {row['version']:<7} {row['licence']:<12} {row['title']}{note}")
        print(f"{'':<16} source: {row['source']}")


def _text_report(result: ScoreResult, title: str) -> str:
    lines = [f"{title} ({result.instrument} {result.version})"]
    if result.total is not None:
        lines.append(f"total: {result.total}")
    if result.band is not None:
        lines.append(f"band: {result.band} ({result.band_label})")
    for name, value in result.subscores.items():
        lines.append(f"{name}: {'not computed' if value is None else value}")
    for detail in result.flag_details:
        lines.append(f"FLAG {detail['id']}: {detail['message']}")
    if result.missing:
        lines.append(f"missing: {', '.join(result.missing)}")
    lines.extend(f"note: {note}" for note in result.notes)
    return "\n".join(lines)


def score_command(
    instrument: str = typer.Argument(
        ..., help="Instrument id, e.g. phq9 (see `ketacare instruments`)."
    ),
    answers: str = typer.Option(
        ...,
        "--answers",
        help="JSON array of raw responses in item order (null if missing), "
        "or an object keyed by item id.",
    ),
    sex: str | None = typer.Option(None, "--sex", help="F or M (needed by ort and auditc)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Score a completed instrument; bad input exits 2 with one line on stderr."""
    from ketacare.core.instruments import get_instrument, score

    parsed = parse_json_option(answers, "--answers")
    if not isinstance(parsed, list | dict):
        fail("--answers must be a JSON array in item order or a JSON object keyed by item id")
    result: ScoreResult = run_guarded(score, instrument, parsed, sex=sex)
    if json_output:
        emit_json(result.to_dict())
        return
    print(_text_report(result, get_instrument(instrument).short_title))


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `ketacare` app."""
    app.command("instruments")(instruments_command)
    app.command("score")(score_command)
