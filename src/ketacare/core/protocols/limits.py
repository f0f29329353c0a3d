"""Dose limits in the manner of smart-pump drug libraries, and the site policy that fills them.

Each protocol declares, per limit kind (``dose_mg``, ``dose_mg_per_kg``,
``rate_mg_per_h``, ``rate_mg_per_kg_per_h``), a *soft* bound (exceeding it
needs a documented reason and a second clinician's co-signature) and a *hard*
bound (always refused). A bound either comes from a published source or is a
*site-policy* slot: ketacare ships no invented default. The clinic fills the
slots in a site-policy file. An unfilled *soft* slot is reported as *not
configured* and any plan under that protocol must be reviewed; an unfilled
*hard* ceiling (dose per session in mg and mg/kg, dose per course in mg, see
:data:`~ketacare.core.protocols.model.CEILING_KEYS`) fails closed: the protocol
cannot be used for a plan until the clinic sets it (:func:`unset_ceilings`).

Examples
--------
>>> from ketacare.core.protocols.loading import load_library
>>> protocol = load_library().get(protocol_id="crps-outpatient")
>>> [(r.key, r.level, r.value, r.basis) for r in resolve_limits(protocol=protocol)][:2]
[('dose_mg', 'soft', None, 'not_configured'), ('dose_mg', 'hard', 100.0, 'sourced')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import (
    HardLimitNotSet,
    KetacareError,
    SoftLimitNeedsReview,
)
from ketacare.core.protocols.loading import ProtocolLibrary
from ketacare.core.protocols.model import (
    CEILING_KEYS,
    LIMIT_NAMES,
    LIMIT_UNITS,
    LimitBound,
    Protocol,
)

Level = Literal["soft", "hard"]
Basis = Literal["sourced", "site_policy", "not_configured"]


@dataclass(frozen=True, slots=True)
class SitePolicy:
    """Values a clinic sets for the limits no source gives.

    ``limits`` maps ``(protocol_id, limit_key, level)`` to a value; only
    site-policy slots may be filled (a sourced limit is never overridden here;
    a clinic that needs other limits adds its own protocol).
    """

    limits: Mapping[tuple[str, str, str], float] = field(default_factory=dict)
    path: str | None = None

    def value(self, *, protocol_id: str, key: str, level: str) -> float | None:
        """The clinic's value for one slot, or None when not configured."""
        return self.limits.get((protocol_id, key, level))


def load_site_policy(*, path: Path, library: ProtocolLibrary) -> SitePolicy:
    """Read a site-policy TOML file and check it against the library.

    The file has one table per protocol and limit kind::

        [crps-outpatient.limits.rate_mg_per_h]
        soft = 24

    Raises
    ------
    DataFileError
        Unknown protocol or limit kind, a value for a sourced limit, a
        non-positive value, or a soft value above the hard one.
    """
    top = Reader(kind="protocol policy", path=path, table=read_toml(path, kind="protocol policy"))
    values: dict[tuple[str, str, str], float] = {}
    for protocol_id, raw in top.table.items():
        try:
            protocol = library.get(protocol_id=protocol_id)
        except KetacareError as exc:
            raise top.fail(protocol_id, str(exc)) from exc
        if not isinstance(raw, dict) or set(raw) - {"limits"}:
            raise top.fail(protocol_id, "must hold only a 'limits' table")
        table = top.child(raw, protocol_id)
        for key, bounds in table.named_tables("limits", required=False):
            spec = protocol.limit(key)
            if spec is None:
                declared = ", ".join(s.key for s in protocol.limits)
                raise bounds.fail(
                    "", f"protocol {protocol_id} declares no such limit (it has {declared})"
                )
            if set(bounds.table) - {"soft", "hard"}:
                raise bounds.fail("", "must hold only 'soft' and/or 'hard'")
            for level in bounds.table:
                bound = spec.soft if level == "soft" else spec.hard
                if not bound.is_site_policy:
                    source = protocol.source(bound.source_key or "").label
                    raise bounds.fail(
                        level, f"this limit is sourced ({source}); a site cannot change it"
                    )
                values[(protocol_id, key, level)] = bounds.number(level, positive=True)
            soft = values.get((protocol_id, key, "soft"), spec.soft.value)
            hard = values.get((protocol_id, key, "hard"), spec.hard.value)
            if soft is not None and hard is not None and soft > hard:
                raise bounds.fail("", f"soft limit {soft:g} is above hard limit {hard:g}")
    return SitePolicy(limits=values, path=str(path))


@dataclass(frozen=True, slots=True)
class ResolvedLimit:
    """One bound as it applies to a plan: its value and where the value comes from."""

    key: str
    level: Level
    value: float | None
    unit: str
    basis: Basis
    source: str | None
    text: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "value": self.value,
            "unit": self.unit,
            "basis": self.basis,
            "source": self.source,
            "text": self.text,
        }


def resolve_limits(
    *, protocol: Protocol, site_policy: SitePolicy | None = None
) -> tuple[ResolvedLimit, ...]:
    """Every soft and hard bound of a protocol, with its value and basis.

    ``basis`` is ``sourced`` (value from the protocol's source), ``site_policy``
    (value set by the clinic) or ``not_configured`` (a site-policy slot the
    clinic has not filled: a soft one means plans need review, a hard one means
    no plan can be built, see :func:`require_ceilings`).

    Examples
    --------
    >>> from ketacare.core.protocols.loading import load_library
    >>> p = load_library().get(protocol_id="esketamine-trd")
    >>> [(r.key, r.level, r.value, r.basis) for r in resolve_limits(protocol=p)][:3]
    [('dose_mg', 'soft', None, 'not_configured'), ('dose_mg', 'hard', 84.0, 'sourced'), \
('dose_mg_per_kg', 'soft', None, 'not_configured')]
    """
    policy = site_policy or SitePolicy()
    resolved = []
    for spec in protocol.limits:
        pairs: tuple[tuple[Level, LimitBound], ...] = (("soft", spec.soft), ("hard", spec.hard))
        for level, bound in pairs:
            unit = LIMIT_UNITS[spec.key]
            if not bound.is_site_policy:
                source = protocol.source(bound.source_key or "")
                resolved.append(
                    ResolvedLimit(
                        spec.key, level, bound.value, unit, "sourced", source.label, bound.basis
                    )
                )
                continue
            value = policy.value(protocol_id=protocol.id, key=spec.key, level=level)
            if value is None:
                text = "no published source; the clinic must set it (site policy)"
                resolved.append(
                    ResolvedLimit(spec.key, level, None, unit, "not_configured", None, text)
                )
            else:
                where = f" ({policy.path})" if policy.path else ""
                resolved.append(
                    ResolvedLimit(
                        spec.key,
                        level,
                        value,
                        unit,
                        "site_policy",
                        None,
                        f"set by site policy{where}",
                    )
                )
    return tuple(resolved)


def unset_ceilings(
    *, protocol: Protocol, site_policy: SitePolicy | None = None
) -> tuple[ResolvedLimit, ...]:
    """The hard limits a protocol needs before it can be used for a plan, and lacks.

    Every route's hard ceilings per session (mg, mg/kg) and per course (mg) must
    have a value from the protocol's source or the clinic's protocol policy; so
    must every other hard limit the protocol declares (its rate ceilings). An
    empty answer means the protocol is usable.

    Examples
    --------
    >>> from ketacare.core.protocols.loading import load_library
    >>> p = load_library().get(protocol_id="oral-followon")
    >>> [r.key for r in unset_ceilings(protocol=p)]
    ['dose_mg', 'dose_mg_per_kg', 'course_mg']
    """
    resolved = resolve_limits(protocol=protocol, site_policy=site_policy)
    declared = {r.key for r in resolved}
    missing = [key for key in CEILING_KEYS if key not in declared]
    if missing:  # the loader requires them; a hand-built protocol may lack them
        raise HardLimitNotSet(
            f"protocol {protocol.id} declares no hard limit {', '.join(missing)}: "
            "every protocol must declare it (sourced or site policy)"
        )
    return tuple(r for r in resolved if r.level == "hard" and r.value is None)


def unset_ceiling_reason(*, protocol_id: str, unset: tuple[ResolvedLimit, ...]) -> str:
    """Why a protocol cannot be used, naming each unset hard limit and where to set it.

    Examples
    --------
    >>> r = ResolvedLimit("course_mg", "hard", None, "mg per course", "not_configured", None, "")
    >>> print(unset_ceiling_reason(protocol_id="p", unset=(r,)))  # doctest: +NORMALIZE_WHITESPACE
    protocol p cannot be used for a plan: hard limit course_mg (mg per course) not set:
    set it in the protocol policy file ([p.limits.course_mg] hard = ...)
    """
    names = ", ".join(f"{r.key} ({r.unit})" for r in unset)
    tables = ", ".join(f"[{protocol_id}.limits.{r.key}] hard = ..." for r in unset)
    plural = "s" if len(unset) > 1 else ""
    return (
        f"protocol {protocol_id} cannot be used for a plan: hard limit{plural} {names} "
        f"not set: set {'them' if plural else 'it'} in the protocol policy file ({tables})"
    )


def require_ceilings(*, protocol: Protocol, site_policy: SitePolicy | None = None) -> None:
    """Refuse a protocol whose hard ceilings are not all set (fail closed).

    Raises
    ------
    HardLimitNotSet
        Naming each unset hard limit and the policy table that sets it.
    """
    unset = unset_ceilings(protocol=protocol, site_policy=site_policy)
    if unset:
        raise HardLimitNotSet(unset_ceiling_reason(protocol_id=protocol.id, unset=unset))


@dataclass(frozen=True, slots=True)
class SoftLimitFinding:
    """A session value above a soft limit: allowed only with a reason and a co-signature.

    ``day`` is the session's day in the protocol, or None for the whole course
    (``course_mg``).
    """

    day: int | None
    key: str
    value: float
    limit: float
    unit: str
    basis: Basis
    source: str | None
    message: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "day": self.day,
            "limit_kind": self.key,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "basis": self.basis,
            "source": self.source,
            "message": self.message,
            "requires": ["reason", "cosignature"],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SoftLimitFinding:
        """Rebuild a finding stored with a plan (:meth:`to_dict`).

        Examples
        --------
        >>> f = SoftLimitFinding(None, "course_mg", 980.0, 900.0, "mg", "site_policy", None, "m")
        >>> SoftLimitFinding.from_dict(f.to_dict()) == f
        True
        """
        day = data.get("day")
        source = data.get("source")
        basis = str(data["basis"])
        if basis not in ("sourced", "site_policy", "not_configured"):
            raise ValueError(f"a stored soft-limit finding has an unknown basis {basis!r}")
        return cls(
            day=None if day is None else int(str(day)),
            key=str(data["limit_kind"]),
            value=float(str(data["value"])),
            limit=float(str(data["limit"])),
            unit=str(data["unit"]),
            basis=cast(Basis, basis),  # checked just above
            source=None if source is None else str(source),
            message=str(data["message"]),
        )


def _days(days: Sequence[int]) -> str:
    """``[1, 2, 3, 5]`` as "days 1-3 and 5" (runs of consecutive days joined).

    >>> _days([1, 2, 4, 5]), _days([3, 3]), _days([2, 4, 6])
    ('days 1-2 and 4-5', 'day 3', 'days 2, 4 and 6')
    """
    runs: list[list[int]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = [f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs]
    text = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]
    return ("days " if len(set(days)) > 1 else "day ") + text


def summarise_findings(findings: Sequence[SoftLimitFinding]) -> tuple[str, ...]:
    """One line per soft limit exceeded, naming every day it is exceeded on.

    Why: a ten-session course above a soft rate gives ten findings; a page that showed
    the first three hid the rest, and a co-signer must read every limit they accept.
    Each line names the limit, the values above it and where the limit comes from.

    Examples
    --------
    >>> days = ((1, 0.4), (2, 0.4), (3, 0.5), (5, 0.4))
    >>> f = [SoftLimitFinding(d, "rate_mg_per_kg_per_h", v, 0.35, "mg/kg/h", "sourced",
    ...                       "Sigtermans 2009", "") for d, v in days]
    >>> for line in summarise_findings(f):
    ...     print(line)  # doctest: +NORMALIZE_WHITESPACE
    infusion rate (mg/kg/h) 0.4-0.5 mg/kg/h above the soft limit 0.35 mg/kg/h (source:
    Sigtermans 2009) on days 1-3 and 5
    >>> course = SoftLimitFinding(None, "course_mg", 980.0, 900.0, "mg", "site_policy", None, "")
    >>> summarise_findings([course])
    ('course total (mg) 980 mg above the soft limit 900 mg (site policy) for the whole course',)
    """
    groups: dict[tuple[str, float, str], list[SoftLimitFinding]] = {}
    for finding in findings:
        groups.setdefault((finding.key, finding.limit, finding.unit), []).append(finding)
    lines = []
    for (key, limit, unit), group in groups.items():
        low = min(f.value for f in group)
        high = max(f.value for f in group)
        values = f"{low:g}" if low == high else f"{low:g}-{high:g}"
        first = group[0]
        where = f"source: {first.source}" if first.source else "site policy"
        days = [f.day for f in group if f.day is not None]
        when = _days(days) if days else "for the whole course"
        lines.append(
            f"{LIMIT_NAMES.get(key, key)} {values} {unit} above the soft limit {limit:g} {unit} "
            f"({where}) {'on ' if days else ''}{when}"
        )
    return tuple(lines)


def review_lines(
    *, findings: Sequence[SoftLimitFinding], not_configured: Sequence[str]
) -> tuple[str, ...]:
    """What a plan's review accepts, one line each.

    The soft limits exceeded (:func:`summarise_findings`), then each soft limit the
    clinic has not configured. The prescriber's refusal, the co-signer's refusal and
    the plan page all say the same lines.

    Examples
    --------
    >>> review_lines(findings=[], not_configured=["dose_mg_per_kg soft", "course_mg soft"])
    ('session dose (mg/kg) soft limit not configured (site policy)', \
'course total (mg) soft limit not configured (site policy)')
    """
    lines = list(summarise_findings(findings))
    for slot in not_configured:
        key, _, level = slot.partition(" ")
        lines.append(
            f"{LIMIT_NAMES.get(key, key)} {level or 'soft'} limit not configured (site policy)"
        )
    return tuple(lines)


@dataclass(frozen=True, slots=True)
class LimitReview:
    """The documented decision to go ahead despite soft findings or unconfigured limits."""

    protocol_id: str
    reason: str
    prescriber_id: str
    cosigner_id: str
    findings: tuple[SoftLimitFinding, ...]
    not_configured: tuple[str, ...]


def review_limits(
    *,
    protocol_id: str,
    findings: tuple[SoftLimitFinding, ...],
    not_configured: tuple[str, ...],
    reason: str | None,
    prescriber_id: str | None,
    cosigner_id: str | None,
) -> LimitReview:
    """Accept soft findings and unconfigured limits with a reason and a second clinician.

    Raises
    ------
    SoftLimitNeedsReview
        When the reason is empty, the co-signer is missing, or the co-signer is
        the prescriber (the second clinician must be someone else).

    Examples
    --------
    >>> review_limits(protocol_id="p", findings=(), not_configured=("dose_mg soft",),
    ...               reason="", prescriber_id="dr-a", cosigner_id="dr-b")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.SoftLimitNeedsReview: protocol p: a documented reason is required ...
    """
    what = _review_subject(findings, not_configured)
    if not reason or not reason.strip():
        raise SoftLimitNeedsReview(
            f"protocol {protocol_id}: a documented reason is required for {what}"
        )
    if not prescriber_id or not prescriber_id.strip():
        raise SoftLimitNeedsReview(
            f"protocol {protocol_id}: the prescriber must be named for {what}"
        )
    if not cosigner_id or not cosigner_id.strip():
        raise SoftLimitNeedsReview(
            f"protocol {protocol_id}: a second clinician's co-signature is required for {what}"
        )
    if cosigner_id.strip() == prescriber_id.strip():
        raise SoftLimitNeedsReview(
            f"protocol {protocol_id}: the co-signer must be a second clinician, "
            f"not the prescriber {prescriber_id.strip()!r}"
        )
    return LimitReview(
        protocol_id=protocol_id,
        reason=reason.strip(),
        prescriber_id=prescriber_id.strip(),
        cosigner_id=cosigner_id.strip(),
        findings=findings,
        not_configured=not_configured,
    )


def _review_subject(findings: tuple[SoftLimitFinding, ...], not_configured: tuple[str, ...]) -> str:
    return "; ".join(review_lines(findings=findings, not_configured=not_configured)) or "this plan"
