"""Response, remission and futility definitions as data, each with its source.

The definitions live in TOML files under ``data/`` and are validated on load:
every problem raises :class:`~ketacare.core.errors.DataFileError` naming the
file and the field. A definition without a source does not load. Thresholds
that no source supports (when to suggest a booster, how many measurements
confirm a loss of response) are not here: they are clinic-set parameters
(:class:`BoosterRule`, ``loss_confirmations``) with no default.

Examples
--------
>>> library = load_definitions()
>>> [d.id for d in library.for_measure(measure="phq9")]
['phq9-response', 'phq9-remission']
>>> d = library.get(definition_id="pain-30")
>>> (d.kind, d.threshold, d.sources[0].key)
('percent_reduction', 30.0, 'dworkin-2008')
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketacare.core.datafile import Reader, parse_toml
from ketacare.core.errors import DataFileError, OutOfRange, UnknownItem
from ketacare.core.sources import Source

SCHEMA_VERSION = 1
DefinitionKind = Literal["percent_reduction", "score_below"]
Role = Literal["response", "remission"]
BoosterKind = Literal["score_at_or_above", "reduction_below_percent"]
_KINDS: tuple[str, ...] = ("percent_reduction", "score_below")
_ROLES: tuple[str, ...] = ("response", "remission")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
_MEASURE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


@dataclass(frozen=True, slots=True)
class Definition:
    """A response or remission criterion on one measure (lower scores are better).

    ``percent_reduction``: met when the reduction from baseline is at least
    ``threshold`` percent. ``score_below``: met when the score is strictly
    below ``threshold``. ``baseline_above``, when set, restricts the definition
    to patients whose baseline is strictly above it (as in the source's
    population); a percentage of a zero baseline is never assessed.
    """

    id: str
    measure: str
    role: Role
    kind: DefinitionKind
    threshold: float
    scale_min: float
    scale_max: float
    label: str
    short: str
    sources: tuple[Source, ...]
    baseline_above: float | None = None
    note: str = ""

    def eligible(self, baseline: ArrayLike) -> NDArray[np.bool_]:
        """Whether a baseline allows this definition to be assessed.

        Examples
        --------
        >>> d = load_definitions().get(definition_id="phq9-response")
        >>> d.eligible([9, 10, float("nan")]).tolist()
        [False, True, False]
        """
        b = np.asarray(baseline, dtype=np.float64)
        ok = np.isfinite(b)
        if self.baseline_above is not None:
            ok &= b > self.baseline_above
        if self.kind == "percent_reduction":
            ok &= b > 0
        return ok

    def met(self, baseline: ArrayLike, value: ArrayLike) -> NDArray[np.bool_]:
        """Whether ``value`` meets the criterion against ``baseline`` (elementwise).

        Percent reductions are compared without division,
        ``(baseline - value) * 100 >= threshold * baseline``, so an exact 30%
        (10 to 7) counts as 30%. Ineligible baselines never meet.

        Examples
        --------
        >>> d = load_definitions().get(definition_id="pain-30")
        >>> d.met([10, 10, 0], [7, 8, 0]).tolist()
        [True, False, False]
        """
        b = np.asarray(baseline, dtype=np.float64)
        v = np.asarray(value, dtype=np.float64)
        if self.kind == "percent_reduction":
            hit = (b - v) * 100.0 >= self.threshold * b
        else:
            hit = v < self.threshold
        result: NDArray[np.bool_] = hit & self.eligible(b) & np.isfinite(v)
        return result

    def check_values(self, values: ArrayLike, *, field: str = "value") -> None:
        """Refuse scores outside the measure's scale (NaN means missing and passes).

        Examples
        --------
        >>> load_definitions().get(definition_id="pain-30").check_values([0, 10, 11])
        Traceback (most recent call last):
        ...
        ketacare.core.errors.OutOfRange: value 11.0 is out of range: allowed 0 to 10 for nrs_pain
        """
        v = np.asarray(values, dtype=np.float64)
        bad = np.flatnonzero((v < self.scale_min) | (v > self.scale_max) | np.isinf(v))
        if bad.size:
            allowed = f"{self.scale_min:g} to {self.scale_max:g} for {self.measure}"
            raise OutOfRange(field, float(v[bad[0]]), allowed)


@dataclass(frozen=True, slots=True)
class FutilityRule:
    """Flag a course for review after ``sessions`` sessions without a response."""

    id: str
    definition_id: str
    sessions: int
    scope: str
    text: str
    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class BoosterRule:
    """A clinic's rule for suggesting a booster to a responder (no default exists).

    No published threshold says when a ketamine booster is due, so each clinic
    sets its own. ``definition_id`` names the response definition that makes a
    patient a responder (and so the measure); ``kind`` is
    ``score_at_or_above`` (latest score >= threshold) or
    ``reduction_below_percent`` (latest reduction from baseline < threshold %).
    ``set_by`` records who or which clinic policy set it.

    Examples
    --------
    >>> BoosterRule(definition_id="pain-30", kind="score_at_or_above", threshold=6,
    ...             set_by="clinic policy P-12").threshold
    6
    >>> BoosterRule(definition_id="pain-30", kind="score_at_or_above", threshold=-1,
    ...             set_by="x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.OutOfRange: booster threshold -1 is out of range: allowed a finite ...
    """

    definition_id: str
    kind: BoosterKind
    threshold: float
    set_by: str

    def __post_init__(self) -> None:
        if self.kind not in ("score_at_or_above", "reduction_below_percent"):
            raise UnknownItem(
                "booster rule kind", self.kind, ["score_at_or_above", "reduction_below_percent"]
            )
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
            raise OutOfRange("booster threshold", t, "a finite number >= 0")
        if not self.set_by.strip():
            raise OutOfRange("booster set_by", repr(self.set_by), "a non-empty policy reference")


@dataclass(frozen=True, slots=True)
class DefinitionLibrary:
    """The loaded definitions and futility rules."""

    definitions: tuple[Definition, ...]
    futility_rules: tuple[FutilityRule, ...]

    def get(self, *, definition_id: str) -> Definition:
        """The definition with this id, or :class:`UnknownItem`."""
        for definition in self.definitions:
            if definition.id == definition_id:
                return definition
        raise UnknownItem("outcome definition", definition_id, [d.id for d in self.definitions])

    def for_measure(self, *, measure: str) -> tuple[Definition, ...]:
        """The definitions on one measure, in file order."""
        return tuple(d for d in self.definitions if d.measure == measure)

    def futility_for(self, *, definition_id: str) -> tuple[FutilityRule, ...]:
        """The futility rules that judge by this definition."""
        return tuple(r for r in self.futility_rules if r.definition_id == definition_id)


_KIND = "outcome definition"


def _measure(item: Reader, field: str) -> str:
    value = item.text(field)
    if not _MEASURE.match(value):
        raise item.fail(field, f"{value!r} is not an instrument id (e.g. 'nrs_pain')")
    return value


def _ident(item: Reader, field: str) -> str:
    value = item.text(field)
    if not _ID.match(value):
        raise item.fail(field, f"{value!r} must be lower-case letters, digits and dashes")
    return value


def _refs(item: Reader, field: str, sources: Mapping[str, Source]) -> tuple[Source, ...]:
    return tuple(sources[key] for key in item.source_refs(field, sources))


def _definition(item: Reader, sources: Mapping[str, Source]) -> Definition:
    item.only(
        (
            "id",
            "measure",
            "role",
            "kind",
            "threshold",
            "scale",
            "baseline_above",
            "label",
            "short",
            "sources",
            "note",
        )
    )
    role = item.choice("role", _ROLES)
    kind = item.choice("kind", _KINDS)
    scale = item.interval("scale")
    if scale[0] == scale[1]:
        raise item.fail("scale", "must be [minimum, maximum] with minimum < maximum")
    threshold = item.number("threshold", minimum=0)
    if kind == "percent_reduction" and not 0 < threshold <= 100:
        raise item.fail("threshold", f"a percent reduction must be in (0, 100], got {threshold:g}")
    if kind == "score_below" and not scale[0] < threshold <= scale[1]:
        raise item.fail("threshold", f"{threshold:g} is outside the scale {list(scale)}")
    return Definition(
        id=_ident(item, "id"),
        measure=_measure(item, "measure"),
        role=cast(Role, role),
        kind=cast(DefinitionKind, kind),
        threshold=threshold,
        scale_min=scale[0],
        scale_max=scale[1],
        label=item.text("label"),
        short=item.text("short"),
        sources=_refs(item, "sources", sources),
        baseline_above=item.opt_number("baseline_above", minimum=0),
        note=item.opt_text("note") or "",
    )


def _futility(item: Reader, sources: Mapping[str, Source]) -> FutilityRule:
    item.only(("id", "definition", "sessions", "scope", "text", "sources"))
    return FutilityRule(
        id=_ident(item, "id"),
        definition_id=item.text("definition"),
        sessions=item.integer("sessions", minimum=1),
        scope=item.text("scope"),
        text=item.text("text"),
        sources=_refs(item, "sources", sources),
    )


def parse_definitions(
    table: Mapping[str, Any], *, path: Path | str = "<memory>"
) -> tuple[tuple[Definition, ...], tuple[FutilityRule, ...]]:
    """Validate one parsed TOML table and return its definitions and futility rules."""
    reader = Reader(kind=_KIND, path=path, table=table)
    reader.only(("schema", "sources", "definitions", "futility_rules"))
    if table.get("schema") != SCHEMA_VERSION:
        raise reader.fail("schema", f"must be {SCHEMA_VERSION}, got {table.get('schema')!r}")
    sources = reader.sources(
        "sources",
        required={"key", "citation", "url", "read", "statement"},
        optional={"doi"},
        rename={"statement": "quote"},
    )
    definitions = tuple(_definition(item, sources) for item in reader.tables("definitions"))
    rules = tuple(_futility(item, sources) for item in reader.tables("futility_rules"))
    return definitions, rules


def _check_library(definitions: list[Definition], rules: list[FutilityRule]) -> None:
    seen: set[str] = set()
    for definition in definitions:
        if definition.id in seen:
            raise DataFileError(f"outcome definitions: duplicate definition id {definition.id!r}")
        seen.add(definition.id)
    for rule in rules:
        if rule.definition_id not in seen:
            raise DataFileError(
                f"futility rule {rule.id!r}: unknown definition {rule.definition_id!r}"
            )
        target = next(d for d in definitions if d.id == rule.definition_id)
        if target.role != "response":
            raise DataFileError(f"futility rule {rule.id!r}: judges by a response definition")


def load_definitions(*, directory: Path | None = None) -> DefinitionLibrary:
    """Load every ``*.toml`` file of definitions (the shipped ``data/`` by default).

    Examples
    --------
    >>> len(load_definitions().definitions)
    4
    """
    if directory is None:
        return _shipped()
    files = sorted(directory.glob("*.toml"))
    return _build([(path, path.read_text(encoding="utf-8")) for path in files])


@lru_cache(maxsize=1)
def _shipped() -> DefinitionLibrary:
    root = resources.files("ketacare.core.outcomes") / "data"
    names = sorted(p.name for p in root.iterdir() if p.name.endswith(".toml"))
    return _build([(f"data/{n}", (root / n).read_text(encoding="utf-8")) for n in names])


def _build(texts: list[tuple[Path | str, str]]) -> DefinitionLibrary:
    definitions: list[Definition] = []
    rules: list[FutilityRule] = []
    for path, text in texts:
        table = parse_toml(text, kind=_KIND, path=path)
        found, found_rules = parse_definitions(table, path=path)
        definitions.extend(found)
        rules.extend(found_rules)
    _check_library(definitions, rules)
    return DefinitionLibrary(definitions=tuple(definitions), futility_rules=tuple(rules))
