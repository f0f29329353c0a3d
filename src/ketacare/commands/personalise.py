"""CLI command ``ketacare personalise FILE.json [--json] [--plot F.png]``.

The command reads the input file and its options, prints and plots; the checking of
the input and the computation are the core's
(:mod:`ketacare.core.pharmacology.personalise`), shared with the Personalise page. It
prints this patient's individual parameters with their uncertainty, the predicted
curves with credible bands, the response fit, the recommendations and the conversions
(see docs/personalisation.md, "Command line").

Every check of the input happens before any computation, so that bad input exits 2
with one line on stderr naming the field and what is allowed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ketacare.commands.common import (
    emit_json,
    fail,
    read_json_file,
    require_suffix,
    save_plot,
)
from ketacare.core.errors import KetacareError

if TYPE_CHECKING:
    import numpy as np

    from ketacare.core.pharmacology.personalise import PersonaliseOutcome

# --------------------------------------------------------------------------------------
# human output and plot
# --------------------------------------------------------------------------------------


def _g(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _print_human(out: PersonaliseOutcome) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    r, fit = out.request, out.fit
    age = "" if r.patient.age_years is None else f", {r.patient.age_years:g} years"
    blq = sum(1 for s in r.samples if s.below_lloq)
    console.print(
        f"[bold]{r.model.id}[/bold] ({r.model.molecule}); {r.patient.weight_kg:g} kg{age}; "
        f"{len(r.regimen.doses)} doses, {r.regimen.total_dose_mg:g} mg; "
        f"{len(r.samples)} samples ({blq} below the LLOQ)"
    )
    ess = "" if fit.effective_sample_size is None else f", ESS {fit.effective_sample_size:.0f}"
    console.print(
        f"MAP fit {'converged' if fit.converged else 'NOT converged'}; "
        f"{fit.draws.shape[0]} posterior draws ({fit.sampling}{ess})"
    )
    table = Table(title="Individual parameters (90% credible interval)")
    for col in ("parameter", "unit", "typical", "estimate", "5th", "95th", "SD ratio", "informed"):
        table.add_column(col, justify="left" if col in ("parameter", "unit") else "right")
    for p in fit.parameters:
        table.add_row(
            p.name,
            p.unit,
            _g(p.typical),
            _g(p.estimate),
            _g(p.p05),
            _g(p.p95),
            f"{p.sd_ratio:.2f}",
            "yes" if p.informed else "prior",
        )
    console.print(table)
    if r.samples:
        st = Table(title="Samples against the fit")
        for col in ("time h", "analyte", "measured ng/mL", "MAP ng/mL", "90% band"):
            st.add_column(col, justify="left" if col == "analyte" else "right")
        for i, s in enumerate(r.samples):
            measured = f"< {s.lloq_ng_per_ml:g} (BLQ)" if s.below_lloq else _g(s.value_ng_per_ml)
            band = (
                "-"
                if out.sample_band is None
                else f"{_g(out.sample_band[0, i])}-{_g(out.sample_band[2, i])}"
            )
            st.add_row(f"{s.time_h:g}", s.analyte, measured, _g(out.sample_pred[i]), band)
        console.print(st)
    pred = out.prediction
    line = (
        f"predicted over 0-{pred.time_h[-1]:g} h: peak {_g(float(pred.plasma_ng_per_ml.max()))} "
        f"ng/mL, AUC {_g(pred.auc_ng_h_per_ml)} ng*h/mL"
    )
    if r.ceiling_ng_per_ml is not None:
        prob = pred.probability_above(r.ceiling_ng_per_ml)
        line += f"; P(peak > {r.ceiling_ng_per_ml:g} ng/mL) {_g(prob, 2)}"
    console.print(line)
    if out.response is not None:
        rf = out.response
        console.print(
            f"response (exploratory, {rf.effect_site}): C50 {_g(rf.c50_ng_per_ml)} ng/mL "
            f"(90% {_g(rf.c50_p05)}-{_g(rf.c50_p95)}; population {rf.c50_population_ng_per_ml:g})"
        )
        for text in rf.assumed:
            console.print(f"  assumed: {text}")
    if r.protocol is not None:
        console.print(f"protocol {r.protocol.id}: {r.protocol.title}")
        for b in out.limits:
            value = "not configured" if b.value is None else f"{b.value:g} {b.unit}"
            console.print(f"  {b.key} {b.level}: {value} ({b.basis})")
    if out.recommendations:
        rt = Table(title="Recommendations")
        for col in ("option", "dose mg", "metric p50 (5th-95th)", "status", "P(peak>ceiling)"):
            rt.add_column(col, justify="left" if col in ("option", "status") else "right")
        for rec in out.recommendations:
            status = rec.status + ("" if rec.reached else " (target not reached)")
            rt.add_row(
                rec.label,
                _g(rec.dose_mg),
                f"{_g(rec.predicted_p50)} ({_g(rec.predicted_p05)}-{_g(rec.predicted_p95)})",
                status,
                _g(rec.probability_above_ceiling, 2),
            )
        console.print(rt)
        metrics = sorted({rec.metric for rec in out.recommendations})
        console.print(f"metric: {', '.join(metrics)}")
        for rec in out.recommendations:
            for f in rec.findings:
                console.print(f"  [{f.level}] {rec.label}: {f.message}")
    if out.conversions:
        ct = Table(title="Route conversions (matched parent AUC)")
        for col in ("from", "to", "model mg p50 (5th-95th)", "published-F mg", "metabolite x"):
            ct.add_column(col, justify="left" if col in ("from", "to") else "right")
        for c in out.conversions:
            model_mg = (
                "-"
                if c.model_dose_p50 is None
                else f"{_g(c.model_dose_p50)} ({_g(c.model_dose_p05)}-{_g(c.model_dose_p95)})"
            )
            lit = (
                "-"
                if c.literature_dose_p50 is None
                else f"{_g(c.literature_dose_p50)} ({_g(c.literature_dose_p05)}-"
                f"{_g(c.literature_dose_p95)})"
            )
            ct.add_row(
                f"{c.from_route} {c.from_dose_mg:g} mg",
                c.to_route,
                model_mg,
                lit,
                _g(c.metabolite_auc_ratio_p50),
            )
        console.print(ct)
        for c in out.conversions:
            for note in c.notes:
                console.print(f"  note: {note}")
    for message in out.warnings:
        console.print(f"[yellow]warning:[/yellow] {message}")


def _write_plot(path: Path, out: PersonaliseOutcome) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r, pred = out.request, out.prediction
    days = pred.time_h[-1] > 72
    scale = 24.0 if days else 1.0
    t = pred.time_h / scale
    panels: list[str] = ["plasma"]
    if pred.metabolite_ng_per_ml is not None:
        panels.append("metabolite")
    if pred.effect_ng_per_ml:
        panels.append("effect")
    if out.response_prediction is not None:
        panels.append("response")
    heights = [3] + [2] * (len(panels) - 1)
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(10, 3 + 2.2 * len(panels)),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    by_panel = dict(zip(panels, axes[:, 0], strict=True))

    def curve(ax: Any, line: np.ndarray, band: np.ndarray | None, color: str, name: str) -> None:
        if band is not None:
            ax.fill_between(t, band[0], band[2], color=color, alpha=0.2, label=f"{name} 90% band")
        ax.plot(t, line, color=color, lw=1.5, label=f"{name} (MAP)")

    def points(ax: Any, analyte: str, color: str) -> None:
        measured = [s for s in r.samples if s.analyte == analyte and not s.below_lloq]
        blq = [s for s in r.samples if s.analyte == analyte and s.below_lloq]
        if measured:
            ax.plot(
                [s.time_h / scale for s in measured],
                [s.value_ng_per_ml for s in measured],
                "o",
                color=color,
                mec="black",
                ms=7,
                label="measured",
            )
        if blq:
            ax.plot(
                [s.time_h / scale for s in blq],
                [s.lloq_ng_per_ml for s in blq],
                "o",
                mfc="none",
                mec=color,
                mew=1.5,
                ms=8,
                label="below LLOQ (drawn at the LLOQ)",
            )

    ax = by_panel["plasma"]
    curve(ax, pred.plasma_ng_per_ml, pred.plasma_band, "tab:blue", r.model.molecule)
    ax.plot(
        t, pred.typical_plasma_ng_per_ml, color="grey", ls="--", lw=1, label="population typical"
    )
    points(ax, "plasma", "tab:blue")
    if r.ceiling_ng_per_ml is not None:
        ax.axhline(r.ceiling_ng_per_ml, color="tab:red", ls=":", lw=1, label="ceiling")
    ax.set_ylabel("plasma (ng/mL)")
    ax.set_title(
        f"{r.model.name}\nindividual fit: MAP curve, 90% credible band, measured levels",
        fontsize=10,
    )
    if "metabolite" in by_panel and pred.metabolite_ng_per_ml is not None:
        ax = by_panel["metabolite"]
        name = r.model.metabolite or "metabolite"
        curve(ax, pred.metabolite_ng_per_ml, pred.metabolite_band, "tab:orange", name)
        points(ax, "metabolite", "tab:orange")
        ax.set_ylabel(f"{name} (ng/mL)")
    if "effect" in by_panel:
        ax = by_panel["effect"]
        colors = ["tab:green", "tab:purple", "tab:brown"]
        for (site, line), color in zip(pred.effect_ng_per_ml.items(), colors, strict=False):
            curve(ax, line, pred.effect_band.get(site), color, f"effect site {site}")
        ax.set_ylabel("effect site (ng/mL)")
    if "response" in by_panel and out.response_prediction is not None and r.response:
        ax = by_panel["response"]
        rp = out.response_prediction
        tt = rp.time_h / scale
        ax.fill_between(tt, rp.nrs_p05, rp.nrs_p95, color="tab:red", alpha=0.15, label="90% band")
        ax.plot(tt, rp.nrs_median, color="tab:red", lw=1.3, label="predicted NRS (exploratory)")
        ax.plot(
            [s.time_h / scale for s in r.response.scores],
            [s.nrs for s in r.response.scores],
            "s",
            color="tab:red",
            mec="black",
            label="pain scores",
        )
        ax.set_ylim(0, 10)
        ax.set_ylabel("pain NRS")
    for ax in by_panel.values():
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (days)" if days else "time (h)")
    save_plot(figure=fig, path=path)


# --------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------


def personalise_command(
    file: Path = typer.Argument(..., help="Personalisation input (JSON).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    plot_path: Path | None = typer.Option(None, "--plot", help="Write a PNG plot of the fit."),
    site_policy: Path | None = typer.Option(
        None, "--site-policy", help="The clinic's site-policy limits (TOML) for the protocol."
    ),
) -> None:
    """Fit this patient's PK from measured levels; recommend and convert regimens."""
    from ketacare.core.pharmacology.personalise import compute, parse_request, to_document
    from ketacare.core.protocols import load_library, load_site_policy

    if plot_path is not None:
        require_suffix(path=plot_path, option="--plot", suffix=".png")
    raw = read_json_file(file, "personalisation input")
    try:
        request = parse_request(doc=raw)
        policy = None
        if site_policy is not None:
            if request.protocol is None:
                fail("--site-policy applies to a protocol: the input names none (field protocol)")
            policy = load_site_policy(path=site_policy, library=load_library())
        out = compute(request=request, site_policy=policy)
    except KetacareError as exc:
        fail(str(exc))
    if plot_path is not None:
        _write_plot(plot_path, out)
    if as_json:
        emit_json(to_document(outcome=out))
    else:
        _print_human(out)


def register(app: typer.Typer) -> None:
    """Add ``ketacare personalise`` to the app."""
    app.command("personalise")(personalise_command)


__all__ = ["register"]
