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
    assert "2 days before" in f.message and "100 mg expected on hand" in f.message
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


def test_supplies_are_used_one_after_another():
    # day 0: 700 mg for 14 days; day 7: another 700 mg for 14 days (early, with a reason),
    # used once the first runs out, so from day 14 to day 28. On day 10 a third:
    # the first has 700 * (1 - 10/14) = 200 mg left, the second all 700: 900 mg on hand,
    # and the stock runs out on day 28: 18 days early
    history = [supply(1, T0), supply(2, T0 + timedelta(days=7))]
    [f] = check_dispense(history=history, new=supply(3, T0 + timedelta(days=10)), policy=POLICY)
    assert "900 mg expected on hand" in f.message
    assert f.message.startswith("early refill: 18 days before the supply on hand should run out")
    assert "the last dispensed 2026-04-08" in f.message and f.severity == "needs_reason"


def test_refills_a_little_early_each_time_add_up():
    # tolerance 2 days: day 12 is 2 days early (allowed); day 24 looks 2 days early against
    # the second supply alone (12 + 14 = 26) but the stock lasts to day 28: 4 days early
    history = [supply(1, T0), supply(2, T0 + timedelta(days=12))]
    [second] = check_dispense(history=history[:1], new=history[1], policy=POLICY)
    assert second.severity == "info"
    [third] = check_dispense(history=history, new=supply(3, T0 + timedelta(days=24)), policy=POLICY)
    assert third.severity == "needs_reason"
    assert third.message.startswith("early refill: 4 days before")
    # 4 days of 50 mg a day left: 200 mg
    assert "200 mg expected on hand" in third.message


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


def test_a_supply_charted_before_one_on_record_is_an_early_refill_too():
    # day 0 on record; a second charted as handed over the day before it (14 days): it
    # would still have 13 days left when the one on record was dispensed
    on_record = supply(1, T0)
    [f] = check_dispense(history=[on_record], new=supply(2, T0 - timedelta(days=1)), policy=POLICY)
    assert (f.kind, f.severity) == ("early_refill", "needs_reason")
    assert "13 days left when the next supply (dispensed 2026-04-01)" in f.message
    assert "650 mg of it expected on hand" in f.message and f.message.endswith("required")
    # one that had run out before the next was handed over is not early
    assert (
        check_dispense(history=[on_record], new=supply(2, T0 - timedelta(days=14)), policy=POLICY)
        == ()
    )


def test_a_supply_lasts_whole_days_and_the_clinic_may_cap_mg_a_day():
    # 700 mg "for a few hours" would make the next refill look on time: refused at entry
    with pytest.raises(InvalidInput, match="whole number of days"):
        supply(1, T0, days=0.1)
    policy = TakeHomePolicy(
        max_days_supply=14, max_mg_per_dispense=700, max_mg_per_day=50, approved="board"
    )
    # 14 x 50 mg for 7 days is 100 mg a day
    [f] = check_dispense(history=[], new=supply(1, T0, days=7), policy=policy)
    assert (f.kind, f.severity) == ("amount_per_day", "refused")
    assert f.message.startswith("700 mg for 7 days is 100 mg a day, above the clinic's limit of 50")
    assert check_dispense(history=[], new=supply(1, T0, days=14), policy=policy) == ()
    assert (
        parse_take_home(
            {
                "max_days_supply": 14,
                "max_mg_per_dispense": 700,
                "max_mg_per_day": 50,
                "approved": "b",
            }
        ).max_mg_per_day
        == 50
    )
