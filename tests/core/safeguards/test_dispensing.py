"""Take-home supplies: refusals without the clinic's limits, limits, early refills by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.safeguards import Dispense, TakeHomePolicy, check_dispense, parse_take_home
from ketacare.core.sessions import parse_session_policy

T0 = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
RAC = "racemic_ketamine"
POLICY = TakeHomePolicy(
    max_days_supply=14, max_mg_per_dispense=700, early_refill_tolerance_days=2, approved="board"
)


def supply(i: int, at: datetime, *, units: int = 14, mg: float = 50, days: float = 14, **kw):
    return Dispense(
        id=i,
        at=at,
        molecule=kw.pop("molecule", RAC),
        strength_mg=mg,
        units=units,
        days_supply=days,
        **kw,
    )


def kinds(findings):
    return [(f.kind, f.severity) for f in findings]


def test_without_the_clinics_limits_every_dispense_is_refused():
    [f] = check_dispense(history=[], new=supply(1, T0), policy=None)
    assert (f.kind, f.severity) == ("not_configured", "refused")
    assert "no source gives one" in f.message


def test_within_the_limits_a_first_dispense_passes():
    # 14 x 50 mg = 700 mg for 14 days: exactly at both limits
    assert check_dispense(history=[], new=supply(1, T0), policy=POLICY) == ()


def test_days_supply_and_amount_above_the_limits_are_refused():
    findings = check_dispense(history=[], new=supply(1, T0, units=15, days=15), policy=POLICY)
    assert kinds(findings) == [("days_supply", "refused"), ("amount", "refused")]
    assert findings[1].message.startswith("15 x 50 mg = 750 mg exceeds the clinic's limit of 700")


def test_early_refill_edges_worked_by_hand():
    first = supply(1, T0)  # runs out on day 14
    # on day 12: 2 days early, within the tolerance of 2: reported, no reason needed
    [f] = check_dispense(history=[first], new=supply(2, T0 + timedelta(days=12)), policy=POLICY)
    assert (f.kind, f.severity) == ("early_refill", "info")
    # 700 mg over 14 days is 50 mg a day: 2 days early leaves 100 mg expected on hand
    assert "2 days before" in f.message and "100 mg of it expected on hand" in f.message
    # one hour more than 2 days early: a reason is required
    at = T0 + timedelta(days=12) - timedelta(hours=1)
    [f] = check_dispense(history=[first], new=supply(2, at), policy=POLICY)
    assert f.severity == "needs_reason" and f.message.endswith("a reason is required")
    # on the day it runs out: not early
    assert (
        check_dispense(history=[first], new=supply(2, T0 + timedelta(days=14)), policy=POLICY) == ()
    )


def test_without_a_tolerance_any_early_refill_needs_a_reason():
    strict = TakeHomePolicy(max_days_supply=14, max_mg_per_dispense=700, approved="board")
    [f] = check_dispense(
        history=[supply(1, T0)], new=supply(2, T0 + timedelta(days=13)), policy=strict
    )
    assert f.severity == "needs_reason" and "the clinic allows no early refill" in f.message


def test_overlapping_supplies_add_up_on_hand():
    # day 0: 700 mg for 14 days; day 7: another 700 mg for 14 days (early, with reason);
    # on day 10 a third: 700*(1-10/14) + 700*(1-3/14) = 200 + 550 = 750 mg expected on hand
    history = [supply(1, T0), supply(2, T0 + timedelta(days=7))]
    [f] = check_dispense(history=history, new=supply(3, T0 + timedelta(days=10)), policy=POLICY)
    assert "750 mg of it expected on hand" in f.message
    # the previous supply is the one that runs out last (day 21): 11 days early
    assert "11 days before the previous supply (dispensed 2026-04-08)" in f.message


def test_another_molecule_is_not_a_refill():
    other = supply(1, T0, molecule="esketamine")
    assert (
        check_dispense(history=[other], new=supply(2, T0 + timedelta(days=1)), policy=POLICY) == ()
    )


def test_the_pdmp_check_when_the_clinic_requires_it():
    policy = TakeHomePolicy(
        max_days_supply=14, max_mg_per_dispense=700, require_pdmp_check=True, approved="board"
    )
    assert kinds(check_dispense(history=[], new=supply(1, T0), policy=policy)) == [
        ("pdmp", "refused")
    ]
    assert check_dispense(history=[], new=supply(1, T0, pdmp_checked=True), policy=policy) == ()


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"units": 0}, "units"), ({"mg": 0}, "strength_mg"), ({"days": 0}, "days_supply")],
)
def test_impossible_dispenses_are_refused(kw, field):
    with pytest.raises(InvalidInput, match=field):
        supply(1, T0, **kw)
    with pytest.raises(InvalidInput, match="time zone"):
        supply(1, datetime(2026, 4, 1))


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"max_mg_per_dispense": 700, "approved": "x"}, "max_days_supply': is missing"),
        ({"max_days_supply": 14, "max_mg_per_dispense": 700}, "say who approved"),
        ({"max_days_supply": 0, "max_mg_per_dispense": 700, "approved": "x"}, "positive"),
        ({"max_days_supply": 14, "max_mg_per_dispense": 700, "approved": "x", "per": 1}, "unknown"),
        (
            {
                "max_days_supply": 14,
                "max_mg_per_dispense": 700,
                "approved": "x",
                "require_pdmp_check": "yes",
            },
            "true or false",
        ),
    ],
)
def test_policy_errors_name_the_field(table, problem):
    with pytest.raises(DataFileError, match=problem):
        parse_take_home(table)


def test_the_session_policy_carries_the_take_home_limits():
    policy = parse_session_policy(
        {"take_home": {"max_days_supply": 7, "max_mg_per_dispense": 350, "approved": "board"}}
    )
    assert policy.take_home == TakeHomePolicy(
        max_days_supply=7, max_mg_per_dispense=350, approved="board"
    )
    assert parse_session_policy({}).take_home is None
