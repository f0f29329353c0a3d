"""Plain values of the screening domain: what goes in, what comes out.

Everything here is a frozen dataclass; the engine never mutates its input.

Examples
--------
>>> Reason("asra-pregnancy", "review", "Pregnancy ...", "Cohen 2018").to_dict()["severity"]
'review'
>>> DECISIONS[-1]
'not_eligible'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "precaution", "review", "contraindication"]
Decision = Literal["eligible", "eligible_with_precautions", "physician_review", "not_eligible"]
Molecule = Literal["ketamine", "esketamine"]
Setting = Literal["in_clinic", "take_home"]
Sex = Literal["female", "male"]
PregnancyStatus = Literal["pregnant", "not_pregnant", "not_applicable"]
FindingValue = bool | str

#: Severities from weakest to strongest.
SEVERITIES: tuple[Severity, ...] = ("info", "precaution", "review", "contraindication")
#: Decisions from most to least permissive.
DECISIONS: tuple[Decision, ...] = (
    "eligible",
    "eligible_with_precautions",
    "physician_review",
    "not_eligible",
)
MOLECULES: tuple[Molecule, ...] = ("ketamine", "esketamine")
#: Routes per molecule (esketamine is a nasal spray only).
ROUTES: Mapping[str, tuple[str, ...]] = {
    "ketamine": ("iv_infusion", "iv_bolus", "intramuscular", "intranasal", "oral", "sublingual"),
    "esketamine": ("intranasal",),
}
SETTINGS: tuple[Setting, ...] = ("in_clinic", "take_home")
#: Liver tests the engine reads (upper limit of normal from the reporting laboratory).
LFT_TESTS: tuple[str, ...] = ("alt", "ast", "alp", "ggt", "bilirubin")


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Patient:
    """Age and sex (sex selects sex-specific instrument cut-offs)."""

    age_years: float | None = None
    sex: Sex | None = None


@dataclass(frozen=True, slots=True)
class Treatment:
    """The intended treatment: molecule, route and where doses are taken."""

    molecule: Molecule
    route: str
    setting: Setting = "in_clinic"


@dataclass(frozen=True, slots=True)
class Condition:
    """A coded diagnosis (ICD-10-CM)."""

    code: str
    system: str = "ICD-10-CM"
    display: str | None = None


@dataclass(frozen=True, slots=True)
class Medication:
    """A current medication; ``classes`` (when given) adds to the classes from the map."""

    name: str
    rxcui: str | None = None
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Vitals:
    """Resting vital signs at screening."""

    systolic_mmhg: float | None = None
    diastolic_mmhg: float | None = None
    heart_rate_bpm: float | None = None


@dataclass(frozen=True, slots=True)
class LabResult:
    """One liver test with the laboratory's upper limit of normal."""

    test: str
    value: float
    upper_limit_normal: float
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class InstrumentResult:
    """A scored instrument, either given pre-scored or scored from raw answers."""

    instrument: str
    total: float | None
    band: str | None = None
    flags: tuple[str, ...] = ()
    version: str | None = None
    #: Answers known item by item (item id, answer); an item not listed was not answered or
    #: not reported (a total alone says nothing about PHQ-9 item 9).
    items: tuple[tuple[str, float], ...] = ()

    def item(self, item_id: str) -> float | None:
        """The answer to ``item_id``, or ``None`` when it is not known."""
        return dict(self.items).get(item_id)


@dataclass(frozen=True, slots=True)
class ScreeningInput:
    """Everything the engine looks at. ``None`` means *not known* (it may be reported missing)."""

    treatment: Treatment
    patient: Patient = Patient()
    conditions: tuple[Condition, ...] = ()
    history: Mapping[str, FindingValue] = field(default_factory=dict)
    pregnancy_status: PregnancyStatus | None = None
    breastfeeding: bool | None = None
    medications: tuple[Medication, ...] | None = None
    allergies: tuple[str, ...] | None = None
    vitals: Vitals | None = None
    labs: tuple[LabResult, ...] | None = None
    instruments: tuple[InstrumentResult, ...] = ()
    screened_on: dt.date | None = None


@dataclass(frozen=True, slots=True)
class SitePolicy:
    """A clinic's own numbers where no source gives one. Absent keys are *unset*."""

    values: Mapping[str, float] = field(default_factory=dict)
    name: str | None = None
    version: str | None = None

    def get(self, key: str) -> float | None:
        """Return the value of ``key`` or ``None`` when the site has not set it."""
        return self.values.get(key)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    """Why the decision is what it is: the rule, its severity, a message and its source."""

    rule: str
    severity: Severity
    message: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape ``{"rule", "severity", "message", "source"}``."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class MissingItem:
    """Something that must be known before the engine can decide without a physician."""

    item: str
    message: str
    needed_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"item": self.item, "message": self.message, "needed_by": list(self.needed_by)}


@dataclass(frozen=True, slots=True)
class InteractionFinding:
    """A medication interaction check that fired."""

    id: str
    severity: Severity
    medications: tuple[str, ...]
    classes: tuple[str, ...]
    effect: str
    advice: str
    source: str
    extrapolated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "id": self.id,
            "severity": self.severity,
            "medications": list(self.medications),
            "classes": list(self.classes),
            "effect": self.effect,
            "advice": self.advice,
            "source": self.source,
            "extrapolated": self.extrapolated,
        }


@dataclass(frozen=True, slots=True)
class SafeguardRequirement:
    """A safeguard the treatment plan must carry, with the rules that called for it."""

    id: str
    text: str
    source: str
    triggered_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "triggered_by": list(self.triggered_by),
        }


@dataclass(frozen=True, slots=True)
class PolicyUse:
    """A site policy the decision consulted: its value, or that it is unset."""

    key: str
    value: float | None
    status: Literal["applied", "unset"]
    rule: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "key": self.key,
            "value": self.value,
            "status": self.status,
            "rule": self.rule,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ScreeningDecision:
    """The engine's answer, with everything needed to audit it."""

    decision: Decision
    reasons: tuple[Reason, ...]
    missing: tuple[MissingItem, ...]
    interactions: tuple[InteractionFinding, ...]
    safeguards: tuple[SafeguardRequirement, ...]
    policies: tuple[PolicyUse, ...]
    substance_use_risk: bool
    substance_use_rules: tuple[str, ...]
    instruments: tuple[InstrumentResult, ...]
    treatment: Treatment
    ruleset_id: str
    ruleset_version: str
    data_versions: Mapping[str, str]
    site_policy_name: str | None = None
    site_policy_version: str | None = None
    valid_until: dt.date | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document ``ketacare screen --json`` prints."""
        return {
            "decision": self.decision,
            "reasons": [r.to_dict() for r in self.reasons],
            "missing": [m.to_dict() for m in self.missing],
            "interactions": [i.to_dict() for i in self.interactions],
            "safeguards": [s.to_dict() for s in self.safeguards],
            "site_policies": [p.to_dict() for p in self.policies],
            "site_policy": {"name": self.site_policy_name, "version": self.site_policy_version},
            "substance_use_risk": {
                "flagged": self.substance_use_risk,
                "rules": list(self.substance_use_rules),
            },
            "instruments": [
                {
                    "instrument": i.instrument,
                    "total": i.total,
                    "band": i.band,
                    "flags": list(i.flags),
                }
                for i in self.instruments
            ],
            "treatment": {
                "molecule": self.treatment.molecule,
                "route": self.treatment.route,
                "setting": self.treatment.setting,
            },
            "ruleset": {"id": self.ruleset_id, "version": self.ruleset_version},
            "data_versions": dict(self.data_versions),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }
