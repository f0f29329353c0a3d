"""Compiled inner loops for populations: every curve on a grid, and exact percentile bands.

A population of 10,000 patients over ten days at one-minute output is 144 million
concentrations. Two costs dominated the numpy path (:func:`engine.evaluate_grid` with a
reducer): writing every curve to memory block by block, and finding each time point's
order statistics with :func:`numpy.partition` (about 170 microseconds per 10,000-patient
row, 2.4 s for the ten days). The loops here are compiled with numba and do neither:

* :func:`fill_rows` computes a block of rows of one output on the grid by carrying each
  patient's modal terms from one row to the next (one multiply per mode and point),
  re-anchored with exact exponentials every :data:`REANCHOR` rows and at every dosing
  segment, so the relative error stays below ``REANCHOR * 2.2e-16``;
* :func:`band_rows` computes each row into a buffer that stays in cache and selects the
  wanted order statistics there. Concentration curves move little from one minute to the
  next, so the patients ranked near a percentile stay near it: each row's two counts
  (values below a lower bound, values up to an upper bound) confirm that the wanted ranks
  fall between the bounds, and the values between the bounds are then exactly the
  candidates (kept from the row before, nearly sorted) that fall between them. Only when a
  count disagrees does the row fall back to a full partition, which also picks new
  candidates. The result is exact: every statistic is a value of the row whose rank is
  proven by the counts.

The numpy path stays the reference (``engine.evaluate_grid``, ``population._row_percentiles``)
and the tests hold these loops to it. Compiled code is cached on disk beside this file
(numba's ``cache=True``), so a process pays the compilation once per machine, not per
start.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["MARGIN", "REANCHOR", "band_rows", "fill_rows", "warm"]

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Rows between two exact re-computations of the modal terms (bounds the carried round-off).
REANCHOR = 256
#: Margin (in ranks) kept on each side of a band's wanted ranks: the bounds sit this far
#: out, and the candidates twice as far. A band whose ranks move faster than its margin
#: from one row to the next doubles it (up to the largest); after a run of rows found
#: within the bounds it halves it again.
MARGIN = 16
_MARGIN_MAX = 64
_SHRINK_AFTER = 32


@njit(cache=True, nogil=True)
def _segment_of(breaks: Array, t: float, s: int) -> int:
    """The last segment starting at or before ``t``, searching forward from ``s``."""
    while s + 1 < breaks.shape[0] and breaks[s + 1] <= t:
        s += 1
    return s


@njit(cache=True, nogil=True)
def _anchor(lam: Array, a: Array, s: int, tau: float, q: Array) -> None:
    """Exact modal terms ``a[s] * exp(lam * tau)`` into ``q`` (K, N)."""
    k_modes, n = lam.shape
    for k in range(k_modes):
        for i in range(n):
            q[k, i] = a[s, k, i] * np.exp(lam[k, i] * tau)


@njit(cache=True, nogil=True)
def _row(c: Array, s: int, q: Array, r: Array, row: Array) -> None:
    """One grid row (clamped at zero), then the modal terms carried to the next row."""
    k_modes, n = q.shape
    for i in range(n):
        row[i] = c[s, i]
    for k in range(k_modes):
        for i in range(n):
            row[i] += q[k, i]
            q[k, i] *= r[k, i]
    for i in range(n):
        if row[i] < 0.0:  # round-off below zero (concentrations are >= 0)
            row[i] = 0.0


@njit(cache=True, nogil=True)
def _next_row(
    lam: Array,
    a: Array,
    c: Array,
    breaks: Array,
    t: float,
    seg: int,
    since: int,
    q: Array,
    r: Array,
    row: Array,
) -> tuple[int, int]:
    """The grid row at time ``t`` into ``row``, carrying the modal terms ``q`` on.

    ``seg`` is the segment of the row before (-1 at the first) and ``since`` the rows
    carried since the terms were last computed exactly: they are computed again at a new
    segment and every :data:`REANCHOR` rows. Returns the new ``(seg, since)``.
    """
    s = _segment_of(breaks, t, max(seg, 0))
    if s != seg or since >= REANCHOR:
        _anchor(lam, a, s, t - breaks[s], q)
        seg = s
        since = 0
    _row(c, s, q, r, row)
    return seg, since + 1


@njit(cache=True, nogil=True)
def fill_rows(
    lam: Array,
    a: Array,
    c: Array,
    breaks: Array,
    start_h: float,
    step_h: float,
    j0: int,
    out: Array,
) -> None:
    """Rows ``j0 .. j0 + L - 1`` of the grid ``start_h + j * step_h`` of one output.

    ``lam`` (K, N) are the modes' rates, ``a`` (S, K, N) and ``c`` (S, N) the output's
    modal coefficients and constant on each dosing segment starting at ``breaks`` (S),
    ``out`` (L, N) receives the rows.
    """
    rows = out.shape[0]
    r = np.exp(lam * step_h)
    q = np.empty_like(lam)
    seg, since = -1, 0
    for j in range(rows):
        seg, since = _next_row(
            lam, a, c, breaks, start_h + step_h * (j0 + j), seg, since, q, r, out[j]
        )


@njit(cache=True, nogil=True)
def _insertion_sort(values: Array, ids: IntArray, n: int) -> None:
    """Sort ``values[:n]`` ascending, carrying ``ids`` (fast on nearly sorted input)."""
    for i in range(1, n):
        v = values[i]
        d = ids[i]
        j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            ids[j + 1] = ids[j]
            j -= 1
        values[j + 1] = v
        ids[j + 1] = d


@njit(cache=True, nogil=True)
def _count_below(row: Array, x: float) -> int:
    """How many values are below ``x``."""
    below = 0
    for i in range(row.shape[0]):
        below += row[i] < x
    return below


@njit(cache=True, nogil=True)
def _counts(row: Array, low: float, high: float) -> tuple[int, int]:
    """How many values are below ``low``, and how many at most ``high``, in one pass."""
    below = 0
    upto = 0
    for i in range(row.shape[0]):
        x = row[i]
        below += x < low
        upto += x <= high
    return below, upto


@njit(cache=True, nogil=True)
def _bound_below(row: Array, rank: int, guess: float, slack: int) -> float:
    """A value ``x`` with ``rank - slack <= count(row < x) <= rank`` where the values allow.

    Searches outward from ``guess`` by doubling steps, then bisects. Always returns an
    ``x`` with ``count(row < x) <= rank`` (the minimum of the row at worst).
    """
    low = row.min()
    if rank <= 0:
        return float(low)
    x = max(guess, low)
    c = _count_below(row, x)
    if rank - slack <= c <= rank:
        return float(x)
    step = max(abs(x), 1e-12) * 1e-3
    if c > rank:  # too high: walk down until at or under the rank
        hi_x = x
        x = max(x - step, low)
        c = _count_below(row, x)
        while c > rank:
            hi_x = x
            step *= 2.0
            x = max(x - step, low)
            c = _count_below(row, x)
        lo_x = x
    else:  # too low: walk up until past the rank
        lo_x = x
        x = x + step
        c = _count_below(row, x)
        while c <= rank:
            if c >= rank - slack:
                return float(x)
            lo_x = x
            step *= 2.0
            x = x + step
            c = _count_below(row, x)
        hi_x = x
    # count(< lo_x) <= rank < count(< hi_x): bisect towards the rank
    for _ in range(60):
        mid = 0.5 * (lo_x + hi_x)
        if mid <= lo_x or mid >= hi_x:
            break
        c = _count_below(row, mid)
        if c > rank:
            hi_x = mid
        else:
            lo_x = mid
            if c >= rank - slack:
                break
    return float(lo_x)


@njit(cache=True, nogil=True)
def _bound_upto(row: Array, rank: int, guess: float, slack: int) -> float:
    """A value ``x`` with ``rank + 1 <= count(row <= x) <= rank + 1 + slack`` where the
    values allow; always ``count(row <= x) >= rank + 1`` (the maximum at worst).

    The mirror of :func:`_bound_below`: ``count(row <= x) = n - count(-row < -x)``.
    """
    n = row.shape[0]
    return -_bound_below(-row, n - 1 - rank, -guess, slack)


@njit(cache=True, nogil=True)
def _gather(
    row: Array,
    k_lo: int,
    k_hi: int,
    margin: int,
    lo_guess: float,
    hi_guess: float,
    values: Array,
    ids: IntArray,
) -> tuple[int, int]:
    """Every patient whose value lies between bounds about ``2 * margin`` ranks outside
    ``k_lo .. k_hi``, sorted by value, into ``values`` / ``ids``.

    Returns ``(below, count)``: how many values lie under the lower bound (the rank of
    ``values[0]``) and how many were gathered, or ``count = -1`` when ties overflow the
    buffers (then ``values[:k_hi - k_lo + 1]`` holds the wanted order statistics, found
    by a full partition).
    """
    n = row.shape[0]
    x_lo = _bound_below(row, max(k_lo - 2 * margin, 0), lo_guess, margin)
    x_hi = _bound_upto(row, min(k_hi + 2 * margin, n - 1), hi_guess, margin)
    below = 0
    count = 0
    cap = values.shape[0]
    for i in range(n):
        x = row[i]
        if x < x_lo:
            below += 1
        elif x <= x_hi:
            if count < cap:
                values[count] = x
                ids[count] = i
            count += 1
    if count > cap:
        part = np.partition(row, np.arange(k_lo, k_hi + 1))
        for m in range(k_hi - k_lo + 1):
            values[m] = part[k_lo + m]
        return below, -1
    order = np.argsort(values[:count])
    values[:count] = values[:count][order]
    ids[:count] = ids[:count][order]
    return below, count


@njit(cache=True, nogil=True)
def band_rows(
    lam: Array,
    a: Array,
    c: Array,
    breaks: Array,
    start_h: float,
    step_h: float,
    j0: int,
    ranks: IntArray,
    groups: IntArray,
    stats: Array,
) -> int:
    """Order statistics of rows ``j0 ..`` of one output's grid, without storing the rows.

    ``ranks`` (R) are the wanted 0-based ranks, ascending; ``groups`` (G + 1) splits them
    into bands of nearby ranks (band ``b`` is ``ranks[groups[b]:groups[b + 1]]``), each
    tracked with its own candidates. ``stats`` (R, L) receives, for each row, the value of
    each wanted rank. Returns how many (row, band) pairs had to gather anew.
    """
    k_modes, n = lam.shape
    n_rows = stats.shape[1]
    n_bands = groups.shape[0] - 1
    r = np.exp(lam * step_h)
    q = np.empty_like(lam)
    row = np.empty(n)
    widest = 0
    for b in range(n_bands):
        widest = max(widest, int(ranks[groups[b + 1] - 1] - ranks[groups[b]]))
    cap = min(2 * (widest + 6 * _MARGIN_MAX + 1) + 64, n)
    values = np.empty((n_bands, cap))
    ids = np.zeros((n_bands, cap), dtype=np.int64)
    counts = np.zeros(n_bands, dtype=np.int64)  # candidates held (0: none yet)
    lower = np.zeros(n_bands)
    upper = np.zeros(n_bands)
    margins = np.full(n_bands, MARGIN, dtype=np.int64)
    streaks = np.zeros(n_bands, dtype=np.int64)
    misses = 0
    seg, since = -1, 0
    for j in range(n_rows):
        seg, since = _next_row(
            lam, a, c, breaks, start_h + step_h * (j0 + j), seg, since, q, r, row
        )
        for b in range(n_bands):
            k_lo = ranks[groups[b]]
            k_hi = ranks[groups[b + 1] - 1]
            held = counts[b]
            vals = values[b]
            who = ids[b]
            if held > 0:
                lo_v = lower[b]
                hi_v = upper[b]
                below, upto = _counts(row, lo_v, hi_v)
                if below <= k_lo and upto - 1 >= k_hi:
                    for m in range(held):
                        vals[m] = row[who[m]]
                    _insertion_sort(vals, who, held)
                    first = 0
                    while first < held and vals[first] < lo_v:
                        first += 1
                    inside = 0
                    while first + inside < held and vals[first + inside] <= hi_v:
                        inside += 1
                    if inside == upto - below:
                        # the candidates between the bounds are every value between them
                        for m in range(groups[b], groups[b + 1]):
                            stats[m, j] = vals[first + ranks[m] - below]
                        margin = margins[b]
                        lower[b] = vals[max(first + k_lo - margin - below, 0)]
                        upper[b] = vals[min(first + k_hi + margin - below, held - 1)]
                        streaks[b] += 1
                        if streaks[b] >= _SHRINK_AFTER and margin > MARGIN:
                            margins[b] = margin // 2
                            streaks[b] = 0
                        continue
                lo_guess, hi_guess = lo_v, hi_v
                margins[b] = min(2 * margins[b], _MARGIN_MAX)
                streaks[b] = 0
            else:
                lo_guess, hi_guess = row[0], row[0]
            misses += 1
            margin = margins[b]
            below, count = _gather(row, k_lo, k_hi, margin, lo_guess, hi_guess, vals, who)
            if count < 0:
                for m in range(groups[b], groups[b + 1]):
                    stats[m, j] = vals[ranks[m] - k_lo]
                counts[b] = 0
                continue
            for m in range(groups[b], groups[b + 1]):
                stats[m, j] = vals[ranks[m] - below]
            counts[b] = count
            lower[b] = vals[max(k_lo - margin - below, 0)]
            upper[b] = vals[min(k_hi + margin - below, count - 1)]
    return misses


def warm() -> None:
    """Compile (or load from the on-disk cache) every loop here, on a tiny population.

    ``make setup`` calls it so that the first population a page or a command asks for
    does not wait for the compiler.
    """
    lam = np.array([[-1.0, -2.0, -0.5]]).T.copy() @ np.ones((1, 3))  # (K=3, N=3)
    a = np.ones((2, 3, 3))
    c = np.zeros((2, 3))
    breaks = np.array([0.0, 1.0])
    fill_rows(lam, a, c, breaks, 0.0, 0.1, 0, np.empty((4, 3)))
    ranks = np.array([0, 1, 2], dtype=np.int64)
    groups = np.array([0, 3], dtype=np.int64)
    band_rows(lam, a, c, breaks, 0.0, 0.1, 0, ranks, groups, np.empty((3, 4)))
