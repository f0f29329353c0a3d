"""Per-clinic outcomes on synthetic cohorts whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.outcomes import (
    STATUS_NAMES,
    MeasureColumns,
    MeasureSeries,
    Registry,
    Sessions,
    clinic_outcomes,
    evaluate_patients,
    load_definitions,
    response_course,
)

AS_OF = "2026-06-30"
WINDOW = np.timedelta64(60, "D")

# Ten patients, pain NRS, definition pain-30, loss confirmed by 2 consecutive misses,
# lost to follow-up after 60 days without a pain score (as of 2026-06-30).
#   P0 CRPS  base 8, session 01-02; 5 (37.5%) 01-09, 4 02-01, 4 06-01   responder, met at last
#   P1 CRPS  base 6, session 01-02; 5, 5 (16.7%), last 03-01            non-responder, LOST
#   P2 FM    no value before its session 01-02; 3 on 06-15              no baseline
#   P3 FM    base 0, session 01-02; 0 on 06-10                          not eligible (no %)
#   P4 CRPS  base 7, session 06-20; nothing since                       no follow-up (10 days)
#   P5 FM    base 7, session 01-05; nothing since                       no follow-up, LOST
#   P6 CRPS  base 10, session 02-01; 7 (30% exactly) 02-03, 8 02-10, 9 02-17
#                                    responder; loss dated 02-10 (7 days); LOST (02-17)
#   P7 CRPS  measurements but no session                                not in the cohort
#   P8 FM    base 9, session 04-01; 7 (22%) 04-08, 6 (33%) 05-01, 7 06-25
#                                    responder; one miss only -> censored 55 days
#   P9 CRPS  base 5, session 2025-12-01; 2 (60%) 2025-12-08             responder, LOST,
#                                    censored at 0 days (no later score)
ROWS = [
    (0, "2026-01-01", 8), (0, "2026-01-09", 5), (0, "2026-02-01", 4), (0, "2026-06-01", 4),
    (1, "2026-01-01", 6), (1, "2026-02-01", 5), (1, "2026-03-01", 5),
    (2, "2026-06-15", 3),
    (3, "2026-01-01", 0), (3, "2026-06-10", 0),
    (4, "2026-06-19", 7),
    (5, "2026-01-04", 7),
    (6, "2026-01-31", 10), (6, "2026-02-03", 7), (6, "2026-02-10", 8), (6, "2026-02-17", 9),
    (7, "2026-01-01", 9), (7, "2026-03-01", 2),
    (8, "2026-03-31", 9), (8, "2026-04-08", 7), (8, "2026-05-01", 6), (8, "2026-06-25", 7),
    (9, "2025-11-30", 5), (9, "2025-12-08", 2),
]  # fmt: skip
SESSIONS = [
    (0, "2026-01-02"), (1, "2026-01-02"), (2, "2026-01-02"), (3, "2026-01-02"),
    (4, "2026-06-20"), (5, "2026-01-05"), (6, "2026-02-01"), (8, "2026-04-01"),
    (9, "2025-12-01"), (0, "2026-01-20"), (6, "2026-02-08"),
    (1, "2026-07-15"),  # after as_of: ignored
]  # fmt: skip
CONDITION = ["CRPS", "CRPS", "FM", "FM", "CRPS", "FM", "CRPS", "CRPS", "FM", "CRPS"]
PROTOCOL = ["a", "b", "a", "a", "a", "a", "a", "a", "b", "b"]


def registry(rows=ROWS, sessions=SESSIONS, n=10):
    pain = MeasureColumns.build(
        patient=[r[0] for r in rows],
        time=np.array([r[1] for r in rows], dtype="datetime64[s]"),
        value=[r[2] for r in rows],
    )
    return Registry.build(
        n_patients=n,
        session_patient=[s[0] for s in sessions],
        session_time=np.array([s[1] for s in sessions], dtype="datetime64[D]"),
        measures={"nrs_pain": pain},
    )


def outcomes(**kwargs):
    args = {
        "registry": registry(),
        "definition_id": "pain-30",
        "as_of": AS_OF,
        "lost_after": WINDOW,
        "loss_confirmations": 2,
    }
    args.update(kwargs)
    return clinic_outcomes(**args)


def test_counts_and_rates_by_hand():
    row = outcomes().rows[0]
    assert row.group == ()
    assert (row.treated, row.no_baseline, row.not_eligible, row.eligible) == (9, 1, 1, 7)
    assert (row.no_follow_up, row.judgeable) == (2, 5)
    assert (row.responders_ever, row.responders_at_last) == (4, 2)
    # lost: P1, P5, P6, P9; of them only P5 has no judgeable result
    assert (row.lost_to_follow_up, row.lost_unjudged) == (4, 1)
    assert (row.rate_judgeable.numerator, row.rate_judgeable.denominator) == (4, 5)
    assert row.rate_judgeable.value == pytest.approx(0.8)
    assert row.rate_eligible.value == pytest.approx(4 / 7)  # lost/missing kept in
    assert row.rate_at_last.value == pytest.approx(2 / 5)
    assert row.completeness.value == pytest.approx(5 / 9)


def test_per_patient_statuses():
    table = outcomes().patients
    names = [STATUS_NAMES[s] for s in table.status]
    assert names == [
        "responder",
        "non_responder",
        "no_baseline",
        "not_eligible",
        "no_follow_up",
        "no_follow_up",
        "responder",
        "not_in_cohort",
        "responder",
        "responder",
    ]
    assert table.lost_to_follow_up.tolist() == [
        False, True, False, False, False, True, True, False, False, True,
    ]  # fmt: skip
    assert table.n_sessions.tolist() == [2, 1, 1, 1, 1, 1, 2, 0, 1, 1]  # 07-15 ignored


def test_durability_by_hand():
    km = outcomes().rows[0].durability
    # responders: P6 event at 7 days; censored: P9 at 0, P8 at 55, P0 at 143 (01-09 -> 06-01)
    # KM: t=0 censored (n=4); t=7: n=3, d=1 -> S = 2/3; then censorings only
    assert km.n == 4 and km.n_events == 1
    assert km.time.tolist() == [0.0, 7.0, 55.0, 143.0]
    assert km.at_risk.tolist() == [4, 3, 2, 1]
    assert km.survival.tolist() == pytest.approx([1.0, 2 / 3, 2 / 3, 2 / 3])
    assert km.median is None


def test_grouping_by_condition():
    rows = outcomes(group_by={"condition": CONDITION}).rows
    by = {r.group: r for r in rows[1:]}
    crps, fm = by[(("condition", "CRPS"),)], by[(("condition", "FM"),)]
    # CRPS: P0 P1 P4 P6 P9 treated (P7 untreated); judgeable P0 P1 P6 P9; responders P0 P6 P9
    assert (crps.treated, crps.judgeable, crps.responders_ever, crps.lost_to_follow_up) == (
        5, 4, 3, 3,
    )  # fmt: skip
    # FM: P2 no baseline, P3 not eligible, P5 no follow-up, P8 responder
    assert (fm.treated, fm.no_baseline, fm.not_eligible, fm.no_follow_up) == (4, 1, 1, 1)
    assert (fm.judgeable, fm.responders_ever, fm.lost_unjudged) == (1, 1, 1)
    assert crps.treated + fm.treated == rows[0].treated


def test_grouping_by_condition_and_protocol():
    rows = outcomes(group_by={"condition": CONDITION, "protocol": PROTOCOL}).rows
    got = {r.group: (r.treated, r.responders_ever) for r in rows[1:]}
    assert got == {
        # P0 P4 P6 treated (P7 untreated); responders P0 P6
        (("condition", "CRPS"), ("protocol", "a")): (3, 2),
        # P1 P9 treated; responder P9
        (("condition", "CRPS"), ("protocol", "b")): (2, 1),
        (("condition", "FM"), ("protocol", "a")): (3, 0),  # P2 P3 P5
        (("condition", "FM"), ("protocol", "b")): (1, 1),  # P8
    }


def test_date_range_keeps_patients_by_first_session():
    row = outcomes(started_from="2026-01-01").rows[0]
    # P9 (first session 2025-12-01) leaves the cohort
    assert (row.treated, row.judgeable, row.responders_ever, row.lost_to_follow_up) == (8, 4, 3, 3)
    row = outcomes(started_from="2026-01-01", started_to="2026-01-31").rows[0]
    # first sessions in January: P0 P1 P2 P3 P5
    assert (row.treated, row.judgeable, row.responders_ever) == (5, 2, 1)


def test_as_of_ignores_later_data():
    row = outcomes(as_of="2026-01-10").rows[0]
    # treated by 01-10: P0 P1 P2 P3 P5 P9; judgeable P0 (01-09) and P9; both responders
    assert (row.treated, row.judgeable, row.responders_ever) == (6, 2, 2)


@pytest.mark.parametrize(
    ("last_score", "lost"),
    [("2026-05-01T00:00:00", False), ("2026-04-30T23:59:59", True)],
    ids=repr,
)
def test_lost_to_follow_up_window_edge(last_score, lost):
    # as_of 2026-06-30T00:00 minus 60 days is 2026-05-01T00:00: exactly 60 days is not lost
    rows = [(0, "2026-01-01", 8), (0, last_score, 4)]
    reg = registry(rows=rows, sessions=[(0, "2026-01-02")], n=1)
    out = outcomes(registry=reg)
    assert out.patients.lost_to_follow_up.tolist() == [lost]
    assert out.rows[0].rate_eligible.denominator == 1  # counted, never dropped


def test_a_new_patient_is_not_lost():
    reg = registry(rows=[(0, "2026-06-01", 8)], sessions=[(0, "2026-06-02")], n=1)
    assert outcomes(registry=reg).patients.lost_to_follow_up.tolist() == [False]


def test_remission_definition_uses_phq9_columns():
    phq = MeasureColumns.build(
        patient=[0, 0, 1, 1, 2, 2],
        time=["2026-01-01", "2026-02-01"] * 3,
        value=[20, 4, 20, 5, 8, 0],  # P1 at 5 is not below 5; P2's baseline 8 is not above 9
    )
    reg = Registry.build(
        n_patients=3,
        session_patient=[0, 1, 2],
        session_time=["2026-01-02"] * 3,
        measures={"phq9": phq},
    )
    row = clinic_outcomes(
        registry=reg,
        definition_id="phq9-remission",
        as_of="2026-02-10",
        lost_after=WINDOW,
        loss_confirmations=1,
    ).rows[0]
    assert (row.treated, row.not_eligible, row.judgeable, row.responders_ever) == (3, 1, 2, 1)


def test_missing_measure_means_no_baseline_for_everyone():
    reg = Registry.build(
        n_patients=2, session_patient=[0, 1], session_time=["2026-01-02"] * 2, measures={}
    )
    row = outcomes(registry=reg).rows[0]
    assert (row.treated, row.no_baseline, row.judgeable, row.lost_to_follow_up) == (2, 2, 0, 2)
    assert row.rate_judgeable.value is None and row.durability is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss_confirmations": 0},
        {"lost_after": np.timedelta64(0, "D")},
    ],
    ids=repr,
)
def test_clinic_parameters_are_required_and_checked(kwargs):
    with pytest.raises(OutOfRange):
        outcomes(**kwargs)


def test_lost_after_must_be_a_duration():
    with pytest.raises(InvalidInput):
        outcomes(lost_after=60)


def test_bad_columns_are_refused():
    with pytest.raises(OutOfRange, match="patient"):
        registry(rows=[(12, "2026-01-01", 5)])
    with pytest.raises(InvalidInput, match="differ"):
        MeasureColumns.build(patient=[0, 1], time=["2026-01-01"], value=[1, 2])
    with pytest.raises(InvalidInput, match="missing time"):
        MeasureColumns.build(patient=[0], time=np.array(["NaT"], "datetime64[s]"), value=[1])
    with pytest.raises(OutOfRange, match="0 to 10"):
        outcomes(registry=registry(rows=[(0, "2026-01-01", 11)], sessions=[], n=1))
    with pytest.raises(InvalidInput, match="group_by"):
        outcomes(group_by={"condition": ["CRPS"]})


# --- properties ---------------------------------------------------------------

DAY = 86_400
START = np.datetime64("2026-01-01T00:00:00")


@st.composite
def cohorts(draw):
    n = draw(st.integers(min_value=1, max_value=8))
    rows, sessions = [], []
    for p in range(n):
        for d in draw(st.lists(st.integers(0, 60), max_size=3)):
            sessions.append((p, d))
        for d in draw(st.lists(st.integers(0, 90), max_size=8)):
            rows.append((p, d, draw(st.integers(0, 10))))
    return n, rows, sessions


def _build(n, rows, sessions):
    # measurements fall on whole days + 12 h so they never tie with a session
    pain = MeasureColumns.build(
        patient=[r[0] for r in rows],
        time=np.array([START + np.timedelta64(r[1] * 24 + 12, "h") for r in rows]),
        value=[r[2] for r in rows],
    )
    return Registry.build(
        n_patients=n,
        session_patient=[s[0] for s in sessions],
        session_time=np.array([START + np.timedelta64(s[1], "D") for s in sessions]),
        measures={"nrs_pain": pain},
    )


@settings(max_examples=120, deadline=None)
@given(cohorts(), st.integers(1, 3), st.sampled_from(["pain-30", "pain-50"]))
def test_rates_are_proportions_and_counts_add_up(cohort, k, definition_id):
    n, rows, sessions = cohort
    out = clinic_outcomes(
        registry=_build(n, rows, sessions),
        definition_id=definition_id,
        as_of=START + np.timedelta64(100, "D"),
        lost_after=np.timedelta64(30, "D"),
        loss_confirmations=k,
    )
    row = out.rows[0]
    assert row.treated == row.no_baseline + row.not_eligible + row.eligible
    assert row.eligible == row.no_follow_up + row.judgeable
    assert row.responders_at_last <= row.responders_ever <= row.judgeable
    assert row.lost_unjudged <= row.lost_to_follow_up <= row.treated
    for rate in (row.rate_judgeable, row.rate_eligible, row.rate_at_last, row.completeness):
        if rate.value is not None:
            assert 0 <= rate.lower <= rate.value <= rate.upper <= 1
    if row.durability is not None:
        assert np.all(np.diff(row.durability.survival) <= 0)


@settings(max_examples=150, deadline=None)
@given(cohorts(), st.integers(1, 3))
def test_vectorised_cohort_agrees_with_the_per_patient_rules(cohort, k):
    """Two independent implementations (numpy columns vs a per-patient loop)."""
    n, rows, sessions = cohort
    table = evaluate_patients(
        registry=_build(n, rows, sessions),
        definition=load_definitions().get(definition_id="pain-30"),
        as_of=START + np.timedelta64(1000, "D"),
        lost_after=np.timedelta64(30, "D"),
        loss_confirmations=k,
    )
    for p in range(n):
        mine = [r for r in rows if r[0] == p]
        series = MeasureSeries.build(
            measure="nrs_pain",
            time=np.array([START + np.timedelta64(r[1] * 24 + 12, "h") for r in mine]),
            value=[r[2] for r in mine],
        )
        ses = Sessions.build(
            time=np.array([START + np.timedelta64(s[1], "D") for s in sessions if s[0] == p]),
        )
        c = response_course(
            series=series, sessions=ses, definition_id="pain-30", loss_confirmations=k
        )
        status = STATUS_NAMES[table.status[p]]
        expected = {
            "not_assessable": {"no_baseline", "not_eligible", "not_in_cohort"},
            "no_follow_up": {"no_follow_up"},
            "never": {"non_responder"},
            "responding": {"responder"},
            "lost": {"responder"},
        }[c.state]
        assert status in expected
        if c.episodes:
            assert table.first_response[p] == c.first_response
            days, _ = table.durability_days(np.arange(n) == p)
            assert days[0] == pytest.approx(c.durability_days)
            first_end = c.episodes[0].end
            assert (table.loss[p] != np.iinfo(np.int64).max) == (first_end is not None)
            if first_end is not None:
                assert table.loss[p] == first_end
            assert bool(table.met_at_last[p]) == c.met_at_last


def test_a_larger_registry_runs(benchmark_size=20_000):
    rng = np.random.default_rng(7)
    n = benchmark_size
    per = 20
    patient = np.repeat(np.arange(n), per)
    days = np.tile(np.arange(per) * 7, n)
    time = np.datetime64("2025-01-01") + days.astype("timedelta64[D]")
    value = np.clip(np.round(8 - rng.normal(2, 2, size=n * per) * (days > 0)), 0, 10)
    pain = MeasureColumns.build(patient=patient, time=time, value=value)
    reg = Registry.build(
        n_patients=n,
        session_patient=np.repeat(np.arange(n), 3),
        session_time=np.datetime64("2025-01-02") + np.tile([0, 7, 14], n).astype("timedelta64[D]"),
        measures={"nrs_pain": pain},
    )
    out = clinic_outcomes(
        registry=reg,
        definition_id="pain-30",
        as_of="2025-12-31",
        lost_after=np.timedelta64(90, "D"),
        loss_confirmations=2,
        group_by={"condition": rng.choice(["CRPS", "FM", "NP"], size=n)},
    )
    assert out.rows[0].treated == n
    assert out.rows[0].judgeable == n
    assert sum(r.treated for r in out.rows[1:]) == n


def test_scores_sharing_a_timestamp_keep_their_input_order():
    # baseline 10; two scores at the same instant: 10 (miss) then 1 (response).
    # In input order the miss comes before the first response, so no loss follows.
    rows = [(0, "2026-01-01", 10), (0, "2026-02-01T12:00", 10), (0, "2026-02-01T12:00", 1)]
    out = outcomes(
        registry=registry(rows=rows, sessions=[(0, "2026-01-02")], n=1),
        loss_confirmations=1,
        as_of="2026-02-02",
    )
    assert STATUS_NAMES[out.patients.status[0]] == "responder"
    assert out.patients.loss[0] == np.iinfo(np.int64).max  # no loss
    series = MeasureSeries.build(
        measure="nrs_pain",
        time=np.array([r[1] for r in rows], dtype="datetime64[s]"),
        value=[r[2] for r in rows],
    )
    c = response_course(
        series=series,
        sessions=Sessions.build(time=["2026-01-02"]),
        definition_id="pain-30",
        loss_confirmations=1,
    )
    assert c.state == "responding"
