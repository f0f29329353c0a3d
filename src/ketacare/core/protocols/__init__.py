"""The protocol library: published regimens as data, dose limits and plan arithmetic.

Protocols live as TOML files under ``data/`` (one per protocol, each number with
its source); a clinic adds its own from a directory. :func:`build_plan` turns a
protocol and a weight into concrete sessions and checks every dose and rate
against the protocol's soft and hard limits, smart-pump style. A protocol whose
hard ceilings (per session in mg and mg/kg, per course in mg, and any declared
rate ceiling) are not all set by its source or the clinic's policy plans nothing.

Examples
--------
>>> library = load_library()
>>> # a plan needs every hard ceiling set; illustrative values for the example only
>>> policy = SitePolicy(limits={("depression-iv", key, "hard"): value for key, value in (
...     ("dose_mg", 300.0), ("rate_mg_per_h", 400.0), ("rate_mg_per_kg_per_h", 1.5),
...     ("course_mg", 3600.0))})
>>> plan = build_plan(protocol=library.get(protocol_id="depression-iv"), weight_kg=70,
...                   site_policy=policy)
>>> (len(plan.sessions), plan.sessions[0].dose_mg, plan.sessions[0].rate_mg_per_h)
(12, 35.0, 52.5)
"""

from ketacare.core.protocols.arithmetic import (
    WEIGHT_MAX_KG,
    WEIGHT_MIN_KG,
    format_number,
    round_to_step,
)
from ketacare.core.protocols.limits import (
    LimitReview,
    ResolvedLimit,
    SitePolicy,
    SoftLimitFinding,
    load_site_policy,
    require_ceilings,
    resolve_limits,
    review_limits,
    unset_ceiling_reason,
    unset_ceilings,
)
from ketacare.core.protocols.loading import (
    ProtocolLibrary,
    load_library,
    load_protocol_file,
    parse_protocol,
)
from ketacare.core.protocols.model import (
    LimitBound,
    LimitSpec,
    Protocol,
)
from ketacare.core.protocols.plan import Plan, PlannedSession, build_plan, preview_plan, review_plan
from ketacare.core.protocols.regimen import plan_regimen, protocol_regimen
from ketacare.core.sources import Source

__all__ = [
    "WEIGHT_MAX_KG",
    "WEIGHT_MIN_KG",
    "LimitBound",
    "LimitReview",
    "LimitSpec",
    "Plan",
    "PlannedSession",
    "Protocol",
    "ProtocolLibrary",
    "ResolvedLimit",
    "SitePolicy",
    "SoftLimitFinding",
    "Source",
    "build_plan",
    "format_number",
    "load_library",
    "load_protocol_file",
    "load_site_policy",
    "parse_protocol",
    "plan_regimen",
    "preview_plan",
    "protocol_regimen",
    "require_ceilings",
    "resolve_limits",
    "review_limits",
    "review_plan",
    "round_to_step",
    "unset_ceiling_reason",
    "unset_ceilings",
]
