"""Kaplan-Meier survival curves with Greenwood confidence bands, in numpy.

Used for the durability of response: the time from a patient's first response
to the loss of response (the event), censored at the last measurement of a
patient still in response.

Conventions (the usual ones, stated so a reader can check them):

- ``S(t) = prod over event times t_j <= t of (1 - d_j / n_j)``, with ``n_j`` the
  number still at risk just before ``t_j`` (duration >= t_j) and ``d_j`` the
  events at ``t_j``. A censoring tied with an event time is at risk at it.
- Greenwood: ``Var S(t) = S(t)^2 * sum_{t_j <= t} d_j / (n_j (n_j - d_j))``.
- Bands: ``log-log`` (default; Kalbfleisch and Prentice: ``S^exp(+-z*se)``
  with ``se = sqrt(sum d/(n(n-d))) / |log S|``, always inside [0, 1]) or
  ``linear`` (``S +- z*sqrt(Var)``, clipped to [0, 1]). Where ``S`` is 1 the
  band is [1, 1]; where ``S`` is 0 it is [0, 0].
- Median: the first time at which ``S(t) <= 0.5`` (None if never); its
  confidence limits are the first times the upper and lower bands reach 0.5.

Examples
--------
>>> km = kaplan_meier(durations=[1, 2, 2, 3], events=[True, True, False, False])
>>> km.time.tolist(), km.survival.round(4).tolist()
([0.0, 1.0, 2.0, 3.0], [1.0, 0.75, 0.5, 0.5])
>>> km.median
2.0
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketacare.core.errors import InvalidInput, OutOfRange

BandKind = Literal["log-log", "linear"]


@dataclass(frozen=True, slots=True, eq=False)
class KaplanMeier:
    """A Kaplan-Meier estimate as a step table, one row per distinct time.

    Row 0 is time 0 (S = 1, or the estimate just after 0 when some durations
    are 0). Each further row is a distinct observed duration
    with the number at risk just before it, events and censorings at it, the
    survival just after it, its Greenwood variance and the confidence band.
    """

    time: NDArray[np.float64]
    at_risk: NDArray[np.int64]
    events: NDArray[np.int64]
    censored: NDArray[np.int64]
    survival: NDArray[np.float64]
    variance: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    n: int
    n_events: int
    confidence: float
    band: BandKind
    median: float | None
    median_lower: float | None
    median_upper: float | None

    def survival_at(self, t: ArrayLike) -> NDArray[np.float64]:
        """S(t) read off the step function (right-continuous).

        Examples
        --------
        >>> km = kaplan_meier(durations=[1, 2], events=[True, True])
        >>> km.survival_at([0.5, 1, 1.5, 9]).tolist()
        [1.0, 0.5, 0.5, 0.0]
        """
        q = np.asarray(t, dtype=np.float64)
        idx = np.searchsorted(self.time, q, side="right") - 1
        return self.survival[np.clip(idx, 0, None)]


def _first_time_at_or_below(time: NDArray[np.float64], s: NDArray[np.float64]) -> float | None:
    hit = np.flatnonzero(s <= 0.5)
    return float(time[hit[0]]) if hit.size else None


def kaplan_meier(
    *,
    durations: ArrayLike,
    events: ArrayLike,
    confidence: float = 0.95,
    band: BandKind = "log-log",
) -> KaplanMeier:
    """Estimate S(t) from durations and event flags (False = censored).

    Parameters
    ----------
    durations
        Time from the origin (e.g. first response) to the event or censoring,
        in any unit (the shell uses days); finite and >= 0.
    events
        True where the event (loss of response) was observed.
    confidence
        Two-sided level of the pointwise band, in (0, 1).
    band
        ``"log-log"`` (default) or ``"linear"``.

    Examples
    --------
    Censoring only: nobody lost their response, S stays 1.

    >>> kaplan_meier(durations=[3, 5], events=[False, False]).survival.tolist()
    [1.0, 1.0, 1.0]
    """
    d = np.asarray(durations, dtype=np.float64).ravel()
    e = np.asarray(events, dtype=bool).ravel()
    if d.shape != e.shape:
        raise InvalidInput(f"durations ({d.size}) and events ({e.size}) differ in length")
    if d.size and (not np.all(np.isfinite(d)) or d.min() < 0):
        raise OutOfRange("duration", float(d[~np.isfinite(d) | (d < 0)][0]), "finite and >= 0")
    if not 0 < confidence < 1:
        raise OutOfRange("confidence", confidence, "between 0 and 1, e.g. 0.95")
    if band not in ("log-log", "linear"):
        raise InvalidInput(f"band {band!r} is not 'log-log' or 'linear'")

    times, inverse = np.unique(d, return_inverse=True)
    n_events = np.bincount(inverse, weights=e, minlength=times.size).astype(np.int64)
    n_total = np.bincount(inverse, minlength=times.size).astype(np.int64)
    n_censored = n_total - n_events
    # at risk just before t_j: everyone whose duration is >= t_j
    at_risk = d.size - np.concatenate(([0], np.cumsum(n_total)[:-1])).astype(np.int64)

    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk > 0, 1.0 - n_events / np.maximum(at_risk, 1), 1.0)
        survival: NDArray[np.float64] = np.cumprod(factor).astype(np.float64)
        term = np.where(
            n_events > 0,
            n_events / (at_risk.astype(np.float64) * (at_risk - n_events)),
            0.0,
        )
        greenwood = np.cumsum(term)  # inf once S reaches 0
        variance = np.where(survival > 0, survival**2 * greenwood, 0.0)
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        if band == "linear":
            half = z * np.sqrt(variance)
            lower = np.clip(survival - half, 0.0, 1.0)
            upper = np.clip(survival + half, 0.0, 1.0)
        else:
            inner = (survival > 0) & (survival < 1)
            log_s = np.log(np.where(inner, survival, 0.5))
            se = np.sqrt(greenwood) / np.abs(log_s)
            lower = np.where(inner, survival ** np.exp(z * se), survival)
            upper = np.where(inner, survival ** np.exp(-z * se), survival)

    # a leading row at time 0 with S = 1, unless durations of 0 already give one
    lead = 0 if times.size and times[0] == 0 else 1
    time = np.concatenate(([0.0] * lead, times))
    pad_i = np.zeros(lead, dtype=np.int64)
    table_at_risk = np.concatenate(([d.size] * lead, at_risk)).astype(np.int64)
    survival = np.concatenate(([1.0] * lead, survival)).astype(np.float64)
    variance = np.concatenate(([0.0] * lead, variance))
    lower = np.concatenate(([1.0] * lead, lower))
    upper = np.concatenate(([1.0] * lead, upper))
    return KaplanMeier(
        time=time,
        at_risk=table_at_risk,
        events=np.concatenate((pad_i, n_events)),
        censored=np.concatenate((pad_i, n_censored)),
        survival=survival,
        variance=variance,
        lower=lower,
        upper=upper,
        n=int(d.size),
        n_events=int(e.sum()),
        confidence=confidence,
        band=band,
        median=_first_time_at_or_below(time, survival),
        median_lower=_first_time_at_or_below(time, lower),
        median_upper=_first_time_at_or_below(time, upper),
    )
