"""What a research reader may see of the clinic's aggregates: no small counts.

A dashboard of response rates is an aggregate, but a group of three patients, or a
rate of 2 of 40, tells a reader about identifiable people. The rule followed is the CMS
cell size suppression policy (``data/deidentification.toml``, ``small_cells``): no count
from 1 to 10 is shown, directly or so that it can be derived from what is shown (a
percentage with its denominator, a total minus its other parts); zero may be shown.

Two of the policy's own strategies do the work here. A row (a group of patients) is
shown only when every count it carries, and every difference a reader could take
between them, is shown; rows that are not are *collapsed* into one pooled row. When the
pool itself holds a small count, the smallest shown row joins it, until the pool passes
or every row is in it, so that no withheld row can be had by subtracting the shown rows
from the total (complementary suppression over the one margin these tables have).

Examples
--------
>>> rule = SmallCells(smallest_shown=11)
>>> [rule.shows(n) for n in (0, 1, 10, 11)]
[True, False, False, True]
>>> rows = [("a", (40,)), ("b", (3,)), ("c", (12,)), ("d", (25,))]
>>> out = collapse(rows, cells=lambda v: v, add=lambda x, y: (x[0] + y[0],), rule=rule)
>>> [k for k, _ in out.shown], out.pooled_keys, out.pooled, out.pooled_shown
(['a', 'd'], ('b', 'c'), (15,), True)

Group ``b`` alone (3) would be withheld; with ``c`` shown, a reader would get it as the
total 80 less 40, 12 and 25, so ``c`` (the smallest shown row) is pooled with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ketacare.core.research.export import rules

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SmallCells:
    """The smallest count shown to a research reader (below it, only 0 is shown)."""

    smallest_shown: int

    def shows(self, count: int) -> bool:
        """Whether ``count`` may be shown (0, or at least :attr:`smallest_shown`)."""
        return count == 0 or count >= self.smallest_shown

    def all_shown(self, counts: Iterable[int]) -> bool:
        """Whether every count may be shown."""
        return all(self.shows(c) for c in counts)

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


@dataclass(frozen=True, slots=True)
class Collapsed(Generic[T]):
    """Rows that may be shown, and the rest pooled (``pooled`` None: nothing pooled)."""

    shown: tuple[tuple[str, T], ...]
    pooled_keys: tuple[str, ...]
    pooled: T | None
    pooled_shown: bool


def collapse(
    rows: Sequence[tuple[str, T]],
    *,
    cells: Callable[[T], Iterable[int]],
    add: Callable[[T, T], T],
    rule: SmallCells,
) -> Collapsed[T]:
    """Pool every row with a small cell, then the smallest shown rows until the pool
    passes (or every row is in it); ``cells`` lists a row's counts and the differences
    a reader could take between them, ``add`` sums two rows.

    The order of ``rows`` is kept; "smallest" is by the sum of a row's cells, ties by
    key, so the same table always collapses the same way.
    """
    shown = [(k, v) for k, v in rows if rule.all_shown(cells(v))]
    pooled = [(k, v) for k, v in rows if not rule.all_shown(cells(v))]
    if not pooled:
        return Collapsed(tuple(shown), (), None, False)

    def total(items: Sequence[tuple[str, T]]) -> T:
        out = items[0][1]
        for _, v in items[1:]:
            out = add(out, v)
        return out

    while shown and not rule.all_shown(cells(total(pooled))):
        smallest = min(shown, key=lambda kv: (sum(cells(kv[1])), kv[0]))
        shown.remove(smallest)
        pooled.append(smallest)
    keys = {k for k, _ in pooled}
    pool = total(pooled)
    return Collapsed(
        shown=tuple(shown),
        pooled_keys=tuple(k for k, _ in rows if k in keys),
        pooled=pool,
        pooled_shown=rule.all_shown(cells(pool)),
    )
