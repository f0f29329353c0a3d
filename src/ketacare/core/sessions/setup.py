"""What a session is checked against: sourced rules, site policy, and the session setup.

Three layers, never mixed up:

- **Data-entry bounds** (:data:`PLAUSIBILITY`): the widest values a monitor can
  show for a living patient; they refuse typing errors. They are not clinical
  thresholds.
- **Sourced rules** (``data/sessions.toml`` and the protocol files): the
  esketamine label's pre-dose blood-pressure guide (>140/90 mmHg), its
  reassessment at about 40 min, the minimum observation time a protocol gives
  (esketamine: at least 2 h), a protocol's vitals interval, and the PADSS
  discharge criterion (total of 9 or more), each with its source.
- **Site policy** (:func:`load_session_policy`): every other number. A slot the
  clinic has not filled has *no default*: an unset alert threshold means "no
  automatic alert for this vital", an unset interval means "no schedule", and
  both are reported as ``not_configured`` wherever the session is shown.

:class:`SessionSetup` is the snapshot of all of these taken when a session is
scheduled. It is stored in the session's first event, so the log alone says
which thresholds were in force.

Examples
--------
>>> from ketacare.core.protocols import load_library
>>> setup = session_setup(protocol=load_library().get(protocol_id="esketamine-trd"),
...                       weight_kg=70)
>>> setup.observation.value, setup.observation.basis
(120.0, 'sourced')
>>> [(t.vital, t.direction, t.value) for t in setup.thresholds if t.basis == "sourced"]
[('sbp_mmhg', 'high', 140.0), ('dbp_mmhg', 'high', 90.0)]
>>> setup.vitals_interval.describe()
'vitals interval: not set (site policy): no vitals schedule'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from ketacare.core.errors import DataFileError, InvalidInput, OutOfRange
from ketacare.core.instruments import get_instrument
from ketacare.core.protocols import Protocol, SitePolicy, resolve_limits
from ketacare.core.protocols.model import LIMIT_NAMES, SourcedValue
from ketacare.core.protocols.plan import PlannedSession
from ketacare.core.sessions.rules import (
    CHECK_ITEMS,
    DIRECTIONS,
    VITALS,
    Basis,
    CheckItem,
    Threshold,
    TimedCheck,
    load_session_rules,
)
from ketacare.core.sessions.site_policy import SessionPolicy

#: The instrument whose total decides discharge readiness.
DISCHARGE_INSTRUMENT: Final = "padss_ketamine"

# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Setting:
    """One session number and where it comes from.

    ``basis`` is ``sourced`` (``source`` names it), ``site_policy`` (set by the
    clinic) or ``not_configured`` (a site-policy slot nobody filled: ``value``
    is None and the consequence is in ``note``).
    """

    name: str
    value: float | None
    unit: str
    basis: Basis
    source: str | None = None
    note: str = ""

    @property
    def is_set(self) -> bool:
        """True when the setting has a value."""
        return self.value is not None

    def describe(self) -> str:
        """One line for a page or a report.

        Examples
        --------
        >>> Setting("observation", 120.0, "min", "sourced", "Spravato label").describe()
        'observation: 120 min (sourced: Spravato label)'
        """
        if self.value is None:
            tail = f": {self.note}" if self.note else ""
            return f"{self.name}: not set (site policy){tail}"
        where = {
            "sourced": f"sourced: {self.source}",
            "order": self.note or "monitoring order",
        }.get(self.basis, "site policy")
        return f"{self.name}: {self.value:g} {self.unit} ({where})"


@dataclass(frozen=True, slots=True)
class Limit:
    """A soft or hard dosing limit as it applies to this session."""

    key: str
    level: Literal["soft", "hard"]
    value: float | None
    unit: str
    basis: Basis
    source: str | None


#: The NEWS2 SpO2 scale a session is scored on: 1 for every patient (RCP 2017), 2 only
#: where the physician's monitoring order prescribes it (a target of 88-92%).
Spo2Scale = Literal[1, 2]


@dataclass(frozen=True, slots=True)
class SessionSetup:
    """Everything a session is checked against, fixed when it is scheduled.

    Built by :func:`session_setup` from a protocol, the plan's session and the
    site policy; stored in the :class:`~ketacare.core.sessions.events.Scheduled`
    event.
    """

    molecule: str
    route: str
    weight_kg: float
    vitals_interval: Setting
    recovery_vitals_interval: Setting
    overdue_after: Setting
    observation: Setting
    discharge_score_min: Setting
    discharge_scores_required: Setting
    thresholds: tuple[Threshold, ...]
    required_checks: tuple[CheckItem, ...]
    protocol_id: str | None = None
    planned_dose_mg: float | None = None
    planned_rate_mg_per_h: float | None = None
    planned_duration_min: float | None = None
    #: where a titrated infusion starts (the plan's rate is then its ceiling)
    start_rate_mg_per_h: float | None = None
    device_mg: float | None = None
    device_source: str | None = None
    timed_checks: tuple[TimedCheck, ...] = ()
    limits: tuple[Limit, ...] = ()
    news2_spo2_scale: Spo2Scale = 1
    #: who prescribed SpO2 scale 2 and on what basis (None on scale 1)
    news2_spo2_scale_note: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight_kg) and 0.5 <= self.weight_kg <= 350):
            raise OutOfRange("weight_kg", self.weight_kg, "0.5 to 350 kg")
        if self.news2_spo2_scale not in (1, 2):
            raise InvalidInput(f"news2_spo2_scale must be 1 or 2, got {self.news2_spo2_scale!r}")
        if self.news2_spo2_scale == 2 and not self.news2_spo2_scale_note:
            raise InvalidInput("NEWS2 SpO2 scale 2 needs the order that prescribed it")

    @property
    def is_infusion(self) -> bool:
        """True for an IV infusion session (rate-based dosing)."""
        return self.route == "iv_infusion"

    def news2_scale_line(self) -> str:
        """The SpO2 scale NEWS2 is scored on here, and who prescribed scale 2.

        >>> from ketacare.core.protocols import load_library
        >>> s = session_setup(protocol=load_library().get(protocol_id="depression-iv"),
        ...                   weight_kg=70)
        >>> s.news2_scale_line()
        'NEWS2 SpO2 scale 1 (RCP 2017: every patient not prescribed scale 2)'
        """
        if self.news2_spo2_scale == 2:
            from ketacare.core.sessions.news2 import scale2_target  # news2 reads this module

            low, high = scale2_target()
            return f"NEWS2 SpO2 scale 2 (target {low:g}-{high:g}%): {self.news2_spo2_scale_note}"
        return "NEWS2 SpO2 scale 1 (RCP 2017: every patient not prescribed scale 2)"

    def unset(self) -> tuple[str, ...]:
        """Every site-policy slot left unset, one line each (to be shown, not hidden).

        Examples
        --------
        >>> from ketacare.core.protocols import load_library
        >>> s = session_setup(protocol=load_library().get(protocol_id="depression-iv"),
        ...                   weight_kg=70)
        >>> print(s.unset()[0])  # doctest: +NORMALIZE_WHITESPACE
        recovery vitals interval: not set (site policy):
        the dosing interval continues into recovery
        """
        lines = [
            s.describe()
            for s in (
                self.vitals_interval,
                self.recovery_vitals_interval,
                self.overdue_after,
                self.observation,
            )
            if not s.is_set
        ]
        lines += [t.describe() for t in self.thresholds if t.value is None]
        lines += [
            f"{LIMIT_NAMES.get(lim.key, lim.key)} {lim.level} limit: not set (site policy): "
            "no check at this level"
            for lim in self.limits
            if lim.value is None
        ]
        return tuple(lines)


# --------------------------------------------------------------------------- setup


def _monitoring_setting(
    *,
    name: str,
    protocol: Protocol,
    sourced: SourcedValue | None,
    site_value: float | None,
    stricter: Literal["lower", "higher"],
    unset_note: str,
    policy_path: str | None,
) -> Setting:
    if sourced is not None and sourced.value is not None and sourced.source_key is not None:
        label = protocol.source(sourced.source_key).label
        if site_value is None:
            return Setting(name, sourced.value, "min", "sourced", label, sourced.note)
        looser = site_value > sourced.value if stricter == "lower" else site_value < sourced.value
        if looser:
            return Setting(
                name,
                sourced.value,
                "min",
                "sourced",
                label,
                f"site value {site_value:g} min ignored: it would loosen the sourced "
                f"{sourced.value:g} min",
            )
        return Setting(
            name,
            site_value,
            "min",
            "site_policy",
            None,
            f"stricter than the sourced {sourced.value:g} min ({label})",
        )
    if site_value is None:
        return Setting(name, None, "min", "not_configured", None, unset_note)
    where = f"set by site policy ({policy_path})" if policy_path else "set by site policy"
    return Setting(name, site_value, "min", "site_policy", None, where)


def session_setup(
    *,
    protocol: Protocol,
    weight_kg: float,
    planned: PlannedSession | None = None,
    policy: SessionPolicy | None = None,
    limit_policy: SitePolicy | None = None,
    pregnancy_test_required: bool = False,
) -> SessionSetup:
    """Fix what a session will be checked against, from its protocol, plan and site.

    Parameters
    ----------
    protocol
        The plan's protocol (monitoring, limits, route, molecule).
    weight_kg
        The patient's current weight (dose per kg, rate limits per kg).
    planned
        The plan's session (planned dose, rate, duration), when known.
    policy
        The clinic's session policy (:func:`load_session_policy`).
    limit_policy
        The clinic's dose-limit policy (:func:`ketacare.core.protocols.load_site_policy`).
    pregnancy_test_required
        Whether the plan requires a pregnancy test before this session.

    Examples
    --------
    >>> from ketacare.core.protocols import load_library
    >>> from ketacare.core.sessions.site_policy import parse_session_policy
    >>> s = session_setup(protocol=load_library().get(protocol_id="crps-outpatient"),
    ...                   weight_kg=70,
    ...                   policy=parse_session_policy({"thresholds": {"sbp_mmhg": {"high": 180}}}))
    >>> for t in s.thresholds[:2]:
    ...     print(t.describe())
    systolic blood pressure > 180 mmHg (site policy)
    systolic blood pressure low: not configured (site policy): no automatic alert
    >>> s.required_checks[-3:]
    ('iv_access', 'dose_verified', 'medication_lot')
    """
    if not (math.isfinite(weight_kg) and 0.5 <= weight_kg <= 350):
        raise OutOfRange("weight_kg", weight_kg, "0.5 to 350 kg")
    rules = load_session_rules()
    pol = (policy or SessionPolicy()).for_protocol(protocol.id)
    path = policy.path if policy else None
    for name, sourced_value, own in (
        ("vitals_interval_min", protocol.monitoring.vitals_interval_min, "lower"),
        ("observation_min", protocol.monitoring.observation_min, "higher"),
    ):
        own_value = getattr((policy or SessionPolicy()).protocols.get(protocol.id), name, None)
        if own_value is not None and sourced_value.value is not None:
            looser = (
                own_value > sourced_value.value
                if own == "lower"
                else own_value < sourced_value.value
            )
            if looser:
                raise DataFileError(
                    f"session policy file {path}: field 'protocols.{protocol.id}.monitoring."
                    f"{name}': {own_value:g} would loosen the sourced {sourced_value.value:g} min "
                    f"of protocol {protocol.id}"
                )
    vitals = _monitoring_setting(
        name="vitals interval",
        protocol=protocol,
        sourced=protocol.monitoring.vitals_interval_min,
        site_value=pol.vitals_interval_min,
        stricter="lower",
        unset_note="no vitals schedule",
        policy_path=path,
    )
    recovery = _monitoring_setting(
        name="recovery vitals interval",
        protocol=protocol,
        sourced=None,
        site_value=pol.recovery_vitals_interval_min,
        stricter="lower",
        unset_note="the dosing interval continues into recovery",
        policy_path=path,
    )
    overdue = _monitoring_setting(
        name="overdue after",
        protocol=protocol,
        sourced=None,
        site_value=pol.overdue_after_min,
        stricter="lower",
        unset_note="a check is overdue as soon as its due time has passed",
        policy_path=path,
    )
    observation = _monitoring_setting(
        name="minimum observation after dosing",
        protocol=protocol,
        sourced=protocol.monitoring.observation_min,
        site_value=pol.observation_min,
        stricter="higher",
        unset_note="no minimum observation time is enforced; the clinician decides",
        policy_path=path,
    )
    score_min, scores_required = discharge_criterion(pol.discharge_scores_required)
    thresholds = [t for route, t in rules.rules if route == protocol.route]
    for vital in VITALS:
        for direction in DIRECTIONS:
            value = pol.thresholds.get((vital, direction))
            thresholds.append(
                Threshold(
                    id=f"site-{vital}-{direction}",
                    vital=vital,
                    direction=direction,
                    value=value,
                    phase="session",
                    basis="not_configured" if value is None else "site_policy",
                )
            )
    route_only = {item for _, item, _ in rules.route_checks}
    for_route = {item for route, item, _ in rules.route_checks if route == protocol.route}
    required: list[CheckItem] = [
        item
        for item in CHECK_ITEMS
        if (item != "iv_access" or protocol.route in ("iv_infusion", "iv_bolus"))
        and (item != "pregnancy_test" or pregnancy_test_required)
        and (item not in route_only or item in for_route)
    ]
    limits = tuple(
        Limit(r.key, r.level, r.value, r.unit, r.basis, r.source)
        for r in resolve_limits(protocol=protocol, site_policy=limit_policy)
    )
    device = rules.devices.get(protocol.route)
    return SessionSetup(
        molecule=protocol.molecule,
        route=protocol.route,
        weight_kg=float(weight_kg),
        vitals_interval=vitals,
        recovery_vitals_interval=recovery,
        overdue_after=overdue,
        observation=observation,
        discharge_score_min=score_min,
        discharge_scores_required=scores_required,
        thresholds=tuple(thresholds),
        required_checks=tuple(required),
        protocol_id=protocol.id,
        planned_dose_mg=planned.dose_mg if planned else None,
        planned_rate_mg_per_h=planned.rate_mg_per_h if planned else None,
        planned_duration_min=planned.duration_min if planned else None,
        start_rate_mg_per_h=planned.start_rate_mg_per_h if planned else None,
        device_mg=device[0] if device else None,
        device_source=device[1] if device else None,
        timed_checks=tuple(c for route, c in rules.timed_checks if route == protocol.route),
        limits=limits,
    )


def discharge_criterion(consecutive: int | None = None) -> tuple[Setting, Setting]:
    """The PADSS discharge criterion from the instrument library, and how many scores.

    The minimum total is read from the ``padss_ketamine`` instrument's
    ``discharge_criteria_met`` band (9), with the instrument's source. One
    score meeting it is the published rule; a site may require more
    consecutive ones (the published endoscopy variant uses two).

    Examples
    --------
    >>> minimum, count = discharge_criterion()
    >>> minimum.value, count.value, count.basis
    (9.0, 1.0, 'sourced')
    """
    instrument = get_instrument(DISCHARGE_INSTRUMENT)
    band = next(b for b in instrument.bands if b.id == "discharge_criteria_met")
    source = instrument.sources[0].citation.split(";")[0]
    minimum = Setting(
        f"{instrument.short_title} total", float(band.min), "points", "sourced", source, band.label
    )
    if consecutive is None:
        count = Setting("scores meeting it", 1.0, "consecutive", "sourced", source)
    else:
        if consecutive < 1:
            raise InvalidInput("discharge_scores_required must be at least 1")
        count = Setting("scores meeting it", float(consecutive), "consecutive", "site_policy")
    return minimum, count
