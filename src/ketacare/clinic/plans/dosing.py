"""The doses a plan may carry: the protocol library under the clinic's policy.

Lists the protocols a plan can be built from (a protocol whose hard ceilings are not
all set cannot be used, and says why), and builds a plan's schedule with
:func:`ketacare.core.protocols.build_plan`, which refuses a dose above a hard limit
and names soft ones: at drafting, and again before every signature and session
(:func:`recheck_limits`), under the limits in force then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ketacare.clinic.plans.orm import Plan
from ketacare.core.errors import UnknownItem
from ketacare.core.protocols import Plan as PlanPreview
from ketacare.core.protocols import (
    Protocol,
    ProtocolLibrary,
    SitePolicy,
    build_plan,
    unset_ceiling_reason,
    unset_ceilings,
)
from ketacare.infra import policy as policies
from ketacare.infra.settings import Settings


def library(settings: Settings) -> ProtocolLibrary:
    """The protocol library, with the clinic's own protocols when configured."""
    return policies.protocol_library(settings)


def protocol_policy(settings: Settings) -> SitePolicy | None:
    """The clinic's values for limits no source gives, when configured."""
    return policies.protocol_policy(settings)


@dataclass(frozen=True)
class ProtocolChoice:
    """A protocol as the plan builder lists it: usable, or why not (unset hard ceilings)."""

    id: str
    title: str
    usable: bool
    reason: str
    unset: tuple[str, ...]
    #: why no screening can cover the protocol's treatment ("" when one can)
    unscreened: str = ""


def protocol_choices(settings: Settings) -> list[ProtocolChoice]:
    """Every protocol of the library under the clinic's protocol policy, usable or not.

    A protocol with a hard ceiling unset (per session mg or mg/kg, per course mg, or a
    declared rate ceiling) cannot be used for a plan; its reason names each unset
    limit and the policy table that sets it.
    """
    policy = protocol_policy(settings)
    out = []
    for protocol in library(settings).protocols:
        unset = unset_ceilings(protocol=protocol, site_policy=policy)
        unscreened = _not_screenable(protocol)
        reasons = [
            *([unset_ceiling_reason(protocol_id=protocol.id, unset=unset)] if unset else []),
            *([unscreened] if unscreened else []),
        ]
        out.append(
            ProtocolChoice(
                id=protocol.id,
                title=protocol.title,
                usable=not reasons,
                reason="; ".join(reasons),
                unset=tuple(f"{r.key} ({r.unit})" for r in unset),
                unscreened=unscreened,
            )
        )
    return out


def _not_screenable(protocol: Protocol) -> str:
    """Why no screening can cover ``protocol``'s treatment ("" when one can): a plan is
    checked against its patient's screening of that molecule and route."""
    from ketacare.core.screening import check_interactions
    from ketacare.core.terminology.treatments import screened_treatment

    try:
        molecule, route = screened_treatment(protocol.molecule, protocol.route)
        check_interactions([], molecule=molecule, route=route)
    except UnknownItem as exc:
        return (
            f"no screening covers its treatment ({exc}): the screening rules are the "
            "labels' and guideline's, and none is for this molecule by this route"
        )
    return ""


@dataclass(frozen=True)
class DoseOptions:
    """The prescriber's choices for a plan (all optional: the protocol's defaults apply)."""

    bag_mg: float | None = None
    bag_ml: float | None = None
    dose_mg_per_kg_per_h: float | None = None
    dose_mg: float | None = None
    start_date: date | None = None


def preview(
    *, settings: Settings, protocol_id: str, weight_kg: float, options: DoseOptions
) -> PlanPreview:
    """The concrete schedule (refuses a hard-limit breach, names soft ones)."""
    protocol = library(settings).get(protocol_id=protocol_id)
    return build_plan(
        protocol=protocol,
        weight_kg=weight_kg,
        bag_mg=options.bag_mg,
        bag_ml=options.bag_ml,
        dose_mg_per_kg_per_h=options.dose_mg_per_kg_per_h,
        dose_mg=options.dose_mg,
        start=options.start_date,
        site_policy=protocol_policy(settings),
    )


def recheck_limits(*, settings: Settings, plan: Plan) -> PlanPreview:
    """Build the stored plan again under today's limits before a signature or a session.

    The clinic's protocol policy may have changed since the draft was made (a hard
    ceiling lowered or removed): every signature and every session re-runs the
    plan through :func:`build_plan`, which refuses a dose above a hard limit and a
    protocol whose hard ceilings are not all set (fail closed).
    """
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    return _rebuilt(settings=settings, plan=plan, protocol=protocol, start=plan.start_date)


def rebuild_undated(*, settings: Settings, plan: Plan, protocol: Protocol) -> PlanPreview:
    """The stored plan's sessions built again from its doses under today's limits, undated.

    What opening a session and the exposure preview need: each session's dose by its
    number, not its calendar day (unlike :func:`recheck_limits`, no start date is
    given). ``protocol`` is the plan's, already read by the caller, which uses it too.
    """
    return _rebuilt(settings=settings, plan=plan, protocol=protocol, start=None)


def _rebuilt(
    *, settings: Settings, plan: Plan, protocol: Protocol, start: date | None
) -> PlanPreview:
    """The stored plan's doses through :func:`build_plan` under today's site policy."""
    return build_plan(
        protocol=protocol,
        weight_kg=plan.weight_kg,
        bag_mg=plan.bag_mg,
        bag_ml=plan.bag_ml,
        dose_mg_per_kg_per_h=plan.dose_mg_per_kg_per_h,
        dose_mg=plan.dose_mg,
        start=start,
        site_policy=protocol_policy(settings),
    )


def review_as_today(*, settings: Settings, plan: Plan) -> PlanPreview:
    """:func:`recheck_limits` for a draft about to be signed, keeping its review need
    up to date: when today's limits ask for a review the draft did not (a soft limit set
    or lowered since, or checked since the draft was built), the draft takes today's
    findings, so the signature needs the reason and the second physician. A review the
    draft already needs is never dropped (fail closed)."""
    today = recheck_limits(settings=settings, plan=plan)
    if today.requires_review and not plan.requires_review:
        plan.schedule = {
            **plan.schedule,
            "soft_limit_findings": [f.to_dict() for f in today.soft_findings],
            "limits_not_configured": list(today.not_configured),
        }
        plan.requires_review = True
    return today
