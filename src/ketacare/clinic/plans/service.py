"""Treatment plans: build from a protocol, gate, sign and co-sign, version, schedule.

Every dose and rate goes through :func:`ketacare.core.protocols.build_plan`, on every
path (page, API, CLI): a hard limit is refused with the dose, the limit and the
protocol; a soft limit (or a limit the clinic has not configured) needs a documented
reason and a second physician's co-signature before the plan is signed. A protocol
whose hard ceilings are not all set (by its source or the clinic's protocol policy)
cannot be used at all, and signing and co-signing build the plan again under the
limits in force then.

This module holds the plan's life: draft, sign, co-sign, new version, status changes
(the moves of :mod:`ketacare.core.protocols.lifecycle`). The protocol library and the
dose arithmetic under the limits in force are in :mod:`~ketacare.clinic.plans.dosing`,
what a signature needs in :mod:`~ketacare.clinic.plans.gates`, the calendar in
:mod:`~ketacare.clinic.plans.booking`, the psychotherapy in
:mod:`~ketacare.clinic.plans.therapy` and the exposure preview in
:mod:`~ketacare.clinic.plans.exposure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.service import current_weight, get_patient
from ketacare.clinic.plans import ending
from ketacare.clinic.plans.dosing import (
    DoseOptions,
    library,
    preview,
    recheck_limits,
    review_as_today,
)
from ketacare.clinic.plans.gates import (
    gates,
    monitoring_order_for,
    required_safeguards,
    screening_coverage,
)
from ketacare.clinic.plans.orm import Adjunct, Plan
from ketacare.core.errors import InvalidInput
from ketacare.core.protocols import Protocol, review_limits
from ketacare.core.protocols.lifecycle import (
    FINAL,
    GIVEN,
    IN_FORCE,
    SHOWN_TO_PATIENT,
    STATUS_ACTIONS,
    next_status,
)
from ketacare.core.protocols.limits import SoftLimitFinding, review_lines
from ketacare.core.screening import check_interactions
from ketacare.core.terminology.treatments import screened_treatment as screened_names
from ketacare.infra.errors import Conflict, NotFound
from ketacare.infra.settings import Settings


def get_plan(*, session: Session, plan_id: int, patient_view: bool = False) -> Plan:
    """The plan, or :class:`NotFound`; with ``patient_view`` (a patient reading their own
    plan), a plan not yet signed is not found either: the patient never sees a draft."""
    plan = session.get(Plan, plan_id)
    if plan is None or (patient_view and plan.status not in SHOWN_TO_PATIENT):
        raise NotFound(f"plan {plan_id} does not exist")
    return plan


def record_read(*, session: Session, actor: audit.Actor, plan: Plan, now: datetime) -> None:
    """Audit a read of one plan version (once the reader's scope has been checked)."""
    audit.read_row(plan, session=session, actor=actor, at=now, resource_type="plan")


def _interaction_check(
    protocol: Protocol, drug: str, patient_meds: list[str]
) -> list[dict[str, object]]:
    """Interaction findings that involve an adjunct, by the screening interaction rules.

    The protocol's molecule and route are the screening's through the core vocabulary; an
    unknown one is refused there, naming the known ones.
    """
    molecule, route = screened_names(protocol.molecule, protocol.route)
    check = check_interactions([*patient_meds, drug], molecule=molecule, route=route)
    return [
        {
            "id": finding.id,
            "severity": finding.severity,
            "medications": list(finding.medications),
            "effect": finding.effect,
            "advice": finding.advice,
            "source": finding.source,
        }
        for finding in check.involving(drug)
    ]


def _checked_goals(goals: list[dict[str, object]]) -> list[dict[str, object]]:
    """Each goal as the plan page shows it: a measure and a target, both in words.

    The API's schema holds its callers to this; services are called from elsewhere too
    (the demo clinic once stored goals of another shape, which the page showed as ":").
    """
    checked: list[dict[str, object]] = []
    for i, goal in enumerate(goals):
        if not isinstance(goal, dict):
            raise InvalidInput(f"goal {i + 1} must have a measure and a target, both in words")
        measure, target = goal.get("measure"), goal.get("target")
        if set(goal) != {"measure", "target"} or not all(
            isinstance(v, str) and v.strip() for v in (measure, target)
        ):
            raise InvalidInput(
                f"goal {i + 1} must have a measure and a target, both in words (got {sorted(goal)})"
            )
        assert isinstance(measure, str) and isinstance(target, str)
        if len(measure) > 60 or len(target) > 300:
            raise InvalidInput(f"goal {i + 1}: measure up to 60 characters, target up to 300")
        checked.append({"measure": measure.strip(), "target": target.strip()})
    return checked


def create_draft(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    patient_id: int,
    protocol_id: str,
    options: DoseOptions,
    now: datetime,
    goals: list[dict[str, object]] | None = None,
    booster_policy: str | None = None,
    preparation_required: bool = False,
    supersedes: Plan | None = None,
) -> Plan:
    """A draft plan from the patient's current weight and a protocol (limits checked)."""
    patient = get_patient(session=session, patient_id=patient_id)
    weight = current_weight(patient)
    if weight is None:
        raise InvalidInput(f"patient {patient_id} has no recorded weight: record one first")
    built = preview(
        settings=settings, protocol_id=protocol_id, weight_kg=weight.weight_kg, options=options
    )
    protocol = library(settings).get(protocol_id=protocol_id)
    plan = Plan(
        patient_id=patient_id,
        version=(supersedes.version + 1) if supersedes else 1,
        supersedes_id=supersedes.id if supersedes else None,
        protocol_id=protocol_id,
        weight_kg=weight.weight_kg,
        weight_measured_at=weight.measured_at,
        bag_mg=options.bag_mg,
        bag_ml=options.bag_ml,
        dose_mg_per_kg_per_h=options.dose_mg_per_kg_per_h,
        dose_mg=options.dose_mg,
        start_date=options.start_date,
        schedule=built.to_dict(),
        total_dose_mg=built.total_dose_mg,
        requires_review=built.requires_review,
        goals=_checked_goals(goals or []),
        booster_policy=(booster_policy or "").strip() or None,
        preparation_required=preparation_required,
        created_by=actor.user_id or 0,
        created_at=now,
    )
    session.add(plan)
    session.flush()
    meds = [m.name for m in patient.medications if m.status == "active"]
    listed = [(m, m.use) for m in protocol.premedication]
    listed += [(m, f"rescue, only if needed: {m.use}") for m in protocol.rescue]
    for med, use in listed:
        source = protocol.source(med.source_key).label if med.source_key else None
        session.add(
            Adjunct(
                plan_id=plan.id,
                drug=med.drug,
                dose_text=med.dose or None,
                use=use,
                # what the source says of it beyond the order (e.g. the drug is site policy)
                source="; ".join(x for x in (source, med.note) if x) or None,
                interactions=_interaction_check(protocol, med.drug, meds),
            )
        )
    audit.record(
        session=session,
        actor=actor,
        action="create",
        resource_type="plan",
        resource_id=plan.id,
        patient_id=patient_id,
        at=now,
        detail={
            "protocol": protocol_id,
            "version": plan.version,
            "requires_review": plan.requires_review,
        },
    )
    return plan


def add_adjunct(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    plan_id: int,
    drug: str,
    dose_text: str | None,
    use: str,
    now: datetime,
) -> Adjunct:
    """Add an adjunct medicine to a draft plan; interactions are checked at once."""
    plan = _draft(session, plan_id)
    patient = get_patient(session=session, patient_id=plan.patient_id)
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    meds = [m.name for m in patient.medications if m.status == "active"]
    if not drug.strip() or not use.strip():
        raise InvalidInput("an adjunct needs a drug and its use (e.g. antiemetic)")
    row = Adjunct(
        plan_id=plan_id,
        drug=drug.strip(),
        dose_text=(dose_text or "").strip() or None,
        use=use.strip(),
        source="added by the prescriber",
        interactions=_interaction_check(protocol, drug.strip(), meds),
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="plan",
        patient_id=plan.patient_id,
        detail={"adjunct": row.drug},
        resource_id=plan_id,
        action="update",
    )


def adjuncts_of(*, session: Session, plan_id: int) -> list[Adjunct]:
    """The plan's adjunct medicines in the order prescribed (callers audit their read)."""
    return list(
        session.scalars(select(Adjunct).where(Adjunct.plan_id == plan_id).order_by(Adjunct.id))
    )


def _draft(session: Session, plan_id: int) -> Plan:
    plan = get_plan(session=session, plan_id=plan_id)
    if plan.status != "draft":
        raise Conflict(
            f"plan {plan_id} is {plan.status}: a signed plan is changed only by a new version"
        )
    return plan


def sign(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    plan_id: int,
    now: datetime,
    reason: str = "",
    weight_confirmed: bool = False,
    safeguards_accepted: list[str] | None = None,
    monitoring: Mapping[str, object] | None = None,
) -> Plan:
    """A physician signs; a plan needing review then awaits a second physician.

    A plan for a supervised session (IV, esketamine nasal spray) is signed only with a
    complete monitoring order (``monitoring``: the values the physician enters, on top
    of what the clinic's session policy sets); an incomplete or contradictory one is
    refused naming the field, before anything is stored.
    """
    plan = _draft(session, plan_id)
    review_as_today(settings=settings, plan=plan)  # the limits as they stand today
    order = monitoring_order_for(
        settings=settings, plan=plan, entered=monitoring, set_by=actor.username
    )
    problems = gates(session=session, settings=settings, plan=plan, now=now)
    if settings.weight_valid_days is None and not weight_confirmed:
        problems.append(
            "no site policy says how recent a weight must be: confirm that the "
            f"weight {plan.weight_kg:g} kg is current"
        )
    needed = required_safeguards(session=session, settings=settings, plan=plan, now=now)
    accepted = set(safeguards_accepted or [])
    missing = [g["id"] for g in needed if g["id"] not in accepted]
    if missing:
        problems.append(
            "the screening requires safeguards this plan must carry: "
            + ", ".join(str(m) for m in missing)
        )
    chain = course_plans(session=session, plan=plan)
    other = session.scalar(
        select(Plan.id)
        .where(
            Plan.patient_id == plan.patient_id,
            Plan.id.not_in(chain),
            Plan.status.in_(IN_FORCE),
        )
        .limit(1)
    )
    if other is not None:
        problems.append(
            f"plan {other} of this patient is still in force: stop it, or make "
            "this a new version of it"
        )
    if problems:
        raise InvalidInput("plan cannot be signed: " + "; ".join(problems))
    if plan.requires_review and len(reason.strip()) < 3:
        raise InvalidInput(
            "this plan needs a documented reason, then a second physician's co-signature: "
            + "; ".join(review_subjects(plan))
        )
    screening = screening_coverage(session=session, settings=settings, plan=plan, at=now).screening
    plan.screening_id = screening.id if screening else None
    plan.safeguards = needed
    plan.monitoring_order = None if order is None else order.to_dict()
    plan.signed_by = actor.user_id
    plan.signed_at = now
    plan.review_reason = reason.strip() or None
    plan.status = moved_status(plan, "sign_for_review" if plan.requires_review else "sign")
    if plan.status == "signed":
        _supersede(session, plan, now, actor)
    audit.record(
        session=session,
        actor=actor,
        action="sign",
        resource_type="plan",
        resource_id=plan.id,
        patient_id=plan.patient_id,
        at=now,
        detail={"status": plan.status},
    )
    return plan


def stored_review(plan: Plan) -> tuple[tuple[SoftLimitFinding, ...], tuple[str, ...]]:
    """The soft limits the plan exceeds and those the clinic had not configured, as signed."""
    findings = plan.schedule.get("soft_limit_findings") or []
    return (
        tuple(SoftLimitFinding.from_dict(f) for f in findings if isinstance(f, dict)),
        tuple(str(x) for x in plan.schedule.get("limits_not_configured") or []),
    )


def review_subjects(plan: Plan) -> tuple[str, ...]:
    """What the plan's review accepts, one line each (the limits exceeded, on which days,
    and the soft limits the clinic has not configured)."""
    findings, unset = stored_review(plan)
    return review_lines(findings=findings, not_configured=unset)


def cosign(
    *, session: Session, actor: audit.Actor, settings: Settings, plan_id: int, now: datetime
) -> Plan:
    """The second physician's co-signature on a plan that needed review."""
    plan = get_plan(session=session, plan_id=plan_id)
    if next_status(plan.status, "cosign") is None:
        raise Conflict(f"plan {plan_id} is {plan.status}, not awaiting a co-signature")
    recheck_limits(settings=settings, plan=plan)  # a co-signature never passes a hard limit
    # the record may have changed since the first signature: the gates hold again
    problems = gates(session=session, settings=settings, plan=plan, now=now)
    needed = {
        str(g["id"])
        for g in required_safeguards(session=session, settings=settings, plan=plan, now=now)
    }
    carried = {str(g["id"]) for g in plan.safeguards}
    if needed - carried:
        problems.append(
            "the screening in force now requires safeguards the signed plan does "
            "not carry: " + ", ".join(sorted(needed - carried))
        )
    screening = screening_coverage(session=session, settings=settings, plan=plan, at=now).screening
    if screening is None or screening.id != plan.screening_id:
        problems.append("the screening in force changed since the first signature")
    if problems:
        raise InvalidInput(
            "plan cannot be co-signed: " + "; ".join(problems) + ": build a new version"
        )
    # the core's review rule: a documented reason and a co-signer who is not the prescriber
    findings, unset = stored_review(plan)
    review_limits(
        protocol_id=plan.protocol_id,
        findings=findings,
        not_configured=unset,
        reason=plan.review_reason,
        prescriber_id=str(plan.signed_by),
        cosigner_id=str(actor.user_id),
    )
    plan.cosigned_by = actor.user_id
    plan.cosigned_at = now
    plan.status = moved_status(plan, "cosign")
    _supersede(session, plan, now, actor)
    audit.record(
        session=session,
        actor=actor,
        action="cosign",
        resource_type="plan",
        resource_id=plan.id,
        patient_id=plan.patient_id,
        at=now,
    )
    return plan


def course_plans(*, session: Session, plan: Plan) -> list[int]:
    """This plan and the versions before it (one course), newest first.

    A course's doses, levels and limits span every version of its plan: this is the
    one walk back along ``supersedes_id`` they all use.
    """
    ids = [plan.id]
    previous = plan.supersedes_id
    while previous is not None:
        ids.append(previous)
        older = session.get(Plan, previous)
        previous = older.supersedes_id if older else None
    return ids


# Built once: the chart and every dose check read it.
_COURSE_LINKS = select(Plan.id, Plan.supersedes_id).where(
    Plan.patient_id == bindparam("patient_id")
)


def course_roots(*, session: Session, patient_id: int) -> dict[int, int]:
    """Each of the patient's plan versions mapped to the first version of its course.

    A new version supersedes the one before, so a course is a chain of versions; its
    first version names it.
    """
    rows = session.execute(_COURSE_LINKS, {"patient_id": patient_id})
    parent: dict[int, int | None] = dict(rows.all())
    roots: dict[int, int] = {}
    for plan_id in parent:
        root, seen = plan_id, {plan_id}
        while (up := parent.get(root)) is not None and up not in seen:
            seen.add(up)
            root = up
        roots[plan_id] = root
    return roots


def _cancel_bookings(
    session: Session, plan_id: int, *, actor: audit.Actor, now: datetime, reason: str
) -> None:
    """Cancel the ended plan's bookings still to come (:mod:`booking` books on the plans
    read here, so it is imported on use)."""
    from ketacare.clinic.plans import booking

    booking.cancel_for_ended_plan(
        session=session, actor=actor, plan_id=plan_id, reason=reason, now=now
    )


def _supersede(session: Session, plan: Plan, now: datetime, actor: audit.Actor) -> None:
    if plan.supersedes_id is None:
        return
    old = get_plan(session=session, plan_id=plan.supersedes_id)
    superseded = next_status(old.status, "supersede")
    if superseded is not None:
        old.status = superseded
        old.ended_at = now
        old.end_reason = f"superseded by version {plan.version}"
        _cancel_bookings(session, old.id, actor=actor, now=now, reason=old.end_reason)


def new_version(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    plan_id: int,
    options: DoseOptions,
    now: datetime,
) -> Plan:
    """A new draft version of a signed or active plan, with new doses."""
    old = get_plan(session=session, plan_id=plan_id)
    if old.status not in GIVEN:
        raise Conflict(
            f"plan {plan_id} is {old.status}: only a signed or active plan gets a "
            "new version (edit a draft directly)"
        )
    return create_draft(
        session=session,
        actor=actor,
        settings=settings,
        patient_id=old.patient_id,
        protocol_id=old.protocol_id,
        options=options,
        now=now,
        goals=list(old.goals),
        booster_policy=old.booster_policy,
        preparation_required=old.preparation_required,
        supersedes=old,
    )


def transition(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    action: str,
    now: datetime,
    reason: str = "",
) -> Plan:
    """activate, complete or stop; illegal moves are refused, and so is a stop, or a
    completion with sessions of the course not given, without a reason
    (:mod:`~ketacare.clinic.plans.ending`)."""
    if action not in STATUS_ACTIONS:
        raise InvalidInput(f"unknown action {action!r}: allowed {', '.join(STATUS_ACTIONS)}")
    plan = get_plan(session=session, plan_id=plan_id)
    target = moved_status(plan, action)
    ending.refuse_unexplained(session=session, plan=plan, action=action, reason=reason)
    plan.status = target
    if target in FINAL:
        plan.ended_at = now
        plan.end_reason = reason.strip() or None
        _cancel_bookings(
            session,
            plan.id,
            actor=actor,
            now=now,
            reason=f"plan {target}" + (f": {reason.strip()}" if reason.strip() else ""),
        )
    audit.record(
        session=session,
        actor=actor,
        action=action,
        resource_type="plan",
        resource_id=plan.id,
        patient_id=plan.patient_id,
        at=now,
        detail={"reason": reason.strip()} if reason else None,
    )
    return plan


def moved_status(plan: Plan, move: str) -> str:
    """The status ``move`` takes ``plan`` to, by the lifecycle's table; Conflict if it may not."""
    target = next_status(plan.status, move)
    if target is None:
        raise Conflict(f"plan {plan.id} is {plan.status}: cannot {move} it")
    return target


def plans_of(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    now: datetime,
    patient_view: bool = False,
) -> list[Plan]:
    """A patient's plans, newest first (audited read); with ``patient_view`` (the patient
    reading their own), only plans signed and later (:data:`SHOWN_TO_PATIENT`)."""
    get_patient(session=session, patient_id=patient_id)
    query = select(Plan).where(Plan.patient_id == patient_id)
    if patient_view:
        query = query.where(Plan.status.in_(SHOWN_TO_PATIENT))
    rows = list(session.scalars(query.order_by(Plan.id.desc())))
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="plan",
        patient_id=patient_id,
        at=now,
        detail={"count": len(rows)},
    )
    return rows


def history(*, session: Session, plan: Plan) -> list[Any]:
    """Every audited change of this plan and of the versions before it, oldest first."""
    from ketacare.clinic.audit.orm import AuditEvent

    ids = [str(plan.id)]
    previous = plan.supersedes_id
    while previous is not None:
        ids.append(str(previous))
        older = session.get(Plan, previous)
        previous = older.supersedes_id if older else None
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.resource_type == "plan",
                AuditEvent.resource_id.in_(ids),
                AuditEvent.action != "read",
            )
            .order_by(AuditEvent.id)
        )
    )
