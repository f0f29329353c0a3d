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

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ketacare.core.errors import InvalidInput

__all__ = ["Input", "Plan", "evaluate", "evaluate_grid", "integrate", "make_plan"]

Array = npt.NDArray[np.float64]

#: Above this condition number of the eigenvector matrix the modal form loses digits.
_MAX_CONDITION = 1e10


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
    bolus = np.zeros((n_seg, n_pat, n_states))
    rate = np.zeros((n_seg, n_pat, n_states))
    for item in inputs:
        i0 = int(np.searchsorted(breaks, item.start_h))
        if item.end_h == item.start_h:
            bolus[i0, :, item.state] += item.amount_mg
        else:
            i1 = int(np.searchsorted(breaks, item.end_h))
            rate[i0:i1, :, item.state] += (item.amount_mg / (item.end_h - item.start_h))[None, :]
    # modal coordinates: z = V^-1 x
    zb = np.einsum("nkj,snj->snk", inv, bolus)
    w = np.einsum("nkj,snj->snk", inv, rate)
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
