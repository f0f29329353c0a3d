"""Treatment plans: build from a protocol, gate, sign and co-sign, version, schedule.

Every dose and rate goes through :func:`ketacare.core.protocols.build_plan`, on every
path (page, API, CLI): a hard limit is refused with the dose, the limit and the
protocol; a soft limit (or a limit the clinic has not configured) needs a documented
reason and a second physician's co-signature before the plan is signed. A protocol
whose hard ceilings are not all set (by its source or the clinic's protocol policy)
cannot be used at all, and signing and co-signing build the plan again under the
limits in force then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.assessments.orm import ClinicalAlert
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.service import current_weight, get_patient
from ketacare.clinic.plans.orm import Adjunct, Appointment, Chair, Plan, TherapySession
from ketacare.clinic.screenings import service as screenings
from ketacare.core.errors import InvalidInput
from ketacare.core.protocols import Plan as PlanPreview
from ketacare.core.protocols import (
    Protocol,
    ProtocolLibrary,
    SitePolicy,
    build_plan,
    review_limits,
    unset_ceiling_reason,
    unset_ceilings,
)
from ketacare.core.screening import check_interactions
from ketacare.core.sessions.orders import FIELDS as ORDER_FIELDS
from ketacare.core.sessions.orders import LABELS as ORDER_LABELS
from ketacare.core.sessions.orders import (
    MonitoringOrder,
    monitoring_order,
    needs_order,
    order_defaults,
)
from ketacare.core.terminology.treatments import screened_treatment as screened_names
from ketacare.core.terminology.treatments import treatment_vocabulary
from ketacare.infra import policy as policies
from ketacare.infra.errors import Conflict, Forbidden, NotFound
from ketacare.infra.settings import Settings

#: what the screening's (molecule, route) must be for a protocol's (molecule, route): read
#: from the one treatment vocabulary (``core/terminology/treatments.toml``)
MOLECULES = {m.id: m.screening for m in treatment_vocabulary().molecules.values()}
ROUTES = {r.id: r.screening for r in treatment_vocabulary().routes.values()}


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
        out.append(
            ProtocolChoice(
                id=protocol.id,
                title=protocol.title,
                usable=not unset,
                reason=unset_ceiling_reason(protocol_id=protocol.id, unset=unset) if unset else "",
                unset=tuple(f"{r.key} ({r.unit})" for r in unset),
            )
        )
    return out


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
    return preview(
        settings=settings,
        protocol_id=plan.protocol_id,
        weight_kg=plan.weight_kg,
        options=DoseOptions(
            bag_mg=plan.bag_mg,
            bag_ml=plan.bag_ml,
            dose_mg_per_kg_per_h=plan.dose_mg_per_kg_per_h,
            dose_mg=plan.dose_mg,
            start_date=plan.start_date,
        ),
    )


def get_plan(*, session: Session, plan_id: int) -> Plan:
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFound(f"plan {plan_id} does not exist")
    return plan


def _interaction_check(protocol: Protocol, drug: str, patient_meds: list[str]) -> list[dict]:
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
        goals=list(goals or []),
        booster_policy=(booster_policy or "").strip() or None,
        preparation_required=preparation_required,
        created_by=actor.user_id or 0,
        created_at=now,
    )
    session.add(plan)
    session.flush()
    meds = [m.name for m in patient.medications if m.status == "active"]
    for med in (*protocol.premedication, *protocol.rescue):
        session.add(
            Adjunct(
                plan_id=plan.id,
                drug=med.drug,
                dose_text=getattr(med, "dose", None) or None,
                use=med.use,
                source=protocol.source(med.source_key).label if med.source_key else None,
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
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="update",
        resource_type="plan",
        resource_id=plan_id,
        patient_id=plan.patient_id,
        at=now,
        detail={"adjunct": row.drug},
    )
    return row


def _draft(session: Session, plan_id: int) -> Plan:
    plan = get_plan(session=session, plan_id=plan_id)
    if plan.status != "draft":
        raise Conflict(
            f"plan {plan_id} is {plan.status}: a signed plan is changed only by a new version"
        )
    return plan


def screened_treatment(*, settings: Settings, plan: Plan) -> tuple[str, str]:
    """The (molecule, route) a screening must cover for this plan's protocol."""
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    return MOLECULES[protocol.molecule], ROUTES[protocol.route]


def screening_coverage(
    *, session: Session, settings: Settings, plan: Plan, at: datetime
) -> screenings.Coverage:
    """The record's screening for this plan's molecule and route, and whether it holds."""
    molecule, route = screened_treatment(settings=settings, plan=plan)
    return screenings.coverage(
        session=session, patient_id=plan.patient_id, molecule=molecule, route=route, at=at
    )


def gates(*, session: Session, settings: Settings, plan: Plan, now: datetime) -> list[str]:
    """What still stops this plan from being signed (empty when nothing does)."""
    problems = []
    today = now.date()
    covered = screening_coverage(session=session, settings=settings, plan=plan, at=now)
    if covered.problem is not None:
        problems.append(covered.problem)
    patient = get_patient(session=session, patient_id=plan.patient_id)
    latest = current_weight(patient)
    if latest is None or (latest.measured_at, latest.weight_kg) != (
        plan.weight_measured_at,
        plan.weight_kg,
    ):
        problems.append(
            "a newer weight was recorded (or the plan's weight was corrected): build a new version"
        )
    elif settings.weight_valid_days is not None:
        age = (today - latest.measured_at.date()).days
        if age > settings.weight_valid_days:
            problems.append(
                f"the weight is {age} days old; site policy allows "
                f"{settings.weight_valid_days}: record a current weight"
            )
    return problems


def required_safeguards(
    *, session: Session, settings: Settings, plan: Plan, now: datetime
) -> list[dict[str, Any]]:
    """Safeguards the screening in force for this plan's molecule and route requires."""
    covered = screening_coverage(session=session, settings=settings, plan=plan, at=now)
    if covered.screening is None or not covered.ok:
        return []
    return [dict(s) for s in covered.screening.result.get("safeguards", [])]  # type: ignore[union-attr]


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
    recheck_limits(settings=settings, plan=plan)  # hard limits as they stand today
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
    chain = _chain_ids(session, plan)
    other = session.scalar(
        select(Plan.id)
        .where(
            Plan.patient_id == plan.patient_id,
            Plan.id.not_in(chain),
            Plan.status.in_(("signed", "active", "awaiting_cosign")),
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
            "this plan exceeds a soft limit or uses a limit the clinic has not configured: "
            "document the reason; a second physician then co-signs"
        )
    screening = screening_coverage(session=session, settings=settings, plan=plan, at=now).screening
    plan.screening_id = screening.id if screening else None
    plan.safeguards = needed
    plan.monitoring_order = None if order is None else order.to_dict()
    plan.signed_by = actor.user_id
    plan.signed_at = now
    plan.review_reason = reason.strip() or None
    plan.status = "awaiting_cosign" if plan.requires_review else "signed"
    if plan.status == "signed":
        _supersede(session, plan, now)
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


def monitoring_order_for(
    *, settings: Settings, plan: Plan, entered: Mapping[str, object] | None, set_by: str
) -> MonitoringOrder | None:
    """The order a signature would store (None for a protocol that is not supervised)."""
    from ketacare.clinic.sessions.service import session_policy

    protocol = library(settings).get(protocol_id=plan.protocol_id)
    if not needs_order(protocol):
        return None
    return monitoring_order(
        protocol=protocol, entered=entered, policy=session_policy(settings), set_by=set_by
    )


def order_prefill(*, settings: Settings, plan: Plan) -> dict[str, Any]:
    """What the sign form shows: each field's value from the clinic's policy (or sourced), or
    None where the physician must enter it; and whether the protocol needs an order."""
    from ketacare.clinic.sessions.service import session_policy

    protocol = library(settings).get(protocol_id=plan.protocol_id)
    if not needs_order(protocol):
        return {"required": False, "fields": []}
    defaults = order_defaults(protocol=protocol, policy=session_policy(settings))
    fields = [
        {
            "name": name,
            "label": ORDER_LABELS[name],
            "value": None if defaults[name] is None else defaults[name][0],  # type: ignore[index]
            "origin": None if defaults[name] is None else defaults[name][1],  # type: ignore[index]
        }
        for name in ORDER_FIELDS
    ]
    return {"required": True, "fields": fields}


def cosign(
    *, session: Session, actor: audit.Actor, settings: Settings, plan_id: int, now: datetime
) -> Plan:
    """The second physician's co-signature on a plan that needed review."""
    plan = get_plan(session=session, plan_id=plan_id)
    if plan.status != "awaiting_cosign":
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
    findings = plan.schedule.get("soft_limit_findings") or []
    unset = [str(x) for x in plan.schedule.get("limits_not_configured") or []]
    soft = [f"{f['limit_kind']} soft (day {f['day']})" for f in findings if isinstance(f, dict)]
    review_limits(
        protocol_id=plan.protocol_id,
        findings=(),
        not_configured=tuple(soft + unset),
        reason=plan.review_reason,
        prescriber_id=str(plan.signed_by),
        cosigner_id=str(actor.user_id),
    )
    plan.cosigned_by = actor.user_id
    plan.cosigned_at = now
    plan.status = "signed"
    _supersede(session, plan, now)
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


def _chain_ids(session: Session, plan: Plan) -> list[int]:
    ids = [plan.id]
    previous = plan.supersedes_id
    while previous is not None:
        ids.append(previous)
        older = session.get(Plan, previous)
        previous = older.supersedes_id if older else None
    return ids


def course_roots(*, session: Session, patient_id: int) -> dict[int, int]:
    """Each of the patient's plan versions mapped to the first version of its course.

    A new version supersedes the one before, so a course is a chain of versions; its
    first version names it.
    """
    rows = session.execute(select(Plan.id, Plan.supersedes_id).where(Plan.patient_id == patient_id))
    parent: dict[int, int | None] = dict(rows.all())
    roots: dict[int, int] = {}
    for plan_id in parent:
        root, seen = plan_id, {plan_id}
        while (up := parent.get(root)) is not None and up not in seen:
            seen.add(up)
            root = up
        roots[plan_id] = root
    return roots


def _cancel_bookings(session: Session, plan_id: int) -> None:
    for appt in session.scalars(
        select(Appointment).where(Appointment.plan_id == plan_id, Appointment.status == "booked")
    ):
        appt.status = "cancelled"


def _supersede(session: Session, plan: Plan, now: datetime) -> None:
    if plan.supersedes_id is None:
        return
    old = get_plan(session=session, plan_id=plan.supersedes_id)
    if old.status in ("signed", "active", "awaiting_cosign"):
        old.status = "superseded"
        old.ended_at = now
        old.end_reason = f"superseded by version {plan.version}"
        _cancel_bookings(session, old.id)


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
    if old.status not in ("signed", "active"):
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


TRANSITIONS = {
    "activate": ({"signed"}, "active"),
    "complete": ({"active"}, "completed"),
    "stop": ({"signed", "active", "awaiting_cosign"}, "stopped"),
}


def transition(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    action: str,
    now: datetime,
    reason: str = "",
) -> Plan:
    """activate, complete or stop (stop needs a reason); illegal moves are refused."""
    if action not in TRANSITIONS:
        raise InvalidInput(f"unknown action {action!r}: allowed {', '.join(TRANSITIONS)}")
    allowed_from, target = TRANSITIONS[action]
    plan = get_plan(session=session, plan_id=plan_id)
    if plan.status not in allowed_from:
        raise Conflict(f"plan {plan_id} is {plan.status}: cannot {action} it")
    if action == "stop" and len(reason.strip()) < 3:
        raise InvalidInput("stopping a plan needs a reason")
    plan.status = target
    if target in ("completed", "stopped"):
        plan.ended_at = now
        plan.end_reason = reason.strip() or None
        _cancel_bookings(session, plan.id)
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


def plans_of(*, session: Session, actor: audit.Actor, patient_id: int, now: datetime) -> list[Plan]:
    """A patient's plans, newest first (audited read)."""
    get_patient(session=session, patient_id=patient_id)
    rows = list(
        session.scalars(select(Plan).where(Plan.patient_id == patient_id).order_by(Plan.id.desc()))
    )
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


# --- psychotherapy around the doses ---------------------------------------------------------

NOTE_FIELDS = ("goals", "what_came_up", "integration_steps", "risk_check")


def add_therapy(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    kind: str,
    therapist_id: int,
    planned_date: date | None,
    now: datetime,
) -> TherapySession:
    """Plan a preparation or integration session with a therapist."""
    plan = get_plan(session=session, plan_id=plan_id)
    if kind not in ("preparation", "integration"):
        raise InvalidInput(f"therapy kind {kind!r}: allowed preparation, integration")
    therapist = session.get(User, therapist_id)
    if therapist is None or therapist.role != "therapist":
        raise InvalidInput(f"user {therapist_id} is not a therapist")
    row = TherapySession(
        plan_id=plan_id,
        patient_id=plan.patient_id,
        kind=kind,
        therapist_id=therapist_id,
        planned_date=planned_date,
    )
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="create",
        resource_type="therapy_session",
        resource_id=row.id,
        patient_id=plan.patient_id,
        at=now,
    )
    return row


def document_therapy(
    *,
    session: Session,
    actor: audit.Actor,
    therapy_id: int,
    note: dict[str, str],
    risk_concern: bool,
    now: datetime,
) -> TherapySession:
    """The therapist's structured note; a risk concern alerts the responsible clinician."""
    row = session.get(TherapySession, therapy_id)
    if row is None:
        raise NotFound(f"therapy session {therapy_id} does not exist")
    if actor.user_id != row.therapist_id:
        raise Forbidden("only the assigned therapist documents this session")
    if row.status == "documented":
        raise Conflict(f"therapy session {therapy_id} is already documented")
    empty = [f for f in NOTE_FIELDS if not str(note.get(f, "")).strip()]
    if empty:
        raise InvalidInput(f"the note needs every part: {', '.join(empty)} missing")
    row.note = {f: str(note[f]).strip() for f in NOTE_FIELDS} | {"risk_concern": risk_concern}
    row.status = "documented"
    row.documented_at = now
    row.documented_by = actor.user_id
    if risk_concern:
        patient = get_patient(session=session, patient_id=row.patient_id)
        session.add(
            ClinicalAlert(
                patient_id=row.patient_id,
                kind="therapy_risk_concern",
                message=f"Therapist raised a risk concern after a {row.kind} session: "
                f"{row.note['risk_check']}",
                recipient_id=patient.responsible_clinician_id,
                raised_at=now,
            )
        )
    audit.record(
        session=session,
        actor=actor,
        action="document",
        resource_type="therapy_session",
        resource_id=row.id,
        patient_id=row.patient_id,
        at=now,
        detail={"risk_concern": risk_concern},
    )
    return row


def preparation_done(*, session: Session, plan: Plan) -> bool:
    """Whether a required preparation session has been documented (doses wait for it)."""
    if not plan.preparation_required:
        return True
    return (
        session.scalar(
            select(TherapySession.id)
            .where(
                TherapySession.plan_id == plan.id,
                TherapySession.kind == "preparation",
                TherapySession.status == "documented",
            )
            .limit(1)
        )
        is not None
    )


# --- the clinic calendar ---------------------------------------------------------------------


def chairs(*, session: Session) -> list[Chair]:
    return list(session.scalars(select(Chair).where(Chair.active).order_by(Chair.name)))


def _session_days(plan: Plan) -> dict[int, tuple[int, float]]:
    """session number -> (day, dosing hours; 0 for a dose given at once) from the schedule."""
    out = {}
    for s in plan.schedule.get("sessions", []):  # type: ignore[union-attr]
        duration = s.get("duration_h") or 0.0
        out[int(s["number"] if "number" in s else s["session"])] = (int(s["day"]), float(duration))
    return out


def observation_min(*, settings: Settings, protocol_id: str) -> float | None:
    """The minimum observation after dosing: the stricter of the source's and the clinic's."""
    protocol = library(settings).get(protocol_id=protocol_id)
    values = [protocol.monitoring.observation_min.value]
    site = policies.session_policy(settings)
    if site is not None:
        values.append(site.for_protocol(protocol_id).observation_min)
    known = [v for v in values if v is not None]
    return max(known) if known else None


def chair_hours(*, settings: Settings, plan: Plan, session_number: int) -> float:
    """How long a session holds its chair: the planned dosing time plus the observation.

    Why: the chair stays taken until the patient may leave. A dose given at once (a
    nasal spray, a tablet) with no known observation time has no length at all, so it
    is refused rather than given an invented one.
    """
    days = _session_days(plan)
    if session_number not in days:
        raise InvalidInput(f"plan {plan.id} has sessions 1 to {len(days)}, not {session_number}")
    dosing_h = days[session_number][1]
    observation = observation_min(settings=settings, protocol_id=plan.protocol_id)
    if observation is None and dosing_h == 0:
        raise InvalidInput(
            f"session {session_number} of plan {plan.id} has no known chair time: its protocol "
            "gives neither an infusion time nor an observation time; set observation_min in "
            "the session policy (KETACARE_SESSION_POLICY_FILE)"
        )
    return dosing_h + (observation or 0.0) / 60.0


def book(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    session_number: int,
    chair_id: int,
    starts_at: datetime,
    now: datetime,
    settings: Settings,
) -> Appointment:
    """Book one dosing session; a double-booked chair or a session too soon is refused.

    The booking holds the chair for :func:`chair_hours` (dosing plus observation).
    """
    plan = get_plan(session=session, plan_id=plan_id)
    if plan.status not in ("signed", "active"):
        raise Conflict(f"plan {plan_id} is {plan.status}: only a signed plan is booked")
    days = _session_days(plan)
    if session_number not in days:
        raise InvalidInput(f"plan {plan_id} has sessions 1 to {len(days)}, not {session_number}")
    chair = session.get(Chair, chair_id)
    if chair is None or not chair.active:
        raise InvalidInput(f"chair {chair_id} does not exist")
    if starts_at.tzinfo is None:
        raise InvalidInput("starts_at needs a time zone")
    ends_at = starts_at + timedelta(
        hours=chair_hours(settings=settings, plan=plan, session_number=session_number)
    )
    clash = session.scalar(
        select(Appointment)
        .where(
            Appointment.chair_id == chair_id,
            Appointment.status == "booked",
            and_(Appointment.starts_at < ends_at, Appointment.ends_at > starts_at),
        )
        .limit(1)
    )
    if clash is not None:
        raise Conflict(
            f"chair {chair.name} is booked from {clash.starts_at:%Y-%m-%d %H:%M} to "
            f"{clash.ends_at:%H:%M} UTC (plan {clash.plan_id}, session "
            f"{clash.session_number})"
        )
    booked = {
        a.session_number: a
        for a in session.scalars(
            select(Appointment).where(
                Appointment.plan_id == plan_id, Appointment.status == "booked"
            )
        )
    }
    if session_number in booked:
        raise Conflict(f"session {session_number} of plan {plan_id} is already booked")
    for other, appt in booked.items():
        gap_days = days[session_number][0] - days[other][0]
        if gap_days > 0:
            earliest = appt.starts_at + timedelta(days=gap_days)
            if starts_at.date() < earliest.date():
                raise Conflict(
                    f"session {session_number} is too soon: the protocol spaces it {gap_days} "
                    f"day(s) after session {other} ({appt.starts_at:%Y-%m-%d}), so not before "
                    f"{earliest:%Y-%m-%d}"
                )
        elif (
            gap_days < 0 and starts_at.date() > (appt.starts_at - timedelta(days=-gap_days)).date()
        ):
            raise Conflict(
                f"session {session_number} must come {-gap_days} day(s) before "
                f"session {other} ({appt.starts_at:%Y-%m-%d})"
            )
    row = Appointment(
        plan_id=plan_id,
        patient_id=plan.patient_id,
        session_number=session_number,
        chair_id=chair_id,
        starts_at=starts_at,
        ends_at=ends_at,
        booked_by=actor.user_id or 0,
    )
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="book",
        resource_type="appointment",
        resource_id=row.id,
        patient_id=plan.patient_id,
        at=now,
        detail={"plan": plan_id, "session": session_number, "chair": chair.name},
    )
    return row


def book_course(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    chair_id: int,
    first_day: date,
    at_time: time,
    zone: ZoneInfo,
    now: datetime,
    settings: Settings,
) -> list[Appointment]:
    """Book every session of the plan on its protocol day, same chair and clock time."""
    plan = get_plan(session=session, plan_id=plan_id)
    out = []
    for number, (day, _) in sorted(_session_days(plan).items()):
        local = datetime.combine(first_day + timedelta(days=day - 1), at_time, tzinfo=zone)
        out.append(
            book(
                session=session,
                actor=actor,
                plan_id=plan_id,
                session_number=number,
                chair_id=chair_id,
                starts_at=local,
                now=now,
                settings=settings,
            )
        )
    return out


def calendar(*, session: Session, start: datetime, end: datetime) -> list[Appointment]:
    """Booked appointments between two instants."""
    return list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.status == "booked",
                Appointment.starts_at < end,
                Appointment.ends_at > start,
            )
            .order_by(Appointment.starts_at)
        )
    )


# --- exposure preview from the pharmacology engine -----------------------------------------

ENGINE_MOLECULE = {m.id: m.engine for m in treatment_vocabulary().molecules.values()}


def exposure_models(*, settings: Settings, protocol_id: str) -> list[Any]:
    """Models that can simulate this protocol's molecule and route (verified first)."""
    from ketacare.core.pharmacology import list_models
    from ketacare.core.protocols.regimen import ENGINE_ROUTE

    protocol = library(settings).get(protocol_id=protocol_id)
    molecule = ENGINE_MOLECULE.get(protocol.molecule)
    route = ENGINE_ROUTE.get(protocol.route)
    found = [m for m in list_models() if m.molecule == molecule and route in m.routes]
    return sorted(found, key=lambda m: (not m.verified, m.id))


def exposure(
    *,
    settings: Settings,
    plan: Plan,
    patient_age: int | None,
    patient_sex: str | None,
    model_id: str | None = None,
    step_min: float = 10.0,
) -> dict[str, Any]:
    """Predicted plasma, effect-site and metabolite curves of the planned course."""
    import warnings

    from ketacare.core.pharmacology import Patient as PkPatient
    from ketacare.core.pharmacology import load_model, parse_regimen, simulate
    from ketacare.core.protocols.regimen import plan_regimen

    candidates = exposure_models(settings=settings, protocol_id=plan.protocol_id)
    if model_id:
        chosen = [m for m in candidates if m.id == model_id]
        candidates = chosen + [m for m in candidates if m.id != model_id]
    if not candidates:
        protocol = library(settings).get(protocol_id=plan.protocol_id)
        return {
            "available": False,
            "message": f"no sourced PK model in the library for {protocol.molecule} by "
            f"{protocol.route}: no exposure preview",
        }
    model = load_model(model_id=candidates[0].id)
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    preview_plan = build_plan(
        protocol=protocol,
        weight_kg=plan.weight_kg,
        bag_mg=plan.bag_mg,
        bag_ml=plan.bag_ml,
        dose_mg_per_kg_per_h=plan.dose_mg_per_kg_per_h,
        dose_mg=plan.dose_mg,
        site_policy=protocol_policy(settings),
    )
    regimen = parse_regimen(
        plan_regimen(plan=preview_plan, route=protocol.route), weight_kg=plan.weight_kg
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = simulate(
            model=model,
            patient=PkPatient(
                weight_kg=plan.weight_kg,
                age_years=patient_age,
                sex={"female": "F", "male": "M"}.get(patient_sex or ""),
            ),
            regimen=regimen,
            hours=regimen.end_h + 48.0,
            step_min=step_min,
        )
    effect = {k: [round(float(x), 4) for x in v] for k, v in sim.effect_ng_per_ml.items()}
    return {
        "available": True,
        "model": model.id,
        "model_name": getattr(model, "name", model.id),
        "verified": model.verified,
        "time_h": [round(float(t), 4) for t in sim.time_h],
        "plasma_ng_per_ml": [round(float(x), 4) for x in sim.plasma_ng_per_ml],
        "effect_ng_per_ml": effect,
        "metabolite_ng_per_ml": None
        if sim.metabolite_ng_per_ml is None
        else [round(float(x), 4) for x in sim.metabolite_ng_per_ml],
        "metabolite": model.metabolite,
        "metrics": _metrics(sim.metrics),
        "warnings": sorted({str(w.message) for w in caught}),
        "others": [m.id for m in candidates[1:]],
    }


def _metrics(metrics: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(metrics):
        return {k: v for k, v in asdict(metrics).items() if not isinstance(v, list | tuple)}
    return dict(metrics)
