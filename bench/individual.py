"""Simulation-estimation study of Bayesian individualisation, and fit time against a peer.

Draws virtual patients from the Perez-Ruixo 2021 esketamine model (published IIV), simulates
1, 2 or 4 sparse plasma samples with the published residual error (27.6% on the log scale),
fits each patient (MAP, ketacare.core.pharmacology.fit_individual) and reports, at unsampled
times, the bias (mean relative prediction error) and MAPE of individual predictions against
the population (typical) prediction, the prediction error of the patient's AUC, the
eta-shrinkage, and the fit time per patient.

Peer: the same MAP fit with scipy.optimize.minimize (BFGS, scipy's own finite-difference
gradient) on predictions from scipy.integrate.solve_ivp (LSODA, rtol 1e-8) instead of the
exact engine, on the same patients and samples.

    .venv/bin/python bench/individual.py [--n 500] [--peer-n 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy import integrate, optimize
from support import fit_timed  # noqa: E402

from ketacare.core.pharmacology import (
    Patient,
    Sample,
    fit_individual,
    load_model,
    parse_regimen,
    predict_at,
)
from ketacare.core.pharmacology.individual.problem import Problem
from ketacare.core.pharmacology.simulate import dose_inputs
from ketacare.core.pharmacology.system import build_matrices

MODEL = load_model(model_id="perez-ruixo-2021")
PATIENT = Patient(weight_kg=70, age_years=45)
SIGMA = 0.276
SCENARIOS = {
    "IV 20 mg/h x 4 h": (
        parse_regimen(
            {
                "doses": [
                    {"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_h": 20}
                ]
            },
            weight_kg=70,
        ),
        {1: [3.5], 2: [2.0, 6.0], 4: [1.0, 3.5, 6.0, 10.0]},
        [0.5, 1.5, 3.0, 4.5, 5.0, 8.0, 12.0, 24.0],
    ),
    "intranasal 56 mg": (
        parse_regimen(
            {"doses": [{"route": "intranasal", "start_h": 0, "amount_mg": 56}]}, weight_kg=70
        ),
        {1: [0.75], 2: [0.5, 3.0], 4: [0.25, 0.75, 2.0, 6.0]},
        [0.1, 0.33, 0.6, 1.0, 1.5, 4.0, 8.0, 12.0, 24.0],
    ),
    "oral 56 mg": (
        parse_regimen({"doses": [{"route": "oral", "start_h": 0, "amount_mg": 56}]}, weight_kg=70),
        {1: [0.75], 2: [0.5, 3.0], 4: [0.25, 0.75, 2.0, 6.0]},
        [0.1, 0.33, 0.6, 1.0, 1.5, 4.0, 8.0, 12.0, 24.0],
    ),
}


def _prior(regimen):
    return fit_individual(model=MODEL, patient=PATIENT, regimen=regimen, samples=[], n_draws=0)


def _auc(fit, regimen, etas):
    t = np.linspace(0.0, 72.0, 2881)
    c = predict_at(fit=fit, times_h=t, regimen=regimen, etas=np.atleast_2d(etas))
    return np.trapezoid(c, t, axis=1)


def study(n: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    times_per_fit: dict[str, list[float]] = {}
    print(
        f"\n## Simulation-estimation, {n} virtual patients per scenario and design (seed {seed})\n"
    )
    print(
        "| scenario | samples | bias ind | bias pop | MAPE ind | MAPE pop | pop/ind "
        "| AUC MAPE ind | AUC MAPE pop | shrinkage (informed etas) | ms/fit |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (regimen, designs, eval_t) in SCENARIOS.items():
        prior = _prior(regimen)
        eval_t = np.array(eval_t)
        etas = rng.standard_normal((n, prior.eta.size)) * prior.omega
        true_eval = predict_at(fit=prior, times_h=eval_t, etas=etas)
        pop = predict_at(fit=prior, times_h=eval_t)
        true_auc = _auc(prior, regimen, etas)
        pop_auc = _auc(prior, regimen, np.zeros(prior.eta.size))[0]
        for k, times in designs.items():
            true_obs = predict_at(fit=prior, times_h=times, etas=etas)
            obs = true_obs * np.exp(SIGMA * rng.standard_normal(true_obs.shape))
            est = np.empty_like(etas)
            spent = []
            for i in range(n):
                fit, seconds = fit_timed(
                    model=MODEL, patient=PATIENT, regimen=regimen, times=times, values=obs[i]
                )
                spent.append(seconds)
                est[i] = fit.eta
            informed = np.array(fit.informed)
            ind = predict_at(fit=prior, times_h=eval_t, etas=est)
            ind_pe = ind / true_eval - 1
            pop_pe = pop[None] / true_eval - 1
            ind_auc = _auc(prior, regimen, est)
            shrink = 1 - est.std(axis=0) / prior.omega
            shrink_txt = ", ".join(
                f"{nm} {s:.2f}"
                for nm, s, a in zip(prior.eta_names, shrink, informed, strict=True)
                if a
            )
            times_per_fit[f"{name} {k}"] = spent
            print(
                f"| {name} | {k} | {ind_pe.mean():+.3f} | {pop_pe.mean():+.3f} | "
                f"{np.abs(ind_pe).mean():.3f} | {np.abs(pop_pe).mean():.3f} | "
                f"{np.abs(pop_pe).mean() / np.abs(ind_pe).mean():.2f} | "
                f"{np.mean(np.abs(ind_auc / true_auc - 1)):.3f} | "
                f"{np.mean(np.abs(pop_auc / true_auc - 1)):.3f} | "
                f"{shrink_txt} | {1000 * np.median(spent):.1f} |"
            )
    return times_per_fit


# --- peer: the same posterior with solve_ivp predictions and scipy's own gradient -----------


class OdePeer:
    def __init__(self, regimen, samples):
        self.regimen = regimen
        self.problem = Problem(MODEL, PATIENT, regimen, samples, None)
        self.times = np.array([s.time_h for s in samples])
        self.log_y = np.log([s.value_ng_per_ml for s in samples])

    def predict(self, eta):
        params = self.problem.parameters(eta[None], self.problem.fit_model)
        system = build_matrices(self.problem.fit_model, params)
        a, c = system.a[0], system.c[0, 0]
        inputs = dose_inputs(model=self.problem.fit_model, regimen=self.regimen, params=params)
        breaks = sorted(
            {0.0, *[i.start_h for i in inputs], *[i.end_h for i in inputs], float(self.times.max())}
        )
        x = np.zeros(a.shape[0])
        out = np.empty(self.times.size)
        for s0, s1 in zip(breaks[:-1], breaks[1:], strict=True):
            for i in inputs:
                if i.start_h == i.end_h == s0:
                    x[i.state] += float(i.amount_mg[0])
            u = np.zeros_like(x)
            for i in inputs:
                if i.start_h <= s0 < i.end_h:
                    u[i.state] += float(i.amount_mg[0]) / (i.end_h - i.start_h)
            inside = (self.times > s0) & (self.times <= s1)
            sol = integrate.solve_ivp(
                lambda _t, y, u=u: a @ y + u,
                (s0, s1),
                x,
                method="LSODA",
                rtol=1e-8,
                atol=1e-12,
                t_eval=self.times[inside] if inside.any() else None,
            )
            if inside.any():
                out[inside] = c @ sol.y
            x = (
                sol.y[:, -1]
                if not inside.any() or sol.t[-1] == s1
                else integrate.solve_ivp(
                    lambda _t, y, u=u: a @ y + u, (s0, s1), x, method="LSODA", rtol=1e-8, atol=1e-12
                ).y[:, -1]
            )
        return out

    def fit(self, active):
        n = len(self.problem.names)
        omega = self.problem.omega

        def nlp(x):
            eta = np.zeros(n)
            eta[active] = x
            pred = np.maximum(self.predict(eta), 1e-6)
            return 0.5 * np.sum(((self.log_y - np.log(pred)) / SIGMA) ** 2) + 0.5 * np.sum(
                (x / omega[active]) ** 2
            )

        res = optimize.minimize(nlp, np.zeros(int(active.sum())), method="BFGS")
        eta = np.zeros(n)
        eta[active] = res.x
        return eta


def peer(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed + 100)
    regimen, designs, _ = SCENARIOS["IV 20 mg/h x 4 h"]
    times = designs[4]
    prior = _prior(regimen)
    etas = rng.standard_normal((n, prior.eta.size)) * prior.omega
    obs = predict_at(fit=prior, times_h=times, etas=etas) * np.exp(
        SIGMA * rng.standard_normal((n, len(times)))
    )
    t_k, t_p, diff = [], [], []
    for i in range(n):
        samples = [
            Sample(time_h=t, value_ng_per_ml=float(v)) for t, v in zip(times, obs[i], strict=True)
        ]
        t0 = time.perf_counter()
        fit = fit_individual(
            model=MODEL, patient=PATIENT, regimen=regimen, samples=samples, n_draws=0
        )
        t_k.append(time.perf_counter() - t0)
        p = OdePeer(regimen, samples)
        t0 = time.perf_counter()
        eta = p.fit(np.array(fit.informed))
        t_p.append(time.perf_counter() - t0)
        pk = predict_at(fit=fit, times_h=[2.0, 8.0, 24.0])
        pp = predict_at(fit=fit, times_h=[2.0, 8.0, 24.0], etas=eta[None])[0]
        diff.append(np.max(np.abs(pp / pk - 1)))
    k, q = 1000 * np.median(t_k), 1000 * np.median(t_p)
    print(f"\n## Fit time, IV 4 samples, {n} patients (median per fit)\n")
    print("| method | ms / fit | x slower than ketacare |")
    print("|---|---|---|")
    print(
        "| ketacare fit_individual (exact engine, batched central-difference gradient, "
        f"BFGS) | {k:.1f} | 1 |"
    )
    print(f"| scipy BFGS + solve_ivp LSODA rtol 1e-8 (peer) | {q:.1f} | {q / k:.0f} |")
    print(
        f"\nlargest relative difference of the two fits' predictions (2, 8, 24 h): {max(diff):.2e}"
    )
    # one 4-sample fit with 1000 importance-resampled posterior draws
    samples = [
        Sample(time_h=t, value_ng_per_ml=float(v)) for t, v in zip(times, obs[0], strict=True)
    ]
    t0 = time.perf_counter()
    fit_individual(model=MODEL, patient=PATIENT, regimen=regimen, samples=samples, n_draws=1000)
    print(
        "one fit with 1000 importance-resampled posterior draws: "
        f"{1000 * (time.perf_counter() - t0):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--peer-n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    study(args.n, args.seed)
    peer(args.peer_n, args.seed)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
