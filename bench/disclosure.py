"""The research view's small-count suppression: time to withhold a dashboard table.

A researcher's dashboard runs :func:`ketacare.core.research.disclosure.withhold` on each
definition's table: the whole cohort, its condition groups and its protocol groups,
14 figures a row, with every row's sums and the cohort as the sum of its groups. This
times it on synthetic tables of a small, a large and a very large clinic (the counts
drawn at random, seeded, so every run times the same tables).

Named peer, run in the same script on the same tables: the independent audit the tests
use, scipy's LP (``linprog``, HiGHS) solved twice per withheld cell, for its least and
greatest value, which is what a reviewer would run to check a published table.

Run: .venv/bin/python bench/disclosure.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

import numpy as np
from scipy.optimize import linprog

from ketacare.clinic.analytics.disclosure import FIGURES, LOST_SUMS, ROW_SUMS, _figures
from ketacare.clinic.analytics.service import Counts
from ketacare.core.research.disclosure import SmallCells, small_cells, withhold

SIZES = ((9, 3, "a small clinic"), (20, 6, "a large clinic"), (40, 8, "a very large clinic"))


def _row(rng: random.Random, scale: int) -> Counts:
    parts = [rng.randint(0, scale) for _ in range(5)]
    responders = parts[4]
    lost = rng.randint(0, sum(parts))
    return Counts(
        treated=sum(parts),
        no_baseline=parts[0],
        not_eligible=parts[1],
        no_follow_up=parts[2],
        non_responders=parts[3],
        responders=responders,
        at_last=rng.randint(0, responders),
        lost=lost,
        lost_unjudged=rng.randint(0, lost),
    )


def table(conditions: int, protocols: int, seed: int) -> tuple[dict[Any, int], list[Any]]:
    """Cells and sums of one definition's table (the protocol rows split the same cohort)."""
    rng = random.Random(seed)
    groups = [_row(rng, 60) for _ in range(conditions)]
    overall = sum(groups, Counts())
    split = [Counts() for _ in range(protocols)]
    for g in groups:  # each condition's patients go to one protocol: the sums still hold
        k = rng.randrange(protocols)
        split[k] = split[k] + g
    rows = [overall, *groups, *split]
    cells = {(n, f): _figures(r)[f] for n, r in enumerate(rows) for f in FIGURES}
    sums: list[Any] = [
        ((n, total), [(n, p) for p in parts])
        for n in range(len(rows))
        for total, parts in ROW_SUMS + LOST_SUMS
    ]
    sums += [((0, f), [(m, f) for m in range(1, 1 + conditions)]) for f in FIGURES]
    sums += [((0, f), [(m, f) for m in range(1 + conditions, len(rows))]) for f in FIGURES]
    return cells, sums


def lp_audit(cells: dict[Any, int], sums: list[Any], hidden: frozenset[Any]) -> int:
    """How many withheld cells the LP can pin to one value (0 when the table is safe)."""
    names = list(cells)
    at = {k: i for i, k in enumerate(names)}
    rows = []
    b = []
    for total, parts in sums:
        row = np.zeros(len(names))
        row[at[total]] -= 1
        for p in parts:
            row[at[p]] += 1
        rows.append(row)
        b.append(0.0)
    for k in names:
        if k not in hidden:
            row = np.zeros(len(names))
            row[at[k]] = 1
            rows.append(row)
            b.append(float(cells[k]))
    a, rhs = np.array(rows), np.array(b)
    pinned = 0
    for k in hidden:
        c = np.zeros(len(names))
        c[at[k]] = 1
        low = linprog(c, A_eq=a, b_eq=rhs, bounds=(0, None), method="highs")
        high = linprog(-c, A_eq=a, b_eq=rhs, bounds=(0, None), method="highs")
        unbounded = high.status == 3  # no greatest value: certainly not pinned
        pinned += int(not unbounded and -high.fun - low.fun < 1 and 1 <= cells[k] <= 10)
    return pinned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rule: SmallCells = small_cells()
    print(f"rule: counts 1 to {rule.smallest_shown - 1} withheld; medians of {args.rounds}")
    print(
        f"{'table':<22}{'cells':>7}{'withheld':>10}{'withhold s':>12}{'LP audit s':>12}"
        f"{'ratio':>8}{'pinned':>8}"
    )
    for conditions, protocols, name in SIZES:
        cells, sums = table(conditions, protocols, seed=conditions)
        ours, peers = [], []
        hidden: frozenset[Any] = frozenset()
        pinned = 0
        for _ in range(args.rounds):
            t = time.perf_counter()
            hidden = withhold(cells, sums, rule, group=lambda cell: cell[0])
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            pinned = lp_audit(cells, sums, hidden)
            peers.append(time.perf_counter() - t)
        mine, peer = statistics.median(ours), statistics.median(peers)
        print(
            f"{name:<22}{len(cells):>7}{len(hidden):>10}{mine:>12.3f}{peer:>12.3f}"
            f"{mine / peer:>8.2f}{pinned:>8}"
        )


if __name__ == "__main__":
    main()
