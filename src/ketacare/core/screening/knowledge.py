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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from ketacare.core import datafile
from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.screening.model import MOLECULES, ROUTES, SEVERITIES, Severity
from ketacare.core.sources import Source
from ketacare.core.terminology import icd10cm_in_range, normalise_icd10cm
from ketacare.core.terminology.drugs import drug_vocabulary, find_ingredients

#: Keys a rule's ``when`` table may hold.
CONDITION_KEYS = frozenset(
    "finding in pregnancy_in breastfeeding age_below setting instrument total_at_least "
    "total_at_most total_at_least_female total_at_least_male flag band vital above "
    "above_policy lft policy substance_risk item".split()
)
VITALS = ("systolic_mmhg", "diastolic_mmhg", "heart_rate_bpm")
LFT_CONDITIONS = ("above_uln", "above_policy_multiple", "baseline_incomplete")
WHEN_UNSET = ("review", "note")


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
# Reading helpers
# --------------------------------------------------------------------------------------------

_KIND = "screening data"


def _top(doc: Mapping[str, Any], file: str) -> Reader:
    return Reader(kind=_KIND, path=file, table=doc)


def _severity(entry: Reader) -> Severity:
    return cast(Severity, entry.choice("severity", SEVERITIES))


def _unique(ids: Sequence[str], top: Reader, field: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise top.fail(field, f"duplicate id {item!r}")
        seen.add(item)


def _sources(top: Reader) -> dict[str, Source]:
    return top.sources("source", required={"key", "citation"}, optional={"url"})


def _cite(entry: Reader, sources: Mapping[str, Source]) -> tuple[str, tuple[str, ...]]:
    keys = entry.source_refs("source", sources, single=True)
    return "; ".join(sources[k].text for k in keys), keys


def _read(name: str) -> dict[str, Any]:
    return read_toml(resources.files("ketacare.core.screening").joinpath("data", name), kind=_KIND)


def parse_toml(text: str, name: str) -> dict[str, Any]:
    """Parse TOML text, turning syntax errors into :class:`DataFileError`.

    Examples
    --------
    >>> parse_toml("a = 1", "x.toml")
    {'a': 1}
    >>> parse_toml("a = ", "x.toml")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: screening data file x.toml: is not valid TOML: ...
    """
    return datafile.parse_toml(text, kind=_KIND, path=name)


# --------------------------------------------------------------------------------------------
# The rules file
# --------------------------------------------------------------------------------------------


def _check_when(
    w: Reader,
    findings: Mapping[str, Finding],
    policies: Mapping[str, PolicyDef],
) -> None:
    when = w.table
    if not when:
        raise w.fail("", "must hold at least one condition")
    w.only(CONDITION_KEYS)
    if "finding" in when:
        fid = w.choice("finding", tuple(findings))
        levels = findings[fid].values
        if "in" in when:
            allowed = when["in"]
            if not isinstance(allowed, list) or not set(allowed) <= set(levels):
                raise w.fail("in", f"must list values of {fid}: {', '.join(levels)}")
        elif levels:
            raise w.fail("in", f"is missing: finding {fid} has levels")
    for key in ("total_at_least", "total_at_most", "total_at_least_female", "total_at_least_male"):
        if key in when:
            w.number(key)
    if "item" in when and not ("instrument" in when and "flag" in when):
        raise w.fail("item", "names the item a flag is read from: give instrument and flag")
    if "band" in when and not ("instrument" in when and "flag" in when):
        raise w.fail("band", "names the band that carries a flag: give instrument and flag")
    if "band" in when:
        w.text("band")
    if "instrument" in when and not (
        {"flag", "total_at_least", "total_at_most", "total_at_least_female"} & set(when)
    ):
        raise w.fail("instrument", "an instrument condition needs a flag or a total threshold")
    if ("total_at_least_female" in when) != ("total_at_least_male" in when):
        raise w.fail("", "sex-specific thresholds come in pairs (female and male)")
    if "vital" in when:
        w.choice("vital", VITALS)
        if ("above" in when) == ("above_policy" in when):
            raise w.fail("vital", "a vital condition needs exactly one of above, above_policy")
    for key in ("above_policy", "policy"):
        if key in when:
            w.choice(key, tuple(policies))
    if "lft" in when:
        if w.choice("lft", LFT_CONDITIONS) == "above_policy_multiple" and "policy" not in when:
            raise w.fail("policy", "is missing: lft above_policy_multiple needs 'policy'")
    if "above" in when:
        w.number("above")


def _rule(
    r: Reader,
    sources: Mapping[str, Source],
    findings: Mapping[str, Finding],
    policies: Mapping[str, PolicyDef],
    safeguards: Mapping[str, Safeguard],
) -> Rule:
    r.only(
        (
            "id",
            "severity",
            "applies_to",
            "when",
            "message",
            "source",
            "required",
            "substance_risk",
            "safeguards",
            "then_requires",
        )
    )
    rid = r.text("id")
    applies_to = r.strings("applies_to", default=())
    if not applies_to or not set(applies_to) <= set(MOLECULES):
        raise r.fail("applies_to", f"must list molecules from {', '.join(MOLECULES)}")
    when = r.sub("when")
    _check_when(when, findings, policies)
    wanted = r.strings("safeguards", default=())
    for sid in wanted:
        if sid not in safeguards:
            raise r.fail("safeguards", f"unknown safeguard {sid!r}")
    required = r.boolean("required", default=False)
    substance_risk = r.boolean("substance_risk", default=False)
    severity = _severity(r)
    asks = {"finding", "pregnancy_in", "breastfeeding", "age_below"} & set(when.table)
    if severity == "contraindication" and asks and not required:
        raise r.fail("required", "a contraindication that asks about the patient must be required")
    source, keys = _cite(r, sources)
    return Rule(
        id=rid,
        severity=severity,
        applies_to=applies_to,
        when=dict(when.table),
        message=r.text("message"),
        source=source,
        source_keys=keys,
        required=required,
        substance_risk=substance_risk,
        safeguards=wanted,
        then_requires=r.strings("then_requires", default=()),
    )


def _rules_file(doc: Mapping[str, Any], file: str) -> dict[str, Any]:
    top = _top(doc, file)
    head = top.sub("ruleset")
    sources = _sources(top)
    findings: dict[str, Finding] = {}
    for r in top.tables("finding", id_key="id"):
        r.only(("id", "label", "values"))
        fid = r.text("id")
        findings[fid] = Finding(fid, r.text("label"), r.strings("values", default=()))
    policies: dict[str, PolicyDef] = {}
    for r in top.tables("policy", id_key="key"):
        if r.has("default") or r.has("value"):
            raise r.fail("default", "site policies have no default value in the rules file")
        r.only(("key", "description", "unit", "when_unset"))
        key = r.text("key")
        unset = r.choice("when_unset", WHEN_UNSET)
        policies[key] = PolicyDef(key, r.text("description"), r.text("unit"), unset)
    safeguards: dict[str, Safeguard] = {}
    for r in top.tables("safeguard", id_key="id"):
        r.only(("id", "text", "source"))
        sid = r.text("id")
        text, _ = _cite(r, sources)
        safeguards[sid] = Safeguard(sid, r.text("text"), text)
    requirements = []
    for r in top.tables("requirement", id_key="id"):
        r.only(("id", "applies_to", "any_of", "message", "source"))
        source, _ = _cite(r, sources)
        requirements.append(
            Requirement(
                r.text("id"),
                r.strings("applies_to", default=()),
                r.strings("any_of", default=()),
                r.text("message"),
                source,
            )
        )
    rules = [
        _rule(r, sources, findings, policies, safeguards) for r in top.tables("rule", id_key="id")
    ]
    _unique([r.id for r in rules], top, "rule")
    _unique([f.id for f in findings.values()], top, "finding")
    return {
        "ruleset_id": head.text("id"),
        "ruleset_version": head.text("version"),
        "title": head.text("title"),
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
    top = _top(doc, file)
    labels: dict[str, str] = {}
    class_sources: dict[str, str] = {}
    for r in top.tables("class", id_key="id"):
        r.only(("id", "label", "source"))
        cid = r.text("id")
        labels[cid] = r.text("label")
        class_sources[cid] = r.text("source")
    meds = []
    for r in top.tables("medication", id_key="name"):
        r.only(("name", "classes", "synonyms"))
        name = r.text("name").lower()
        classes = r.strings("classes", default=())
        for cid in classes:
            if cid not in labels:
                raise r.fail("classes", f"unknown class {cid!r}")
        synonyms = tuple(s.lower() for s in r.strings("synonyms", default=()))
        meds.append(MedicationEntry(name, synonyms, classes))
    _unique([n for m in meds for n in (m.name, *m.synonyms)], top, "medication")
    return {"class_labels": labels, "class_sources": class_sources, "medications": tuple(meds)}


def _interactions_file(
    doc: Mapping[str, Any], file: str, class_labels: Mapping[str, str]
) -> dict[str, Any]:
    top = _top(doc, file)
    sources = _sources(top)
    known_routes = {r for rs in ROUTES.values() for r in rs}
    out = []
    for r in top.tables("interaction", id_key="id"):
        r.only(
            (
                "id",
                "classes",
                "severity",
                "source_molecule",
                "effect",
                "advice",
                "source",
                "routes",
            )
        )
        classes = r.strings("classes", non_empty=True)
        for cid in classes:
            if cid not in class_labels:
                raise r.fail("classes", f"unknown class {cid!r} (not in medications.toml)")
        molecule = r.choice("source_molecule", (*MOLECULES, "both"))
        routes = r.strings("routes", default=())
        if not set(routes) <= known_routes:
            raise r.fail("routes", f"unknown route in {list(routes)}")
        source, keys = _cite(r, sources)
        out.append(
            Interaction(
                id=r.text("id"),
                classes=classes,
                severity=_severity(r),
                source_molecule=molecule,
                effect=r.text("effect"),
                advice=r.text("advice"),
                source=source,
                source_keys=keys,
                routes=routes,
            )
        )
    _unique([i.id for i in out], top, "interaction")
    return {"interactions": tuple(out), "interaction_sources": sources}


def _code_bounds(r: Reader) -> tuple[str, str | None]:
    """The entry's prefix, or its range's first and last code (each normalised)."""
    field = "range" if r.has("range") else "prefix"
    try:
        if field == "prefix":
            return normalise_icd10cm(r.text("prefix")), None
        bounds = r.strings("range")
        if len(bounds) != 2:
            raise r.fail("range", f"{list(bounds)!r} must be [FIRST, LAST]")
        first, last = normalise_icd10cm(bounds[0]), normalise_icd10cm(bounds[1])
    except InvalidInput as exc:
        raise r.fail(field, str(exc)) from None
    if first.replace(".", "") > last.replace(".", ""):
        raise r.fail("range", f"{first}-{last}: the range's first code is after its last")
    return first, last


def _codes_file(
    doc: Mapping[str, Any], file: str, findings: tuple[Finding, ...]
) -> tuple[tuple[CodeEntry, ...], tuple[AllergenEntry, ...]]:
    top = _top(doc, file)
    known = tuple(f.id for f in findings if not f.values)
    out = []
    for r in top.tables("code", id_key="prefix"):
        r.only(("prefix", "range", "finding", "display", "source"))
        prefix, last = _code_bounds(r)
        finding = r.text("finding")
        if finding not in known:
            raise r.fail("finding", f"unknown boolean finding {finding!r}")
        out.append(CodeEntry(prefix, finding, r.text("display"), r.text("source"), last))
    allergens = []
    for r in top.tables("allergen", id_key="ingredient"):
        r.only(("ingredient", "finding", "source"))
        finding = r.text("finding")
        if finding not in known:
            raise r.fail("finding", f"unknown boolean finding {finding!r}")
        allergens.append(AllergenEntry(r.text("ingredient"), finding, r.text("source")))
    return tuple(out), tuple(allergens)


def _version(doc: Mapping[str, Any], table: str, file: str) -> str:
    return _top(doc, file).sub(table).text("version")


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
    ketacare.core.errors.DataFileError: screening data file rules.toml: field 'ruleset': is missing
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
