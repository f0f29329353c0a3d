"""The screening engine: rules, interaction checks and site policies -> one decision.

The engine is a pure function of its inputs: it reads no clock, file or setting. Rules come from
:func:`~ketacare.core.screening.knowledge.load_knowledge`; site-policy numbers from a
:class:`~ketacare.core.screening.model.SitePolicy` the shell passes in.

Examples
--------
>>> from ketacare.core.screening.model import ScreeningInput, Treatment
>>> bare = ScreeningInput(Treatment("ketamine", "iv_infusion"))
>>> d = screen(bare)
>>> d.decision
'physician_review'
>>> "history.psychosis_active" in [m.item for m in d.missing]
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ketacare.core.errors import InvalidInput
from ketacare.core.instruments import blank_flags, get_instrument
from ketacare.core.screening.interactions import find_interactions
from ketacare.core.screening.knowledge import Knowledge, Rule, load_knowledge
from ketacare.core.screening.model import (
    SEVERITIES,
    Decision,
    FindingValue,
    InstrumentResult,
    MissingItem,
    PolicyUse,
    Reason,
    SafeguardRequirement,
    ScreeningDecision,
    ScreeningInput,
    SitePolicy,
)
from ketacare.core.terminology import normalise_icd10cm
from ketacare.core.terminology.drugs import says_no_known_allergies

State = Literal["yes", "no", "unknown", "policy_unset"]
MISSING_RULE = "missing-information"
UNRECOGNISED_RULE = "not-recognised"
VITAL_LABELS = {
    "systolic_mmhg": ("systolic blood pressure", "mmHg"),
    "diastolic_mmhg": ("diastolic blood pressure", "mmHg"),
    "heart_rate_bpm": ("heart rate", "/min"),
}


@dataclass(frozen=True, slots=True)
class _Outcome:
    state: State
    missing: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    policies: tuple[PolicyUse, ...] = ()


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the engine knows about the patient, resolved once."""

    findings: Mapping[str, FindingValue | None]
    evidence: Mapping[str, str]
    instruments: Mapping[str, InstrumentResult]
    #: Entries no vocabulary recognised, as ("medication" | "allergy" | "condition", text).
    unrecognised: tuple[tuple[str, str], ...] = ()


def _and(outcomes: list[_Outcome]) -> _Outcome:
    states = [o.state for o in outcomes]
    if "no" in states:
        state: State = "no"
    elif "policy_unset" in states:
        state = "policy_unset"
    elif "unknown" in states:
        state = "unknown"
    else:
        state = "yes"
    return _Outcome(
        state,
        tuple(m for o in outcomes for m in o.missing),
        tuple(e for o in outcomes for e in o.evidence),
        tuple(p for o in outcomes for p in o.policies),
    )


def _resolve(data: ScreeningInput, kb: Knowledge) -> _Facts:
    """Combine history, diagnosis codes and allergies into one value per finding.

    Codes are read with or without the dot and matched by each entry's prefix or range;
    allergy entries are read through the drug vocabulary (brand names, salts, variants), so
    "Ketalar (anaphylaxis)" is a ketamine allergy. An allergy list read in full with no
    ketamine or esketamine entry answers the hypersensitivity question "no"; a list with an
    entry nobody could read leaves it unknown. Unread entries are kept for the result.
    """
    findings: dict[str, FindingValue | None] = {f.id: data.history.get(f.id) for f in kb.findings}
    evidence: dict[str, str] = {k: "history" for k, v in findings.items() if v is not None}
    unrecognised: list[tuple[str, str]] = []
    for cond in data.conditions:
        try:
            code = normalise_icd10cm(cond.code)
        except InvalidInput:
            unrecognised.append(("condition", _shown_condition(cond.code, cond.display)))
            continue
        for entry in kb.codes:
            if entry.matches(code):
                findings[entry.finding] = True
                evidence[entry.finding] = f"{cond.system} {code}"
    if data.allergies is not None:
        allergens = {a.ingredient: a.finding for a in kb.allergens}
        hits: dict[str, list[str]] = {}
        unread = False
        for text in data.allergies:
            ingredients = kb.ingredients_of(text)
            if not ingredients:
                if not says_no_known_allergies(text):
                    unrecognised.append(("allergy", text))
                    unread = True
                continue
            for ingredient in ingredients:
                if ingredient in allergens:
                    hits.setdefault(allergens[ingredient], []).append(text)
        for finding_id, texts in hits.items():
            findings[finding_id] = True
            evidence[finding_id] = "allergy list: " + ", ".join(dict.fromkeys(texts))
        for finding_id in set(allergens.values()) - set(hits):
            if findings.get(finding_id) is None and not unread:
                findings[finding_id] = False
    instruments = {r.instrument: r for r in data.instruments}
    return _Facts(findings, evidence, instruments, tuple(unrecognised))


def _shown_condition(code: str, display: str | None) -> str:
    return f"{code} ({display})" if display else code


def _finding(when: Mapping[str, Any], facts: _Facts) -> _Outcome:
    fid = str(when["finding"])
    value = facts.findings.get(fid)
    if value is None:
        return _Outcome("unknown", (f"history.{fid}",))
    wanted = when.get("in")
    hit = value in wanted if wanted is not None else value is True
    note = facts.evidence.get(fid, "history")
    return _Outcome("yes" if hit else "no", evidence=(f"{fid}: {value} ({note})",) if hit else ())


def _instrument(when: Mapping[str, Any], data: ScreeningInput, facts: _Facts) -> _Outcome:
    iid = str(when["instrument"])
    result = facts.instruments.get(iid)
    if result is None:
        return _Outcome("unknown", (f"instrument:{iid}",))
    if "flag" in when:
        if when["flag"] in result.flags:
            return _Outcome("yes", evidence=(f"{iid} flag {when['flag']}",))
        if "band" in when:
            # the band that carries the flag: a result with no band and no flag but those a
            # blank raises (an incomplete form, or a bare entry) does not say it is absent
            if result.band is None:
                if set(result.flags) - blank_flags(get_instrument(iid)):
                    return _Outcome("no")
                return _Outcome("unknown", (f"instrument:{iid} band",))
            if result.band == when["band"]:
                return _Outcome("yes", evidence=(f"{iid} band {result.band}",))
            return _Outcome("no")
        item = when.get("item")
        if item is None:
            return _Outcome("no")
        answer = result.item(str(item))
        if answer is None:
            # A total without this item's answer does not say the flag is absent.
            return _Outcome("unknown", (f"instrument:{iid} item {item}",))
        if answer > 0:
            return _Outcome("yes", evidence=(f"{iid} {item} answered {answer:g}",))
        return _Outcome("no")
    if result.total is None:
        return _Outcome("unknown", (f"instrument:{iid} total",))
    total = result.total
    low: float | None = when.get("total_at_least")
    if "total_at_least_female" in when:
        female, male = float(when["total_at_least_female"]), float(when["total_at_least_male"])
        sex = data.patient.sex
        if sex is None:
            if total >= max(female, male):
                low = max(female, male)
            elif total < min(female, male):
                return _Outcome("no")
            else:
                return _Outcome("unknown", ("patient.sex",))
        else:
            low = female if sex == "female" else male
    high: float | None = when.get("total_at_most")
    hit = (low is None or total >= low) and (high is None or total <= high)
    return _Outcome("yes" if hit else "no", evidence=(f"{iid} total {total:g}",))


def _vital(
    rule: Rule, when: Mapping[str, Any], data: ScreeningInput, policy: SitePolicy
) -> _Outcome:
    name = str(when["vital"])
    value = None if data.vitals is None else getattr(data.vitals, name)
    if value is None:
        return _Outcome("unknown", (f"vitals.{name}",))
    label, unit = VITAL_LABELS[name]
    shown = f"{label} {value:g} {unit}"
    if "above" in when:
        hit = value > float(when["above"])
        return _Outcome("yes" if hit else "no", evidence=(shown,))
    key = str(when["above_policy"])
    limit = policy.get(key)
    if limit is None:
        use = PolicyUse(key, None, "unset", rule.id, f"not set by the site; {shown} needs review")
        return _Outcome("policy_unset", evidence=(shown,), policies=(use,))
    hit = value > limit
    detail = f"{shown} {'above' if hit else 'within'} the site limit {limit:g}"
    return _Outcome(
        "yes" if hit else "no",
        evidence=(f"{shown} > site limit {limit:g}",),
        policies=(PolicyUse(key, limit, "applied", rule.id, detail),),
    )


def _lft(rule: Rule, when: Mapping[str, Any], data: ScreeningInput, policy: SitePolicy) -> _Outcome:
    kind = when["lft"]
    labs = data.labs
    if kind == "baseline_incomplete":
        tests = {lab.test for lab in labs or ()}
        lacking = [t for t in ("alp", "ggt") if t not in tests]
        if not tests & {"alt", "ast"}:
            lacking.insert(0, "alt or ast")
        return _Outcome("yes" if lacking else "no", evidence=(f"missing: {', '.join(lacking)}",))
    if labs is None:
        return _Outcome("unknown", ("labs",))
    high = [lab for lab in labs if lab.value > lab.upper_limit_normal]
    shown = tuple(f"{lab.test} {lab.value:g} (ULN {lab.upper_limit_normal:g})" for lab in high)
    if kind == "above_uln" or not high:
        return _Outcome("yes" if high else "no", evidence=shown)
    key = str(when["policy"])
    factor = policy.get(key)
    if factor is None:
        use = PolicyUse(key, None, "unset", rule.id, f"not set by the site; {', '.join(shown)}")
        return _Outcome("policy_unset", evidence=shown, policies=(use,))
    # the multiple to 9 decimals: 3.6 with ULN 1.2 is 3 x ULN, not above it (3.0000000000000004)
    over = [lab for lab in high if round(lab.value / lab.upper_limit_normal, 9) > factor]
    detail = (
        f"{len(over)} test(s) above {factor:g} x ULN" if over else f"all within {factor:g} x ULN"
    )
    return _Outcome(
        "yes" if over else "no",
        evidence=tuple(f"{lab.test} {lab.value:g} > {factor:g} x ULN" for lab in over),
        policies=(PolicyUse(key, factor, "applied", rule.id, detail),),
    )


def _evaluate(
    rule: Rule, data: ScreeningInput, facts: _Facts, policy: SitePolicy, substance_risk: bool
) -> _Outcome:
    when = rule.when
    parts: list[_Outcome] = []
    if "finding" in when:
        parts.append(_finding(when, facts))
    if "pregnancy_in" in when:
        status = data.pregnancy_status
        if status is None and data.patient.sex == "male":
            status = "not_applicable"
        if status is None:
            parts.append(_Outcome("unknown", ("pregnancy_status",)))
        else:
            hit = status in when["pregnancy_in"]
            parts.append(_Outcome("yes" if hit else "no", evidence=(f"pregnancy: {status}",)))
    if "breastfeeding" in when:
        bf = data.breastfeeding
        if bf is None and data.patient.sex == "male":
            bf = False  # not applicable, as for pregnancy
        parts.append(
            _Outcome("unknown", ("breastfeeding",))
            if bf is None
            else _Outcome("yes" if bf == when["breastfeeding"] else "no")
        )
    if "age_below" in when:
        age = data.patient.age_years
        parts.append(
            _Outcome("unknown", ("patient.age_years",))
            if age is None
            else _Outcome("yes" if age < when["age_below"] else "no", evidence=(f"age {age:g}",))
        )
    if "setting" in when:
        hit = data.treatment.setting == when["setting"]
        parts.append(_Outcome("yes" if hit else "no", evidence=(f"setting {when['setting']}",)))
    if "instrument" in when:
        parts.append(_instrument(when, data, facts))
    if "vital" in when:
        parts.append(_vital(rule, when, data, policy))
    if "lft" in when:
        parts.append(_lft(rule, when, data, policy))
    if "substance_risk" in when:
        parts.append(_Outcome("yes" if substance_risk == when["substance_risk"] else "no"))
    return _and(parts)


def _given_but_unreadable(rule: Rule, facts: _Facts) -> bool:
    """True when the rule's instrument was given but could not be applied.

    A screen the clinician entered must not pass silently because what it needs to be read is
    not known (e.g. an AUDIT-C total of 3 without the patient's sex: positive for women, not for
    men; or a result without a total). Rules whose instrument was not given at all stay optional.
    """
    iid = rule.when.get("instrument")
    return iid is not None and iid in facts.instruments


def _message(rule: Rule, outcome: _Outcome) -> str:
    evidence = "; ".join(e for e in outcome.evidence if e)
    return f"{rule.message} [{evidence}]" if evidence else rule.message


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _missing_label(item: str, kb: Knowledge) -> str:
    if item == "history.ketamine_hypersensitivity":
        return "Allergies are not recorded (give the allergy list, [] for none)."
    if item.startswith("history."):
        return f"Not recorded: {kb.finding(item.removeprefix('history.')).label}."
    if item == "instrument:phq9 item q9":
        return (
            "PHQ-9 item 9 (thoughts of death or self-harm) is not answered: ask it; any answer "
            "above 0 needs follow-up whatever the total."
        )
    if item.startswith("instrument:") and " item " in item:
        name, _, which = item.removeprefix("instrument:").partition(" item ")
        return f"Instrument {name}: item {which} is not answered; it must be asked."
    if item.startswith("instrument:") and item.endswith(" total"):
        name = item.removeprefix("instrument:").removesuffix(" total")
        return f"Instrument {name} was given without a total: give the total or all answers."
    if item.startswith("instrument:"):
        return f"Instrument result needed: {item.removeprefix('instrument:')}."
    if item.startswith("medication:"):
        name = item.removeprefix("medication:")
        return f"Medication '{name}' is not in the interaction map: give its classes to check it."
    labels = {
        "pregnancy_status": "Pregnancy status is not recorded.",
        "breastfeeding": "Whether the patient is breastfeeding is not recorded.",
        "patient.age_years": "The patient's age is not recorded.",
        "patient.sex": "Patient sex is needed for a sex-specific cut-off.",
        "medications": "The medication list is not recorded (give [] for none).",
        "vitals.systolic_mmhg": "Resting blood pressure is not recorded.",
    }
    return labels.get(item, f"Not recorded: {item}.")


def _decide(reasons: list[Reason], missing: list[MissingItem]) -> Decision:
    worst = max((SEVERITIES.index(r.severity) for r in reasons), default=0)
    if worst == SEVERITIES.index("contraindication"):
        return "not_eligible"
    if worst == SEVERITIES.index("review") or missing:
        return "physician_review"
    if worst == SEVERITIES.index("precaution"):
        return "eligible_with_precautions"
    return "eligible"


def _requirements(
    data: ScreeningInput, facts: _Facts, kb: Knowledge
) -> dict[str, tuple[str, list[str]]]:
    out: dict[str, tuple[str, list[str]]] = {}
    for req in kb.requirements:
        if data.treatment.molecule not in req.applies_to:
            continue
        present = False
        for item in req.any_of:
            kind, _, name = item.partition(":")
            if kind == "instrument" and name in facts.instruments:
                present = True
            if kind == "vital" and data.vitals is not None and getattr(data.vitals, name):
                present = True
        if not present:
            kind, _, name = req.any_of[0].partition(":")
            item = f"vitals.{name}" if kind == "vital" else req.any_of[0]
            out[item] = (req.message, [req.id])
    return out


def screen(
    data: ScreeningInput,
    *,
    policy: SitePolicy | None = None,
    knowledge: Knowledge | None = None,
) -> ScreeningDecision:
    """Screen one patient for one intended treatment.

    Parameters
    ----------
    data
        The patient and the intended treatment (see :func:`parse_screening_input`).
    policy
        The clinic's site-policy numbers; unset numbers are reported, never assumed.
    knowledge
        Rules and maps; the shipped data files by default.

    Returns
    -------
    ScreeningDecision
        ``decision`` is the strongest outcome of all reasons; anything a rule needs but the
        input does not say is in ``missing`` and makes the decision at least
        ``physician_review``.

    Examples
    --------
    >>> from ketacare.core.screening.model import ScreeningInput, Treatment
    >>> d = screen(ScreeningInput(Treatment("esketamine", "intranasal"),
    ...                           history={"arteriovenous_malformation": True}))
    >>> d.decision, d.reasons[0].rule
    ('not_eligible', 'esketamine-arteriovenous-malformation')
    """
    kb = knowledge or load_knowledge()
    policy = policy or SitePolicy()
    facts = _resolve(data, kb)
    molecule = data.treatment.molecule
    reasons: list[tuple[Reason, int]] = []
    missing: dict[str, list[str]] = {}
    policies: list[PolicyUse] = []
    fired: list[Rule] = []

    def run(rule: Rule, substance_risk: bool) -> None:
        outcome = _evaluate(rule, data, facts, policy, substance_risk)
        policies.extend(outcome.policies)
        if outcome.state == "yes":
            fired.append(rule)
            reasons.append(
                (Reason(rule.id, rule.severity, _message(rule, outcome), rule.source), 0)
            )
            for item in rule.then_requires:
                kind, _, name = item.partition(":")
                if kind != "instrument" or name not in facts.instruments:
                    missing.setdefault(item, []).append(rule.id)
        elif outcome.state == "policy_unset":
            for use in outcome.policies:
                definition = kb.policy(use.key)
                if definition.when_unset != "review":
                    continue
                text = (
                    f"Site policy '{use.key}' ({definition.description}) is not set, so this "
                    f"item needs physician review [{'; '.join(outcome.evidence)}]."
                )
                src = kb.sources["site_policy"].text
                reasons.append((Reason(rule.id, "review", text, src), 0))
        elif outcome.state == "unknown" and (rule.required or _given_but_unreadable(rule, facts)):
            for item in outcome.missing:
                missing.setdefault(item, []).append(rule.id)

    applicable = [r for r in kb.rules if molecule in r.applies_to]
    for rule in applicable:
        if "substance_risk" not in rule.when:
            run(rule, False)
    risk_rules = tuple(r.id for r in fired if r.substance_risk)
    for rule in applicable:
        if "substance_risk" in rule.when:
            run(rule, bool(risk_rules))

    messages: dict[str, str] = {}
    for item, (text, rule_ids) in _requirements(data, facts, kb).items():
        missing.setdefault(item, []).extend(rule_ids)
        messages[item] = text
    if data.medications is None:
        missing.setdefault("medications", []).append("interaction-check")

    checked = find_interactions(
        data.medications or (),
        molecule=data.treatment.molecule,
        route=data.treatment.route,
        knowledge=kb,
    )
    interactions, unknown_meds = checked.findings, checked.not_recognised
    for name in unknown_meds:
        missing.setdefault(f"medication:{name}", []).append("interaction-check")
    unread = [*facts.unrecognised, *(("medication", name) for name in unknown_meds)]
    if unread:
        listed = "; ".join(f"{kind} '{text}'" for kind, text in unread)
        reasons.append(
            (
                Reason(
                    UNRECOGNISED_RULE,
                    "review",
                    f"Entries not recognised: checked by a clinician: {listed}.",
                    f"{kb.ruleset_id} {kb.ruleset_version}: entries the drug vocabulary "
                    f"(drugs.toml {kb.data_versions.get('drugs', '?')}), the interaction map "
                    "and ICD-10-CM could not read; a medication's interactions were not checked",
                ),
                2,
            )
        )
    for ix in interactions:
        note = (
            f" (The source concerns {_other_molecule(molecule)}; ketacare applies it to "
            f"{molecule} as a precaution.)"
            if ix.extrapolated
            else ""
        )
        text = f"{', '.join(ix.medications)}: {ix.effect} {ix.advice}{note}"
        reasons.append((Reason(ix.id, ix.severity, text, ix.source), 1))

    safeguards: dict[str, list[str]] = {}
    for rule in fired:
        for sid in rule.safeguards:
            safeguards.setdefault(sid, []).append(rule.id)
    if "urine_drug_screens" in safeguards:
        key = "urine_drug_screen_interval_days"
        value = policy.get(key)
        detail = (
            f"urine drug screen every {value:g} days"
            if value is not None
            else "not set by the site: the physician sets the interval in the plan"
        )
        status: Literal["applied", "unset"] = "applied" if value is not None else "unset"
        policies.append(PolicyUse(key, value, status, "urine_drug_screens", detail))

    valid_until = None
    days = policy.get("screening_valid_days")
    if data.screened_on is not None:
        if days is not None:
            valid_until = data.screened_on + dt.timedelta(days=int(days))
        policies.append(
            PolicyUse(
                "screening_valid_days",
                days,
                "applied" if days is not None else "unset",
                "validity",
                f"valid until {valid_until.isoformat()}"
                if valid_until
                else "not set by the site: validity must be set at sign-off",
            )
        )

    missing_items = [
        MissingItem(
            item, messages.get(item) or _missing_label(item, kb), tuple(dict.fromkeys(rules))
        )
        for item, rules in missing.items()
    ]
    ordered = [
        r
        for r, _ in sorted(reasons, key=lambda pair: (-SEVERITIES.index(pair[0].severity), pair[1]))
    ]
    if missing_items:
        ordered.append(
            Reason(
                MISSING_RULE,
                "review",
                "Information needed before a decision without physician review: "
                + _count(len(missing_items), "item")
                + " (each listed under what is missing, with what to record).",
                f"{kb.ruleset_id} {kb.ruleset_version}: items the rules need to decide",
            )
        )
    decision = _decide(ordered, missing_items)
    return ScreeningDecision(
        decision=decision,
        reasons=tuple(ordered),
        missing=tuple(missing_items),
        interactions=tuple(interactions),
        safeguards=tuple(
            SafeguardRequirement(
                sid, kb.safeguards[sid].text, kb.safeguards[sid].source, tuple(rule_ids)
            )
            for sid, rule_ids in safeguards.items()
        ),
        policies=tuple(policies),
        substance_use_risk=bool(risk_rules),
        substance_use_rules=risk_rules,
        instruments=data.instruments,
        treatment=data.treatment,
        ruleset_id=kb.ruleset_id,
        ruleset_version=kb.ruleset_version,
        data_versions=dict(kb.data_versions),
        site_policy_name=policy.name,
        site_policy_version=policy.version,
        valid_until=valid_until,
    )


def _other_molecule(molecule: str) -> str:
    """The other molecule's name (used when a source concerns the other one).

    Examples
    --------
    >>> _other_molecule("ketamine")
    'esketamine'
    """
    return "esketamine" if molecule == "ketamine" else "ketamine"
