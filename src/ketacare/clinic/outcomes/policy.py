"""The clinic's outcome policy (``KETACARE_OUTCOME_POLICY_FILE``): its booster rules.

The file format and its validation are in :mod:`ketacare.core.outcomes.policy`; the file
is read through the clinic's one site-policy loader (:mod:`ketacare.infra.policy`).
"""

from __future__ import annotations

from ketacare.core.outcomes import BoosterRule
from ketacare.core.outcomes.policy import (
    FIELDS,
    KINDS,
    NO_POLICY,
    SECTIONS,
    OutcomePolicy,
    load_outcome_policy,
    parse_outcome_policy,
)
from ketacare.infra import policy as policies
from ketacare.infra.settings import Settings

__all__ = [
    "FIELDS",
    "KINDS",
    "NO_POLICY",
    "SECTIONS",
    "OutcomePolicy",
    "booster_rules",
    "load_outcome_policy",
    "outcome_policy",
    "parse_outcome_policy",
]


def outcome_policy(settings: Settings) -> OutcomePolicy:
    """The clinic's outcome policy (:data:`NO_POLICY` when no file is configured)."""
    return policies.outcome_policy(settings)


def booster_rules(settings: Settings) -> tuple[BoosterRule, ...]:
    """The clinic's booster rules (none when no policy file is configured)."""
    return outcome_policy(settings).boosters
