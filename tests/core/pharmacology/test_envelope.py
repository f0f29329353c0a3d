"""The drawn envelope keeps every curve's extremes within at most the points allowed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.core.pharmacology.envelope import envelope_indices


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=4000),
    k=st.integers(min_value=1, max_value=4),
    extra=st.integers(min_value=0, max_value=3000),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_every_extreme_is_kept_within_the_budget(n: int, k: int, extra: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    curves = [rng.standard_normal(n).cumsum() for _ in range(k)]
    max_points = 2 + 3 * k + extra
    keep = envelope_indices(curves, max_points=max_points)
    assert keep.size <= max_points
    assert np.all(np.diff(keep) > 0) and keep[0] == 0 and keep[-1] == n - 1
    if n <= max_points:
        assert keep.tolist() == list(range(n))
    for y in curves:
        # the drawn polyline reaches the curve's highest and lowest points
        assert y[keep].max() == y.max() and y[keep].min() == y.min()


def test_a_short_peak_between_regular_points_is_drawn() -> None:
    # a 51-day course at 1-minute output with one 3-minute peak: every 37th point (what
    # a 2,000-point budget would take regularly) misses it, the envelope does not
    y = np.zeros(73_441)
    y[50_001:50_004] = [40.0, 90.0, 40.0]
    assert y[::37].max() == 0.0
    keep = envelope_indices([y], max_points=2000)
    assert keep.size <= 2000 and 50_002 in keep


def test_bad_calls_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="no curve"):
        envelope_indices([], max_points=10)
    with pytest.raises(ValueError, match="share one time axis"):
        envelope_indices([np.zeros(5), np.zeros(6)], max_points=10)
    with pytest.raises(ValueError, match="too few: at least 8"):
        envelope_indices([np.zeros(5), np.zeros(5)], max_points=7)
