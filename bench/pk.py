"""Pharmacology engine benchmark: ketacare vs opentiva, PyTCI and scipy solve_ivp, in one run.

Model: Domino (racemic ketamine, opentiva's constants), 70 kg. Regimens:
  crps10d  0.35 mg/kg/h for 4 h daily x 10 days, 240 h simulated (980 mg)
  single   0.5 mg/kg over 40 min, 24 h simulated
Output every minute unless stated. Prints per-patient time, concentration points per second
and ratios against ketacare, all measured in this run. The 10,000-patient population uses a
benchmark-only 30% CV on every Domino parameter (the model has no published variability).

Run: .venv/bin/python bench/pk.py [--quick]
PyTCI is optional (pip install PyTCI into the bench environment); opentiva must be installed.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate
from ketacare.core.pharmacology.engine import evaluate_grid
from ketacare.core.pharmacology.population import simulate_population
from ketacare.core.pharmacology.simulate import _system_and_plan, simulate_reference
from ketacare.core.pharmacology.system import sample_parameters

warnings.simplefilter("ignore")

WEIGHT = 70.0
K = {"k10": 0.4381, "k12": 0.5921, "k13": 0.5900, "k21": 0.2470, "k31": 0.0146, "ke0": 0.652}
V1 = 0.063 * WEIGHT
MODEL = load_model(model_id="domino")
REGIMENS = {
    "crps10d": (
        [(24 * 3600 * d, 0.35 * WEIGHT * 4, 4 * 3600) for d in range(10)],
        240 * 3600,
    ),
    "single": ([(0, 35.0, 2400)], 24 * 3600),
}
BENCH_OMEGA = {
    name: math.sqrt(math.log1p(0.3**2)) for name in ("V1", "k10", "k12", "k13", "k21", "k31")
}


def regimen_json(name: str) -> dict[str, object]:
    infusions, _ = REGIMENS[name]
    return {
        "doses": [
            {"route": "iv_infusion", "start_h": s / 3600, "duration_h": d / 3600, "amount_mg": mg}
            for s, mg, d in infusions
        ]
    }


def timeit(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ------------------------------------------------------------------ peers


def opentiva_minutes(name: str) -> np.ndarray:
    """opentiva's analytic Cp (calculate_cp) evaluated at every minute."""
    from opentiva.ketamine import Domino
    from opentiva.pump import Pump

    infusions, end_s = REGIMENS[name]
    pump = Pump(
        model=Domino(sex=0, age=45, weight=WEIGHT, height=175),
        drug_concentration=10,
        end_time=end_s + 1,
    )
    for start, mg, dur in infusions:
        pump.add_infusion(start=start, dose=mg / dur, duration=dur)
    pump.generate_infusions()
    model = pump.pkpd_model
    table = pump.infusion_list
    return np.array([model.calculate_cp(table, t) for t in range(0, end_s + 1, 60)]) * 1000


def opentiva_seconds(name: str) -> np.ndarray:
    from opentiva.ketamine import Domino
    from opentiva.pump import Pump

    infusions, end_s = REGIMENS[name]
    pump = Pump(
        model=Domino(sex=0, age=45, weight=WEIGHT, height=175),
        drug_concentration=10,
        end_time=end_s + 1,
    )
    for start, mg, dur in infusions:
        pump.add_infusion(start=start, dose=mg / dur, duration=dur)
    return pump.run() * np.array([1, 1000, 1000])


def pytci_minutes(name: str, integrator: str) -> np.ndarray:
    from PyTCI.models.base import Three

    class DominoTCI(Three):
        def __init__(self) -> None:
            self.v1 = V1
            self.k10, self.k12, self.k13 = K["k10"], K["k12"], K["k13"]
            self.k21, self.k31, self.keo = K["k21"], K["k31"], K["ke0"]
            self.setup()

    model = DominoTCI()
    model.set_integrator(integrator)
    infusions, end_s = REGIMENS[name]
    rate = np.zeros(end_s // 60 + 1)
    for start, mg, dur in infusions:
        rate[start // 60 : (start + dur) // 60] = mg / dur  # mg per second
    out = np.empty(end_s // 60 + 1)
    out[0] = 0.0
    for j in range(1, out.size):
        if rate[j - 1] > 0:
            model.giveoverseconds(rate[j - 1], 60)
        else:
            model.wait_time(60)
        out[j] = model.x1 * 1000
    return out


def solve_ivp_minutes(name: str, method: str, rtol: float, atol: float) -> np.ndarray:
    k10, k12, k13, k21, k31 = (K[x] * 60 for x in ("k10", "k12", "k13", "k21", "k31"))
    a = np.array([[-(k10 + k12 + k13), k21, k31], [k12, -k21, 0], [k13, 0, -k31]])
    infusions, end_s = REGIMENS[name]
    times = np.arange(0, end_s + 1, 60) / 3600
    edges = sorted(
        {
            0.0,
            end_s / 3600 + 1e-9,
            *(s / 3600 for s, _, _ in infusions),
            *((s + d) / 3600 for s, _, d in infusions),
        }
    )
    out = np.zeros(times.size)
    x = np.zeros(3)
    for b0, b1 in zip(edges[:-1], edges[1:], strict=True):
        u = np.zeros(3)
        for s, mg, d in infusions:
            if s / 3600 <= b0 < (s + d) / 3600:
                u[0] = mg / d * 3600
        mask = (times >= b0) & (times < b1)
        sol = solve_ivp(
            lambda t, y, u=u: a @ y + u,
            (b0, b1),
            x,
            method=method,
            rtol=rtol,
            atol=atol,
            t_eval=np.append(times[mask], b1),
        )
        out[mask] = sol.y[0, :-1] / V1 * 1000
        x = sol.y[:, -1]
    return out


# ------------------------------------------------------------------ ketacare


def ketacare_typical(name: str, step_min: float = 1.0) -> np.ndarray:
    _, end_s = REGIMENS[name]
    regimen = parse_regimen(regimen_json(name), weight_kg=WEIGHT)
    sim = simulate(
        model=MODEL,
        patient=Patient(weight_kg=WEIGHT),
        regimen=regimen,
        hours=end_s / 3600,
        step_min=step_min,
    )
    return np.vstack([sim.plasma_ng_per_ml, sim.effect_ng_per_ml["tpeak_1min"]])


def one_patient_rows(name: str, rounds: int) -> list[tuple[str, float]]:
    """One typical patient through ``simulate()`` (metrics included) and opentiva, timed
    alternately call by call so that the machine's load falls on both alike."""
    _, end_s = REGIMENS[name]
    hours = end_s / 3600
    doc = regimen_json(name)
    regimen = parse_regimen(doc, weight_kg=WEIGHT)
    patient = Patient(weight_kg=WEIGHT)
    weights = iter(np.linspace(60.0, 80.0, 100_000))

    def again() -> object:
        return simulate(model=MODEL, patient=patient, regimen=regimen, hours=hours)

    def parsed_each_time() -> object:
        r = parse_regimen(doc, weight_kg=WEIGHT)
        return simulate(model=MODEL, patient=patient, regimen=r, hours=hours)

    def new_weight() -> object:
        return simulate(
            model=MODEL,
            patient=Patient(weight_kg=float(next(weights))),
            regimen=regimen,
            hours=hours,
        )

    def reference() -> object:
        return simulate_reference(model=MODEL, patient=patient, regimen=regimen, hours=hours)

    targets: dict[str, Callable[[], object]] = {
        "opentiva calculate_cp per minute": lambda: opentiva_minutes(name),
        "simulate(), same patient again": again,
        "parse_regimen + simulate()": parsed_each_time,
        "simulate(), a new weight every call": new_weight,
        "population engine, N=1 (the previous path)": reference,
    }
    # one call at a time, target after target: the median of single calls leaves out the
    # calls during which this process was descheduled (a loaded machine), which a batch of
    # calls timed together would include
    times: dict[str, list[float]] = {label: [] for label in targets}
    for fn in targets.values():
        fn()
    for _ in range(rounds):
        for label, fn in targets.items():
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    return [(label, statistics.median(v)) for label, v in times.items()]


def ketacare_curves(name: str, n: int, workers: int, compiled: bool | None = None) -> np.ndarray:
    """Every curve of n patients at 1-min output, consumed block by block by a reducer that
    keeps each patient's running Cmax (the curves are computed in full, never stored)."""
    _, end_s = REGIMENS[name]
    regimen = parse_regimen(regimen_json(name), weight_kg=WEIGHT)
    params = sample_parameters(
        MODEL,
        weight_kg=WEIGHT,
        age_years=None,
        n=n,
        rng=np.random.default_rng(0),
        omega_override=BENCH_OMEGA,
    )
    _, plan = _system_and_plan(MODEL, regimen, params)
    cmax = np.zeros(n)
    for _, block_max in evaluate_grid(
        plan,
        start_h=0.0,
        step_h=1 / 60,
        n_times=end_s // 60 + 1,
        outputs=[0],
        workers=workers,
        reduce=lambda _j0, block: block[0].max(axis=0),
        compiled=compiled,
    ):
        np.maximum(cmax, block_max, out=cmax)
    return cmax


def population(n: int, workers: int, kernel: str = "auto") -> np.ndarray:
    regimen = parse_regimen(regimen_json("crps10d"), weight_kg=WEIGHT)
    pop = simulate_population(
        model=MODEL,
        patient=Patient(weight_kg=WEIGHT),
        regimen=regimen,
        n=n,
        seed=1,
        hours=240,
        step_min=1,
        workers=workers,
        omega_override=BENCH_OMEGA,
        kernel=kernel,  # type: ignore[arg-type]
    )
    return pop.plasma_ng_per_ml


def write_bandwidth() -> float:
    """Sustained write bandwidth (GB/s) into an already-touched 512 MB buffer."""
    buf = np.empty(64 * 2**20)
    buf.fill(0.0)
    t = timeit(lambda: buf.fill(1.0), 5)
    return buf.nbytes / t / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    rep = 2 if args.quick else 5
    workers = os.cpu_count() or 1
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {workers} cores")

    # ---------------------------------------------------------------- agreement
    print("\n== agreement with opentiva (1-s grid, typical 70 kg patient) ==")
    for name in REGIMENS:
        ot = opentiva_seconds(name)
        kc = ketacare_typical(name, step_min=1 / 60)
        peak = ot[:, 1].max()
        dcp = np.abs(kc[0] - ot[:, 1]).max()
        dce = np.abs(kc[1] - ot[:, 2]).max()
        print(
            f"{name:8s} peak {peak:7.2f} ng/mL  max|dCp| {dcp:.2e} ({dcp / peak:.1e} of peak)"
            f"  max|dCe| {dce:.3f} ({dce / ot[:, 2].max():.2%} of peak)"
        )

    # ---------------------------------------------------------------- one typical patient
    print("\n== one typical patient through simulate(), metrics included, against opentiva ==")
    print("(timed alternately call by call, medians; target: at least 10x faster than opentiva)")
    for name in REGIMENS:
        rounds = (30 if args.quick else 100) // (5 if name == "crps10d" else 1)
        rows_one = one_patient_rows(name, rounds=rounds)
        peer = rows_one[0][1]
        print(f"-- {name}: {REGIMENS[name][1] // 60 + 1} points per patient")
        print(f"{'method':44s} {'us/patient':>11s} {'opentiva / this':>16s}")
        for label, t in rows_one:
            print(f"{label:44s} {t * 1e6:11.1f} {peer / t:16.1f}")

    # ---------------------------------------------------------------- per patient, 1-min output
    print("\n== time per simulated patient, 1-min output ==")
    try:
        import PyTCI  # noqa: F401

        have_pytci = True
    except ImportError:
        have_pytci = False
        print("(PyTCI not installed: skipped)")
    for name in REGIMENS:
        points = REGIMENS[name][1] // 60 + 1
        rows: list[tuple[str, float, float]] = []
        ref = ketacare_typical(name)[0]
        rows.append(
            (
                "opentiva calculate_cp per minute",
                timeit(lambda n=name: opentiva_minutes(n), rep),
                np.abs(opentiva_minutes(name) - ref).max(),
            )
        )
        if have_pytci:
            for integ in ("euler", "exact"):
                reps = 1 if name == "crps10d" else rep
                rows.append(
                    (
                        f"PyTCI {integ}",
                        timeit(lambda n=name, i=integ: pytci_minutes(n, i), reps),
                        np.abs(pytci_minutes(name, integ) - ref).max(),
                    )
                )
        rows.append(
            (
                "solve_ivp RK45 default tol",
                timeit(lambda n=name: solve_ivp_minutes(n, "RK45", 1e-3, 1e-6), 1),
                np.abs(solve_ivp_minutes(name, "RK45", 1e-3, 1e-6) - ref).max(),
            )
        )
        rows.append(
            (
                "solve_ivp LSODA rtol 1e-8",
                timeit(lambda n=name: solve_ivp_minutes(n, "LSODA", 1e-8, 1e-12), 1),
                np.abs(solve_ivp_minutes(name, "LSODA", 1e-8, 1e-12) - ref).max(),
            )
        )
        single = timeit(lambda n=name: ketacare_typical(n), rep)
        rows.append(("ketacare simulate(), N=1 (with metrics)", single, 0.0))
        ketacare_curves(name, 1000, workers)  # warm-up: loads the compiled loops
        for n_pat in (100, 1000):
            t = timeit(lambda n=name, k=n_pat: ketacare_curves(n, k, workers), rep)
            rows.append((f"ketacare curves, N={n_pat}, {workers} threads", t / n_pat, 0.0))
        t = timeit(lambda n=name: ketacare_curves(n, 1000, workers, compiled=False), rep)
        rows.append((f"  same, numpy blocks (reference), {workers} thr", t / 1000, 0.0))
        best = min(r[1] for r in rows if r[0].startswith("ketacare curves"))
        print(f"-- {name}: {points} points per patient")
        print(
            f"{'method':42s} {'s/patient':>11s} {'Mpts/s':>9s} {'x ketacare':>11s} {'max|dCp|':>9s}"
        )
        for label, t, err in rows:
            print(f"{label:42s} {t:11.3e} {points / t / 1e6:9.2f} {t / best:11.1f} {err:9.1e}")

    # ---------------------------------------------------------------- population target
    print("\n== 10,000 patients x 10-day course, 1-min output, 5/50/95th percentiles ==")
    print("(compiled: numba loops, curves never stored; numpy: the reference path, same run)")
    population(2000, workers)  # warm-up (loads the compiled loops)
    check = np.abs(population(10_000, workers) - population(10_000, workers, "numpy")).max()
    print(f"compiled vs numpy bands: max |difference| {check:.1e} ng/mL")
    for w in sorted({1, workers}):
        t_c = timeit(lambda w=w: population(10_000, w), 3)
        t_n = timeit(lambda w=w: population(10_000, w, "numpy"), 1 if args.quick else 2)
        print(
            f"{w} thread(s): compiled {t_c:.3f} s ({10_000 * 14_401 / t_c / 1e6:.0f} M points/s)"
            f", numpy {t_n:.3f} s: x{t_n / t_c:.1f}"
        )
    tracemalloc.start()
    population(10_000, workers)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced numpy memory {peak / 2**20:.0f} MB; process max RSS {rss:.0f} MB")
    gbps = write_bandwidth()
    bytes_out = 10_000 * 14_401 * 8
    print(
        f"memory write bandwidth (fill) {gbps:.1f} GB/s: writing every curve once "
        f"(144 M float64 = {bytes_out / 1e9:.2f} GB) takes at least {bytes_out / gbps / 1e9:.3f} s"
    )


if __name__ == "__main__":
    main()
