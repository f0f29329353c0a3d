"""Kaplan-Meier and Greenwood checked against hand calculations (no code output)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.outcomes import kaplan_meier

# Freireich et al. (1963) 6-MP arm, as tabulated by Gehan (1965) and used in most
# survival textbooks: weeks in remission, "+" = censored.
#   6 6 6 6+ 7 9+ 10 10+ 11+ 13 16 17+ 19+ 20+ 22 23 25+ 32+ 32+ 34+ 35+
SIX_MP_TIMES = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
SIX_MP_EVENT = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]

# Hand calculation. n_j = at risk just before t_j (a censoring tied with an event
# time is still at risk), d_j = events at t_j:
#   t   n   d   factor (n-d)/n   S(t)                         d/(n(n-d))
#   6   21  3   18/21            18/21            = 0.857143   3/378 = 0.0079365
#   7   17  1   16/17            288/357          = 0.806723   1/272 = 0.0036765
#   10  15  1   14/15            ... * 14/15      = 0.752941   1/210 = 0.0047619
#   13  12  1   11/12            ... * 11/12      = 0.690196   1/132 = 0.0075758
#   16  11  1   10/11            ... * 10/11      = 0.627451   1/110 = 0.0090909
#   22   7  1    6/7             ... * 6/7        = 0.537815   1/42  = 0.0238095
#   23   6  1    5/6             ... * 5/6        = 0.448179   1/30  = 0.0333333
# Greenwood SE = S * sqrt(cumulative sum of d/(n(n-d))):
#   6: 0.857143*sqrt(0.0079365) = 0.0764     7: 0.806723*sqrt(0.0116130) = 0.0869
#  10: 0.752941*sqrt(0.0163749) = 0.0963    13: 0.690196*sqrt(0.0239507) = 0.1068
#  16: 0.627451*sqrt(0.0330416) = 0.1141    22: 0.537815*sqrt(0.0568511) = 0.1282
#  23: 0.448179*sqrt(0.0901844) = 0.1346   (the textbook standard errors)
# Median: the first t with S(t) <= 0.5 is 23 weeks.
HAND = [  # (t, n, d, factor)
    (6, 21, 3, Fraction(18, 21)),
    (7, 17, 1, Fraction(16, 17)),
    (10, 15, 1, Fraction(14, 15)),
    (13, 12, 1, Fraction(11, 12)),
    (16, 11, 1, Fraction(10, 11)),
    (22, 7, 1, Fraction(6, 7)),
    (23, 6, 1, Fraction(5, 6)),
]
TEXTBOOK_SE = {6: 0.0764, 7: 0.0869, 10: 0.0963, 13: 0.1068, 16: 0.1141, 22: 0.1282, 23: 0.1346}


@pytest.fixture(scope="module")
def six_mp():
    return kaplan_meier(durations=SIX_MP_TIMES, events=SIX_MP_EVENT)


def test_survival_matches_the_hand_products(six_mp):
    s = Fraction(1)
    for t, n, d, factor in HAND:
        s *= factor
        row = int(np.flatnonzero(six_mp.time == t)[0])
        assert six_mp.at_risk[row] == n
        assert six_mp.events[row] == d
        assert six_mp.survival[row] == pytest.approx(float(s), abs=1e-12)


def test_greenwood_standard_errors_match_the_textbook(six_mp):
    for t, se in TEXTBOOK_SE.items():
        row = int(np.flatnonzero(six_mp.time == t)[0])
        assert math.sqrt(six_mp.variance[row]) == pytest.approx(se, abs=5e-5)


def test_greenwood_variance_by_hand_at_week_10(six_mp):
    s10 = Fraction(18, 21) * Fraction(16, 17) * Fraction(14, 15)
    var = float(s10) ** 2 * (3 / 378 + 1 / 272 + 1 / 210)
    row = int(np.flatnonzero(six_mp.time == 10)[0])
    assert six_mp.variance[row] == pytest.approx(var, rel=1e-12)


def test_censoring_rows_keep_survival_and_count_censored(six_mp):
    row = int(np.flatnonzero(six_mp.time == 9)[0])
    assert (six_mp.events[row], six_mp.censored[row], six_mp.at_risk[row]) == (0, 1, 16)
    assert six_mp.survival[row] == pytest.approx(288 / 357)
    assert six_mp.time[0] == 0 and six_mp.survival[0] == 1.0


def test_log_log_band_at_week_6_by_hand(six_mp):
    # theta = log(-log S); se(theta) = sqrt(3/378) / |log(18/21)|
    #   log(18/21) = -0.154151, sqrt(0.0079365) = 0.089087 -> se = 0.577920
    #   z = 1.959964: exp(z*se) = 3.10396, exp(-z*se) = 0.322170
    #   lower = (18/21)^3.10396 = 0.61972, upper = (18/21)^0.322170 = 0.95155
    row = int(np.flatnonzero(six_mp.time == 6)[0])
    assert six_mp.lower[row] == pytest.approx(0.61972, abs=5e-5)
    assert six_mp.upper[row] == pytest.approx(0.95155, abs=5e-5)


def test_linear_band_by_hand():
    km = kaplan_meier(durations=SIX_MP_TIMES, events=SIX_MP_EVENT, band="linear")
    row = int(np.flatnonzero(km.time == 6)[0])
    # 0.857143 -+ 1.959964 * 0.076360 = 0.70748 .. 1.00681, clipped to 1
    assert km.lower[row] == pytest.approx(0.857143 - 1.959964 * 0.076360, abs=1e-5)
    assert km.upper[row] == 1.0


def test_median_and_its_limits(six_mp):
    assert six_mp.median == 23.0
    # lower log-log band by hand:
    #   t=10: S=0.752941, se=sqrt(0.0163749)/0.283764=0.450955 -> S^exp(0.883856)=0.50319 > 0.5
    #   t=13: S=0.690196, se=sqrt(0.0239507)/0.370780=0.417390 -> S^exp(0.818070)=0.43161 <= 0.5
    assert six_mp.median_lower == 13.0
    # the upper band never reaches 0.5 with 5 patients still at risk after week 23
    assert six_mp.median_upper is None


def test_small_example_with_everyone_failing():
    # 3 patients, events at 1, 2, 3: S = 2/3, 1/3, 0; median 2.
    km = kaplan_meier(durations=[3, 1, 2], events=[True, True, True])
    assert km.survival.tolist() == pytest.approx([1, 2 / 3, 1 / 3, 0])
    assert km.median == 2.0
    assert km.lower[-1] == km.upper[-1] == 0.0


def test_censoring_only_gives_one():
    km = kaplan_meier(durations=[5, 1, 9], events=[False, False, False])
    assert np.all(km.survival == 1.0) and km.median is None and km.n_events == 0


def test_events_at_time_zero_have_no_extra_row():
    km = kaplan_meier(durations=[0, 0, 4], events=[True, False, True])
    # at 0: n = 3, d = 1 -> S = 2/3; at 4: n = 1, d = 1 -> 0
    assert km.time.tolist() == [0.0, 4.0]
    assert km.survival.tolist() == pytest.approx([2 / 3, 0.0])


def test_survival_at_reads_the_step_function(six_mp):
    assert six_mp.survival_at([5.9, 6, 8, 100]).tolist() == pytest.approx(
        [1.0, 18 / 21, 288 / 357, float(np.prod([float(h[3]) for h in HAND]))]
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"durations": [1, 2], "events": [True]}, InvalidInput),
        ({"durations": [-1], "events": [True]}, OutOfRange),
        ({"durations": [float("nan")], "events": [True]}, OutOfRange),
        ({"durations": [1], "events": [True], "confidence": 1.0}, OutOfRange),
        ({"durations": [1], "events": [True], "band": "plain"}, InvalidInput),
    ],
    ids=repr,
)
def test_bad_input_is_refused(kwargs, error):
    with pytest.raises(error):
        kaplan_meier(**kwargs)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=30), st.booleans()), min_size=1, max_size=60
    ),
    st.sampled_from(["log-log", "linear"]),
)
def test_properties(data, band):
    durations = [d for d, _ in data]
    events = [e for _, e in data]
    km = kaplan_meier(durations=durations, events=events, band=band)
    assert np.all(np.diff(km.survival) <= 1e-15)  # non-increasing
    assert np.all((km.survival >= 0) & (km.survival <= 1))
    assert np.all(km.lower <= km.survival + 1e-12) and np.all(km.survival <= km.upper + 1e-12)
    assert np.all((km.lower >= 0) & (km.upper <= 1))
    assert int(km.events.sum()) == sum(events) and int(km.censored.sum()) == len(data) - sum(events)
    if not any(events):
        assert np.all(km.survival == 1.0)
    # without censoring, S(t) is the empirical fraction still event-free
    if all(events):
        for t, s in zip(km.time, km.survival, strict=True):
            assert s == pytest.approx(np.mean(np.array(durations) > t))
