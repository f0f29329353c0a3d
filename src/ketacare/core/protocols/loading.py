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

import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

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
    Source,
    SourcedValue,
)

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


class _Reader:
    """Typed access to one TOML table, raising DataFileError with file and field."""

    def __init__(self, path: Path, table: Mapping[str, Any], where: str) -> None:
        self.path = path
        self.table = table
        self.where = where

    def fail(self, field: str, problem: str) -> DataFileError:
        name = f"{self.where}.{field}" if self.where else field
        return DataFileError(f"protocol file {self.path}: field {name!r}: {problem}")

    def only(self, allowed: Iterable[str]) -> None:
        extra = sorted(set(self.table) - set(allowed))
        if extra:
            raise self.fail(extra[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def str_(self, field: str, *, required: bool = True) -> str | None:
        value = self.table.get(field)
        if value is None:
            if required:
                raise self.fail(field, "is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "must be a non-empty string")
        return value.strip()

    def req_str(self, field: str) -> str:
        return cast(str, self.str_(field))

    def number(self, field: str, *, required: bool = True, positive: bool = True) -> float | None:
        value = self.table.get(field)
        if value is None:
            if required:
                raise self.fail(field, "is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or (positive and number <= 0):
            raise self.fail(field, f"must be a positive number, got {value!r}")
        return number

    def integer(self, field: str, *, minimum: int, required: bool = True) -> int | None:
        value = self.table.get(field)
        if value is None:
            if required:
                raise self.fail(field, "is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(field, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def boolean(self, field: str) -> bool:
        value = self.table.get(field, False)
        if not isinstance(value, bool):
            raise self.fail(field, f"must be true or false, got {value!r}")
        return value

    def sub(self, field: str, *, required: bool = True) -> _Reader | None:
        value = self.table.get(field)
        if value is None:
            if required:
                raise self.fail(field, "is missing")
            return None
        if not isinstance(value, dict):
            raise self.fail(field, "must be a table")
        return _Reader(self.path, value, f"{self.where}.{field}" if self.where else field)

    def req_sub(self, field: str) -> _Reader:
        return cast(_Reader, self.sub(field))

    def items(self, field: str, *, required: bool = False) -> list[_Reader]:
        value = self.table.get(field)
        if value is None:
            if required:
                raise self.fail(field, "is missing")
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.fail(field, "must be an array of tables")
        if required and not value:
            raise self.fail(field, "must not be empty")
        base = f"{self.where}.{field}" if self.where else field
        return [_Reader(self.path, item, f"{base}[{i}]") for i, item in enumerate(value)]

    def source_ref(self, field: str, keys: set[str], *, required: bool = True) -> str | None:
        key = self.str_(field, required=required)
        if key is not None and key not in keys:
            raise self.fail(field, f"unknown source {key!r} (known: {', '.join(sorted(keys))})")
        return key


def _sources(reader: _Reader) -> tuple[Source, ...]:
    sources = []
    seen: set[str] = set()
    for item in reader.items("sources", required=True):
        item.only(("key", "label", "citation", "url", "doi", "read", "quote"))
        key = item.req_str("key")
        if key in seen:
            raise item.fail("key", f"duplicate source key {key!r}")
        seen.add(key)
        sources.append(
            Source(
                key=key,
                label=item.req_str("label"),
                citation=item.req_str("citation"),
                url=item.req_str("url"),
                read=item.req_str("read"),
                quote=item.req_str("quote"),
                doi=item.str_("doi", required=False),
            )
        )
    return tuple(sources)


def _indications(reader: _Reader) -> tuple[Indication, ...]:
    indications = []
    for item in reader.items("indications", required=True):
        item.only(("code", "display", "system"))
        code = item.req_str("code")
        system = item.str_("system", required=False) or "ICD-10-CM"
        if system != "ICD-10-CM":
            raise item.fail("system", f"only ICD-10-CM is supported, got {system!r}")
        if not _ICD10_PATTERN.match(code):
            raise item.fail("code", f"{code!r} is not an ICD-10-CM code")
        indications.append(Indication(code=code, display=item.req_str("display"), system=system))
    return tuple(indications)


def _dose(reader: _Reader, keys: set[str], route: str) -> DoseRule:
    dose = reader.req_sub("dose")
    dose.only(
        (
            "kind",
            "source",
            "mg_per_kg_per_h",
            "mg_per_h",
            "mg_per_kg",
            "mg",
            "duration_min",
            "max_mg_per_h",
            "first_session_mg",
            "allowed_mg",
            "note",
        )
    )
    kind = dose.req_str("kind")
    if kind not in _DOSE_FIELDS:
        raise dose.fail("kind", f"{kind!r} is not one of {', '.join(_DOSE_FIELDS)}")
    infusion = route in INFUSION_ROUTES
    if kind in _INFUSION_KINDS and not infusion:
        raise dose.fail("kind", f"{kind!r} needs an infusion route, not {route!r}")
    if kind == "amount_fixed" and infusion:
        raise dose.fail("kind", "an infusion gives a rate or an amount per kg over a duration")
    if kind == "clinic_set" and infusion:
        raise dose.fail("kind", "clinic_set is for non-infusion routes; give a rate rule")
    numeric = (
        "mg_per_kg_per_h",
        "mg_per_h",
        "mg_per_kg",
        "mg",
        "duration_min",
        "max_mg_per_h",
        "first_session_mg",
    )
    wanted = _DOSE_FIELDS[kind]
    extras = {"rate_per_kg": ("max_mg_per_h",), "amount_fixed": ("first_session_mg",)}
    allowed_numbers = set(wanted) | set(extras.get(kind, ()))
    values: dict[str, float | None] = {}
    for field in numeric:
        if field in dose.table and field not in allowed_numbers:
            raise dose.fail(field, f"does not apply to dose kind {kind!r}")
        values[field] = dose.number(field, required=field in wanted)
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
    source = dose.source_ref("source", keys, required=kind != "clinic_set")
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
        note=dose.str_("note", required=False) or "",
    )


def _phases(reader: _Reader, keys: set[str], status: str) -> tuple[Phase, ...]:
    phases: list[Phase] = []
    last_day = 0
    items = reader.items("phases", required=status == "published")
    for item in items:
        item.only(
            ("name", "start_day", "cycle_days", "pattern", "cycles", "open_ended", "source", "note")
        )
        open_ended = item.boolean("open_ended")
        start_day = cast(int, item.integer("start_day", minimum=1))
        cycle_days = cast(int, item.integer("cycle_days", minimum=1))
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
        cycles = item.integer("cycles", minimum=1, required=not open_ended)
        if open_ended and cycles is not None:
            raise item.fail("cycles", "an open-ended phase has no cycle count")
        if start_day <= last_day:
            raise item.fail(
                "start_day", f"phase starts on day {start_day}, before the previous ends"
            )
        phase = Phase(
            name=item.req_str("name"),
            start_day=start_day,
            cycle_days=cycle_days,
            pattern=tuple(pattern_raw),
            cycles=cycles,
            source_key=item.source_ref("source", keys, required=status == "published"),
            open_ended=open_ended,
            note=item.str_("note", required=False) or "",
        )
        days = phase.days()
        last_day = days[-1] if days else start_day
        phases.append(phase)
        if open_ended and item is not items[-1]:
            raise item.fail("open_ended", "only the last phase may be open-ended")
    return tuple(phases)


def _rounding(reader: _Reader) -> Rounding:
    table = reader.req_sub("rounding")
    table.only(("dose_mg", "rate_mg_per_h", "rate_ml_per_h"))
    steps = {}
    for field in ("dose_mg", "rate_mg_per_h", "rate_ml_per_h"):
        step = table.req_sub(field)
        step.only(("step", "mode"))
        mode = step.req_str("mode")
        if mode not in ("half_up", "down"):
            raise step.fail("mode", f"{mode!r} is not 'half_up' or 'down'")
        steps[field] = RoundingStep(
            step=cast(float, step.number("step")), mode=cast(RoundingMode, mode)
        )
    return Rounding(**steps)


def _bound(reader: _Reader, field: str, keys: set[str]) -> LimitBound:
    bound = reader.req_sub(field)
    bound.only(("value", "source", "basis", "site_policy"))
    if bound.boolean("site_policy"):
        if "value" in bound.table or "source" in bound.table:
            raise bound.fail(
                "site_policy",
                "a site-policy limit has no value or source here; the clinic sets it",
            )
        return LimitBound(
            value=None, source_key=None, basis=bound.str_("basis", required=False) or ""
        )
    if "value" not in bound.table:
        raise bound.fail("value", "is missing (or mark the limit site_policy = true)")
    return LimitBound(
        value=bound.number("value"),
        source_key=bound.source_ref("source", keys),
        basis=bound.req_str("basis"),
    )


def _limits(reader: _Reader, keys: set[str], route: str) -> tuple[LimitSpec, ...]:
    table = reader.req_sub("limits")
    table.only(LIMIT_UNITS)
    infusion = route in INFUSION_ROUTES
    required = _REQUIRED_INFUSION_LIMITS if infusion else _REQUIRED_LIMITS
    for key in required:
        if key not in table.table:
            raise table.fail(key, f"is missing: a {route} protocol must declare it")
    specs = []
    for key in LIMIT_UNITS:
        spec = table.sub(key, required=False)
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


def _sourced_value(reader: _Reader, field: str, keys: set[str]) -> SourcedValue:
    item = reader.req_sub(field)
    item.only(("value", "source", "site_policy", "note"))
    note = item.str_("note", required=False) or ""
    if item.boolean("site_policy"):
        if "value" in item.table or "source" in item.table:
            raise item.fail("site_policy", "a site-policy value has no value or source here")
        return SourcedValue(value=None, source_key=None, note=note)
    return SourcedValue(
        value=item.number("value"), source_key=item.source_ref("source", keys), note=note
    )


def _monitoring(reader: _Reader, keys: set[str]) -> Monitoring:
    table = reader.req_sub("monitoring")
    table.only(("vitals_interval_min", "observation_min", "checks"))
    checks = []
    for item in table.items("checks"):
        item.only(("text", "source"))
        checks.append(
            Check(text=item.req_str("text"), source_key=cast(str, item.source_ref("source", keys)))
        )
    return Monitoring(
        vitals_interval_min=_sourced_value(table, "vitals_interval_min", keys),
        observation_min=_sourced_value(table, "observation_min", keys),
        checks=tuple(checks),
    )


def _medications(reader: _Reader, field: str, keys: set[str]) -> tuple[Medication, ...]:
    meds = []
    for item in reader.items(field):
        item.only(("drug", "use", "dose", "source", "note"))
        meds.append(
            Medication(
                drug=item.req_str("drug"),
                use=item.req_str("use"),
                dose=item.str_("dose", required=False),
                source_key=cast(str, item.source_ref("source", keys)),
                note=item.str_("note", required=False) or "",
            )
        )
    return tuple(meds)


def _review_points(reader: _Reader, keys: set[str]) -> tuple[ReviewPoint, ...]:
    points = []
    for item in reader.items("review_points"):
        item.only(("after_session", "text", "source"))
        points.append(
            ReviewPoint(
                after_session=item.integer("after_session", minimum=1, required=False),
                text=item.req_str("text"),
                source_key=cast(str, item.source_ref("source", keys)),
            )
        )
    return tuple(points)


def _notes(reader: _Reader) -> tuple[str, ...]:
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
    top = _Reader(path, data, "")
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
    protocol_id = top.req_str("id")
    if not _ID_PATTERN.match(protocol_id):
        raise top.fail("id", f"{protocol_id!r} must be lower-case letters, digits and hyphens")
    if top.table.get("schema") != SCHEMA_VERSION:
        raise top.fail("schema", f"must be {SCHEMA_VERSION}, got {top.table.get('schema')!r}")
    status = top.req_str("status")
    if status not in ("published", "clinic_set"):
        raise top.fail("status", f"{status!r} is not 'published' or 'clinic_set'")
    molecule = top.req_str("molecule")
    if molecule not in MOLECULES:
        raise top.fail("molecule", f"{molecule!r} is not one of {', '.join(MOLECULES)}")
    route = top.req_str("route")
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
        title=top.req_str("title"),
        status=cast(Literal["published", "clinic_set"], status),
        origin=origin,
        path=str(path),
        molecule=molecule,
        route=route,
        setting=top.req_str("setting"),
        summary=top.req_str("summary"),
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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"protocol file {path}: cannot be read: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"protocol file {path}: is not valid TOML: {exc}") from exc
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
