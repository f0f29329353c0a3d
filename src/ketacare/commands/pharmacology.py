"""CLI commands of the pharmacology domain: ``ketacare models`` and ``ketacare simulate``."""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ketacare.commands.common import (
    emit_json,
    fail,
    read_json_file,
    require_suffix,
    run_guarded,
    save_plot,
)
from ketacare.core.errors import ClinicalWarning

if TYPE_CHECKING:
    from ketacare.core.pharmacology import (
        Model,
        Patient,
        PopulationResult,
        Regimen,
        Simulation,
    )

#: Populations at least this large show a progress bar (on stderr, never with --json).
PROGRESS_FROM = 2000


def _model_entry(model: Model) -> dict[str, Any]:
    source = model.primary_source
    return {
        "id": model.id,
        "name": model.name,
        "molecule": model.molecule,
        "metabolite": model.metabolite,
        "routes": list(model.routes),
        "effect_sites": [site.id for site in model.effect_sites],
        "source": source.citation,
        "doi": source.doi,
        "url": source.url,
        "verified": model.verified,
        "population_variability": model.has_variability,
    }


def models_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """List the PK/PD model library: id, molecule, routes, source."""
    from ketacare.core.pharmacology.models import list_models

    entries = [_model_entry(m) for m in run_guarded(list_models)]
    if as_json:
        emit_json(entries)
        return
    for e in entries:
        flag = "" if e["verified"] else "  [primary source unverified]"
        typer.echo(f"{e['id']}: {e['molecule']}; routes {', '.join(e['routes'])}{flag}")
        typer.echo(f"    {e['source']}")


def _protocol_regimen(protocol_id: str, weight_kg: float) -> dict[str, Any]:
    """A protocol's regimen in the JSON form, under the clinic's protocol policy
    (KETACARE_PROTOCOL_POLICY_FILE): a protocol with unset hard ceilings exits 2."""
    from ketacare.commands.protocols import cli_protocol_policy
    from ketacare.core.protocols import load_library, protocol_regimen

    policy = cli_protocol_policy(None, run_guarded(load_library))
    regimen: dict[str, Any] = run_guarded(
        protocol_regimen, protocol_id=protocol_id, weight_kg=weight_kg, site_policy=policy
    )
    return regimen


def _curves_document(
    model: Model, patient: Patient, sim: Simulation, pop: PopulationResult | None
) -> dict[str, Any]:
    effect_id = model.effect_sites[0].id if model.effect_sites else None
    m = sim.metrics
    return {
        "model": model.id,
        "molecule": model.molecule,
        "patient": {
            "weight_kg": patient.weight_kg,
            "age_years": patient.age_years,
            "sex": patient.sex,
        },
        "time_h": sim.time_h,
        "plasma_ng_per_ml": sim.plasma_ng_per_ml,
        "effect_ng_per_ml": None if effect_id is None else sim.effect_ng_per_ml[effect_id],
        "norketamine_ng_per_ml": sim.metabolite_ng_per_ml,
        "effect_site": effect_id,
        "metabolite": model.metabolite,
        "metrics": {
            "cmax_ng_per_ml": m.cmax_ng_per_ml,
            "tmax_h": m.tmax_h,
            "auc_ng_h_per_ml": m.auc_ng_h_per_ml,
            "total_dose_mg": m.total_dose_mg,
            "auc_by_day_ng_h_per_ml": list(m.auc_by_day_ng_h_per_ml),
        },
        "population": None
        if pop is None
        else {
            "n": pop.n,
            "seed": pop.seed,
            "p05": pop.plasma_ng_per_ml[0],
            "p50": pop.plasma_ng_per_ml[1],
            "p95": pop.plasma_ng_per_ml[2],
        },
    }


def _write_csv(path: Path, doc: dict[str, Any], sim: Simulation, model: Model) -> None:
    columns: dict[str, Any] = {"time_h": sim.time_h, "plasma_ng_per_ml": sim.plasma_ng_per_ml}
    for site, curve in sim.effect_ng_per_ml.items():
        columns[f"effect_{site}_ng_per_ml"] = curve
    if sim.metabolite_ng_per_ml is not None:
        columns[f"{model.metabolite}_ng_per_ml"] = sim.metabolite_ng_per_ml
    if doc["population"] is not None:
        for key in ("p05", "p50", "p95"):
            columns[f"plasma_{key}_ng_per_ml"] = doc["population"][key]
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in zip(*columns.values(), strict=True):
                writer.writerow([f"{float(v):.6g}" for v in row])
    except OSError as exc:
        fail(f"cannot write CSV {path}: {exc.strerror or exc}")


def _write_plot(path: Path, sim: Simulation, model: Model, pop: PopulationResult | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = sim.time_h[-1] > 72
    scale = 24.0 if days else 1.0
    t = sim.time_h / scale
    fig, (ax, ax_eff) = plt.subplots(
        2, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    if pop is not None:
        ax.fill_between(
            t,
            pop.plasma_ng_per_ml[0],
            pop.plasma_ng_per_ml[2],
            color="tab:blue",
            alpha=0.2,
            label=f"plasma 5th-95th percentile (n={pop.n})",
        )
        ax.plot(t, pop.plasma_ng_per_ml[1], color="tab:blue", lw=0.8, ls=":", label="plasma median")
    ax.plot(t, sim.plasma_ng_per_ml, color="tab:blue", lw=1.4, label=f"plasma {model.molecule}")
    if sim.metabolite_ng_per_ml is not None:
        ax.plot(
            t,
            sim.metabolite_ng_per_ml,
            color="tab:orange",
            lw=1.2,
            label=f"plasma {model.metabolite} (apparent)",
        )
    ax.set_ylabel("concentration (ng/mL)")
    ax.set_title(
        f"{model.name}\ntypical patient; every curve exact for piecewise-constant dosing",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    colors = ["tab:green", "tab:red", "tab:purple"]
    for (site, curve), color in zip(sim.effect_ng_per_ml.items(), colors, strict=False):
        ax_eff.plot(t, curve, color=color, lw=1.2, label=f"effect site: {site}")
        spec = next(s for s in model.effect_sites if s.id == site)
        if spec.c50 is not None:
            c50 = model.parameter(spec.c50).value
            ax_eff.axhline(c50, color=color, ls="--", lw=0.8, label=f"C50 {site} {c50:g} ng/mL")
    ax_eff.set_ylabel("effect-site conc. (ng/mL)")
    ax_eff.set_xlabel("time (days)" if days else "time (h)")
    ax_eff.grid(alpha=0.3)
    if sim.effect_ng_per_ml:
        ax_eff.legend(fontsize=8, loc="upper right")
    save_plot(figure=fig, path=path)


def _run_population(
    model: Model,
    patient: Patient,
    regimen: Regimen,
    n: int,
    seed: int,
    hours: float,
    step_min: float,
    show_progress: bool,
) -> PopulationResult:
    kwargs: dict[str, Any] = {
        "model": model,
        "patient": patient,
        "regimen": regimen,
        "n": n,
        "seed": seed,
        "hours": hours,
        "step_min": step_min,
        "workers": os.cpu_count() or 1,
    }
    from ketacare.core.pharmacology import simulate_population

    if not show_progress:
        result: PopulationResult = run_guarded(simulate_population, **kwargs)
        return result
    from rich.progress import Progress

    with Progress(transient=True, console=None) as bar:
        task = bar.add_task(f"simulating {n} patients", total=1)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run_guarded(simulate_population, progress=progress, **kwargs)
    return result


def simulate_command(
    model_id: str = typer.Option(..., "--model", help="Model id (see `ketacare models`)."),
    weight: float = typer.Option(..., "--weight", help="Body weight (kg)."),
    age: float | None = typer.Option(None, "--age", help="Age (years)."),
    sex: str | None = typer.Option(None, "--sex", help="F or M."),
    regimen_file: Path | None = typer.Option(None, "--regimen", help="Regimen JSON file."),
    protocol: str | None = typer.Option(None, "--protocol", help="Protocol id."),
    hours: float | None = typer.Option(
        None, "--hours", help="Simulated time (h); default: last dose + 24 h."
    ),
    step_min: float = typer.Option(1.0, "--step-min", help="Output step (minutes)."),
    population: int | None = typer.Option(
        None, "--population", help="Virtual patients for the 5-95% band."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the population sampler."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write the curves as CSV."),
    plot_path: Path | None = typer.Option(None, "--plot", help="Write a PNG plot."),
) -> None:
    """Simulate plasma, effect-site and metabolite concentrations for one patient."""
    from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate

    if (regimen_file is None) == (protocol is None):
        fail("give exactly one of --regimen FILE or --protocol ID")
    if sex is not None and sex not in ("F", "M"):
        fail(f"--sex must be F or M, got {sex!r}")
    if plot_path is not None:
        require_suffix(path=plot_path, option="--plot", suffix=".png")
    model = run_guarded(load_model, model_id=model_id)
    patient = Patient(weight_kg=weight, age_years=age, sex=sex)
    if regimen_file is not None:
        raw = read_json_file(regimen_file, "regimen file")
    else:
        assert protocol is not None
        from ketacare.core.protocols.regimen import refuse_other_treatment

        run_guarded(refuse_other_treatment, model=model, protocol_id=protocol)
        raw = _protocol_regimen(protocol, weight)
    regimen = run_guarded(parse_regimen, raw, weight_kg=weight)
    total_hours = hours if hours is not None else regimen.end_h + 24.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClinicalWarning)
        sim = run_guarded(
            simulate,
            model=model,
            patient=patient,
            regimen=regimen,
            hours=total_hours,
            step_min=step_min,
        )
        pop = None
        if population is not None:
            pop = _run_population(
                model,
                patient,
                regimen,
                population,
                seed,
                total_hours,
                step_min,
                show_progress=population >= PROGRESS_FROM and not as_json,
            )
    for message in dict.fromkeys(
        str(w.message) for w in caught if issubclass(w.category, ClinicalWarning)
    ):
        typer.echo(f"warning: {message}", err=True)
    doc = _curves_document(model, patient, sim, pop)
    if csv_path is not None:
        _write_csv(csv_path, doc, sim, model)
    if plot_path is not None:
        _write_plot(plot_path, sim, model, pop)
    if as_json:
        emit_json(doc)
        return
    m = sim.metrics
    typer.echo(
        f"{model.id} ({model.molecule}), {weight:g} kg, {len(regimen.doses)} doses, "
        f"{m.total_dose_mg:g} mg in total"
    )
    typer.echo(
        f"  Cmax {m.cmax_ng_per_ml:.4g} ng/mL at {m.tmax_h:.3g} h; "
        f"AUC 0-{total_hours:g} h {m.auc_ng_h_per_ml:.4g} ng*h/mL"
    )
    if pop is not None:
        peak = pop.plasma_ng_per_ml.max(axis=1)
        typer.echo(
            f"  population n={pop.n}: peak of the 5th/50th/95th percentile curves "
            f"{peak[0]:.4g} / {peak[1]:.4g} / {peak[2]:.4g} ng/mL"
        )


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `ketacare` app."""
    app.command("models")(models_command)
    app.command("simulate")(simulate_command)


__all__ = ["register"]
