"""The cumulative dose and the clinic's caps: totals worked by hand, windows to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.safeguards import (
    CumulativeCap,
    DoseGiven,
    PlannedDose,
    check_caps,
    cumulative,
    parse_caps,
    total,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RAC = "racemic_ketamine"
ESK = "esketamine"


def dose(i: int, at: datetime, mg: float, kg: float = 70.0, molecule: str = RAC, course: int = 1):
    return DoseGiven(
        session_id=i,
        course_id=course,
        at=at,
        molecule=molecule,
        route="iv_infusion" if molecule == RAC else "intranasal_esketamine",
        mg=mg,
        weight_kg=kg,
    )


def test_window_is_open_at_its_start_and_closed_at_its_end():
    at = T0 + timedelta(days=30)
    doses = [
        dose(1, T0, 100),  # exactly 30 days before: outside a 30-day window
        dose(2, T0 + timedelta(seconds=1), 50),  # one second later: inside
        dose(3, at, 20),  # at the end: inside
        dose(4, at + timedelta(seconds=1), 999),  # after: not yet given
    ]
    t = total(doses, molecule=RAC, window_days=30, at=at)
    assert (t.sessions, t.mg) == (2, 70.0)
    ever = total(doses, molecule=RAC, window_days=None, at=at)
    assert (ever.sessions, ever.mg) == (3, 170.0)


def test_mg_per_kg_uses_each_sessions_own_weight():
    # 98 mg at 70 kg = 1.4 mg/kg; 100 mg at 80 kg = 1.25 mg/kg; together 2.65 mg/kg
    doses = [dose(1, T0, 98, 70), dose(2, T0 + timedelta(days=1), 100, 80)]
    t = total(doses, molecule=RAC, window_days=None, at=T0 + timedelta(days=2))
    assert t.mg == 198.0
    assert t.mg_per_kg == pytest.approx(2.65, abs=1e-12)


def test_molecules_are_never_added_together():
    doses = [dose(1, T0, 98), dose(2, T0 + timedelta(hours=1), 56, molecule=ESK)]
    e = cumulative(doses, at=T0 + timedelta(days=1))
    assert e.molecules == (RAC, ESK)
    assert [t.mg for t in e.totals_of(RAC)] == [98.0] * 4
    assert [t.mg for t in e.totals_of(ESK)] == [56.0] * 4
    assert [t.window_days for t in e.totals_of(ESK)] == [7, 30, 365, None]


def test_courses_and_their_dates():
    doses = [
        dose(1, T0, 98, course=10),
        dose(2, T0 + timedelta(days=1), 98, course=10),
        dose(3, T0 + timedelta(days=60), 35, course=22),
    ]
    e = cumulative(doses, at=T0 + timedelta(days=61))
    by_course = {c.course_id: c for c in e.courses}
    assert (by_course[10].sessions, by_course[10].mg) == (2, 196.0)
    assert by_course[10].mg_per_kg == pytest.approx(2.8)
    assert (by_course[10].first, by_course[10].last) == (T0, T0 + timedelta(days=1))
    assert (by_course[22].sessions, by_course[22].mg) == (1, 35.0)


def _cap(**kw):
    base = {"molecule": RAC, "window_days": 30, "approved": "medical director"}
    return CumulativeCap(**{**base, **kw})


def test_a_total_may_reach_a_cap_but_not_pass_it():
    # 9 sessions of 98 mg = 882 mg + one of 20 mg = 902 mg; the planned 98 mg makes 1000
    doses = [dose(i, T0 + timedelta(days=i), 98) for i in range(9)]
    doses.append(dose(9, T0 + timedelta(days=9), 20))
    at = T0 + timedelta(days=10)
    planned = PlannedDose(molecule=RAC, mg=98, weight_kg=70)
    (check,) = check_caps(doses, caps=[_cap(max_mg=1000)], at=at, planned=planned)
    assert (check.given, check.planned, check.after) == (902.0, 98.0, 1000.0)
    assert not check.exceeded and check.headroom == 0.0
    assert "within the clinic cap of 1000 mg" in check.message()
    # one hundredth of a milligram more is above it
    (over,) = check_caps(
        doses,
        caps=[_cap(max_mg=1000)],
        at=at,
        planned=PlannedDose(molecule=RAC, mg=98.01, weight_kg=70),
    )
    assert over.exceeded
    assert over.message() == (
        "racemic ketamine in any 30 days: 902 mg given + 98.01 mg planned = 1000.01 mg, "
        "above the clinic cap of 1000 mg (site policy, approved by medical director)"
    )


def test_floating_point_residue_of_a_delivered_dose_is_not_a_breach():
    doses = [dose(1, T0, 97.99999999999)]
    planned = PlannedDose(molecule=RAC, mg=2.0, weight_kg=70)
    (check,) = check_caps(
        doses, caps=[_cap(max_mg=100)], at=T0 + timedelta(days=1), planned=planned
    )
    assert not check.exceeded


def test_session_cap_counts_the_planned_session_and_slides_with_the_window():
    # at most 2 esketamine sessions in any 7 days: Monday and Thursday given
    cap = _cap(molecule=ESK, window_days=7, max_sessions=2)
    doses = [dose(1, T0, 56, molecule=ESK), dose(2, T0 + timedelta(days=3), 56, molecule=ESK)]
    planned = PlannedDose(molecule=ESK, mg=56, weight_kg=70)
    # the next Monday, 7 days after the first: that one has left the window
    (ok,) = check_caps(doses, caps=[cap], at=T0 + timedelta(days=7), planned=planned)
    assert (ok.given, ok.after, ok.exceeded) == (1.0, 2.0, False)
    # Sunday, one day earlier: three in 7 days
    (over,) = check_caps(doses, caps=[cap], at=T0 + timedelta(days=6), planned=planned)
    assert (over.given, over.after, over.exceeded) == (2.0, 3.0, True)
    assert over.message().startswith("esketamine in any 7 days: 2 sessions given + this one = 3")


def test_mg_per_kg_cap_and_whole_history_cap():
    cap = _cap(window_days=None, max_mg_per_kg=10, max_mg=2000)
    doses = [dose(i, T0 + timedelta(days=i), 98, 70) for i in range(7)]  # 686 mg, 9.8 mg/kg
    checks = check_caps(
        doses,
        caps=[cap],
        at=T0 + timedelta(days=400),
        planned=PlannedDose(molecule=RAC, mg=14, weight_kg=70),
    )
    by = {c.measure: c for c in checks}
    assert set(by) == {"mg", "mg_per_kg"}
    assert by["mg_per_kg"].after == pytest.approx(10.0) and not by["mg_per_kg"].exceeded
    assert by["mg"].after == 700.0 and not by["mg"].exceeded
    assert cap.window_text() == "in all"


def test_caps_of_another_molecule_do_not_apply():
    caps = [_cap(molecule=ESK, window_days=7, max_sessions=1)]
    doses = [dose(1, T0, 56, molecule=ESK)]
    checks = check_caps(
        doses,
        caps=caps,
        at=T0 + timedelta(days=1),
        planned=PlannedDose(molecule=RAC, mg=98, weight_kg=70),
    )
    assert checks == ()


def test_times_without_a_zone_and_impossible_doses_are_refused():
    with pytest.raises(InvalidInput, match="time zone"):
        total([], molecule=RAC, window_days=7, at=datetime(2026, 1, 1))
    with pytest.raises(InvalidInput, match="time zone"):
        dose(1, datetime(2026, 1, 1), 10)
    with pytest.raises(InvalidInput, match="must be >= 0"):
        dose(1, T0, -1)
    with pytest.raises(InvalidInput, match="weight 0"):
        dose(1, T0, 10, kg=0)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"molecule": "ketamine", "max_mg": 1, "approved": "x"}, "'cumulative_cap[0].molecule'"),
        ({"molecule": RAC, "max_mg": 1}, "say who approved"),
        ({"molecule": RAC, "max_mg": 1, "approved": "  "}, "say who approved"),
        ({"molecule": RAC, "approved": "x", "window_days": 30}, "set at least one of"),
        ({"molecule": RAC, "approved": "x", "max_mg": -5}, "must be positive"),
        ({"molecule": RAC, "approved": "x", "max_mg": True}, "must be a number"),
        ({"molecule": RAC, "approved": "x", "max_sessions": 2.5}, "whole number"),
        ({"molecule": RAC, "approved": "x", "max_mg": 1, "per": "week"}, "unknown field"),
    ],
)
def test_cap_file_errors_name_the_field(table, problem):
    with pytest.raises(DataFileError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_caps([table], molecules=[RAC, ESK], path="policy.toml")


def test_cap_file_must_be_an_array_of_tables():
    with pytest.raises(DataFileError, match=r"\[\[cumulative_cap\]\]"):
        parse_caps({"molecule": RAC}, molecules=[RAC])


@settings(max_examples=150, deadline=None)
@given(
    gaps_h=st.lists(st.floats(min_value=0.5, max_value=24 * 20), min_size=1, max_size=30),
    amounts=st.lists(st.floats(min_value=0, max_value=120), min_size=30, max_size=30),
    window=st.sampled_from([1, 7, 30]),
    limit=st.floats(min_value=50, max_value=500),
    max_sessions=st.integers(min_value=1, max_value=5),
)
def test_checking_before_each_dose_keeps_every_window_under_the_cap(
    gaps_h, amounts, window, limit, max_sessions
):
    """The design claim, checked by brute force: a clinic that gives a dose only when the
    check passes never has any window of the cap's length above the cap."""
    cap = _cap(window_days=window, max_mg=limit, max_sessions=max_sessions)
    given_doses: list[DoseGiven] = []
    at = T0
    for i, (gap, mg) in enumerate(zip(gaps_h, amounts, strict=False)):
        at = at + timedelta(hours=gap)
        checks = check_caps(
            given_doses, caps=[cap], at=at, planned=PlannedDose(molecule=RAC, mg=mg, weight_kg=70)
        )
        if not any(c.exceeded for c in checks):
            given_doses.append(dose(i, at, mg))
    span = timedelta(days=window)
    ends = [d.at for d in given_doses] + [d.at + span for d in given_doses]
    for end in ends:
        inside = [d for d in given_doses if end - span < d.at <= end]
        assert sum(d.mg for d in inside) <= limit + 1e-6
        assert len(inside) <= max_sessions


def test_a_dose_charted_after_the_fact_counts_in_the_windows_of_later_doses():
    # 30-day cap of 250 mg: 100 mg on day 0 and 100 mg on day 20. A 98 mg dose charted
    # as given on day 5: the window ending on day 5 holds 100 + 98, but the one ending
    # on day 20 would hold 100 + 98 + 100 = 298 mg
    doses = [dose(1, T0, 100), dose(2, T0 + timedelta(days=20), 100)]
    cap = _cap(window_days=30, max_mg=250, max_sessions=2)
    planned = PlannedDose(molecule=RAC, mg=98, weight_kg=70)
    mg, sessions = check_caps(doses, caps=[cap], at=T0 + timedelta(days=5), planned=planned)
    assert (mg.given, mg.after, mg.exceeded) == (200.0, 298.0, True)
    assert (sessions.given, sessions.exceeded) == (2.0, True)
    # a whole-history cap counts every dose, however early the new one is charted
    ever = _cap(window_days=None, max_sessions=2)
    (s,) = check_caps(doses, caps=[ever], at=T0 - timedelta(days=1), planned=planned)
    assert (s.given, s.exceeded) == (2.0, True)
    # a later dose the planned one does not reach (day 40 window starts after day 5)
    far = [dose(1, T0, 100), dose(2, T0 + timedelta(days=40), 100)]
    (m, _) = check_caps(far, caps=[cap], at=T0 + timedelta(days=5), planned=planned)
    assert (m.given, m.exceeded) == (100.0, False)


@settings(max_examples=150, deadline=None)
@given(
    offsets_h=st.lists(st.floats(min_value=0, max_value=24 * 60), min_size=1, max_size=25),
    amounts=st.lists(st.floats(min_value=0, max_value=120), min_size=25, max_size=25),
    window=st.sampled_from([1, 7, 30]),
    limit=st.floats(min_value=50, max_value=500),
    max_sessions=st.integers(min_value=1, max_value=5),
)
def test_charting_in_any_order_keeps_every_window_under_the_cap(
    offsets_h, amounts, window, limit, max_sessions
):
    """As above, with doses charted in any order (after the fact, earlier than others)."""
    cap = _cap(window_days=window, max_mg=limit, max_sessions=max_sessions)
    given_doses: list[DoseGiven] = []
    for i, (offset, mg) in enumerate(zip(offsets_h, amounts, strict=False)):
        at = T0 + timedelta(hours=offset)
        checks = check_caps(
            given_doses, caps=[cap], at=at, planned=PlannedDose(molecule=RAC, mg=mg, weight_kg=70)
        )
        if not any(c.exceeded for c in checks):
            given_doses.append(dose(i, at, mg))
    span = timedelta(days=window)
    for end in [d.at for d in given_doses]:
        inside = [d for d in given_doses if end - span < d.at <= end]
        assert sum(d.mg for d in inside) <= limit + 1e-6
        assert len(inside) <= max_sessions
