"""The dashboard's reference data: condition groups and the statistical methods, with sources.

Both live in ``data/*.toml`` and are validated on load; a problem raises
:class:`~ketacare.core.errors.DataFileError` naming the file and the field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.terminology import icd10cm_display, normalise_icd10cm

#: The group of patients without an active diagnosis (never merged with a code).
NO_DIAGNOSIS = ("none", "no active diagnosis recorded")


@dataclass(frozen=True, slots=True)
class ConditionGroup:
    """ICD-10-CM codes counted as one condition (exact codes, or code prefixes)."""

    id: str
    label: str
    codes: tuple[str, ...]
    prefixes: tuple[str, ...]

    def matches(self, code: str) -> bool:
        """Whether a normalised ICD-10-CM code belongs to this group."""
        return code in self.codes or any(code.startswith(p) for p in self.prefixes)


@dataclass(frozen=True, slots=True)
class MethodSource:
    """A statistical method the dashboard uses and where it is published."""

    key: str
    method: str
    citation: str
    url: str | None
    doi: str | None
    implemented_in: str


@dataclass(frozen=True, slots=True)
class Statistics:
    """The confidence level and the methods' sources."""

    confidence: float
    sources: tuple[MethodSource, ...]


def _read(name: str) -> dict[str, Any]:
    text = (resources.files(__package__) / "data" / name).read_text(encoding="utf-8")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"analytics data file {name}: not valid TOML: {exc}") from exc
    if table.get("schema") != 1:
        raise DataFileError(f"analytics data file {name}: field 'schema' must be 1")
    return table


def _text(name: str, where: str, item: dict[str, Any], field: str, *, required: bool = True) -> str:
    value = item.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise DataFileError(f"analytics data file {name}: field '{where}.{field}' must be text")
    return value.strip()


@cache
def condition_groups() -> tuple[ConditionGroup, ...]:
    """The shipped condition groups (``data/condition_groups.toml``).

    Examples
    --------
    >>> [g.id for g in condition_groups()]
    ['crps-1', 'crps-2', 'mdd']
    """
    name = "condition_groups.toml"
    table = _read(name)
    keys = {s.get("key") for s in table.get("sources", []) if isinstance(s, dict)}
    groups: list[ConditionGroup] = []
    for i, item in enumerate(table.get("groups", [])):
        where = f"groups[{i}]"
        codes, prefixes = item.get("codes", []), item.get("prefixes", [])
        if not isinstance(codes, list) or not isinstance(prefixes, list) or not codes + prefixes:
            raise DataFileError(f"analytics data file {name}: {where} needs codes or prefixes")
        refs = item.get("sources")
        if not isinstance(refs, list) or not refs or any(r not in keys for r in refs):
            raise DataFileError(f"analytics data file {name}: {where}.sources must name sources")
        try:
            normalised = tuple(normalise_icd10cm(str(c)) for c in codes)
        except Exception as exc:
            raise DataFileError(f"analytics data file {name}: {where}.codes: {exc}") from None
        groups.append(
            ConditionGroup(
                id=_text(name, where, item, "id"),
                label=_text(name, where, item, "label"),
                codes=normalised,
                prefixes=tuple(str(p).strip().upper() for p in prefixes),
            )
        )
    if len({g.id for g in groups}) != len(groups):
        raise DataFileError(f"analytics data file {name}: duplicate group id")
    return tuple(groups)


def condition_group(code: str | None, display: str | None = None) -> tuple[str, str]:
    """(group key, label) of a diagnosis: its group, else the code itself.

    Examples
    --------
    >>> condition_group("G90.512")
    ('crps-1', 'Complex regional pain syndrome I (G90.5x)')
    >>> condition_group("M79.7")
    ('M79.7', 'M79.7 Fibromyalgia')
    >>> condition_group(None)
    ('none', 'no active diagnosis recorded')
    """
    if not code:
        return NO_DIAGNOSIS
    normalised = normalise_icd10cm(code)
    for group in condition_groups():
        if group.matches(normalised):
            return group.id, group.label
    shown = icd10cm_display(normalised) or display or ""
    return normalised, f"{normalised} {shown}".strip()[:200]


def condition_label(key: str) -> str:
    """The label shown for a condition key (a group id, an ICD-10-CM code, or none).

    Examples
    --------
    >>> condition_label("crps-2")
    'Complex regional pain syndrome II, causalgia (G56.4x, G57.7x)'
    >>> condition_label("G89.4"), condition_label("none")
    ('G89.4 Chronic pain syndrome', 'no active diagnosis recorded')
    """
    if key == NO_DIAGNOSIS[0]:
        return NO_DIAGNOSIS[1]
    for group in condition_groups():
        if group.id == key:
            return group.label
    try:
        return condition_group(key)[1]
    except InvalidInput:
        return key


@cache
def statistics() -> Statistics:
    """The confidence level and method sources (``data/statistics.toml``).

    Examples
    --------
    >>> s = statistics()
    >>> s.confidence, s.sources[0].doi
    (0.95, '10.1080/01621459.1927.10502953')
    """
    name = "statistics.toml"
    table = _read(name)
    confidence = table.get("confidence")
    if not isinstance(confidence, float) or not 0 < confidence < 1:
        raise DataFileError(f"analytics data file {name}: field 'confidence' must be in (0, 1)")
    sources = []
    for i, item in enumerate(table.get("sources", [])):
        where = f"sources[{i}]"
        sources.append(
            MethodSource(
                key=_text(name, where, item, "key"),
                method=_text(name, where, item, "method"),
                citation=_text(name, where, item, "citation"),
                url=_text(name, where, item, "url", required=False) or None,
                doi=_text(name, where, item, "doi", required=False) or None,
                implemented_in=_text(name, where, item, "implemented_in"),
            )
        )
    if not sources:
        raise DataFileError(f"analytics data file {name}: no sources")
    return Statistics(confidence=confidence, sources=tuple(sources))
