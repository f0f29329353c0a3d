"""Fewer points to draw, every peak kept: the min/max envelope of curves on one time axis.

A 51-day course at 1-minute output is 73,441 points per curve; a chart is at most a
couple of thousand pixels wide. Taking every n-th point would draw the course lighter
than it is: an intranasal peak lasts minutes and falls between the points kept. The
envelope instead cuts the axis into intervals and keeps, in each, its first point and
the points where each curve is lowest and highest. The drawn polyline then reaches
every curve's true maximum and minimum, in every interval.

>>> import numpy as np
>>> t = np.arange(10.0)
>>> y = np.array([0, 1, 0, 0, 9, 0, 0, 2, 0, 0.0])
>>> keep = envelope_indices([y], max_points=8)  # two intervals of five points
>>> keep.tolist()
[0, 4, 5, 7, 9]
>>> float(y[keep].max())
9.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["envelope_indices"]


def envelope_indices(
    series: Sequence[npt.NDArray[np.float64]], *, max_points: int
) -> npt.NDArray[np.intp]:
    """Indices (ascending) of the points to draw: at most ``max_points``.

    Each interval of the axis keeps its first point and each series' lowest and
    highest; the first and last points are always kept. With ``max_points`` at least the
    number of points, every index is returned.
    """
    if not series:
        raise ValueError("no curve to draw")
    n = int(series[0].shape[0])
    if any(int(s.shape[0]) != n for s in series):
        raise ValueError("the curves must share one time axis")
    if max_points < 2 + 3 * len(series):
        raise ValueError(f"max_points {max_points} is too few: at least {2 + 3 * len(series)}")
    if n <= max_points:
        return np.arange(n)
    per_interval = 1 + 2 * len(series)
    intervals = max(1, (max_points - 2) // per_interval)
    width = -(-n // intervals)  # ceil: the last interval may be shorter
    starts = np.arange(0, n, width)
    found = [starts, np.array([n - 1])]
    padded = starts.size * width
    for s in series:
        # pad the last interval with its own last value: no extreme that is not there
        block = np.concatenate((s, np.full(padded - n, s[-1]))).reshape(-1, width)
        for pick in (block.argmin(axis=1), block.argmax(axis=1)):
            found.append(np.minimum(starts + pick, n - 1))
    return np.unique(np.concatenate(found))
