"""Take-home supplies: the checks a dispense of oral or intranasal ketamine must pass.

No source read gives a quantity or days'-supply limit for take-home ketamine (the
oral follow-on protocol says so), while the risks of home use are documented: the
consensus statement on ketamine for mood disorders strongly discourages at-home
self-administration and asks that every dose be given under medical supervision
(Sanacora G, Frye MA, McDonald W, et al. JAMA Psychiatry 2017;74(4):399-405, as
summarised at https://reference.medscape.com/viewarticle/913357_3), and the FDA's
warning of 10 October 2023 on compounded ketamine for use at home names abuse and
misuse among its risks (as reported at https://scrippsnews.com/stories/fda-warns-of-
risks-involved-with-compounded-ketamine-products). So take-home dispensing here is
**refused until the clinic has set its own limits** (``[take_home]`` in its session
policy, who approved them included), and then every dispense is checked against them:

- a dispense above ``max_days_supply`` or ``max_mg_per_dispense`` is refused;
- a refill before the supply on hand of the same molecule should have run out (used as
  ordered, one supply after another, so that refills a little early each time add up)
  is an *early refill*: reported with the days early and the amount expected on hand;
  beyond the clinic's ``early_refill_tolerance_days`` it needs a documented reason
  (without a tolerance set, any early refill needs one); a supply charted after the
  fact with a time before a supply already on record is checked the same way against
  that later one;
- where the clinic asks for it (``require_pdmp_check``), the prescription drug
  monitoring programme must have been checked for this dispense.

Supply is assumed to be used evenly over its days' supply, one supply after another:
that is what the prescriber ordered, and it is the only basis for "expected on hand"
that needs no patient report.

Examples
--------
>>> from datetime import UTC, datetime, timedelta
>>> policy = TakeHomePolicy(max_days_supply=14, max_mg_per_dispense=700,
...                         early_refill_tolerance_days=2, approved="medical director")
>>> t0 = datetime(2026, 4, 1, 10, tzinfo=UTC)
>>> first = Dispense(id=1, at=t0, molecule="racemic_ketamine", strength_mg=50, units=14,
...                  days_supply=14)
>>> refill = Dispense(id=0, at=t0 + timedelta(days=9), molecule="racemic_ketamine",
...                   strength_mg=50, units=14, days_supply=14)
>>> [f.message for f in check_dispense(history=[first], new=refill, policy=policy)]
... # doctest: +NORMALIZE_WHITESPACE
['early refill: 5 days before the supply on hand should run out (used as ordered,
  one supply after another; the last dispensed 2026-04-01), with 250 mg expected on hand;
  the clinic allows 2 days early: a reason is required']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from ketacare.core.errors import DataFileError, InvalidInput, OutOfRange

Severity = Literal["refused", "needs_reason", "info"]

# A refill less than a minute before run-out is not early (times are charted by hand).
_ON_TIME: Final = timedelta(minutes=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeHomePolicy:
    """A clinic's take-home limits (no source gives any; each is the clinic's decision)."""

    max_days_supply: float
    max_mg_per_dispense: float
    early_refill_tolerance_days: float | None = None
    max_mg_per_day: float | None = None
    require_pdmp_check: bool = False
    approved: str = ""

    def describe(self) -> str:
        """One line for a page.

        >>> print(TakeHomePolicy(max_days_supply=14, max_mg_per_dispense=700,
        ...                      approved="board").describe())  # doctest: +NORMALIZE_WHITESPACE
        at most 14 days' supply and 700 mg per dispense; any early refill needs a reason
        (site policy, approved by board)
        """
        early = (
            f"a refill more than {self.early_refill_tolerance_days:g} days early needs a reason"
            if self.early_refill_tolerance_days is not None
            else "any early refill needs a reason"
        )
        pdmp = "; the PDMP is checked at every dispense" if self.require_pdmp_check else ""
        if self.max_mg_per_day is not None:
            pdmp = f"; at most {self.max_mg_per_day:g} mg a day" + pdmp
        return (
            f"at most {self.max_days_supply:g} days' supply and {self.max_mg_per_dispense:g} mg "
            f"per dispense; {early}{pdmp} (site policy, approved by {self.approved})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Dispense:
    """One take-home supply: ``units`` of ``strength_mg`` each, for ``days_supply`` days."""

    id: int
    at: datetime
    molecule: str
    strength_mg: float
    units: int
    days_supply: float
    pdmp_checked: bool = False

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise InvalidInput("dispensed_at must be a time with a time zone")
        if not (math.isfinite(self.strength_mg) and 0 < self.strength_mg <= 1000):
            raise OutOfRange("strength_mg", self.strength_mg, "more than 0 and at most 1000 mg")
        if isinstance(self.units, bool) or not 1 <= self.units <= 1000:
            raise OutOfRange("units", self.units, "a whole number 1 to 1000")
        # a data-entry bound, not a clinical limit: a supply is ordered in whole days, so a
        # large amount "for a few hours" cannot make the next refill look on time
        if (
            not math.isfinite(self.days_supply)
            or self.days_supply != int(self.days_supply)
            or not 1 <= self.days_supply <= 365
        ):
            raise OutOfRange("days_supply", self.days_supply, "a whole number of days, 1 to 365")

    @property
    def total_mg(self) -> float:
        """Everything this dispense hands over."""
        return self.strength_mg * self.units

    @property
    def runs_out(self) -> datetime:
        """When the supply runs out if used as ordered."""
        return self.at + timedelta(days=self.days_supply)

    def on_hand_mg(self, at: datetime) -> float:
        """What is expected to be left at ``at`` if used evenly as ordered."""
        if at <= self.at:
            return self.total_mg
        used = (at - self.at) / timedelta(days=self.days_supply)
        return max(0.0, self.total_mg * (1 - used))


@dataclass(frozen=True, slots=True)
class Finding:
    """What a check says of a dispense; ``refused`` stops it, ``needs_reason`` asks why."""

    kind: str
    severity: Severity
    message: str


def supply_chain(supplies: Sequence[Dispense]) -> list[tuple[Dispense, datetime, datetime]]:
    """Each supply with when its use starts and ends, one supply after another.

    A refill is used once what was on hand has run out, so an early refill pushes the end
    of the stock back; refills a little early each time add up instead of each looking
    on time against the one before.

    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2026, 4, 1, tzinfo=UTC)
    >>> a = Dispense(id=1, at=t0, molecule="m", strength_mg=50, units=14, days_supply=14)
    >>> b = Dispense(id=2, at=t0 + timedelta(days=12), molecule="m", strength_mg=50,
    ...              units=14, days_supply=14)
    >>> [(s.day, e.day) for _, s, e in supply_chain([a, b])]  # b starts when a runs out
    [(1, 15), (15, 29)]
    """
    out: list[tuple[Dispense, datetime, datetime]] = []
    end: datetime | None = None
    for d in sorted(supplies, key=lambda d: (d.at, d.id)):
        start = d.at if end is None or end <= d.at else end
        end = start + timedelta(days=d.days_supply)
        out.append((d, start, end))
    return out


def _left(d: Dispense, start: datetime, at: datetime) -> float:
    """What is left of ``d`` at ``at`` when its use starts at ``start``."""
    if at <= start:
        return d.total_mg
    used = (at - start) / timedelta(days=d.days_supply)
    return max(0.0, d.total_mg * (1 - used))


def _mg(value: float) -> str:
    return f"{round(value, 1):g}"


def _early_refill(policy: TakeHomePolicy, ahead: timedelta, what: str) -> Finding:
    """An early refill by ``ahead``: a reason is needed beyond the clinic's tolerance."""
    tolerance = policy.early_refill_tolerance_days
    beyond = tolerance is None or ahead > timedelta(days=tolerance)
    allowed = (
        f"the clinic allows {tolerance:g} days early"
        if tolerance is not None
        else "the clinic allows no early refill"
    )
    return Finding(
        "early_refill",
        "needs_reason" if beyond else "info",
        f"{what}; {allowed}" + (": a reason is required" if beyond else ""),
    )


def _days(value: timedelta) -> str:
    days = value / timedelta(days=1)
    return f"{round(days, 1):g}"


def check_dispense(
    *, history: Sequence[Dispense], new: Dispense, policy: TakeHomePolicy | None
) -> tuple[Finding, ...]:
    """The findings on ``new`` given the patient's earlier dispenses (voided ones left out).

    Without a policy the dispense is refused: no take-home limit is published, so none
    is assumed.
    """
    if policy is None:
        return (
            Finding(
                "not_configured",
                "refused",
                "take-home dispensing needs the clinic's own limits first: no source gives "
                "one, so set [take_home] max_days_supply and max_mg_per_dispense (and who "
                "approved them) in the session policy",
            ),
        )
    out: list[Finding] = []
    if new.days_supply > policy.max_days_supply:
        out.append(
            Finding(
                "days_supply",
                "refused",
                f"{new.days_supply:g} days' supply exceeds the clinic's limit of "
                f"{policy.max_days_supply:g} days (site policy, approved by {policy.approved})",
            )
        )
    per_day = new.total_mg / new.days_supply
    if policy.max_mg_per_day is not None and per_day > policy.max_mg_per_day + 1e-9:
        out.append(
            Finding(
                "amount_per_day",
                "refused",
                f"{new.total_mg:g} mg for {new.days_supply:g} days is {per_day:g} mg a day, above "
                f"the clinic's limit of {policy.max_mg_per_day:g} mg a day (site policy, "
                f"approved by {policy.approved})",
            )
        )
    if new.total_mg > policy.max_mg_per_dispense + 1e-9:
        out.append(
            Finding(
                "amount",
                "refused",
                f"{new.units} x {new.strength_mg:g} mg = {new.total_mg:g} mg exceeds the clinic's "
                f"limit of {policy.max_mg_per_dispense:g} mg per dispense (site policy, approved "
                f"by {policy.approved})",
            )
        )
    if policy.require_pdmp_check and not new.pdmp_checked:
        out.append(
            Finding(
                "pdmp",
                "refused",
                "the clinic requires the prescription drug monitoring programme to be checked "
                "at every dispense: record that it was",
            )
        )
    same = [d for d in history if d.molecule == new.molecule]
    earlier = [d for d in same if d.at <= new.at]
    # charted after the fact, before a supply already on record: that supply was then an
    # early refill of this one, so it is one as much as a refill after it would be
    later = [d for d in same if d.at > new.at and new.runs_out - d.at > _ON_TIME]
    if later:
        first = min(later, key=lambda d: (d.at, d.id))
        ahead = new.runs_out - first.at
        out.append(
            _early_refill(
                policy,
                ahead,
                f"early refill: charted as dispensed {new.at.date().isoformat()}, this supply "
                f"would still have {_days(ahead)} days left when the next supply (dispensed "
                f"{first.at.date().isoformat()}) was handed over, with "
                f"{new.on_hand_mg(first.at):g} mg of it expected on hand",
            )
        )
    if earlier:
        chain = supply_chain(earlier)
        ahead = chain[-1][2] - new.at
        if ahead > _ON_TIME:
            on_hand = sum(_left(d, start, new.at) for d, start, _ in chain)
            out.append(
                _early_refill(
                    policy,
                    ahead,
                    f"early refill: {_days(ahead)} days before the supply on hand should run "
                    f"out (used as ordered, one supply after another; the last dispensed "
                    f"{chain[-1][0].at.date().isoformat()}), with {_mg(on_hand)} mg expected "
                    "on hand",
                )
            )
    return tuple(out)


_FIELDS: Final = frozenset(
    {
        "max_days_supply",
        "max_mg_per_dispense",
        "early_refill_tolerance_days",
        "max_mg_per_day",
        "require_pdmp_check",
        "approved",
    }
)


def parse_take_home(raw: Any, *, path: str = "<text>") -> TakeHomePolicy:
    """Validate the ``[take_home]`` table of a clinic's session policy.

    >>> parse_take_home({"max_days_supply": 7, "approved": "board"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: ... 'take_home.max_mg_per_dispense': is missing
    """

    def fail(where: str, problem: str) -> DataFileError:
        return DataFileError(f"session policy file {path}: field {where!r}: {problem}")

    if not isinstance(raw, Mapping):
        raise fail("take_home", "must be a table")
    extra = sorted(set(raw) - _FIELDS)
    if extra:
        raise fail(f"take_home.{extra[0]}", f"unknown field (allowed: {sorted(_FIELDS)})")
    numbers: dict[str, float | None] = {}
    optional = ("early_refill_tolerance_days", "max_mg_per_day")
    for key in ("max_days_supply", "max_mg_per_dispense", *optional):
        value = raw.get(key)
        if value is None:
            if key not in optional:
                raise fail(f"take_home.{key}", "is missing")
            numbers[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(f"take_home.{key}", f"must be a number, got {value!r}")
        if (
            not math.isfinite(value)
            or value < 0
            or (value == 0 and key != "early_refill_tolerance_days")
        ):
            raise fail(f"take_home.{key}", f"must be positive, got {value!r}")
        numbers[key] = float(value)
    pdmp = raw.get("require_pdmp_check", False)
    if not isinstance(pdmp, bool):
        raise fail("take_home.require_pdmp_check", f"must be true or false, got {pdmp!r}")
    approved = raw.get("approved")
    if not isinstance(approved, str) or not approved.strip():
        raise fail("take_home.approved", "say who approved these limits (no source gives any)")
    days, mg = numbers["max_days_supply"], numbers["max_mg_per_dispense"]
    assert days is not None and mg is not None
    return TakeHomePolicy(
        max_days_supply=days,
        max_mg_per_dispense=mg,
        early_refill_tolerance_days=numbers["early_refill_tolerance_days"],
        max_mg_per_day=numbers["max_mg_per_day"],
        require_pdmp_check=pdmp,
        approved=approved.strip(),
    )
