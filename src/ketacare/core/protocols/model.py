"""The protocol library's values: frozen dataclasses read from the data files.

A protocol is a published regimen (or a clinic's own) written as data: what is
given, by which route, how often, with which monitoring, and the dose limits a
plan must respect. Every number carries its source; a limit without one is a
*site policy* slot that the clinic fills (see :mod:`ketacare.core.protocols.limits`).

Examples
--------
>>> bound = LimitBound(value=25.0, source_key="schwartzman-2009", basis="not to exceed 25 mg/h")
>>> bound.is_site_policy
False
>>> LimitBound(value=None, source_key=None, basis="").is_site_policy
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from ketacare.core.sources import Source

#: Routes a protocol may use (the pharmacology engine's route names).
ROUTES: Final = (
    "iv_infusion",
    "iv_bolus",
    "intranasal",
    "intranasal_esketamine",
    "oral",
    "sublingual",
    "im",
)

#: Routes whose sessions run at a rate (mg/h, mL/h) for a duration.
INFUSION_ROUTES: Final = ("iv_infusion",)

#: Molecules a protocol may give.
MOLECULES: Final = ("racemic_ketamine", "esketamine")

#: The limit kinds a protocol may declare, with their display units.
LIMIT_UNITS: Final = {
    "dose_mg": "mg",
    "dose_mg_per_kg": "mg/kg",
    "rate_mg_per_h": "mg/h",
    "rate_mg_per_kg_per_h": "mg/kg/h",
    "course_mg": "mg per course",
}

#: How a limit kind reads on a page or in a message.
LIMIT_NAMES: Final[Mapping[str, str]] = {
    "dose_mg": "session dose (mg)",
    "dose_mg_per_kg": "session dose (mg/kg)",
    "rate_mg_per_h": "infusion rate (mg/h)",
    "rate_mg_per_kg_per_h": "infusion rate (mg/kg/h)",
    "course_mg": "course total (mg)",
}

#: The limit kinds whose HARD bound every protocol must have before a plan is signed:
#: the dose per session in mg and in mg/kg, and the dose per course in mg. A source
#: gives the value, or the clinic's protocol policy does; an unset one refuses the plan.
CEILING_KEYS: Final = ("dose_mg", "dose_mg_per_kg", "course_mg")

DoseKind = Literal["rate_per_kg", "rate_fixed", "amount_per_kg", "amount_fixed", "clinic_set"]
RoundingMode = Literal["half_up", "down"]
LimitKey = Literal[
    "dose_mg", "dose_mg_per_kg", "rate_mg_per_h", "rate_mg_per_kg_per_h", "course_mg"
]


@dataclass(frozen=True, slots=True)
class Indication:
    """An indication as an ICD-10-CM code with its display text."""

    code: str
    display: str
    system: str = "ICD-10-CM"


@dataclass(frozen=True, slots=True)
class Titration:
    """Where an infusion starts when its source titrates up to the ordered rate.

    The source's start, ``start_mg_per_h`` per ``per_kg`` kg of body weight (or
    for any weight when ``per_kg`` is None), from which the rate is raised by
    effect and side effects up to the plan's rate, which stays the ceiling.

    Examples
    --------
    >>> t = Titration(start_mg_per_h=5, per_kg=70, source_key="dahan-2011")
    >>> t.start_for(weight_kg=Decimal(70)), round(t.start_for(weight_kg=Decimal(50)), 4)
    (Decimal('5'), Decimal('3.5714'))
    """

    start_mg_per_h: float
    per_kg: float | None
    source_key: str
    note: str = ""

    def start_for(self, *, weight_kg: Decimal) -> Decimal:
        """The exact start for one patient, in mg/h (unrounded)."""
        start = Decimal(str(self.start_mg_per_h))
        return start * weight_kg / Decimal(str(self.per_kg)) if self.per_kg else start


@dataclass(frozen=True, slots=True)
class DoseRule:
    """How one session's dose is computed.

    ``kind`` is one of:

    - ``rate_per_kg``: ``mg_per_kg_per_h`` for ``duration_min``, optionally
      capped at ``max_mg_per_h`` (the cap is part of the published rule);
    - ``rate_fixed``: ``mg_per_h`` for ``duration_min``;
    - ``amount_per_kg``: ``mg_per_kg`` spread evenly over ``duration_min``;
    - ``amount_fixed``: ``mg`` per session (optionally a different
      ``first_session_mg``; ``allowed_mg`` lists the doses the source allows);
    - ``clinic_set``: no published dose; the clinician must order one.
    """

    kind: DoseKind
    source_key: str | None
    mg_per_kg_per_h: float | None = None
    mg_per_h: float | None = None
    mg_per_kg: float | None = None
    mg: float | None = None
    duration_min: float | None = None
    max_mg_per_h: float | None = None
    first_session_mg: float | None = None
    allowed_mg: tuple[float, ...] = ()
    note: str = ""
    #: an infusion the source starts lower and titrates up to the ordered rate
    titration: Titration | None = None


@dataclass(frozen=True, slots=True)
class Phase:
    """A run of sessions: ``cycles`` repetitions of ``pattern`` day offsets every ``cycle_days``.

    Days count from 1 (the first session of the course). An ``open_ended``
    phase (e.g. "every 2 weeks or weekly from week 9") is described but not
    expanded into sessions.
    """

    name: str
    start_day: int
    cycle_days: int
    pattern: tuple[int, ...]
    cycles: int | None
    source_key: str | None
    open_ended: bool = False
    note: str = ""

    def days(self) -> tuple[int, ...]:
        """Course days of this phase's sessions (empty when open-ended).

        Examples
        --------
        >>> Phase("induction", 1, 7, (0, 3), 2, None).days()
        (1, 4, 8, 11)
        """
        if self.open_ended or self.cycles is None:
            return ()
        return tuple(
            self.start_day + cycle * self.cycle_days + offset
            for cycle in range(self.cycles)
            for offset in self.pattern
        )


@dataclass(frozen=True, slots=True)
class RoundingStep:
    """Round a quantity to a multiple of ``step`` using ``mode``."""

    step: float
    mode: RoundingMode


@dataclass(frozen=True, slots=True)
class Rounding:
    """The rounding rule a plan states: doses, rates in mg/h and rates in mL/h."""

    dose_mg: RoundingStep
    rate_mg_per_h: RoundingStep
    rate_ml_per_h: RoundingStep


@dataclass(frozen=True, slots=True)
class LimitBound:
    """One soft or hard bound: a sourced value, or a site-policy slot (``value`` None)."""

    value: float | None
    source_key: str | None
    basis: str

    @property
    def is_site_policy(self) -> bool:
        """True when no published source gives this bound: the clinic sets it."""
        return self.source_key is None


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """The soft and hard bound of one limit kind (e.g. ``rate_mg_per_h``)."""

    key: LimitKey
    soft: LimitBound
    hard: LimitBound

    @property
    def unit(self) -> str:
        """Display unit of this limit kind."""
        return LIMIT_UNITS[self.key]


@dataclass(frozen=True, slots=True)
class SourcedValue:
    """A monitoring number (minutes) with its source, or a site-policy slot."""

    value: float | None
    source_key: str | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Check:
    """A monitoring step stated as text, with its source."""

    text: str
    source_key: str


@dataclass(frozen=True, slots=True)
class Monitoring:
    """Vitals interval and minimum observation before discharge, plus sourced checks."""

    vitals_interval_min: SourcedValue
    observation_min: SourcedValue
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True, slots=True)
class Medication:
    """A pre-medication or rescue medication as the source gives it (dose may be absent)."""

    drug: str
    use: str
    dose: str | None
    source_key: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class ReviewPoint:
    """A point where the team decides to go on, boost or stop."""

    after_session: int | None
    text: str
    source_key: str


@dataclass(frozen=True, slots=True)
class Protocol:
    """A regimen from the library: one data file, every number with its source."""

    id: str
    title: str
    status: Literal["published", "clinic_set"]
    origin: Literal["builtin", "clinic"]
    path: str
    molecule: str
    route: str
    setting: str
    summary: str
    indications: tuple[Indication, ...]
    sources: tuple[Source, ...]
    dose: DoseRule
    phases: tuple[Phase, ...]
    rounding: Rounding
    limits: tuple[LimitSpec, ...]
    monitoring: Monitoring
    premedication: tuple[Medication, ...] = ()
    rescue: tuple[Medication, ...] = ()
    review_points: tuple[ReviewPoint, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def is_infusion(self) -> bool:
        """True when sessions run at a rate for a duration."""
        return self.route in INFUSION_ROUTES

    def source(self, key: str) -> Source:
        """The source with this key (the loader guarantees every key exists)."""
        for source in self.sources:
            if source.key == key:
                return source
        raise KeyError(key)

    def limit(self, key: str) -> LimitSpec | None:
        """The declared limit of this kind, or None."""
        for spec in self.limits:
            if spec.key == key:
                return spec
        return None

    @property
    def primary_source(self) -> Source:
        """The first source listed: the one the library table shows."""
        return self.sources[0]
