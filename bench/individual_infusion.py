"""Sparse draws after a 4-hour IV infusion: is Bayesian individualisation worth it?

The question a CRPS infusion clinic asks: the lab can draw one, two or four venous samples
around the end of a 4-hour infusion (before the patient leaves, or the next morning before
the next day's infusion). Does fitting them to the patient (MAP, ``fit_individual``) predict
this patient's concentrations better than the population (typical) curve, the named peer?

1. The library is searched for every model of each molecule with an IV infusion route, and
   each is listed with whether it has the published inter-individual variability and
   residual error that individualisation needs. A molecule with none is reported as such:
   its clinic can only use the population curve.
2. For the chosen model (default: every model that has both), 500 virtual patients are drawn
   from the published variability; each gets the design's samples with the published
   log-normal residual error; each is fitted; predictions at times that were **not**
   sampled (during the infusion, after it, the next day) are compared with the true,
   noise-free concentrations. The model is linear, so relative errors do not depend on
   the infusion rate.

Reported per design: bias and MAPE of the individual and the population prediction, their
ratio (pop/ind: how many times smaller the individual error is than the peer's), the MAPE
of the 0-24 h AUC, and the eta-shrinkage. A ratio of 2 (error halved) is the bar the
project set for "worth doing".

    .venv/bin/python bench/individual_infusion.py [--model ID] [--n 500] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from support import fit_timed  # noqa: E402

from ketacare.core.errors import KetacareError
from ketacare.core.pharmacology import (
    Patient,
    fit_individual,
    list_models,
    load_model,
    parse_regimen,
    predict_at,
    published_residual_error,
)
from ketacare.core.pharmacology.models import Model

PATIENT = Patient(weight_kg=70, age_years=45)
INFUSION_H = 4.0
RATE_MG_PER_H = 20.0
#: Draw times (h from the start of the 4-h infusion). 4.0 is the end of the infusion, before
#: the line is disconnected; 5.0 and 6.0 are the end of a 1- or 2-hour observation before
#: discharge; 24.0 is the next morning, before the next day's infusion of a daily course.
DESIGNS: dict[str, list[float]] = {
    "1: end of infusion": [4.0],
    "2: end, +1 h": [4.0, 5.0],
    "4: end, +0.5, +1, +2 h": [4.0, 4.5, 5.0, 6.0],
    "2: end, next morning": [4.0, 24.0],
    "4: end, +1, +2 h, next morning": [4.0, 5.0, 6.0, 24.0],
    # Not a clinic's design: a study-grade schedule, to see whether any sampling reaches x2.
    "8: during, end, after, next morning": [0.5, 1.5, 2.5, 4.0, 4.5, 5.0, 6.0, 24.0],
}
#: Times the predictions are judged at: none of them is sampled in any design.
EVAL_H = [1.0, 2.0, 3.0, 3.75, 4.25, 5.5, 8.0, 12.0, 18.0]
AUC_GRID_H = np.linspace(0.0, 24.0, 961)


@dataclass(frozen=True)
class Row:
    design: str
    bias_ind: float
    bias_pop: float
    mape_ind: float
    mape_pop: float
    auc_ind: float
    auc_pop: float
    shrinkage: str
    ms_per_fit: float

    @property
    def ratio(self) -> float:
        return self.mape_pop / self.mape_ind


def individualisable(model: Model) -> tuple[bool, str]:
    """Whether ``model`` can be individualised, and if not, why (the library's own refusal)."""
    if not model.has_variability:
        return False, "no published inter-individual variability"
    try:
        published_residual_error(model=model)
    except KetacareError:
        return False, "no published residual error"
    return True, "published variability and residual error"


def library_report(console: Console) -> list[str]:
    """Print every IV-infusion model by molecule; return the ids that can be individualised."""
    table = Table(title="IV infusion models in the library")
    for col in ("molecule", "model", "verified", "individualisation"):
        table.add_column(col)
    usable = []
    molecules = sorted({m.molecule for m in list_models()})
    for molecule in molecules:
        models = [m for m in list_models() if m.molecule == molecule and "iv_infusion" in m.routes]
        for m in models:
            ok, why = individualisable(m)
            table.add_row(molecule, m.id, "yes" if m.verified else "no", why)
            if ok:
                usable.append(m.id)
        if not any(individualisable(m)[0] for m in models):
            table.add_row(molecule, "-", "-", "[bold]none: population curve only[/bold]")
    console.print(table)
    return usable


def _regimen():
    return parse_regimen(
        {
            "doses": [
                {
                    "route": "iv_infusion",
                    "start_h": 0,
                    "duration_h": INFUSION_H,
                    "rate_mg_per_h": RATE_MG_PER_H,
                }
            ]
        },
        weight_kg=PATIENT.weight_kg,
    )


def study(model: Model, n: int, seed: int, progress: Progress) -> tuple[list[Row], float]:
    """The simulation-estimation study for one model; returns its rows and sigma."""
    regimen = _regimen()
    sigma = published_residual_error(model=model).plasma_log_sd
    if sigma is None:
        raise SystemExit(f"{model.id}: no published residual error for the parent drug")
    prior = fit_individual(model=model, patient=PATIENT, regimen=regimen, samples=[], n_draws=0)
    rng = np.random.default_rng(seed)
    etas = rng.standard_normal((n, prior.eta.size)) * prior.omega
    eval_t = np.array(EVAL_H)
    true_eval = predict_at(fit=prior, times_h=eval_t, etas=etas)
    pop_eval = predict_at(fit=prior, times_h=eval_t)
    true_auc = np.trapezoid(predict_at(fit=prior, times_h=AUC_GRID_H, etas=etas), AUC_GRID_H)
    pop_auc = np.trapezoid(predict_at(fit=prior, times_h=AUC_GRID_H), AUC_GRID_H)
    pop_pe = pop_eval / true_eval - 1
    rows = []
    for design, times in DESIGNS.items():
        obs = predict_at(fit=prior, times_h=times, etas=etas)
        obs = obs * np.exp(sigma * rng.standard_normal(obs.shape))
        est = np.empty_like(etas)
        spent = []
        informed = np.zeros(prior.eta.size, dtype=bool)
        task = progress.add_task(f"{model.id} | {design}", total=n)
        for i in range(n):
            fit, seconds = fit_timed(
                model=model, patient=PATIENT, regimen=regimen, times=times, values=obs[i]
            )
            spent.append(seconds)
            est[i] = fit.eta
            informed = np.array(fit.informed)
            progress.advance(task)
        ind_pe = predict_at(fit=prior, times_h=eval_t, etas=est) / true_eval - 1
        ind_auc = np.trapezoid(predict_at(fit=prior, times_h=AUC_GRID_H, etas=est), AUC_GRID_H)
        shrink = 1 - est.std(axis=0) / prior.omega
        rows.append(
            Row(
                design=design,
                bias_ind=float(ind_pe.mean()),
                bias_pop=float(pop_pe.mean()),
                mape_ind=float(np.abs(ind_pe).mean()),
                mape_pop=float(np.abs(pop_pe).mean()),
                auc_ind=float(np.mean(np.abs(ind_auc / true_auc - 1))),
                auc_pop=float(np.mean(np.abs(pop_auc / true_auc - 1))),
                shrinkage=", ".join(
                    f"{nm} {s:.2f}"
                    for nm, s, a in zip(prior.eta_names, shrink, informed, strict=True)
                    if a
                ),
                ms_per_fit=1000 * float(np.median(spent)),
            )
        )
    return rows, sigma


def report(console: Console, model: Model, rows: list[Row], sigma: float, n: int, seed: int):
    console.print(
        f"\n## {model.id} ({model.molecule}): {RATE_MG_PER_H:g} mg/h for {INFUSION_H:g} h, "
        f"{PATIENT.weight_kg:g} kg, {PATIENT.age_years} y; {n} virtual patients per design, "
        f"seed {seed}; residual SD {sigma} (log scale, published); judged at "
        f"{', '.join(f'{t:g}' for t in EVAL_H)} h\n"
    )
    console.print(
        "| draws (h after start: 4 = end of infusion) | bias ind | bias pop (peer) | MAPE ind "
        "| MAPE pop (peer) | pop/ind | AUC0-24 MAPE ind | AUC0-24 MAPE pop | shrinkage "
        "(informed etas) | ms/fit |"
    )
    console.print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        console.print(
            f"| {r.design} ({', '.join(f'{t:g}' for t in DESIGNS[r.design])}) | "
            f"{r.bias_ind:+.3f} | {r.bias_pop:+.3f} | {r.mape_ind:.3f} | {r.mape_pop:.3f} | "
            f"{r.ratio:.2f} | {r.auc_ind:.3f} | {r.auc_pop:.3f} | {r.shrinkage} | "
            f"{r.ms_per_fit:.1f} |",
            highlight=False,
        )
    best = max(rows, key=lambda r: r.ratio)
    verdict = "meets" if best.ratio >= 2 else "does not meet"
    console.print(
        f"\nbest design: {best.design} (pop/ind {best.ratio:.2f}); it {verdict} the x2 bar "
        "(individual error half the population error)",
        highlight=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", action="append", help="model id (repeatable); default: all")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    console = Console(soft_wrap=True)
    usable = library_report(console)
    ids = args.model or usable
    models = []
    for model_id in ids:
        model = load_model(model_id=model_id)
        ok, why = individualisable(model)
        if not ok:
            console.print(f"{model_id}: cannot be individualised ({why}); skipped")
            continue
        models.append(model)
    if not models:
        console.print("no model to study")
        sys.exit(2)
    t0 = time.perf_counter()
    results = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        for model in models:
            rows, sigma = study(model, args.n, args.seed, progress)
            results.append((model, rows, sigma))
    for model, rows, sigma in results:
        report(console, model, rows, sigma, args.n, args.seed)
    console.print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
