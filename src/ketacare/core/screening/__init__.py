"""Eligibility screening for ketamine and esketamine: rules as data, one pure engine.

The rules, interaction checks, medication map and diagnosis-code map are TOML files in
``data/`` (each entry with its source). :func:`screen_document` takes the JSON document of
``ketacare screen`` and returns a :class:`ScreeningDecision`; :func:`screen` does the same
from typed input. :func:`check_interactions` checks a list of medicines against a molecule
and a route alone (an :class:`InteractionCheck`).

Examples
--------
>>> doc = {
...     "treatment": {"molecule": "esketamine", "route": "intranasal"},
...     "history": {"aneurysmal_vascular_disease": True},
... }
>>> decision = screen_document(doc)
>>> decision.decision
'not_eligible'
>>> decision.to_dict()["reasons"][0]["rule"]
'esketamine-aneurysmal-vascular-disease'
"""

from __future__ import annotations

from typing import Any

from ketacare.core.screening.engine import screen
from ketacare.core.screening.inputs import Scorer, parse_screening_input, parse_site_policy
from ketacare.core.screening.interactions import InteractionCheck, check_interactions
from ketacare.core.screening.knowledge import Knowledge, load_knowledge
from ketacare.core.screening.model import (
    DECISIONS,
    SEVERITIES,
    Condition,
    InstrumentResult,
    InteractionFinding,
    LabResult,
    Medication,
    MissingItem,
    Patient,
    PolicyUse,
    Reason,
    SafeguardRequirement,
    ScreeningDecision,
    ScreeningInput,
    SitePolicy,
    Treatment,
    Vitals,
)
from ketacare.core.screening.schema import input_schema

__all__ = [
    "DECISIONS",
    "SEVERITIES",
    "Condition",
    "InstrumentResult",
    "InteractionCheck",
    "InteractionFinding",
    "Knowledge",
    "LabResult",
    "Medication",
    "MissingItem",
    "Patient",
    "PolicyUse",
    "Reason",
    "SafeguardRequirement",
    "ScreeningDecision",
    "ScreeningInput",
    "SitePolicy",
    "Treatment",
    "Vitals",
    "check_interactions",
    "input_schema",
    "load_knowledge",
    "parse_screening_input",
    "parse_site_policy",
    "screen",
    "screen_document",
]


def screen_document(
    doc: Any,
    *,
    policy: SitePolicy | None = None,
    knowledge: Knowledge | None = None,
    scorer: Scorer | None = None,
) -> ScreeningDecision:
    """Validate a screening JSON document and screen it.

    Parameters
    ----------
    doc
        The parsed JSON document (schema: :func:`input_schema`).
    policy
        Site-policy numbers (:func:`parse_site_policy`); unset when not given.
    knowledge
        Screening data; the shipped files by default.
    scorer
        Instrument scorer for raw answers; ``ketacare.core.instruments.score`` by default.

    Returns
    -------
    ScreeningDecision
        The decision, reasons, missing items, interactions, safeguards and site policies used.
    """
    kb = knowledge or load_knowledge()
    data = parse_screening_input(doc, knowledge=kb, scorer=scorer)
    return screen(data, policy=policy, knowledge=kb)
