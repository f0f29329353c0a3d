"""Load and validate the screening data files (rules, interactions, medications, codes).

The files live in ``data/`` next to this module and are TOML a clinician can read. Every entry is
checked on load; a broken file raises :class:`~ketacare.core.errors.DataFileError` naming the
file, the entry and what is wrong.

Examples
--------
>>> kb = load_knowledge()
>>> kb.ruleset_version
'1.2.0'
>>> kb.rule("asra-pregnancy").severity
'review'
>>> kb.classes_of("Midazolam")
('benzodiazepine', 'cns_depressant')
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from ketacare.core.errors import DataFileError, InvalidInput, UnknownItem
from ketacare.core.screening.model import MOLECULES, ROUTES, SEVERITIES, Severity
from ketacare.core.terminology import icd10cm_in_range, normalise_icd10cm
from ketacare.core.terminology.drugs import drug_vocabulary, find_ingredients

#: Keys a rule's ``when`` table may hold.
CONDITION_KEYS = frozenset(
    {
        "finding",
        "in",
        "pregnancy_in",
        "breastfeeding",
        "age_below",
        "setting",
        "instrument",
        "total_at_least",
        "total_at_most",
        "total_at_least_female",
        "total_at_least_male",
        "flag",
        "vital",
        "above",
        "above_policy",
        "lft",
        "policy",
        "substance_risk",
        "item",
    }
)
VITALS = ("systolic_mmhg", "diastolic_mmhg", "heart_rate_bpm")
LFT_CONDITIONS = ("above_uln", "above_policy_multiple", "baseline_incomplete")
WHEN_UNSET = ("review", "note")


@dataclass(frozen=True, slots=True)
class Source:
    """A citation a rule or interaction points to."""

    key: str
    citation: str
    url: str

    @property
    def text(self) -> str:
        """Citation and URL in one line."""
        return f"{self.citation} {self.url}".strip()


@dataclass(frozen=True, slots=True)
class Finding:
    """A history item the rules ask about (boolean unless ``values`` lists its levels)."""

    id: str
    label: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyDef:
    """A site-policy setting: a number no source gives, with no default."""

    key: str
    description: str
    unit: str
    when_unset: str


@dataclass(frozen=True, slots=True)
class Safeguard:
    """A safeguard text a plan must carry."""

    id: str
    text: str
    source: str


@dataclass(frozen=True, slots=True)
class Requirement:
    """At least one of ``any_of`` must be present for a decision without review."""

    id: str
    applies_to: tuple[str, ...]
    any_of: tuple[str, ...]
    message: str
    source: str


@dataclass(frozen=True, slots=True)
class Rule:
    """One screening rule: when it fires, what it says and where that comes from."""

    id: str
    severity: Severity
    applies_to: tuple[str, ...]
    when: Mapping[str, Any]
    message: str
    source: str
    source_keys: tuple[str, ...]
    required: bool = False
    substance_risk: bool = False
    safeguards: tuple[str, ...] = ()
    then_requires: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Interaction:
    """A medication-class interaction check."""

    id: str
    classes: tuple[str, ...]
    severity: Severity
    source_molecule: str
    effect: str
    advice: str
    source: str
    source_keys: tuple[str, ...]
    routes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MedicationEntry:
    """A medication name with its synonyms and classes."""

    name: str
    synonyms: tuple[str, ...]
    classes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """An ICD-10-CM code prefix, or a range ``first``-``last``, that sets a finding."""

    prefix: str
    finding: str
    display: str
    source: str
    last: str | None = None

    def matches(self, code: str) -> bool:
        """True when ``code`` (any case, with or without the dot) falls under this entry.

        >>> CodeEntry("F20", "x", "d", "s", last="F29").matches("f251")
        True
        """
        return icd10cm_in_range(code, self.prefix, self.last or self.prefix)


@dataclass(frozen=True, slots=True)
class AllergenEntry:
    """An ingredient whose appearance on the allergy list sets a finding."""

    ingredient: str
    finding: str
    source: str


@dataclass(frozen=True, slots=True)
class Knowledge:
    """All screening data, validated."""

    ruleset_id: str
    ruleset_version: str
    title: str
    sources: Mapping[str, Source]
    findings: tuple[Finding, ...]
    policies: tuple[PolicyDef, ...]
    safeguards: Mapping[str, Safeguard]
    requirements: tuple[Requirement, ...]
    rules: tuple[Rule, ...]
    interactions: tuple[Interaction, ...]
    interaction_sources: Mapping[str, Source]
    class_labels: Mapping[str, str]
    class_sources: Mapping[str, str]
    medications: tuple[MedicationEntry, ...]
    codes: tuple[CodeEntry, ...]
    data_versions: Mapping[str, str]
    allergens: tuple[AllergenEntry, ...] = ()

    def rule(self, rule_id: str) -> Rule:
        """Return the rule ``rule_id`` (``UnknownItem`` if there is none)."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise UnknownItem("screening rule", rule_id, [r.id for r in self.rules])

    def finding(self, finding_id: str) -> Finding:
        """Return the finding ``finding_id`` (``UnknownItem`` if there is none)."""
        for finding in self.findings:
            if finding.id == finding_id:
                return finding
        raise UnknownItem("history finding", finding_id, [f.id for f in self.findings])

    def policy(self, key: str) -> PolicyDef:
        """Return the site-policy definition ``key`` (``UnknownItem`` if there is none)."""
        for policy in self.policies:
            if policy.key == key:
                return policy
        raise UnknownItem("site policy", key, [p.key for p in self.policies])

    def medication_names(self) -> dict[str, str]:
        """Every name of the interaction map (generic names and synonyms) -> its entry name."""
        return {n: m.name for m in self.medications for n in (m.name, *m.synonyms)}

    def ingredients_of(self, text: str, rxcui: str | None = None) -> tuple[str, ...]:
        """Ingredients a medication or allergy entry names, read through the terminology layer.

        Strength, form and salt text are skipped and brand names and spelling variants are
        resolved (``ketacare.core.terminology.drugs``), so "lorazepam 1 mg tablet", "Ativan"
        and "LORazepam" all read as lorazepam.
        """
        return find_ingredients(text, extra=self.medication_names(), rxcui=rxcui)

    def classes_of(self, name: str, rxcui: str | None = None) -> tuple[str, ...] | None:
        """Classes of a medication entry, or ``None`` if no ingredient in it is mapped."""
        by_name = {m.name: m.classes for m in self.medications}
        mapped = [by_name[i] for i in self.ingredients_of(name, rxcui) if i in by_name]
        if not mapped:
            return None
        return tuple(dict.fromkeys(c for classes in mapped for c in classes))


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _fail(file: str, where: str, what: str) -> DataFileError:
    return DataFileError(f"screening data file {file}: {where}: {what}")


def _str(entry: Mapping[str, Any], key: str, file: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(file, where, f"'{key}' must be a non-empty string")
    return value


def _str_list(entry: Mapping[str, Any], key: str, file: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(file, where, f"'{key}' must be a list of strings")
    return tuple(cast(list[str], value))


def _table_list(doc: Mapping[str, Any], key: str, file: str) -> list[Mapping[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _fail(file, key, "must be an array of tables")
    return cast(list[Mapping[str, Any]], value)


def _severity(entry: Mapping[str, Any], file: str, where: str) -> Severity:
    value = entry.get("severity")
    if value not in SEVERITIES:
        raise _fail(file, where, f"severity {value!r} is not one of {', '.join(SEVERITIES)}")
    return cast(Severity, value)


def _unique(ids: Sequence[str], file: str, what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise _fail(file, what, f"duplicate id {item!r}")
        seen.add(item)


def _sources(doc: Mapping[str, Any], file: str) -> dict[str, Source]:
    out: dict[str, Source] = {}
    for entry in _table_list(doc, "source", file):
        key = _str(entry, "key", file, "source")
        where = f"source {key}"
        url = entry.get("url", "")
        if not isinstance(url, str):
            raise _fail(file, where, "'url' must be a string")
        out[key] = Source(key, _str(entry, "citation", file, where), url)
    return out


def _cite(
    entry: Mapping[str, Any], sources: Mapping[str, Source], file: str, where: str
) -> tuple[str, tuple[str, ...]]:
    raw = entry.get("source")
    keys = (raw,) if isinstance(raw, str) else raw
    if not isinstance(keys, list | tuple) or not keys or not all(isinstance(k, str) for k in keys):
        raise _fail(file, where, "'source' must name a source key or a list of them")
    for key in keys:
        if key not in sources:
            raise _fail(file, where, f"unknown source {key!r}")
    return "; ".join(sources[k].text for k in keys), tuple(keys)


def _read(name: str) -> dict[str, Any]:
    try:
        text = resources.files("ketacare.core.screening").joinpath("data", name).read_text("utf-8")
    except OSError as exc:
        raise DataFileError(f"screening data file {name} cannot be read: {exc}") from exc
    return parse_toml(text, name)


def parse_toml(text: str, name: str) -> dict[str, Any]:
    """Parse TOML text, turning syntax errors into :class:`DataFileError`.

    Examples
    --------
    >>> parse_toml("a = 1", "x.toml")
    {'a': 1}
    >>> parse_toml("a = ", "x.toml")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: screening data file x.toml is not valid TOML: ...
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"screening data file {name} is not valid TOML: {exc}") from exc


# --------------------------------------------------------------------------------------------
# The rules file
# --------------------------------------------------------------------------------------------


def _check_when(
    when: Mapping[str, Any],
    file: str,
    where: str,
    findings: Mapping[str, Finding],
    policies: Mapping[str, PolicyDef],
) -> None:
    if not when:
        raise _fail(file, where, "'when' must hold at least one condition")
    unknown = set(when) - CONDITION_KEYS
    if unknown:
        raise _fail(file, where, f"unknown condition key(s) {', '.join(sorted(unknown))}")
    if "finding" in when:
        fid = when["finding"]
        if fid not in findings:
            raise _fail(file, where, f"unknown finding {fid!r}")
        levels = findings[fid].values
        if "in" in when:
            allowed = when["in"]
            if not isinstance(allowed, list) or not set(allowed) <= set(levels):
                raise _fail(file, where, f"'in' must list values of {fid}: {', '.join(levels)}")
        elif levels:
            raise _fail(file, where, f"finding {fid} has levels; give 'in'")
    for key in ("total_at_least", "total_at_most", "total_at_least_female", "total_at_least_male"):
        if key in when and not isinstance(when[key], int | float):
            raise _fail(file, where, f"'{key}' must be a number")
    if "item" in when and not ("instrument" in when and "flag" in when):
        raise _fail(
            file, where, "'item' names the item a flag is read from: give instrument and flag"
        )
    if "instrument" in when and not (
        {"flag", "total_at_least", "total_at_most", "total_at_least_female"} & set(when)
    ):
        raise _fail(file, where, "an instrument condition needs a flag or a total threshold")
    if ("total_at_least_female" in when) != ("total_at_least_male" in when):
        raise _fail(file, where, "sex-specific thresholds come in pairs (female and male)")
    if "vital" in when:
        if when["vital"] not in VITALS:
            raise _fail(file, where, f"unknown vital {when['vital']!r}")
        if ("above" in when) == ("above_policy" in when):
            raise _fail(file, where, "a vital condition needs exactly one of above, above_policy")
    for key in ("above_policy", "policy"):
        if key in when and when[key] not in policies:
            raise _fail(file, where, f"unknown site policy {when[key]!r}")
    if "lft" in when:
        if when["lft"] not in LFT_CONDITIONS:
            raise _fail(file, where, f"lft must be one of {', '.join(LFT_CONDITIONS)}")
        if when["lft"] == "above_policy_multiple" and "policy" not in when:
            raise _fail(file, where, "lft above_policy_multiple needs 'policy'")
    if "above" in when and not isinstance(when["above"], int | float):
        raise _fail(file, where, "'above' must be a number")


def _rule(
    entry: Mapping[str, Any],
    file: str,
    sources: Mapping[str, Source],
    findings: Mapping[str, Finding],
    policies: Mapping[str, PolicyDef],
    safeguards: Mapping[str, Safeguard],
) -> Rule:
    rid = _str(entry, "id", file, "rule")
    where = f"rule {rid}"
    applies_to = _str_list(entry, "applies_to", file, where)
    if not applies_to or not set(applies_to) <= set(MOLECULES):
        raise _fail(file, where, f"'applies_to' must list molecules from {', '.join(MOLECULES)}")
    when = entry.get("when")
    if not isinstance(when, dict):
        raise _fail(file, where, "'when' must be a table")
    _check_when(when, file, where, findings, policies)
    wanted = _str_list(entry, "safeguards", file, where)
    for sid in wanted:
        if sid not in safeguards:
            raise _fail(file, where, f"unknown safeguard {sid!r}")
    for flag in ("required", "substance_risk"):
        if not isinstance(entry.get(flag, False), bool):
            raise _fail(file, where, f"'{flag}' must be true or false")
    asks = {"finding", "pregnancy_in", "breastfeeding", "age_below"} & set(when)
    if (
        _severity(entry, file, where) == "contraindication"
        and asks
        and not entry.get("required", False)
    ):
        raise _fail(
            file, where, "a contraindication that asks about the patient must be required = true"
        )
    source, keys = _cite(entry, sources, file, where)
    return Rule(
        id=rid,
        severity=_severity(entry, file, where),
        applies_to=applies_to,
        when=dict(when),
        message=_str(entry, "message", file, where),
        source=source,
        source_keys=keys,
        required=bool(entry.get("required", False)),
        substance_risk=bool(entry.get("substance_risk", False)),
        safeguards=wanted,
        then_requires=_str_list(entry, "then_requires", file, where),
    )


def _rules_file(doc: Mapping[str, Any], file: str) -> dict[str, Any]:
    head = doc.get("ruleset")
    if not isinstance(head, dict):
        raise _fail(file, "ruleset", "missing [ruleset] table")
    sources = _sources(doc, file)
    findings: dict[str, Finding] = {}
    for entry in _table_list(doc, "finding", file):
        fid = _str(entry, "id", file, "finding")
        findings[fid] = Finding(
            fid,
            _str(entry, "label", file, f"finding {fid}"),
            _str_list(entry, "values", file, f"finding {fid}"),
        )
    policies: dict[str, PolicyDef] = {}
    for entry in _table_list(doc, "policy", file):
        key = _str(entry, "key", file, "policy")
        where = f"policy {key}"
        if "default" in entry or "value" in entry:
            raise _fail(file, where, "site policies have no default value in the rules file")
        unset = _str(entry, "when_unset", file, where)
        if unset not in WHEN_UNSET:
            raise _fail(file, where, f"'when_unset' must be one of {', '.join(WHEN_UNSET)}")
        policies[key] = PolicyDef(
            key, _str(entry, "description", file, where), _str(entry, "unit", file, where), unset
        )
    safeguards: dict[str, Safeguard] = {}
    for entry in _table_list(doc, "safeguard", file):
        sid = _str(entry, "id", file, "safeguard")
        text, _ = _cite(entry, sources, file, f"safeguard {sid}")
        safeguards[sid] = Safeguard(sid, _str(entry, "text", file, f"safeguard {sid}"), text)
    requirements = []
    for entry in _table_list(doc, "requirement", file):
        qid = _str(entry, "id", file, "requirement")
        where = f"requirement {qid}"
        source, _ = _cite(entry, sources, file, where)
        requirements.append(
            Requirement(
                qid,
                _str_list(entry, "applies_to", file, where),
                _str_list(entry, "any_of", file, where),
                _str(entry, "message", file, where),
                source,
            )
        )
    rules = [
        _rule(e, file, sources, findings, policies, safeguards)
        for e in _table_list(doc, "rule", file)
    ]
    _unique([r.id for r in rules], file, "rule")
    _unique([f.id for f in findings.values()], file, "finding")
    return {
        "ruleset_id": _str(head, "id", file, "ruleset"),
        "ruleset_version": _str(head, "version", file, "ruleset"),
        "title": _str(head, "title", file, "ruleset"),
        "sources": sources,
        "findings": tuple(findings.values()),
        "policies": tuple(policies.values()),
        "safeguards": safeguards,
        "requirements": tuple(requirements),
        "rules": tuple(rules),
    }


# --------------------------------------------------------------------------------------------
# Interactions, medications, codes
# --------------------------------------------------------------------------------------------


def _medications_file(doc: Mapping[str, Any], file: str) -> dict[str, Any]:
    labels: dict[str, str] = {}
    class_sources: dict[str, str] = {}
    for entry in _table_list(doc, "class", file):
        cid = _str(entry, "id", file, "class")
        labels[cid] = _str(entry, "label", file, f"class {cid}")
        class_sources[cid] = _str(entry, "source", file, f"class {cid}")
    meds = []
    for entry in _table_list(doc, "medication", file):
        name = _str(entry, "name", file, "medication").lower()
        where = f"medication {name}"
        classes = _str_list(entry, "classes", file, where)
        for cid in classes:
            if cid not in labels:
                raise _fail(file, where, f"unknown class {cid!r}")
        synonyms = tuple(s.lower() for s in _str_list(entry, "synonyms", file, where))
        meds.append(MedicationEntry(name, synonyms, classes))
    _unique([n for m in meds for n in (m.name, *m.synonyms)], file, "medication")
    return {"class_labels": labels, "class_sources": class_sources, "medications": tuple(meds)}


def _interactions_file(
    doc: Mapping[str, Any], file: str, class_labels: Mapping[str, str]
) -> dict[str, Any]:
    sources = _sources(doc, file)
    out = []
    for entry in _table_list(doc, "interaction", file):
        iid = _str(entry, "id", file, "interaction")
        where = f"interaction {iid}"
        classes = _str_list(entry, "classes", file, where)
        if not classes:
            raise _fail(file, where, "'classes' must not be empty")
        for cid in classes:
            if cid not in class_labels:
                raise _fail(file, where, f"unknown class {cid!r} (not in medications.toml)")
        molecule = _str(entry, "source_molecule", file, where)
        if molecule not in (*MOLECULES, "both"):
            raise _fail(file, where, "'source_molecule' must be ketamine, esketamine or both")
        routes = _str_list(entry, "routes", file, where)
        known_routes = {r for rs in ROUTES.values() for r in rs}
        if not set(routes) <= known_routes:
            raise _fail(file, where, f"unknown route in {routes}")
        source, keys = _cite(entry, sources, file, where)
        out.append(
            Interaction(
                id=iid,
                classes=classes,
                severity=_severity(entry, file, where),
                source_molecule=molecule,
                effect=_str(entry, "effect", file, where),
                advice=_str(entry, "advice", file, where),
                source=source,
                source_keys=keys,
                routes=routes,
            )
        )
    _unique([i.id for i in out], file, "interaction")
    return {"interactions": tuple(out), "interaction_sources": sources}


def _code_bounds(entry: Mapping[str, Any], file: str) -> tuple[str, str | None]:
    """The entry's prefix, or its range's first and last code (each normalised)."""
    bounds = entry.get("range")
    try:
        if bounds is None:
            return normalise_icd10cm(_str(entry, "prefix", file, "code")), None
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or not all(isinstance(b, str) for b in bounds)
        ):
            raise _fail(file, "code", f"range {bounds!r} must be [FIRST, LAST]")
        first, last = normalise_icd10cm(bounds[0]), normalise_icd10cm(bounds[1])
    except InvalidInput as exc:
        raise _fail(file, "code", str(exc)) from None
    if first.replace(".", "") > last.replace(".", ""):
        raise _fail(file, f"code {first}-{last}", "the range's first code is after its last")
    return first, last


def _codes_file(
    doc: Mapping[str, Any], file: str, findings: tuple[Finding, ...]
) -> tuple[tuple[CodeEntry, ...], tuple[AllergenEntry, ...]]:
    known = {f.id for f in findings if not f.values}
    out = []
    for entry in _table_list(doc, "code", file):
        prefix, last = _code_bounds(entry, file)
        where = f"code {prefix}" + (f"-{last}" if last else "")
        finding = _str(entry, "finding", file, where)
        if finding not in known:
            raise _fail(file, where, f"unknown boolean finding {finding!r}")
        out.append(
            CodeEntry(
                prefix,
                finding,
                _str(entry, "display", file, where),
                _str(entry, "source", file, where),
                last,
            )
        )
    allergens = []
    for entry in _table_list(doc, "allergen", file):
        ingredient = _str(entry, "ingredient", file, "allergen")
        where = f"allergen {ingredient}"
        finding = _str(entry, "finding", file, where)
        if finding not in known:
            raise _fail(file, where, f"unknown boolean finding {finding!r}")
        allergens.append(AllergenEntry(ingredient, finding, _str(entry, "source", file, where)))
    return tuple(out), tuple(allergens)


def _version(doc: Mapping[str, Any], table: str, file: str) -> str:
    head = doc.get(table)
    if not isinstance(head, dict):
        raise _fail(file, table, f"missing [{table}] table")
    return _str(head, "version", file, table)


def build_knowledge(
    rules: Mapping[str, Any],
    interactions: Mapping[str, Any],
    medications: Mapping[str, Any],
    codes: Mapping[str, Any],
) -> Knowledge:
    """Validate parsed data files and assemble a :class:`Knowledge`.

    Examples
    --------
    >>> build_knowledge({}, {}, {}, {})
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: screening data file rules.toml: ruleset: missing ...
    """
    r = _rules_file(rules, "rules.toml")
    m = _medications_file(medications, "medications.toml")
    i = _interactions_file(interactions, "interactions.toml", m["class_labels"])
    c, allergens = _codes_file(codes, "codes.toml", r["findings"])
    versions = {
        "rules": r["ruleset_version"],
        "interactions": _version(interactions, "interactions", "interactions.toml"),
        "medications": _version(medications, "medications", "medications.toml"),
        "codes": _version(codes, "codes", "codes.toml"),
        "drugs": drug_vocabulary().version,
    }
    return Knowledge(**r, **m, **i, codes=c, data_versions=versions, allergens=allergens)


@functools.cache
def load_knowledge() -> Knowledge:
    """Load the shipped screening data (cached; the files are read once)."""
    return build_knowledge(
        _read("rules.toml"),
        _read("interactions.toml"),
        _read("medications.toml"),
        _read("codes.toml"),
    )
