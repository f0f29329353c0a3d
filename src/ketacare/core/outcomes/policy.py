"""A clinic's outcome policy file: when to suggest a booster (``KETACARE_OUTCOME_POLICY_FILE``).

No published threshold says when a ketamine booster is due, so ketacare ships none: each
clinic writes its own rules, with who approved them, in a TOML file::

    [[booster]]
    definition_id = "pain-30"          # a response definition: the patient responded by it
    kind = "score_at_or_above"         # or "reduction_below_percent"
    threshold = ...                    # the clinic's number (a score, or a percent 0-100)
    set_by = "..."                     # who or which clinic policy set it

Each entry becomes a :class:`~ketacare.core.outcomes.BoosterRule`. Unset (no file, or a
file without ``[[booster]]``), no rule applies and the status line says the clinic has
not set a booster threshold. A bad file is refused as a whole with
:class:`~ketacare.core.errors.DataFileError` naming the file, the entry, the field and
what is allowed, so a typo never silently switches a rule off. The format with no values
is ``docs/examples/outcome-policy.example.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ketacare.core.datafile import read_toml
from ketacare.core.errors import DataFileError, KetacareError
from ketacare.core.outcomes.definitions import (
    BoosterKind,
    BoosterRule,
    DefinitionLibrary,
    load_definitions,
)

KINDS: tuple[str, ...] = ("score_at_or_above", "reduction_below_percent")
FIELDS: tuple[str, ...] = ("definition_id", "kind", "threshold", "set_by")
SECTIONS: tuple[str, ...] = ("booster",)


@dataclass(frozen=True, slots=True)
class OutcomePolicy:
    """The clinic's outcome policy as read from its file (``path`` None: none configured)."""

    boosters: tuple[BoosterRule, ...]
    path: str | None = None


NO_POLICY = OutcomePolicy(boosters=())


def parse_outcome_policy(
    data: Mapping[str, Any], *, path: str, library: DefinitionLibrary | None = None
) -> OutcomePolicy:
    """Validate a parsed outcome policy; every problem names the entry and the field.

    >>> rule = {"definition_id": "pain-30", "kind": "score_at_or_above",
    ...         "threshold": 7, "set_by": "policy 4"}
    >>> parse_outcome_policy({"booster": [rule]}, path="p.toml").boosters[0].threshold
    7.0
    >>> parse_outcome_policy({"booster": [{**rule, "kind": "above"}]},
    ...                      path="p.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: outcome policy file p.toml: [[booster]] entry 1 ...
    """
    lib = library or load_definitions()
    head = f"outcome policy file {path}"
    extra = sorted(set(data) - set(SECTIONS))
    if extra:
        raise DataFileError(
            f"{head}: unknown section or key {extra[0]!r} (allowed: [[booster]] entries)"
        )
    raw = data.get("booster", [])
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise DataFileError(f"{head}: 'booster' must be an array of tables, written [[booster]]")
    responses = [d.id for d in lib.definitions if d.role == "response"]
    rules: list[BoosterRule] = []
    seen: dict[tuple[str, str], int] = {}
    for number, entry in enumerate(cast(list[dict[str, Any]], raw), start=1):
        name = entry.get("definition_id")
        where = f"{head}: [[booster]] entry {number}" + (
            f" ({name})" if isinstance(name, str) and name else ""
        )

        def fail(field: str, problem: str, where: str = where) -> DataFileError:
            return DataFileError(f"{where}: field {field!r}: {problem}")

        unknown = sorted(set(entry) - set(FIELDS))
        if unknown:
            raise fail(unknown[0], f"unknown field (allowed: {', '.join(FIELDS)})")
        for field in FIELDS:
            if field not in entry:
                raise fail(field, f"is missing (each entry needs {', '.join(FIELDS)})")
        if not isinstance(name, str) or name not in responses:
            raise fail(
                "definition_id",
                f"{name!r} is not a response definition (allowed: {', '.join(responses)})",
            )
        kind = entry["kind"]
        if kind not in KINDS:
            raise fail("kind", f"{kind!r} is not allowed (allowed: {', '.join(KINDS)})")
        threshold = entry["threshold"]
        definition = lib.get(definition_id=name)
        if kind == "score_at_or_above":
            low, high = definition.scale_min, definition.scale_max
            allowed = f"a score from {low:g} to {high:g} on {definition.measure}"
        else:
            low, high = 0.0, 100.0
            allowed = "a percent reduction from 0 to 100"
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not math.isfinite(threshold)
            or not low <= threshold <= high
        ):
            raise fail("threshold", f"{threshold!r} is not allowed (allowed: {allowed})")
        set_by = entry["set_by"]
        if not isinstance(set_by, str) or not set_by.strip():
            raise fail(
                "set_by", "must name who or which clinic policy set the rule (a non-empty text)"
            )
        key = (name, str(kind))
        if key in seen:
            raise fail(
                "kind",
                f"a second {kind} rule for {name} (entry {seen[key]} has one; keep one rule "
                "per definition and kind)",
            )
        seen[key] = number
        try:
            rules.append(
                BoosterRule(
                    definition_id=name,
                    kind=cast(BoosterKind, kind),
                    threshold=float(threshold),
                    set_by=set_by.strip(),
                )
            )
        except KetacareError as exc:  # pragma: no cover - the checks above are stricter
            raise DataFileError(f"{where}: {exc}") from exc
    return OutcomePolicy(boosters=tuple(rules), path=path)


def load_outcome_policy(*, path: Path) -> OutcomePolicy:
    """Read and validate an outcome policy file (:class:`DataFileError` when it is bad)."""
    return parse_outcome_policy(read_toml(path, kind="outcome policy"), path=str(path))
