"""Exact solution of linear compartment systems under piecewise-constant dosing.

Between two dosing events the input ``u`` is constant, so with ``A = V diag(lam) V^-1``
every output is, on segment ``s`` and at time ``tau`` after its start,

    y(tau) = c_s + sum_k a_sk exp(lam_k tau)

with ``a_sk = G_k (z_sk + w_sk / lam_k)``, ``c_s = -sum_k G_k w_sk / lam_k``, ``G = C V``,
``z`` the modal state at the segment start and ``w = V^-1 u``. Nothing is stepped: the
state is carried from segment to segment in closed form, and any time can be evaluated
on its own. On a uniform grid the exponentials are powers of ``exp(lam * step)``, so a
block of the grid costs one multiply-add per mode and point (see :func:`evaluate_grid`).

Examples
--------
One compartment, V = 10 L, k = 0.5/h, 100 mg bolus: C(2 h) = 10 exp(-1) mg/L.

>>> import numpy as np
>>> a = np.array([[[-0.5]]]); c = np.array([[[100.0]]])   # ng/mL per mg at V = 10 L
>>> plan = make_plan(a=a, c=c, inputs=[Input(start_h=0.0, end_h=0.0, state=0,
...                                            amount_mg=np.array([100.0]))])
>>> float(evaluate(plan, np.array([2.0]))[0, 0, 0])  # doctest: +ELLIPSIS
3678.79441171...
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ketacare.core.errors import InvalidInput

__all__ = [
    "Input",
    "Modes",
    "OnePlan",
    "Plan",
    "evaluate",
    "evaluate_grid",
    "evaluate_one_grid",
    "integrate",
    "integrate_one",
    "make_one_plan",
    "make_plan",
    "modes_of",
]

Array = npt.NDArray[np.float64]

#: Above this condition number of the eigenvector matrix the modal form loses digits.
_MAX_CONDITION = 1e10
#: Longest table of exp(lam * step * m) a :class:`Modes` keeps for later grids (rows).
_MAX_KEPT_TABLE = 1 << 15
#: From this many patients :func:`evaluate_grid` fills its blocks with compiled loops.
COMPILED_FROM = 1000


@dataclass(frozen=True, slots=True)
class Input:
    """A dose entering ``state``: instantly (``end_h == start_h``) or at a constant rate."""

    start_h: float
    end_h: float
    state: int
    amount_mg: Array  # (N,)


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything needed to evaluate any output at any time, for N patients.

    ``breaks`` has the S segment starts (the last segment runs to infinity); ``a`` is
    (S, N, O, K), ``c`` is (S, N, O), ``lam`` is (N, K).
    """

    breaks: Array
    lam: Array
    a: Array
    c: Array
    z: Array  # (S, N, K) modal state at each segment start, after its boluses
    w: Array  # (S, N, K) modal input rate during each segment
    g: Array  # (N, O, K)

    @property
    def n_patients(self) -> int:
        """Number of patients N."""
        return int(self.lam.shape[0])

    @property
    def n_outputs(self) -> int:
        """Number of outputs O."""
        return int(self.g.shape[1])


def _modes(a: Array) -> tuple[Array, Array, Array]:
    lam, vec = np.linalg.eig(a)
    if np.any(np.abs(lam.imag) > 1e-9 * np.maximum(1.0, np.abs(lam.real))) or np.any(lam.real >= 0):
        raise InvalidInput("the compartment system must have negative real eigenvalues")
    lam = lam.real
    vec = vec.real
    inv = np.linalg.inv(vec)
    # a nearly defective system (repeated eigenvalues) shows as a huge inverse
    cond = np.abs(vec).sum(axis=1).max(axis=-1) * np.abs(inv).sum(axis=1).max(axis=-1)
    if np.any(~np.isfinite(cond)) or np.any(cond > _MAX_CONDITION):
        raise InvalidInput(
            "the model's rate constants nearly coincide (repeated eigenvalues), which the "
            "modal solution cannot resolve exactly; perturb a parameter"
        )
    return lam, vec, inv


def make_plan(*, a: Array, c: Array, inputs: list[Input]) -> Plan:
    """Decompose the system and carry the state through every dosing segment.

    Parameters
    ----------
    a
        Rate matrices, shape (N, n, n), per hour.
    c
        Output matrices, shape (N, O, n).
    inputs
        Doses; amounts are per patient, shape (N,).
    """
    n_pat, n_states, _ = a.shape
    lam, vec, inv = _modes(a)
    times = {0.0}
    for item in inputs:
        if item.start_h < 0 or item.end_h < item.start_h:
            raise InvalidInput("dose times must be non-negative and end after they start")
        times.update((item.start_h, item.end_h))
    breaks = np.array(sorted(times))
    n_seg = breaks.size
    # doses in modal coordinates (z = V^-1 x): each dose enters one state, so its modal
    # image is that state's column of V^-1 times the amount (or the rate)
    zb = np.zeros((n_seg, n_pat, n_states))
    w = np.zeros((n_seg, n_pat, n_states))
    for item in inputs:
        i0 = int(np.searchsorted(breaks, item.start_h))
        column = inv[:, :, item.state]  # (N, K)
        if item.end_h == item.start_h:
            zb[i0] += column * item.amount_mg[:, None]
        else:
            i1 = int(np.searchsorted(breaks, item.end_h))
            per_h = item.amount_mg / (item.end_h - item.start_h)
            w[i0:i1] += (column * per_h[:, None])[None]
    z = np.empty_like(zb)
    state = np.zeros((n_pat, lam.shape[1]))
    for s in range(n_seg):
        state = state + zb[s]
        z[s] = state
        if s + 1 < n_seg:
            h = breaks[s + 1] - breaks[s]
            x = lam * h
            state = np.exp(x) * state + np.expm1(x) / lam * w[s]
    g = np.einsum("noj,njk->nok", c, vec)
    w_over = w / lam[None]
    a_coef = g[None] * (z + w_over)[:, :, None, :]
    c_coef = -np.einsum("nok,snk->sno", g, w_over)
    return Plan(breaks=breaks, lam=lam, a=a_coef, c=c_coef, z=z, w=w, g=g)


def evaluate(plan: Plan, times_h: Array, outputs: list[int] | None = None) -> Array:
    """Outputs at arbitrary (non-negative) times; returns (O, N, T).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[[-1.0]]]); c = np.array([[[1.0]]])
    >>> plan = make_plan(a=a, c=c, inputs=[Input(0.0, 1.0, 0, np.array([1.0]))])
    >>> bool(np.isclose(evaluate(plan, np.array([1.0]))[0, 0, 0], 1 - np.exp(-1)))
    True
    """
    times = np.asarray(times_h, dtype=np.float64)
    if times.ndim != 1 or np.any(times < 0) or np.any(~np.isfinite(times)):
        raise InvalidInput("times must be a 1-d array of finite non-negative hours")
    outs = list(range(plan.n_outputs)) if outputs is None else outputs
    seg = np.searchsorted(plan.breaks, times, side="right") - 1
    tau = times - plan.breaks[seg]
    result = np.empty((len(outs), plan.n_patients, times.size))
    chunk = max(1, int(4e6 // max(1, plan.n_patients * plan.lam.shape[1])))
    for j0 in range(0, times.size, chunk):
        sl = slice(j0, j0 + chunk)
        e = np.exp(plan.lam[:, None, :] * tau[None, sl, None])  # (N, t, K)
        for i, o in enumerate(outs):
            coef = plan.a[seg[sl], :, o, :]  # (t, N, K)
            result[i, :, sl] = plan.c[seg[sl], :, o].T + np.einsum("ntk,tnk->nt", e, coef)
    # concentrations of a compartment system are never negative; clear round-off below zero
    return np.maximum(result, 0.0, out=result)


def integrate(plan: Plan, times_h: Array, outputs: list[int] | None = None) -> Array:
    """Exact integral of each output from 0 to each time; returns (O, N, T) in ng*h/mL.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[[-0.5]]]); c = np.array([[[100.0]]])   # V = 10 L, CL = 5 L/h
    >>> plan = make_plan(a=a, c=c, inputs=[Input(0.0, 0.0, 0, np.array([100.0]))])
    >>> float(integrate(plan, np.array([1e4]))[0, 0, 0])  # AUC = dose / CL = 20 mg*h/L
    20000.0
    """
    times = np.asarray(times_h, dtype=np.float64)
    outs = list(range(plan.n_outputs)) if outputs is None else outputs
    lam = plan.lam
    lengths = np.diff(plan.breaks)

    # integral over complete segment s of length h:
    #   c h + sum_k a_k expm1(lam h) / lam  (written with z, w to avoid cancellation)
    def seg_integral(s: int, h: float) -> Array:
        # integral over [0, h] of segment s, written with z, w to avoid cancellation:
        #   sum_k G_k [z_k expm1(lam h) / lam + w_k (expm1(lam h) / lam - h) / lam]
        e1 = np.expm1(lam * h) / lam
        term = plan.z[s] * e1 + plan.w[s] * (e1 - h) / lam
        result: Array = np.einsum("nok,nk->on", plan.g[:, outs, :], term)
        return result

    cumulative = np.zeros((lengths.size + 1, len(outs), plan.n_patients))
    for s, h in enumerate(lengths):
        cumulative[s + 1] = cumulative[s] + seg_integral(s, float(h))
    seg = np.searchsorted(plan.breaks, times, side="right") - 1
    tau = times - plan.breaks[seg]
    result = np.empty((len(outs), plan.n_patients, times.size))
    for j, (s, t) in enumerate(zip(seg, tau, strict=True)):
        result[:, :, j] = cumulative[s] + seg_integral(int(s), float(t))
    return result


def _active_modes(plan: Plan, outputs: list[int]) -> npt.NDArray[np.intp]:
    """Modes that contribute to the requested outputs (an effect site's mode does not
    contribute to plasma, so a plasma-only population skips it)."""
    g = np.abs(plan.g[:, outputs, :])
    scale = g.max(axis=(0, 2), keepdims=True)
    scale[scale == 0] = 1.0
    return np.flatnonzero((g / scale).max(axis=(0, 1)) > 1e-13)


def evaluate_grid(
    plan: Plan,
    *,
    start_h: float,
    step_h: float,
    n_times: int,
    outputs: list[int],
    reduce: Callable[[int, Array], object] | None = None,
    block: int | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    compiled: bool | None = None,
) -> Iterator[tuple[int, Array | object]]:
    """Evaluate on the uniform grid ``start_h + j * step_h`` in time-major blocks.

    Yields ``(j0, block)`` with ``block`` of shape (O, L, N) (time-major, patients last),
    or ``(j0, reduce(j0, block))`` when a reducer is given (the reducer may overwrite the
    block, which is a reused buffer), so that a population's
    percentiles can be computed without ever holding every curve. Blocks are independent
    and may be computed by ``workers`` threads (numpy releases the GIL in its loops).

    The exponentials are computed once per grid as ``r ** m`` with ``r = exp(lam * step)``
    (a cumulative product, relative error below m * 1.2e-16) and scaled per segment piece
    by ``exp(lam * delta)``; a block then costs one multiply-add per active mode and point.

    ``compiled`` fills the blocks with :func:`ketacare.core.pharmacology.kernel.fill_rows`
    instead (the same closed form, each row carried from the one before); ``None`` takes
    it from :data:`COMPILED_FROM` patients on. The numpy path is the reference.
    """
    if n_times <= 0 or step_h <= 0 or start_h < 0:
        raise InvalidInput("the grid needs n_times > 0, step_h > 0 and start_h >= 0")
    n_pat = plan.n_patients
    modes = _active_modes(plan, outputs)
    lam = np.ascontiguousarray(plan.lam[:, modes].T)  # (K, N)
    k = lam.shape[0]
    if block is None:
        block = int(max(64, min(n_times, 2_000_000 // max(1, n_pat))))
    # sub-blocks small enough that the power table stays in cache (about 1 MB)
    sub = int(np.clip(130_000 // max(1, k * n_pat), 16, 4096))
    powers = np.empty((sub + 1, k, n_pat))
    powers[0] = 1.0
    powers[1:] = np.exp(lam * step_h)[None]
    np.multiply.accumulate(powers, axis=0, out=powers)
    jump = powers[sub]  # r ** sub
    table = powers[:sub]
    a_sel = plan.a[:, :, outputs, :][:, :, :, modes]  # (S, N, O, K)
    c_sel = plan.c[:, :, outputs]  # (S, N, O)
    breaks = plan.breaks
    if compiled is None:
        compiled = n_pat >= COMPILED_FROM
    fill: Callable[..., None] | None = None
    if compiled:
        from ketacare.core.pharmacology.kernel import fill_rows  # numba: when first needed

        fill = fill_rows
        per_output = [
            (
                np.ascontiguousarray(a_sel[:, :, i, :].transpose(0, 2, 1)),  # (S, K, N)
                np.ascontiguousarray(c_sel[:, :, i]),  # (S, N)
            )
            for i in range(len(outputs))
        ]
    starts = list(range(0, n_times, block))
    # with a reducer the block never leaves this function, so each thread reuses one buffer
    # (fresh allocations of tens of MB cost more in page faults than the arithmetic)
    local = threading.local()

    def buffer(rows: int) -> Array:
        if reduce is None:
            return np.empty((len(outputs), rows, n_pat))
        if getattr(local, "out", None) is None:
            local.out = np.empty((len(outputs), block, n_pat))
        view: Array = local.out[:, :rows]
        return view

    def compute(j0: int) -> tuple[int, Array | object]:
        j1 = min(n_times, j0 + block)
        times = start_h + step_h * np.arange(j0, j1)
        seg = np.searchsorted(breaks, times, side="right") - 1
        out = buffer(j1 - j0)
        if fill is not None:
            for i, (a_i, c_i) in enumerate(per_output):
                fill(lam, a_i, c_i, breaks, start_h, step_h, j0, out[i])
            return (j0, reduce(j0, out)) if reduce is not None else (j0, out)
        cuts = np.flatnonzero(np.diff(seg)) + 1
        for lo, hi in zip(
            np.concatenate(([0], cuts)), np.concatenate((cuts, [j1 - j0])), strict=True
        ):
            s = int(seg[lo])
            scale = np.exp(lam * (times[lo] - breaks[s]))  # (K, N)
            for i in range(len(outputs)):
                q = a_sel[s, :, i, :].T * scale  # modal terms at the piece start
                c = c_sel[s, :, i]
                for m0 in range(int(lo), int(hi), sub):
                    m1 = min(int(hi), m0 + sub)
                    view = out[i, m0:m1]
                    np.einsum("lkn,kn->ln", table[: m1 - m0], q, out=view)
                    view += c
                    if m1 < hi:
                        q *= jump
        np.maximum(out, 0.0, out=out)  # round-off below zero (concentrations are >= 0)
        if reduce is not None:
            return j0, reduce(j0, out)
        return j0, out

    done = 0
    if workers <= 1:
        for j0 in starts:
            item = compute(j0)
            done += 1
            if progress is not None:
                progress(done, len(starts))
            yield item
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for item in pool.map(compute, starts):
            done += 1
            if progress is not None:
                progress(done, len(starts))
            yield item


# --------------------------------------------------------------------------------------
# one patient: the same solution without the population axis
# --------------------------------------------------------------------------------------
#
# A typical-patient simulation (a plan preview, the chair's live estimate, the simulation
# page) is one patient on a grid of a few thousand points. Through the population engine
# above it paid for the patient axis in every call: an eigen-decomposition, a power table
# built for many patients, one einsum per block, and numpy calls on arrays of 4 numbers.
# The functions below compute the same closed form for one patient: the decomposition is
# made once per patient and reused for every regimen (:func:`modes_of`), the few numbers
# per dosing segment are carried in plain floats, and each segment's stretch of the grid
# is one matrix product with a kept table of exp(lam * step * m).


@dataclass(frozen=True, slots=True, eq=False)
class Modes:
    """One patient's system in modal form: ``A = V diag(lam) V^-1`` and ``G = C V``.

    Checked once by :func:`modes_of` (negative real eigenvalues, a well-conditioned
    eigenvector matrix); a simulation of the same patient reuses it for any regimen.
    """

    lam: tuple[float, ...]  # (K,) per hour
    inv_columns: tuple[tuple[float, ...], ...]  # (n, K): column j of V^-1, per state j
    g: tuple[tuple[float, ...], ...]  # (O, K)
    tables: dict[float, Array] = field(default_factory=dict, repr=False)

    def table(self, step_h: float, columns: int) -> Array:
        """``exp(lam_k * step_h * m)`` in row ``k``, then a row of ones, for ``m = 0 ..
        columns - 1``: shape (K + 1, columns).

        The row of ones multiplies a segment's constant term, so that one matrix product
        gives the outputs. Kept per step (up to a length) for the next grid.
        """
        kept = self.tables.get(step_h)
        if kept is not None and kept.shape[1] >= columns:
            return kept[:, :columns]
        made = np.ones((len(self.lam) + 1, columns))
        # exact exponentials (no accumulated product)
        np.exp(np.multiply.outer(self.lam, step_h * np.arange(columns)), out=made[:-1])
        if columns <= _MAX_KEPT_TABLE:
            made.flags.writeable = False
            self.tables[step_h] = made
        return made


def modes_of(a: Array, c: Array) -> Modes:
    """Decompose one patient's system: ``a`` (n, n) per hour, ``c`` (O, n).

    Raises InvalidInput as :func:`make_plan` does (non-negative or complex eigenvalues, a
    nearly defective system).
    """
    lam, vec, inv = _modes(a[None])
    g = c @ vec[0]
    return Modes(
        lam=tuple(lam[0].tolist()),
        inv_columns=tuple(tuple(col) for col in inv[0].T.tolist()),
        g=tuple(tuple(row) for row in g.tolist()),
    )


@dataclass(frozen=True, slots=True)
class OnePlan:
    """One patient's regimen carried through every dosing segment (see :class:`Plan`).

    ``breaks`` (S) are the segment starts; ``z`` and ``w`` (S, K) the modal state at each
    segment start and the modal input rate during it.
    """

    breaks: list[float]
    z: list[list[float]]
    w: list[list[float]]


def make_one_plan(modes: Modes, inputs: list[Input]) -> OnePlan:
    """:func:`make_plan` for one patient (each input's ``amount_mg`` has one element)."""
    times = {0.0}
    for item in inputs:
        if item.start_h < 0 or item.end_h < item.start_h:
            raise InvalidInput("dose times must be non-negative and end after they start")
        times.add(item.start_h)
        times.add(item.end_h)
    breaks = sorted(times)
    where = {t: i for i, t in enumerate(breaks)}
    lam = modes.lam
    n_modes = len(lam)
    n_seg = len(breaks)
    bolus = [[0.0] * n_modes for _ in range(n_seg)]
    rate = [[0.0] * n_modes for _ in range(n_seg)]
    for item in inputs:
        column = modes.inv_columns[item.state]
        amount = float(item.amount_mg[0])
        i0 = where[item.start_h]
        if item.end_h == item.start_h:
            row = bolus[i0]
            for k in range(n_modes):
                row[k] += column[k] * amount
        else:
            per_h = amount / (item.end_h - item.start_h)
            for s in range(i0, where[item.end_h]):
                row = rate[s]
                for k in range(n_modes):
                    row[k] += column[k] * per_h
    z = []
    state = [0.0] * n_modes
    for s in range(n_seg):
        start = [x + b for x, b in zip(state, bolus[s], strict=True)]
        z.append(start)
        if s + 1 < n_seg:
            h = breaks[s + 1] - breaks[s]
            state = [
                math.exp(lk * h) * x + math.expm1(lk * h) / lk * wk
                for lk, x, wk in zip(lam, start, rate[s], strict=True)
            ]
    return OnePlan(breaks=breaks, z=z, w=rate)


def _first_at_or_after(t: float, step_h: float) -> int:
    """The first ``j`` with ``step_h * j >= t`` (the grid's searchsorted, in floats)."""
    j = max(0, math.floor(t / step_h) - 1)
    while step_h * j < t:
        j += 1
    return j


def evaluate_one_grid(modes: Modes, plan: OnePlan, step_h: float, n_times: int) -> Array:
    """Every output on the grid ``j * step_h``, ``j = 0 .. n_times - 1``; returns (O, T).

    Output ``o`` on segment ``s``, ``tau`` after its start, is
    ``sum_k G_ok (z_sk + w_sk / lam_k) exp(lam_k tau) - sum_k G_ok w_sk / lam_k``.
    """
    lam, g = modes.lam, modes.g
    breaks = plan.breaks
    firsts = [_first_at_or_after(b, step_h) for b in breaks]
    firsts.append(n_times)
    pieces = []
    coefs: list[float] = []  # per piece, per output: the K modal terms, then the constant
    for s, b in enumerate(breaks):
        j0, j1 = min(firsts[s], n_times), min(firsts[s + 1], n_times)
        if j1 <= j0:
            continue
        offset = step_h * j0 - b
        w_over = [wk / lk for wk, lk in zip(plan.w[s], lam, strict=True)]
        modal = [
            (zk + wo) * math.exp(lk * offset)
            for zk, wo, lk in zip(plan.z[s], w_over, lam, strict=True)
        ]
        for row in g:
            coefs.extend([gk * m for gk, m in zip(row, modal, strict=True)])
            coefs.append(-sum(gk * wo for gk, wo in zip(row, w_over, strict=True)))
        pieces.append((j0, j1))
    coef = np.array(coefs).reshape(len(pieces), len(g), len(lam) + 1)
    table = modes.table(step_h, max(j1 - j0 for j0, j1 in pieces))
    out = np.empty((len(g), n_times))
    for i, (j0, j1) in enumerate(pieces):
        np.matmul(coef[i], table[:, : j1 - j0], out=out[:, j0:j1])
    np.maximum(out, 0.0, out=out)  # round-off below zero (concentrations are >= 0)
    return out


def integrate_one(
    modes: Modes, plan: OnePlan, times_h: list[float], output: int = 0
) -> list[float]:
    """Exact integral of one output from 0 to each time (ng*h/mL), as :func:`integrate`."""
    lam, g = modes.lam, modes.g[output]
    breaks, z, w = plan.breaks, plan.z, plan.w

    def piece(s: int, h: float) -> float:
        total = 0.0
        for gk, lk, zk, wk in zip(g, lam, z[s], w[s], strict=True):
            e1 = math.expm1(lk * h) / lk
            total += gk * (zk * e1 + wk * (e1 - h) / lk)
        return total

    cumulative = [0.0]
    for s in range(len(breaks) - 1):
        cumulative.append(cumulative[-1] + piece(s, breaks[s + 1] - breaks[s]))
    out = []
    for t in times_h:
        s = bisect.bisect_right(breaks, t) - 1
        out.append(cumulative[s] + piece(s, t - breaks[s]))
    return out
