"""The clinic's site policy: every number no source gives, read through one typed loader.

A clinic's policy lives in five files and three numbers, each named by a ``KETACARE_*``
setting (their formats and names stay as they are: other tools write them):

====================================  =====================================================
``KETACARE_SITE_POLICY_FILE``         screening thresholds (``[site_policy]``)
``KETACARE_PROTOCOL_POLICY_FILE``     values for protocol limits no source gives
``KETACARE_SESSION_POLICY_FILE``      vitals thresholds, intervals, cumulative caps, take-home
``KETACARE_OUTCOME_POLICY_FILE``      booster rules
``KETACARE_CLINIC_HOURS_FILE``        opening days and hours, closures (clinic choices)
``KETACARE_OUTCOME_LOSS_CONFIRMATIONS``  scores out of response that confirm a loss
``KETACARE_OUTCOME_LOST_AFTER_DAYS``     days without a score before lost to follow-up
``KETACARE_WEIGHT_VALID_DAYS``           how recent a weight must be to sign a plan
====================================  =====================================================

:func:`site_policy` reads them all into one :class:`SitePolicy` (``settings.policy()``);
each file is parsed once and read again only when it changes (one cache, keyed by the
file's path and modification time). :func:`check_site_policy` is what the app and the
CLI run at start-up: a broken file stops the start with a message naming the file, the
field and what is allowed, instead of failing on first use. Unset settings mean no
policy: the guarded actions say the value is unset.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar, cast

from ketacare.core.datafile import parse_toml
from ketacare.core.errors import DataFileError, KetacareError
from ketacare.core.outcomes.policy import NO_POLICY, OutcomePolicy, load_outcome_policy
from ketacare.core.protocols import ProtocolLibrary, load_library, load_site_policy
from ketacare.core.protocols import SitePolicy as ProtocolPolicy
from ketacare.core.scheduling import ClinicHours, load_clinic_hours
from ketacare.core.screening import SitePolicy as ScreeningPolicy
from ketacare.core.screening import parse_site_policy
from ketacare.core.sessions import SessionPolicy, load_session_policy

if TYPE_CHECKING:
    from ketacare.infra.settings import Settings

__all__ = [
    "SitePolicy",
    "check_site_policy",
    "clinic_hours",
    "outcome_policy",
    "protocol_library",
    "protocol_policy",
    "screening_policy",
    "session_policy",
    "site_policy",
]

PolicyKind = Literal["site", "protocol", "session", "outcome", "clinic hours"]

#: each policy file's setting (the environment variable an operator sets)
ENVIRONMENT: dict[PolicyKind, str] = {
    "site": "KETACARE_SITE_POLICY_FILE",
    "protocol": "KETACARE_PROTOCOL_POLICY_FILE",
    "session": "KETACARE_SESSION_POLICY_FILE",
    "outcome": "KETACARE_OUTCOME_POLICY_FILE",
    "clinic hours": "KETACARE_CLINIC_HOURS_FILE",
}

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class SitePolicy:
    """Everything a clinic sets that no source gives (None: the clinic has not set it)."""

    screening: ScreeningPolicy | None
    protocol: ProtocolPolicy | None
    session: SessionPolicy | None
    outcome: OutcomePolicy
    clinic_hours: ClinicHours | None
    loss_confirmations: int | None
    lost_after_days: int | None
    weight_valid_days: int | None


@lru_cache(maxsize=4)
def _library(protocols_dir: str | None) -> ProtocolLibrary:
    return load_library(clinic_dirs=(Path(protocols_dir),) if protocols_dir else ())


def protocol_library(settings: Settings) -> ProtocolLibrary:
    """The protocol library, with the clinic's own protocols (``KETACARE_PROTOCOLS_DIR``)."""
    return _library(str(settings.protocols_dir) if settings.protocols_dir else None)


def _read_screening(path: Path) -> ScreeningPolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(
            f"site policy file {path}: cannot be read: {exc.strerror or exc}"
        ) from exc
    parse_toml(text, kind="site policy", path=path)  # a syntax error names the file
    try:
        return parse_site_policy(text, name=str(path))
    except KetacareError as exc:  # the screening parser reports a bad value as bad input
        raise DataFileError(f"site policy file {path}: {exc}") from exc


@lru_cache(maxsize=16)
def _parsed(kind: PolicyKind, path: str, mtime_ns: int, protocols_dir: str | None) -> object:
    """One policy file, parsed; the key holds the file's mtime, so an edit is read again."""
    del mtime_ns
    file = Path(path)
    if kind == "site":
        return _read_screening(file)
    if kind == "protocol":
        return load_site_policy(path=file, library=_library(protocols_dir))
    if kind == "session":
        return load_session_policy(path=file)
    if kind == "clinic hours":
        return load_clinic_hours(path=file)
    return load_outcome_policy(path=file)


def _load(settings: Settings, kind: PolicyKind, path: Path | None, _: type[T]) -> T | None:
    if path is None:
        return None
    try:
        mtime_ns = Path(path).stat().st_mtime_ns
    except OSError as exc:
        raise DataFileError(
            f"{'site' if kind == 'site' else kind} policy file {path}: cannot be read: "
            f"{exc.strerror or exc} ({ENVIRONMENT[kind]})"
        ) from exc
    protocols_dir = str(settings.protocols_dir) if settings.protocols_dir else None
    return cast(T, _parsed(kind, str(path), mtime_ns, protocols_dir))


def screening_policy(settings: Settings) -> ScreeningPolicy | None:
    """The screening thresholds (``KETACARE_SITE_POLICY_FILE``), when configured."""
    return _load(settings, "site", settings.site_policy_file, ScreeningPolicy)


def protocol_policy(settings: Settings) -> ProtocolPolicy | None:
    """The values for protocol limits no source gives, when configured."""
    return _load(settings, "protocol", settings.protocol_policy_file, ProtocolPolicy)


def session_policy(settings: Settings) -> SessionPolicy | None:
    """The session policy (thresholds, intervals, caps, take-home), when configured."""
    return _load(settings, "session", settings.session_policy_file, SessionPolicy)


def outcome_policy(settings: Settings) -> OutcomePolicy:
    """The booster rules (:data:`~ketacare.core.outcomes.policy.NO_POLICY` when unset)."""
    return _load(settings, "outcome", settings.outcome_policy_file, OutcomePolicy) or NO_POLICY


def clinic_hours(settings: Settings) -> ClinicHours | None:
    """The opening days and hours and the closures, when configured (clinic choices)."""
    return _load(settings, "clinic hours", settings.clinic_hours_file, ClinicHours)


def site_policy(settings: Settings) -> SitePolicy:
    """Every part of the clinic's site policy, each file read (and validated) once."""
    return SitePolicy(
        screening=screening_policy(settings),
        protocol=protocol_policy(settings),
        session=session_policy(settings),
        outcome=outcome_policy(settings),
        clinic_hours=clinic_hours(settings),
        loss_confirmations=settings.outcome_loss_confirmations,
        lost_after_days=settings.outcome_lost_after_days,
        weight_valid_days=settings.weight_valid_days,
    )


def check_site_policy(settings: Settings) -> SitePolicy:
    """Read every configured policy file, or raise :class:`DataFileError` for the first bad one.

    The message names the file, the field and what is allowed, and the setting that
    names the file. Run at start-up, so a broken file stops the app (or the command)
    instead of failing the first page that needs it.
    """
    return site_policy(settings)
