"""What a research reader may see of the clinic's aggregates: no small counts.

A dashboard of response rates is an aggregate, but a group of three patients, or a
rate of 2 of 40, tells a reader about identifiable people. The rule followed is the CMS
cell size suppression policy (``data/deidentification.toml``, ``small_cells``): no count
from 1 to 10 is shown, directly or so that it can be derived from what is shown (a
percentage with its denominator, a total less its other parts); zero may be shown.

:func:`withhold` does both halves. Every count from 1 to 10 is withheld (primary
suppression). Then the table's sums (a total and its parts, a whole-clinic row and its
groups) are solved for the withheld cells: while one of them can be had exactly from
the cells shown, a shown cell of a sum it is in is withheld too (complementary
suppression), until none can. "Can be had" is read twice: by exact linear algebra (a
withheld cell is determined when its unit vector lies in the row space of the sums
restricted to the withheld cells), then with the counts' being never negative, by linear
programming, since two sums can pin a cell neither fixes alone (x + y = 3, x - z = 3).

Examples
--------
A total of 40 split 3 / 12 / 25: the 3 is withheld, and with it the 12, or the 3 would
be 40 less 12 and 25.

>>> rule = SmallCells(smallest_shown=11)
>>> cells = {"all": 40, "a": 3, "b": 12, "c": 25}
>>> sorted(withhold(cells, [("all", ("a", "b", "c"))], rule))
['a', 'b']
>>> sorted(withhold({"all": 40, "a": 0, "b": 15, "c": 25}, [("all", ("a", "b", "c"))], rule))
[]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ketacare.core.research.export import rules

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class SmallCells:
    """The smallest count shown to a research reader (below it, only 0 is shown)."""

    smallest_shown: int

    def shows(self, count: int) -> bool:
        """Whether ``count`` may be shown (0, or at least :attr:`smallest_shown`)."""
        return count == 0 or count >= self.smallest_shown

    @property
    def rule(self) -> str:
        """The rule in words, for the page that withholds a figure by it."""
        source = rules().sources[rules().small_cells_source]
        return (
            f"counts from 1 to {self.smallest_shown - 1} are not shown to research readers, "
            "nor any figure they could be derived from ("
            f"{source['citation'].split(':')[0]}, {source['url']})"
        )


def small_cells() -> SmallCells:
    """The rule shipped in ``deidentification.toml`` (CMS cell size suppression)."""
    return SmallCells(rules().smallest_count_shown)


def withhold(
    cells: Mapping[K, int],
    sums: Sequence[tuple[K, Iterable[K]]],
    rule: SmallCells,
    group: Callable[[K], Hashable] | None = None,
) -> frozenset[K]:
    """The cells a research reader may not see: the small ones, and enough others that
    none of the small ones can be derived through ``sums`` (each ``(total, parts)``: the
    total is the sum of the parts). A withheld complement (11 or more) may itself be
    derivable: the policy protects the values from 1 to 10.

    Each complement is the smallest shown count, of a sum holding a derivable cell, that
    leaves fewer cells derivable once withheld; when no one cell does, the smallest in a
    ``group`` (a row of the table) that already has a complement, so that row is closed
    before another is opened; ties by the order of ``cells``, a zero only when nothing
    else is left. A table always withholds the same, and its large figures last.
    """
    of = group or (lambda k: k)
    keys = list(cells)
    index = {k: i for i, k in enumerate(keys)}
    members = [(total, tuple(parts)) for total, parts in sums]
    matrix = np.zeros((len(members), len(keys)))
    for row, (total, parts) in enumerate(members):
        matrix[row, index[total]] -= 1.0
        for part in parts:
            matrix[row, index[part]] += 1.0
    hidden = [index[k] for k in keys if not rule.shows(cells[k])]
    small = set(hidden)  # only these must not be derivable; a complement may be

    def derivable(withheld: list[int]) -> set[int]:
        return _determined(matrix, withheld) & small

    values = np.array([float(cells[k]) for k in keys])

    def complement(found: set[int]) -> int | None:
        """The next cell to withhold for the derivable ``found`` (None: none is left)."""
        touching = {
            index[k]
            for total, parts in members
            if any(index[m] in found for m in (total, *parts))
            for k in (total, *parts)
        }
        # the cells of the sums that hold a derivable cell; if all of those are withheld
        # (it is derived through a chain of sums), any shown cell
        shown = sorted(touching - set(hidden), key=lambda i: (cells[keys[i]], i)) or sorted(
            set(range(len(keys))) - set(hidden), key=lambda i: (cells[keys[i]], i)
        )
        # a zero may be shown, and withholding one rarely protects anything
        candidates = [i for i in shown if cells[keys[i]] != 0] or shown
        if not candidates:
            return None
        # the smallest count that protects something; else the smallest in a row that
        # already has a complement
        helps = _helps(matrix, hidden, found, candidates)
        opened = {of(keys[i]) for i in hidden if i not in small}
        return helps[0] if helps else min(candidates, key=lambda i: of(keys[i]) not in opened)

    while True:
        # exact equalities first (fast), then the counts' being whole and never negative,
        # which can pin a cell the equalities leave free (x + y = 3 with x - z = 3)
        found = derivable(hidden) or _pinned(matrix, values, hidden, small)
        if not found:
            return frozenset(keys[i] for i in hidden)
        chosen = complement(found)
        if chosen is None:
            return frozenset(keys)
        hidden.append(chosen)


def _helps(
    matrix: np.ndarray, hidden: list[int], found: set[int], candidates: list[int]
) -> list[int]:
    """The candidates (in their order) whose withholding frees a cell of ``found``.

    Withholding column ``c`` adds a solution to the homogeneous system only when ``c``'s
    column is a combination of the hidden ones, ``sub @ x = -a``; the new solution is
    ``(x, 1)``, and it frees the derived cell ``i`` when ``x[i]`` is not 0 (``x[i]`` is
    the same in every solution, since the old ones are 0 there).
    """
    sub = matrix[:, hidden]
    inverse = np.linalg.pinv(sub)
    at = {column: j for j, column in enumerate(hidden)}
    out = []
    for c in candidates:
        column = matrix[:, c]
        x = -(inverse @ column)
        if np.abs(sub @ x + column).max(initial=0.0) > 1e-7:
            continue
        if any(abs(x[at[i]]) > 1e-9 for i in found):
            out.append(c)
    return out


def _determined(matrix: np.ndarray, hidden: list[int]) -> set[int]:
    """The hidden columns whose value the sums fix, given every other column: those on
    which every solution of the homogeneous system over the hidden columns is zero."""
    if not hidden or matrix.shape[0] == 0:
        return set()
    sub = matrix[:, hidden]
    _, s, vt = np.linalg.svd(sub)
    rank = int((s > 1e-9 * max(1.0, float(s.max(initial=0.0)))).sum())
    null = vt[rank:].T  # hidden x nullity
    return {c for j, c in enumerate(hidden) if not np.any(np.abs(null[j]) > 1e-9)}


def _pinned(matrix: np.ndarray, values: np.ndarray, hidden: list[int], small: set[int]) -> set[int]:
    """The small hidden cells that only one whole number fits, given the shown cells, the
    sums and that no count is negative: the least and greatest value of each by linear
    programming (HiGHS) are less than 1 apart."""
    from scipy.optimize import linprog

    if matrix.shape[0] == 0:
        return set()
    shown = [i for i in range(len(values)) if i not in set(hidden)]
    sub = matrix[:, hidden]
    rhs = -(matrix[:, shown] @ values[shown])
    out = set()
    for j, cell in enumerate(hidden):
        if cell not in small:
            continue
        c = np.zeros(len(hidden))
        c[j] = 1.0
        low = linprog(c, A_eq=sub, b_eq=rhs, bounds=(0, None), method="highs")
        high = linprog(-c, A_eq=sub, b_eq=rhs, bounds=(0, None), method="highs")
        if low.status == 0 and high.status == 0 and -high.fun - low.fun < 1 - 1e-9:
            out.add(cell)
    return out
