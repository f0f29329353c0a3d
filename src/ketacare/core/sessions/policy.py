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
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, get_args

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import DataFileError, InvalidInput, OutOfRange
from ketacare.core.instruments import get_instrument
from ketacare.core.protocols import Protocol, SitePolicy, resolve_limits
from ketacare.core.protocols.model import MOLECULES, SourcedValue
from ketacare.core.protocols.plan import PlannedSession
from ketacare.core.safeguards import CumulativeCap, TakeHomePolicy, parse_caps, parse_take_home
from ketacare.core.sources import Source

Vital = Literal["sbp_mmhg", "dbp_mmhg", "hr_per_min", "spo2_pct", "rr_per_min", "temperature_c"]
VITALS: Final[tuple[Vital, ...]] = get_args(Vital)
Direction = Literal["high", "low"]
DIRECTIONS: Final[tuple[Direction, ...]] = get_args(Direction)
Basis = Literal["sourced", "site_policy", "not_configured", "order"]
#: What a threshold watches: a vital, or the MOAA/S sedation score (recorded with side effects).
Observed = Literal[
    "sbp_mmhg",
    "dbp_mmhg",
    "hr_per_min",
    "spo2_pct",
    "rr_per_min",
    "temperature_c",
    "sedation_moaas",
]
Phase = Literal["pre_dose", "session"]

CheckItem = Literal[
    "baseline_vitals",
    "fasting",
    "escort_arranged",
    "consent_current",
    "screening_valid",
    "weight_current",
    "pregnancy_test",
    "iv_access",
    "dose_verified",
    "medication_lot",
    "pulse_oximetry",
]
CHECK_ITEMS: Final[tuple[CheckItem, ...]] = get_args(CheckItem)

#: How a dose limit reads on a page (its key in the protocol files, in words).
LIMIT_NAMES: Final[Mapping[str, str]] = {
    "dose_mg": "session dose (mg)",
    "dose_mg_per_kg": "session dose (mg/kg)",
    "rate_mg_per_h": "infusion rate (mg/h)",
    "rate_mg_per_kg_per_h": "infusion rate (mg/kg/h)",
    "course_mg": "course total (mg)",
}

#: The instrument whose total decides discharge readiness.
DISCHARGE_INSTRUMENT: Final = "padss_ketamine"

_DATA_FILE = "sessions.toml"
_RULES = "session rules"
_POLICY = "session policy"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Bound:
    """A data-entry bound for one vital (inclusive): not a clinical threshold."""

    vital: Vital
    min: float
    max: float
    unit: str
    label: str


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
class Threshold:
    """An alert rule for one vital and direction.

    A breach is strictly above (``high``) or strictly below (``low``) ``value``.
    ``phase`` ``pre_dose`` applies only to vitals taken before dosing starts.
    ``value`` None means *not configured*: no automatic alert for this vital
    and direction (shown as such, never silently). ``inclusive`` makes the
    value itself a breach (the sedation order reads "MOAA/S at or below").
    """

    id: str
    vital: Observed
    direction: Direction
    value: float | None
    phase: Phase
    basis: Basis
    source: str | None = None
    action: str = ""
    inclusive: bool = False

    def breached_by(self, value: float) -> bool:
        """True when ``value`` crosses this threshold (never for an unset one).

        Examples
        --------
        >>> t = Threshold("x", "sbp_mmhg", "high", 140.0, "pre_dose", "sourced")
        >>> t.breached_by(140), t.breached_by(141)
        (False, True)
        """
        if self.value is None:
            return False
        if self.inclusive:
            return value >= self.value if self.direction == "high" else value <= self.value
        return value > self.value if self.direction == "high" else value < self.value

    def describe(self) -> str:
        """One line for a page or a report."""
        label, unit = observed_label(self.vital)
        if self.value is None:
            return f"{label} {self.direction}: not configured (site policy): no automatic alert"
        sign = ">" if self.direction == "high" else "<"
        if self.inclusive:
            sign += "="
        phase = " before dosing" if self.phase == "pre_dose" else ""
        where = {
            "sourced": f"sourced: {self.source}",
            "order": self.source or "monitoring order",
        }.get(self.basis, "site policy")
        return f"{label} {sign} {self.value:g} {unit}{phase} ({where})".replace("  ", " ")


def observed_label(observed: str) -> tuple[str, str]:
    """The label and unit of a vital or of the sedation score.

    Examples
    --------
    >>> observed_label("sedation_moaas"), observed_label("spo2_pct")
    (('sedation (MOAA/S)', ''), ('SpO2', '%'))
    """
    if observed == "sedation_moaas":
        return "sedation (MOAA/S)", ""
    bound = PLAUSIBILITY[observed]  # type: ignore[index]
    return bound.label, bound.unit


@dataclass(frozen=True, slots=True)
class TimedCheck:
    """A sourced one-off vitals check at a fixed time after dosing starts."""

    id: str
    minutes_after_dosing_start: float
    vitals: tuple[Vital, ...]
    source: str
    text: str
    #: a later reading of the same vitals is also needed before discharge (REMS form)
    before_discharge: bool = False


@dataclass(frozen=True, slots=True)
class Limit:
    """A soft or hard dosing limit as it applies to this session."""

    key: str
    level: Literal["soft", "hard"]
    value: float | None
    unit: str
    basis: Basis
    source: str | None


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
    device_mg: float | None = None
    device_source: str | None = None
    timed_checks: tuple[TimedCheck, ...] = ()
    limits: tuple[Limit, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight_kg) and 0.5 <= self.weight_kg <= 350):
            raise OutOfRange("weight_kg", self.weight_kg, "0.5 to 350 kg")

    @property
    def is_infusion(self) -> bool:
        """True for an IV infusion session (rate-based dosing)."""
        return self.route == "iv_infusion"

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


# --------------------------------------------------------------------------- data file


@dataclass(frozen=True, slots=True)
class SessionRules:
    """The validated contents of ``data/sessions.toml``."""

    sources: Mapping[str, Source]
    plausibility: Mapping[Vital, Bound]
    rules: tuple[tuple[str, Threshold], ...]  # (protocol route, threshold)
    timed_checks: tuple[tuple[str, TimedCheck], ...]  # (protocol route, check)
    devices: Mapping[str, tuple[float, str]]  # protocol route -> (mg, source label)
    sedation: tuple[str, int, int, str]  # scale, min, max, source label
    padss_vital_signs: PadssVitalSigns | None = None
    #: pre-dose check items a route requires on top of the common ones: (route, item, source)
    route_checks: tuple[tuple[str, CheckItem, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PadssVitalSigns:
    """The PADSS vital-signs bands: percent change from baseline to item score (sourced)."""

    item: str
    vitals: tuple[Vital, ...]
    within_pct: float
    up_to_pct: float
    source: str

    def score_for(self, change_pct: float) -> int:
        """The item score for the largest absolute change (percent of the baseline).

        Examples
        --------
        >>> b = load_session_rules().padss_vital_signs
        >>> [b.score_for(p) for p in (0, 20, 20.1, 40, 43.3)]
        [2, 2, 1, 1, 0]
        """
        if change_pct <= self.within_pct:
            return 2
        return 1 if change_pct <= self.up_to_pct else 0


def _fail(path: str, where: str, problem: str) -> DataFileError:
    return Reader(kind=_RULES, path=path, table={}).fail(where, problem)


def _table(path: str, where: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, where, "must be a table")
    extra = sorted(set(value) - allowed)
    if extra:
        raise _fail(path, f"{where}.{extra[0]}", f"unknown field (allowed: {sorted(allowed)})")
    missing = sorted(allowed - set(value) - {"note", "action", "padss_vital_signs"})
    if missing:
        raise _fail(path, f"{where}.{missing[0]}", "is missing")
    return value


def _num(path: str, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, where, f"must be a number, got {value!r}")
    return float(value)


def parse_session_rules(data: Mapping[str, Any], *, path: str = "<text>") -> SessionRules:
    """Validate the session rules data (the parsed TOML) and build :class:`SessionRules`.

    Raises
    ------
    DataFileError
        Naming the file and field: unknown or missing fields, an unknown vital,
        source or direction, a bound with min above max, a rule outside its
        vital's data-entry bounds.
    """
    top = _table(
        path,
        "",
        dict(data),
        {
            "schema",
            "sources",
            "plausibility",
            "rules",
            "timed_checks",
            "route_checks",
            "devices",
            "sedation",
            "padss_vital_signs",
        },
    )
    if top["schema"] != 1:
        raise _fail(path, "schema", f"must be 1, got {top['schema']!r}")
    sources = Reader(kind=_RULES, path=path, table=top).sources(
        "sources", required={"key", "label", "citation", "url", "read", "quote"}
    )

    def source(where: str, key: Any) -> str:
        if key not in sources:
            raise _fail(path, where, f"unknown source {key!r} (known: {sorted(sources)})")
        return sources[key].label

    plaus = _table(path, "plausibility", top["plausibility"], {"note", *VITALS})
    bounds: dict[Vital, Bound] = {}
    for vital in VITALS:
        b = _table(path, f"plausibility.{vital}", plaus[vital], {"min", "max", "unit", "label"})
        lo = _num(path, f"plausibility.{vital}.min", b["min"])
        hi = _num(path, f"plausibility.{vital}.max", b["max"])
        if lo >= hi:
            raise _fail(path, f"plausibility.{vital}", f"min {lo:g} must be below max {hi:g}")
        bounds[vital] = Bound(vital, lo, hi, str(b["unit"]), str(b["label"]))

    rules: list[tuple[str, Threshold]] = []
    for i, raw in enumerate(top["rules"]):
        where = f"rules[{i}]"
        keys = {"id", "route", "vital", "direction", "value", "phase", "source", "action"}
        t = _table(path, where, raw, keys)
        if t["vital"] not in VITALS:
            raise _fail(path, f"{where}.vital", f"unknown vital {t['vital']!r}")
        if t["direction"] not in DIRECTIONS:
            raise _fail(path, f"{where}.direction", "must be 'high' or 'low'")
        if t["phase"] not in get_args(Phase):
            raise _fail(path, f"{where}.phase", "must be 'pre_dose' or 'session'")
        value = _num(path, f"{where}.value", t["value"])
        bound = bounds[t["vital"]]
        if not bound.min <= value <= bound.max:
            raise _fail(path, f"{where}.value", f"{value:g} is outside the data-entry bounds")
        rules.append(
            (
                str(t["route"]),
                Threshold(
                    id=str(t["id"]),
                    vital=t["vital"],
                    direction=t["direction"],
                    value=value,
                    phase=t["phase"],
                    basis="sourced",
                    source=source(f"{where}.source", t["source"]),
                    action=str(t.get("action", "")),
                ),
            )
        )
    checks: list[tuple[str, TimedCheck]] = []
    for i, raw in enumerate(top["timed_checks"]):
        where = f"timed_checks[{i}]"
        keys = {
            "id",
            "route",
            "minutes_after_dosing_start",
            "vitals",
            "source",
            "text",
            "before_discharge",
        }
        t = _table(path, where, raw, keys)
        vitals = t["vitals"]
        if not isinstance(vitals, list) or not vitals or any(v not in VITALS for v in vitals):
            raise _fail(path, f"{where}.vitals", f"must list known vitals ({', '.join(VITALS)})")
        minutes = _num(path, f"{where}.minutes_after_dosing_start", t["minutes_after_dosing_start"])
        check = TimedCheck(
            id=str(t["id"]),
            minutes_after_dosing_start=minutes,
            vitals=tuple(vitals),
            source=source(f"{where}.source", t["source"]),
            text=str(t["text"]),
            before_discharge=t.get("before_discharge", False) is True,
        )
        checks.append((str(t["route"]), check))
    devices: dict[str, tuple[float, str]] = {}
    for route, raw in dict(top["devices"]).items():
        t = _table(path, f"devices.{route}", raw, {"mg", "source"})
        mg = _num(path, f"devices.{route}.mg", t["mg"])
        devices[route] = (mg, source(f"devices.{route}.source", t["source"]))
    sed = _table(path, "sedation", top["sedation"], {"scale", "min", "max", "source"})
    sedation = (
        str(sed["scale"]),
        int(_num(path, "sedation.min", sed["min"])),
        int(_num(path, "sedation.max", sed["max"])),
        source("sedation.source", sed["source"]),
    )
    padss = None
    if "padss_vital_signs" in top:
        where = "padss_vital_signs"
        raw = _table(
            path, where, top[where], {"item", "vitals", "within_pct", "up_to_pct", "source"}
        )
        vitals_raw = raw["vitals"]
        if not isinstance(vitals_raw, list) or any(v not in VITALS for v in vitals_raw):
            raise _fail(path, f"{where}.vitals", f"must list known vitals ({', '.join(VITALS)})")
        within = _num(path, f"{where}.within_pct", raw["within_pct"])
        up_to = _num(path, f"{where}.up_to_pct", raw["up_to_pct"])
        if not 0 < within < up_to:
            raise _fail(path, where, "within_pct must be above 0 and below up_to_pct")
        padss = PadssVitalSigns(
            item=str(raw["item"]),
            vitals=tuple(vitals_raw),
            within_pct=within,
            up_to_pct=up_to,
            source=source(f"{where}.source", raw["source"]),
        )
    route_checks: list[tuple[str, CheckItem, str]] = []
    for i, raw in enumerate(top["route_checks"]):
        where = f"route_checks[{i}]"
        t = _table(path, where, raw, {"item", "route", "source", "text"})
        if t["item"] not in CHECK_ITEMS:
            raise _fail(path, f"{where}.item", f"must be a check item ({', '.join(CHECK_ITEMS)})")
        route_checks.append((str(t["route"]), t["item"], source(f"{where}.source", t["source"])))
    return SessionRules(
        sources,
        bounds,
        tuple(rules),
        tuple(checks),
        devices,
        sedation,
        padss,
        tuple(route_checks),
    )


@cache
def load_session_rules() -> SessionRules:
    """The shipped session rules (validated once, then cached).

    Examples
    --------
    >>> load_session_rules().devices["intranasal_esketamine"]
    (28.0, 'Spravato label, device')
    """
    data = read_toml(
        resources.files("ketacare.core.sessions").joinpath("data", _DATA_FILE), kind=_RULES
    )
    return parse_session_rules(data, path=_DATA_FILE)


#: Data-entry bounds per vital (not clinical thresholds).
PLAUSIBILITY: Final[Mapping[Vital, Bound]] = load_session_rules().plausibility


# --------------------------------------------------------------------------- site policy


@dataclass(frozen=True, slots=True)
class MonitoringPolicy:
    """The monitoring numbers a clinic sets (every field optional, no defaults)."""

    vitals_interval_min: float | None = None
    recovery_vitals_interval_min: float | None = None
    overdue_after_min: float | None = None
    observation_min: float | None = None
    discharge_scores_required: int | None = None
    thresholds: Mapping[tuple[Vital, Direction], float] = field(default_factory=dict)
    sedation_moaas_at_or_below: float | None = None


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """A clinic's session policy: site-wide values and per-protocol overrides."""

    site: MonitoringPolicy = field(default_factory=MonitoringPolicy)
    protocols: Mapping[str, MonitoringPolicy] = field(default_factory=dict)
    path: str | None = None
    cumulative_caps: tuple[CumulativeCap, ...] = ()
    take_home: TakeHomePolicy | None = None

    def for_protocol(self, protocol_id: str | None) -> MonitoringPolicy:
        """Site-wide values overlaid with the protocol's own."""
        own = self.protocols.get(protocol_id or "")
        if own is None:
            return self.site
        return MonitoringPolicy(
            vitals_interval_min=_first(own.vitals_interval_min, self.site.vitals_interval_min),
            recovery_vitals_interval_min=_first(
                own.recovery_vitals_interval_min, self.site.recovery_vitals_interval_min
            ),
            overdue_after_min=_first(own.overdue_after_min, self.site.overdue_after_min),
            observation_min=_first(own.observation_min, self.site.observation_min),
            discharge_scores_required=own.discharge_scores_required
            if own.discharge_scores_required is not None
            else self.site.discharge_scores_required,
            thresholds={**self.site.thresholds, **own.thresholds},
            sedation_moaas_at_or_below=_first(
                own.sedation_moaas_at_or_below, self.site.sedation_moaas_at_or_below
            ),
        )


def _first(a: float | None, b: float | None) -> float | None:
    return a if a is not None else b


_MONITORING_KEYS: Final = (
    "vitals_interval_min",
    "recovery_vitals_interval_min",
    "overdue_after_min",
    "observation_min",
    "discharge_scores_required",
    "sedation_moaas_at_or_below",
)


def _parse_monitoring(path: str, where: str, table: Any) -> MonitoringPolicy:
    if not isinstance(table, dict) or set(table) - {"monitoring", "thresholds"}:
        allowed = (
            "'monitoring', 'thresholds', 'cumulative_cap' and 'take_home'"
            if not where
            else ("'monitoring' and 'thresholds'")
        )
        raise _policy_fail(path, where, f"must hold only {allowed} tables")
    mon = table.get("monitoring", {})
    if not isinstance(mon, dict) or set(mon) - set(_MONITORING_KEYS):
        extra = sorted(set(mon) - set(_MONITORING_KEYS)) if isinstance(mon, dict) else []
        raise _policy_fail(
            path, f"{where}monitoring", f"unknown field {extra} (allowed: {_MONITORING_KEYS})"
        )
    values: dict[str, float | None] = {}
    for key in _MONITORING_KEYS:
        raw = mon.get(key)
        if raw is None:
            values[key] = None
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise _policy_fail(path, f"{where}monitoring.{key}", f"must be a number, got {raw!r}")
        if key == "sedation_moaas_at_or_below":
            if not isinstance(raw, int) or not 0 <= raw <= 5:
                raise _policy_fail(
                    path, f"{where}monitoring.{key}", "must be a whole MOAA/S score 0-5"
                )
            values[key] = float(raw)
            continue
        if key == "overdue_after_min" and raw < 0 or key != "overdue_after_min" and raw <= 0:
            raise _policy_fail(path, f"{where}monitoring.{key}", f"must be positive, got {raw!r}")
        if key == "discharge_scores_required" and (not isinstance(raw, int) or raw > 10):
            raise _policy_fail(path, f"{where}monitoring.{key}", "must be a whole number 1-10")
        values[key] = float(raw)
    thresholds: dict[tuple[Vital, Direction], float] = {}
    raw_thresholds = table.get("thresholds", {})
    if not isinstance(raw_thresholds, dict):
        raise _policy_fail(path, f"{where}thresholds", "must be a table")
    for vital, pair in raw_thresholds.items():
        if vital not in VITALS:
            raise _policy_fail(
                path, f"{where}thresholds.{vital}", f"unknown vital (known: {', '.join(VITALS)})"
            )
        if not isinstance(pair, dict) or not pair or set(pair) - {"high", "low"}:
            raise _policy_fail(path, f"{where}thresholds.{vital}", "give 'high' and/or 'low'")
        bound = PLAUSIBILITY[vital]
        for direction, raw in pair.items():
            w = f"{where}thresholds.{vital}.{direction}"
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise _policy_fail(path, w, f"must be a number, got {raw!r}")
            if not bound.min <= raw <= bound.max:
                raise _policy_fail(
                    path,
                    w,
                    f"{raw:g} is outside the data-entry bounds {bound.min:g}-{bound.max:g} "
                    f"{bound.unit}",
                )
            thresholds[(vital, direction)] = float(raw)
        if "high" in pair and "low" in pair and pair["low"] >= pair["high"]:
            raise _policy_fail(path, f"{where}thresholds.{vital}", "low must be below high")
    required = values["discharge_scores_required"]
    return MonitoringPolicy(
        vitals_interval_min=values["vitals_interval_min"],
        recovery_vitals_interval_min=values["recovery_vitals_interval_min"],
        overdue_after_min=values["overdue_after_min"],
        observation_min=values["observation_min"],
        discharge_scores_required=None if required is None else int(required),
        thresholds=thresholds,
        sedation_moaas_at_or_below=values["sedation_moaas_at_or_below"],
    )


def _policy_fail(path: str, where: str, problem: str) -> DataFileError:
    return Reader(kind=_POLICY, path=path, table={}).fail(where, problem)


def parse_session_policy(data: Mapping[str, Any], *, path: str = "<text>") -> SessionPolicy:
    """Validate a session policy (parsed TOML); see :func:`load_session_policy`.

    Examples
    --------
    >>> p = parse_session_policy({"monitoring": {"vitals_interval_min": 15},
    ...                           "thresholds": {"spo2_pct": {"low": 101}}})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: session policy file <text>: field 'thresholds.spo2_pct...
    """
    top = dict(data)
    protocols_raw = top.pop("protocols", {})
    caps = parse_caps(top.pop("cumulative_cap", []), path=path, molecules=MOLECULES)
    take_home_raw = top.pop("take_home", None)
    take_home = None if take_home_raw is None else parse_take_home(take_home_raw, path=path)
    site = _parse_monitoring(path, "", top)
    if not isinstance(protocols_raw, dict):
        raise _policy_fail(path, "protocols", "must be a table of protocol ids")
    protocols = {
        pid: _parse_monitoring(path, f"protocols.{pid}.", table)
        for pid, table in protocols_raw.items()
    }
    return SessionPolicy(
        site=site, protocols=protocols, path=path, cumulative_caps=caps, take_home=take_home
    )


def load_session_policy(*, path: Path) -> SessionPolicy:
    """Read a clinic's session policy file.

    The file sets site-wide values and may override them per protocol::

        [monitoring]
        vitals_interval_min = 15          # also used in recovery unless set below
        recovery_vitals_interval_min = 15
        overdue_after_min = 5             # a due check turns overdue after this
        observation_min = 60              # minimum observation after dosing ends
        discharge_scores_required = 2     # consecutive PADSS >= 9 (published: 1)

        [thresholds]
        sbp_mmhg = { high = 180 }         # alert when strictly above
        spo2_pct = { low = 92 }           # alert when strictly below

        [protocols.crps-outpatient.monitoring]
        observation_min = 90

        [[cumulative_cap]]                # a cap on the cumulative dose (any number)
        molecule = "racemic_ketamine"
        window_days = 30                  # leave out for the whole history
        max_mg = 1500                     # and/or max_mg_per_kg, max_sessions
        approved = "medical director, 2026-01-05"

    No value has a default. A protocol's sourced value cannot be loosened (see
    :func:`session_setup`).

    Raises
    ------
    DataFileError
        Unreadable file, unknown field or vital, a non-positive number, a
        threshold outside the data-entry bounds, low not below high.
    """
    return parse_session_policy(read_toml(path, kind=_POLICY), path=str(path))


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
