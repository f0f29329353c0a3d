"""A clinic's session policy: the monitoring numbers it sets, site-wide and per protocol.

Every slot is optional and has no default: an unset one is reported as not configured
wherever the session is shown (see :func:`~ketacare.core.sessions.setup.session_setup`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import DataFileError
from ketacare.core.protocols.model import MOLECULES
from ketacare.core.safeguards import CumulativeCap, TakeHomePolicy, parse_caps, parse_take_home
from ketacare.core.sessions.rules import PLAUSIBILITY, VITALS, Direction, Vital

_POLICY = "session policy"

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
