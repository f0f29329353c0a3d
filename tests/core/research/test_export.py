"""Registry rows without identifiers: ages top-coded, years only or whole days, order kept."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from ketacare.core.errors import InvalidInput
from ketacare.core.research import (
    PatientRecord,
    ScoreRecord,
    SessionRecord,
    age_label,
    deidentify,
    rules,
)

T1 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _patient(**kw):
    base = {
        "patient_id": 41,
        "birth_date": date(1971, 8, 19),
        "sex": "female",
        "conditions": ("G90.50", "F33.1", "G90.50"),
        "sessions": (
            SessionRecord(
                at=datetime(2026, 3, 5, 8, 59, tzinfo=UTC),
                molecule="racemic_ketamine",
                route="iv_infusion",
                mg=98.0,
                mg_per_kg=1.4,
                adverse=("nausea",),
            ),
            SessionRecord(
                at=T1,
                molecule="racemic_ketamine",
                route="iv_infusion",
                mg=49.0,
                mg_per_kg=0.7,
                adverse=(),
            ),
        ),
        "scores": (
            ScoreRecord(at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC), instrument="nrs_pain", total=8),
            ScoreRecord(at=datetime(2026, 3, 6, 9, 0, tzinfo=UTC), instrument="nrs_pain", total=4),
        ),
    }
    return PatientRecord(**{**base, **kw})


def _tables(rows):
    out = {}
    for r in rows:
        out.setdefault(r.table, []).append(r.values)
    return out


def test_ages_over_89_are_one_category_from_the_90th_birthday():
    assert rules().top_coded_at_years == 90 and rules().top_label == "90+"
    assert age_label(date(1936, 3, 2), date(2026, 3, 1)) == "89"
    assert age_label(date(1936, 3, 2), date(2026, 3, 2)) == "90+"
    assert age_label(date(1971, 8, 19), date(2026, 3, 2)) == "54"


def test_year_only_keeps_order_and_years_and_nothing_finer():
    t = _tables(deidentify([_patient()], codes={41: "K7Q"}, profile="year_only"))
    assert t["patients"] == [
        {
            "code": "K7Q",
            "sex": "female",
            "age_at_first_dose": "54",
            "first_dose_year": 2026,
            "conditions": "F33.1 G90.50",
        }
    ]
    # sessions in the order given (charted out of order), numbered from 1
    assert [(s["session"], s["mg"], s["year"]) for s in t["sessions"]] == [
        (1, 49.0, 2026),
        (2, 98.0, 2026),
    ]
    assert t["sessions"][1]["adverse"] == "nausea"
    # the baseline before the first session, the follow-up after the second
    assert [(s["total"], s["after_session"]) for s in t["scores"]] == [(8, 0), (4, 2)]
    for rows in t.values():
        for row in rows:
            assert "day" not in row


def test_limited_profile_counts_whole_days_from_the_first_dose():
    t = _tables(deidentify([_patient()], codes={41: "K7Q"}, profile="limited"))
    # first dose 2 March 09:00; the second session 5 March 08:59 is 2 days 23 h 59 min later
    assert [s["day"] for s in t["sessions"]] == [0, 2]
    # the baseline a day before the first dose is day -1; 6 March 09:00 is day 4
    assert [s["day"] for s in t["scores"]] == [-1, 4]


def test_no_identifier_leaves():
    p = _patient()
    text = json.dumps([r.values for r in deidentify([p], codes={41: "K7Q"}, profile="limited")])
    for identifier in ("1971", "08-19", "2026-03", "41", "T09", "09:00"):
        assert identifier not in text, identifier
    keys = {k for r in deidentify([p], codes={41: "K7Q"}, profile="limited") for k in r.values}
    assert keys == {
        "code",
        "sex",
        "age_at_first_dose",
        "first_dose_year",
        "conditions",
        "session",
        "year",
        "molecule",
        "route",
        "mg",
        "mg_per_kg",
        "adverse",
        "day",
        "instrument",
        "total",
        "after_session",
    }


def test_a_patient_without_a_dose_has_no_age_or_day():
    t = _tables(deidentify([_patient(sessions=())], codes={41: "A"}, profile="limited"))
    assert (
        t["patients"][0]["age_at_first_dose"] == "" and t["patients"][0]["first_dose_year"] is None
    )
    assert [s["day"] for s in t["scores"]] == [None, None]
    assert "sessions" not in t


def test_refusals_name_what_is_wrong():
    with pytest.raises(InvalidInput, match="unknown export profile 'safe'"):
        deidentify([_patient()], codes={41: "A"}, profile="safe")
    with pytest.raises(InvalidInput, match="no export code for patient 41"):
        deidentify([_patient()], codes={}, profile="year_only")
    naive = ScoreRecord(at=datetime(2026, 3, 1), instrument="nrs_pain", total=1)
    with pytest.raises(InvalidInput, match="time zone"):
        deidentify([_patient(scores=(naive,))], codes={41: "A"}, profile="year_only")
