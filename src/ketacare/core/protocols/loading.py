"""Read protocol data files (TOML) and validate them on load.

Every problem raises :class:`~ketacare.core.errors.DataFileError` naming the
file, the field and what is wrong, so a clinic adding its own protocol sees
exactly what to fix. Unknown fields are refused (a typo must not silently drop
a limit).

Examples
--------
>>> library = load_library()
>>> library.get(protocol_id="crps-outpatient").dose.mg_per_kg_per_h
0.35
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import DataFileError, UnknownItem
from ketacare.core.protocols.model import (
    INFUSION_ROUTES,
    LIMIT_UNITS,
    MOLECULES,
    ROUTES,
    Check,
    DoseKind,
    DoseRule,
    Indication,
    LimitBound,
    LimitKey,
    LimitSpec,
    Medication,
    Monitoring,
    Phase,
    Protocol,
    ReviewPoint,
    Rounding,
    RoundingMode,
    RoundingStep,
    SourcedValue,
    Titration,
)
from ketacare.core.sources import Source

SCHEMA_VERSION = 1
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
_ICD10_PATTERN = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_DOSE_FIELDS: dict[str, tuple[str, ...]] = {
    "rate_per_kg": ("mg_per_kg_per_h", "duration_min"),
    "rate_fixed": ("mg_per_h", "duration_min"),
    "amount_per_kg": ("mg_per_kg", "duration_min"),
    "amount_fixed": ("mg",),
    "clinic_set": (),
}
_INFUSION_KINDS = ("rate_per_kg", "rate_fixed", "amount_per_kg")
#: Limit kinds every protocol must declare (the absolute ceilings: per session in mg and
#: mg/kg, per course in mg); infusion protocols must also declare their rate limits.
_REQUIRED_LIMITS = ("dose_mg", "dose_mg_per_kg", "course_mg")
_REQUIRED_INFUSION_LIMITS = (*_REQUIRED_LIMITS, "rate_mg_per_h", "rate_mg_per_kg_per_h")
#: The numeric fields of a ``[dose]`` table (which apply depends on its kind).
_DOSE_NUMBERS = (
    "mg_per_kg_per_h",
    "mg_per_h",
    "mg_per_kg",
    "mg",
    "duration_min",
    "max_mg_per_h",
    "first_session_mg",
)


def _sources(reader: Reader) -> tuple[Source, ...]:
    found = reader.sources(
        "sources", required={"key", "label", "citation", "url", "read", "quote"}, optional={"doi"}
    )
    return tuple(found.values())


def _indications(reader: Reader) -> tuple[Indication, ...]:
    indications = []
    for item in reader.tables("indications", required=True):
        item.only(("code", "display", "system"))
        code = item.text("code")
        system = item.opt_text("system") or "ICD-10-CM"
        if system != "ICD-10-CM":
            raise item.fail("system", f"only ICD-10-CM is supported, got {system!r}")
        if not _ICD10_PATTERN.match(code):
            raise item.fail("code", f"{code!r} is not an ICD-10-CM code")
        indications.append(Indication(code=code, display=item.text("display"), system=system))
    return tuple(indications)


def _dose(reader: Reader, keys: set[str], route: str) -> DoseRule:
    dose = reader.sub("dose")
    dose.only(("kind", "source", *_DOSE_NUMBERS, "allowed_mg", "note", "titration"))
    kind = dose.text("kind")
    if kind not in _DOSE_FIELDS:
        raise dose.fail("kind", f"{kind!r} is not one of {', '.join(_DOSE_FIELDS)}")
    infusion = route in INFUSION_ROUTES
    if kind in _INFUSION_KINDS and not infusion:
        raise dose.fail("kind", f"{kind!r} needs an infusion route, not {route!r}")
    if kind == "amount_fixed" and infusion:
        raise dose.fail("kind", "an infusion gives a rate or an amount per kg over a duration")
    if kind == "clinic_set" and infusion:
        raise dose.fail("kind", "clinic_set is for non-infusion routes; give a rate rule")
    wanted = _DOSE_FIELDS[kind]
    extras = {"rate_per_kg": ("max_mg_per_h",), "amount_fixed": ("first_session_mg",)}
    allowed_numbers = set(wanted) | set(extras.get(kind, ()))
    values: dict[str, float | None] = {}
    for field in _DOSE_NUMBERS:
        if field in dose.table and field not in allowed_numbers:
            raise dose.fail(field, f"does not apply to dose kind {kind!r}")
        values[field] = (
            dose.number(field, positive=True)
            if field in wanted
            else dose.opt_number(field, positive=True)
        )
    allowed_raw = dose.table.get("allowed_mg", [])
    if allowed_raw and kind != "amount_fixed":
        raise dose.fail("allowed_mg", f"does not apply to dose kind {kind!r}")
    if not isinstance(allowed_raw, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in allowed_raw
    ):
        raise dose.fail("allowed_mg", "must be a list of positive numbers")
    allowed = tuple(float(v) for v in allowed_raw)
    mg = values["mg"]
    if allowed and mg is not None and mg not in allowed:
        raise dose.fail("mg", f"{mg:g} is not in allowed_mg")
    first = values["first_session_mg"]
    if allowed and first is not None and first not in allowed:
        raise dose.fail("first_session_mg", f"{first:g} is not in allowed_mg")
    source = (
        dose.opt_source_ref("source", keys)
        if kind == "clinic_set"
        else dose.source_ref("source", keys)
    )
    return DoseRule(
        kind=cast(DoseKind, kind),
        source_key=source,
        mg_per_kg_per_h=values["mg_per_kg_per_h"],
        mg_per_h=values["mg_per_h"],
        mg_per_kg=values["mg_per_kg"],
        mg=mg,
        duration_min=values["duration_min"],
        max_mg_per_h=values["max_mg_per_h"],
        first_session_mg=first,
        allowed_mg=allowed,
        note=dose.opt_text("note") or "",
        titration=_titration(dose, keys, kind),
    )


def _titration(dose: Reader, keys: set[str], kind: str) -> Titration | None:
    """``[dose.titration]``: the source's start of an infusion it titrates up to the
    ordered rate (``start_mg_per_h``, optionally ``per_kg`` of body weight)."""
    table = dose.opt_sub("titration")
    if table is None:
        return None
    if kind not in ("rate_per_kg", "rate_fixed"):
        raise dose.fail("titration", f"applies to a rate (rate_per_kg, rate_fixed), not {kind!r}")
    table.only(("start_mg_per_h", "per_kg", "source", "note"))
    return Titration(
        start_mg_per_h=table.number("start_mg_per_h", positive=True),
        per_kg=table.opt_number("per_kg", positive=True),
        source_key=table.source_ref("source", keys),
        note=table.opt_text("note") or "",
    )


def _phases(reader: Reader, keys: set[str], status: str) -> tuple[Phase, ...]:
    phases: list[Phase] = []
    last_day = 0
    items = reader.tables("phases", required=status == "published")
    for item in items:
        item.only(
            ("name", "start_day", "cycle_days", "pattern", "cycles", "open_ended", "source", "note")
        )
        open_ended = item.boolean("open_ended", default=False)
        start_day = item.integer("start_day", minimum=1)
        cycle_days = item.integer("cycle_days", minimum=1)
        pattern_raw = item.table.get("pattern")
        if (
            not isinstance(pattern_raw, list)
            or not pattern_raw
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in pattern_raw)
            or sorted(set(pattern_raw)) != pattern_raw
            or pattern_raw[0] < 0
            or pattern_raw[-1] >= cycle_days
        ):
            raise item.fail(
                "pattern", "must be increasing day offsets from 0 to cycle_days - 1, e.g. [0, 3]"
            )
        cycles = (
            item.opt_integer("cycles", minimum=1)
            if open_ended
            else item.integer("cycles", minimum=1)
        )
        if open_ended and cycles is not None:
            raise item.fail("cycles", "an open-ended phase has no cycle count")
        if start_day <= last_day:
            raise item.fail(
                "start_day", f"phase starts on day {start_day}, before the previous ends"
            )
        phase = Phase(
            name=item.text("name"),
            start_day=start_day,
            cycle_days=cycle_days,
            pattern=tuple(pattern_raw),
            cycles=cycles,
            source_key=(
                item.source_ref("source", keys)
                if status == "published"
                else item.opt_source_ref("source", keys)
            ),
            open_ended=open_ended,
            note=item.opt_text("note") or "",
        )
        days = phase.days()
        last_day = days[-1] if days else start_day
        phases.append(phase)
        if open_ended and item is not items[-1]:
            raise item.fail("open_ended", "only the last phase may be open-ended")
    return tuple(phases)


def _rounding(reader: Reader) -> Rounding:
    table = reader.sub("rounding")
    table.only(("dose_mg", "rate_mg_per_h", "rate_ml_per_h"))
    steps = {}
    for field in ("dose_mg", "rate_mg_per_h", "rate_ml_per_h"):
        step = table.sub(field)
        step.only(("step", "mode"))
        mode = step.text("mode")
        if mode not in ("half_up", "down"):
            raise step.fail("mode", f"{mode!r} is not 'half_up' or 'down'")
        steps[field] = RoundingStep(
            step=step.number("step", positive=True), mode=cast(RoundingMode, mode)
        )
    return Rounding(**steps)


def _bound(reader: Reader, field: str, keys: set[str]) -> LimitBound:
    bound = reader.sub(field)
    bound.only(("value", "source", "basis", "site_policy"))
    if bound.boolean("site_policy", default=False):
        if "value" in bound.table or "source" in bound.table:
            raise bound.fail(
                "site_policy",
                "a site-policy limit has no value or source here; the clinic sets it",
            )
        return LimitBound(value=None, source_key=None, basis=bound.opt_text("basis") or "")
    if "value" not in bound.table:
        raise bound.fail("value", "is missing (or mark the limit site_policy = true)")
    return LimitBound(
        value=bound.number("value", positive=True),
        source_key=bound.source_ref("source", keys),
        basis=bound.text("basis"),
    )


def _limits(reader: Reader, keys: set[str], route: str) -> tuple[LimitSpec, ...]:
    table = reader.sub("limits")
    table.only(LIMIT_UNITS)
    infusion = route in INFUSION_ROUTES
    required = _REQUIRED_INFUSION_LIMITS if infusion else _REQUIRED_LIMITS
    for key in required:
        if key not in table.table:
            raise table.fail(key, f"is missing: a {route} protocol must declare it")
    specs = []
    for key in LIMIT_UNITS:
        spec = table.opt_sub(key)
        if spec is None:
            continue
        if key.startswith("rate_") and not infusion:
            raise table.fail(key, f"a rate limit does not apply to route {route!r}")
        spec.only(("soft", "hard"))
        soft = _bound(spec, "soft", keys)
        hard = _bound(spec, "hard", keys)
        if soft.value is not None and hard.value is not None and soft.value > hard.value:
            raise spec.fail("soft", f"soft limit {soft.value:g} is above hard limit {hard.value:g}")
        specs.append(LimitSpec(key=cast(LimitKey, key), soft=soft, hard=hard))
    return tuple(specs)


def _sourced_value(reader: Reader, field: str, keys: set[str]) -> SourcedValue:
    item = reader.sub(field)
    item.only(("value", "source", "site_policy", "note"))
    note = item.opt_text("note") or ""
    if item.boolean("site_policy", default=False):
        if "value" in item.table or "source" in item.table:
            raise item.fail("site_policy", "a site-policy value has no value or source here")
        return SourcedValue(value=None, source_key=None, note=note)
    return SourcedValue(
        value=item.number("value", positive=True),
        source_key=item.source_ref("source", keys),
        note=note,
    )


def _monitoring(reader: Reader, keys: set[str]) -> Monitoring:
    table = reader.sub("monitoring")
    table.only(("vitals_interval_min", "observation_min", "checks"))
    checks = []
    for item in table.tables("checks"):
        item.only(("text", "source"))
        checks.append(Check(text=item.text("text"), source_key=item.source_ref("source", keys)))
    return Monitoring(
        vitals_interval_min=_sourced_value(table, "vitals_interval_min", keys),
        observation_min=_sourced_value(table, "observation_min", keys),
        checks=tuple(checks),
    )


def _medications(reader: Reader, field: str, keys: set[str]) -> tuple[Medication, ...]:
    meds = []
    for item in reader.tables(field):
        item.only(("drug", "use", "dose", "source", "note"))
        meds.append(
            Medication(
                drug=item.text("drug"),
                use=item.text("use"),
                dose=item.opt_text("dose"),
                source_key=item.source_ref("source", keys),
                note=item.opt_text("note") or "",
            )
        )
    return tuple(meds)


def _review_points(reader: Reader, keys: set[str]) -> tuple[ReviewPoint, ...]:
    points = []
    for item in reader.tables("review_points"):
        item.only(("after_session", "text", "source"))
        points.append(
            ReviewPoint(
                after_session=item.opt_integer("after_session", minimum=1),
                text=item.text("text"),
                source_key=item.source_ref("source", keys),
            )
        )
    return tuple(points)


def _notes(reader: Reader) -> tuple[str, ...]:
    notes = reader.table.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) and n.strip() for n in notes):
        raise reader.fail("notes", "must be a list of non-empty strings")
    return tuple(n.strip() for n in notes)


def parse_protocol(
    *, data: Mapping[str, Any], path: Path, origin: Literal["builtin", "clinic"] = "clinic"
) -> Protocol:
    """Validate one protocol document (already parsed from TOML).

    Parameters
    ----------
    data
        The parsed TOML document.
    path
        The file it came from (named in every error).
    origin
        ``builtin`` for the shipped library, ``clinic`` for a clinic's own files.

    Returns
    -------
    Protocol
        The validated protocol.

    Raises
    ------
    DataFileError
        Naming the file, the field and the problem.

    Examples
    --------
    >>> parse_protocol(data={"schema": 1}, path=Path("x.toml"))
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: protocol file x.toml: field 'id': is missing
    """
    top = Reader(kind="protocol", path=path, table=data)
    top.only(
        (
            "schema",
            "id",
            "title",
            "status",
            "molecule",
            "route",
            "setting",
            "summary",
            "indications",
            "sources",
            "dose",
            "phases",
            "rounding",
            "limits",
            "monitoring",
            "premedication",
            "rescue",
            "review_points",
            "notes",
        )
    )
    protocol_id = top.text("id")
    if not _ID_PATTERN.match(protocol_id):
        raise top.fail("id", f"{protocol_id!r} must be lower-case letters, digits and hyphens")
    if top.table.get("schema") != SCHEMA_VERSION:
        raise top.fail("schema", f"must be {SCHEMA_VERSION}, got {top.table.get('schema')!r}")
    status = top.text("status")
    if status not in ("published", "clinic_set"):
        raise top.fail("status", f"{status!r} is not 'published' or 'clinic_set'")
    molecule = top.text("molecule")
    if molecule not in MOLECULES:
        raise top.fail("molecule", f"{molecule!r} is not one of {', '.join(MOLECULES)}")
    route = top.text("route")
    if route not in ROUTES:
        raise top.fail("route", f"{route!r} is not one of {', '.join(ROUTES)}")
    sources = _sources(top)
    keys = {s.key for s in sources}
    dose = _dose(top, keys, route)
    if status == "published" and dose.kind == "clinic_set":
        raise top.fail(
            "status", "a protocol whose dose is clinic_set must have status 'clinic_set'"
        )
    return Protocol(
        id=protocol_id,
        title=top.text("title"),
        status=cast(Literal["published", "clinic_set"], status),
        origin=origin,
        path=str(path),
        molecule=molecule,
        route=route,
        setting=top.text("setting"),
        summary=top.text("summary"),
        indications=_indications(top),
        sources=sources,
        dose=dose,
        phases=_phases(top, keys, status),
        rounding=_rounding(top),
        limits=_limits(top, keys, route),
        monitoring=_monitoring(top, keys),
        premedication=_medications(top, "premedication", keys),
        rescue=_medications(top, "rescue", keys),
        review_points=_review_points(top, keys),
        notes=_notes(top),
    )


def load_protocol_file(*, path: Path, origin: Literal["builtin", "clinic"] = "clinic") -> Protocol:
    """Read and validate one protocol TOML file.

    Raises
    ------
    DataFileError
        When the file cannot be read, is not valid TOML, or fails validation.
    """
    data = read_toml(path, kind="protocol")
    return parse_protocol(data=data, path=path, origin=origin)


@dataclass(frozen=True, slots=True)
class ProtocolLibrary:
    """The protocols available to a clinic: the shipped library plus its own files."""

    protocols: tuple[Protocol, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        """Protocol ids in library order."""
        return tuple(p.id for p in self.protocols)

    def get(self, *, protocol_id: str) -> Protocol:
        """The protocol with this id.

        Raises
        ------
        UnknownItem
            Naming the known ids.

        Examples
        --------
        >>> load_library().get(protocol_id="nope")
        Traceback (most recent call last):
        ...
        ketacare.core.errors.UnknownItem: unknown protocol 'nope': known are ...
        """
        for protocol in self.protocols:
            if protocol.id == protocol_id:
                return protocol
        raise UnknownItem("protocol", protocol_id, self.ids)


def _builtin_files() -> list[Path]:
    root = resources.files("ketacare.core.protocols").joinpath("data")
    return sorted(Path(str(entry)) for entry in root.iterdir() if entry.name.endswith(".toml"))


def load_library(*, clinic_dirs: Sequence[Path] = ()) -> ProtocolLibrary:
    """Load the shipped protocols and, optionally, a clinic's own protocol directories.

    Each ``*.toml`` file in a clinic directory is one protocol, validated like
    the shipped ones. An id that is already taken is refused (a clinic protocol
    never silently replaces a published one).

    Parameters
    ----------
    clinic_dirs
        Directories holding the clinic's protocol files.

    Raises
    ------
    DataFileError
        For a missing directory, an invalid file or a duplicate id.

    Examples
    --------
    >>> "esketamine-trd" in load_library().ids
    True
    """
    found: list[Protocol] = [load_protocol_file(path=p, origin="builtin") for p in _builtin_files()]
    for directory in clinic_dirs:
        if not directory.is_dir():
            raise DataFileError(
                f"protocol directory {directory}: does not exist or is not a directory"
            )
        for path in sorted(directory.glob("*.toml")):
            found.append(load_protocol_file(path=path, origin="clinic"))
    seen: dict[str, str] = {}
    for protocol in found:
        if protocol.id in seen:
            raise DataFileError(
                f"protocol file {protocol.path}: field 'id': {protocol.id!r} is already "
                f"defined in {seen[protocol.id]}"
            )
        seen[protocol.id] = protocol.path
    return ProtocolLibrary(protocols=tuple(found))
