"""The sourced session rules (``data/sessions.toml``) and the vocabulary they are written in.

The data file holds the numbers a session is checked against that have a source: the
data-entry bounds per vital (:data:`PLAUSIBILITY`, which refuse typing errors and are not
clinical thresholds), the pre-dose blood-pressure rules, timed checks, the devices' doses,
the sedation scale, the PADSS vital-signs bands and the check items a route adds. Each
entry names its source; :func:`parse_session_rules` refuses anything it does not know.

Examples
--------
>>> PLAUSIBILITY["spo2_pct"].max, load_session_rules().sedation[0]
(100.0, 'MOAA/S')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal, get_args

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import DataFileError
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
_DATA_FILE = "sessions.toml"
_RULES = "session rules"

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
