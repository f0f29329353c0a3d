"""The cumulative dose of one patient: totals, courses, sessions and the clinic's caps.

The doses are what each session's own log says was delivered
(:func:`ketacare.clinic.sessions.doses.doses_given`); the arithmetic is the core's
(:mod:`ketacare.core.safeguards`). The caps are the clinic's (its session policy); the
refusal of a session that would pass one happens where sessions are opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans import dosing
from ketacare.clinic.plans import service as plans
from ketacare.clinic.safeguards.orm import TakeHomeDispense, TakeHomeVoid
from ketacare.clinic.sessions.doses import cumulative_caps, doses_given
from ketacare.clinic.stock import supplies
from ketacare.clinic.stock.orm import StockEntry
from ketacare.core.errors import DoseLimitExceeded, InvalidInput, SoftLimitNeedsReview
from ketacare.core.safeguards import (
    REPORT_WINDOWS_DAYS,
    Cumulative,
    CumulativeCap,
    Dispense,
    Measure,
    TakeHomePolicy,
    check_dispense,
    cumulative,
    total,
)
from ketacare.infra import policy as policies
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict
from ketacare.infra.settings import Settings

NO_CAPS = (
    "No cap on the cumulative dose is set: no guideline gives one, so a clinic that wants "
    "one sets it in its session policy ([[cumulative_cap]]). Totals are shown without a limit."
)


@dataclass(frozen=True, slots=True)
class CapStatus:
    """One limit of one cap against the window ending now (no dose planned)."""

    cap: CumulativeCap
    measure: Measure
    current: float
    limit: float

    @property
    def remaining(self) -> float:
        """What is left before the cap (negative: already above it)."""
        return self.limit - self.current

    @property
    def reached(self) -> bool:
        """True when any further dose of this molecule would pass the cap."""
        return self.remaining <= 1e-6


@dataclass(frozen=True, slots=True)
class TakeHomeTotal:
    """Take-home supplies of one molecule handed over in a window (voided ones left out)."""

    molecule: str
    window_days: int
    supplies: int
    mg: float


@dataclass(frozen=True, slots=True)
class PatientDose:
    """What the chart shows: the core's totals, the caps and how far each one is used."""

    patient_id: int
    cumulative: Cumulative
    caps: tuple[CapStatus, ...]
    note: str | None
    take_home: tuple[TakeHomeTotal, ...] = ()


def cumulative_dose(
    *, session: Session, actor: audit.Actor, settings: Settings, patient_id: int, now: datetime
) -> PatientDose:
    """The patient's cumulative dose at ``now`` (an audited read of their sessions)."""
    get_patient(session=session, patient_id=patient_id)  # NotFound for an unknown id
    doses = doses_given(session=session, patient_id=patient_id, now=now)
    caps = cumulative_caps(settings)
    statuses = tuple(
        CapStatus(
            cap=cap,
            measure=measure,
            current=total(doses, molecule=cap.molecule, window_days=cap.window_days, at=now).value(
                measure
            ),
            limit=limit,
        )
        for cap in caps
        for measure, limit in cap.limits()
    )
    audit.read_patient(
        patient_id,
        session=session,
        actor=actor,
        at=now,
        resource_type="cumulative_dose",
        detail={"sessions": [d.session_id for d in doses]},
    )
    supplies = [r.row for r in _rows(session, patient_id) if r.void is None]
    take_home: list[TakeHomeTotal] = []
    for molecule in dict.fromkeys(r.molecule for r in supplies):
        for window in REPORT_WINDOWS_DAYS:
            since = now - timedelta(days=window)
            chosen = [
                r for r in supplies if r.molecule == molecule and since < r.dispensed_at <= now
            ]
            take_home.append(
                TakeHomeTotal(
                    molecule=molecule,
                    window_days=window,
                    supplies=len(chosen),
                    mg=sum(r.strength_mg * r.units for r in chosen),
                )
            )
    return PatientDose(
        patient_id=patient_id,
        cumulative=cumulative(doses, at=now),
        caps=statuses,
        note=None if caps else NO_CAPS,
        take_home=tuple(take_home),
    )


# --------------------------------------------------------------------------- take-home

#: Routes a patient can take at home (the others need a clinician at the chair).
TAKE_HOME_ROUTES = ("oral", "sublingual", "intranasal")
_LIVE_PLANS = ("signed", "active")
_ESKETAMINE_REMS = (
    "esketamine is given only under direct supervision in a certified (REMS) treatment "
    "setting and may not be taken home (Spravato prescribing information; screening rule "
    "esketamine-take-home)"
)


@dataclass(frozen=True, slots=True)
class DispenseRow:
    """A dispense as the pages and the API show it, with its void if any and its draw
    from stock (None when it drew nothing, or once voided: the draw is reversed)."""

    row: TakeHomeDispense
    void: TakeHomeVoid | None
    draw: StockEntry | None = None

    @property
    def total_mg(self) -> float:
        return self.row.strength_mg * self.row.units


def take_home_policy(settings: Settings) -> TakeHomePolicy | None:
    """The clinic's take-home limits (none unless its session policy sets them)."""
    policy = policies.session_policy(settings)
    return policy.take_home if policy is not None else None


def _core(row: TakeHomeDispense) -> Dispense:
    return Dispense(
        id=row.id,
        at=row.dispensed_at,
        molecule=row.molecule,
        strength_mg=row.strength_mg,
        units=row.units,
        days_supply=row.days_supply,
        pdmp_checked=row.pdmp_checked,
    )


# Built once (the chart's cumulative-dose card reads them on every request).
_VOIDS = (
    select(TakeHomeVoid)
    .join(TakeHomeDispense, TakeHomeDispense.id == TakeHomeVoid.dispense_id)
    .where(TakeHomeDispense.patient_id == bindparam("patient_id"))
)
_DISPENSES = (
    select(TakeHomeDispense)
    .where(TakeHomeDispense.patient_id == bindparam("patient_id"))
    .order_by(TakeHomeDispense.dispensed_at, TakeHomeDispense.id)
)


def _rows(session: Session, patient_id: int) -> list[DispenseRow]:
    which = {"patient_id": patient_id}
    voids = {v.dispense_id: v for v in session.scalars(_VOIDS, which)}
    rows = list(session.scalars(_DISPENSES, which))
    draws = supplies.supply_draws(session, [r.id for r in rows])
    return [DispenseRow(row, voids.get(row.id), draws.get(row.id)) for row in rows]


def dispense_row(*, session: Session, dispense_id: int) -> DispenseRow:
    """One supply with its void and its draw (not audited: the caller's write is)."""
    row = existing(session, TakeHomeDispense, dispense_id, "take-home supply")
    void = session.scalar(select(TakeHomeVoid).where(TakeHomeVoid.dispense_id == dispense_id))
    return DispenseRow(row, void, supplies.supply_draws(session, [row.id]).get(row.id))


def dispenses(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime
) -> list[DispenseRow]:
    """The patient's take-home supplies, voided ones included (an audited read)."""
    get_patient(session=session, patient_id=patient_id)
    rows = _rows(session, patient_id)
    audit.read_patient(patient_id, session=session, actor=actor, at=now, resource_type="take_home")
    return rows


def dispense(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    plan_id: int,
    form: str,
    strength_mg: float,
    units: int,
    days_supply: float,
    directions: str,
    pdmp_checked: bool,
    now: datetime,
    lot: str | None = None,
    lot_id: int | None = None,
    lot_units: int | None = None,
    reason: str | None = None,
    dispensed_at: datetime | None = None,
) -> TakeHomeDispense:
    """Hand a take-home supply to the patient of a signed plan, after every check, and
    draw it from stock (lot ``lot_id``, ``lot_units`` of its product: ``units`` unless
    given) in the same transaction.

    Refused (nothing stored): a plan not signed, a route given only at the chair,
    esketamine, a plan whose screening requires no take-home doses, no clinic limits,
    a supply above them, a missing PDMP check the clinic requires; an early refill
    beyond the clinic's tolerance without a reason; no lot named while the clinic keeps
    stock of the molecule, a lot of another molecule or of a form the plan's route does
    not take, an expired lot, too little on hand, mg that are not what the lot's units
    hold (:func:`ketacare.clinic.stock.supplies.check_supply`).
    """
    plan = plans.get_plan(session=session, plan_id=plan_id)
    if plan.status not in _LIVE_PLANS:
        raise Conflict(f"plan {plan_id} is {plan.status}: only a signed plan's supplies are given")
    protocol = dosing.library(settings).get(protocol_id=plan.protocol_id)
    if protocol.molecule == "esketamine":
        raise DoseLimitExceeded(f"take-home refused: {_ESKETAMINE_REMS}")
    if protocol.route not in TAKE_HOME_ROUTES:
        raise InvalidInput(
            f"protocol {protocol.id} is given by {protocol.route.replace('_', ' ')}: only "
            f"{', '.join(TAKE_HOME_ROUTES)} doses can be taken home"
        )
    if any(str(g.get("id")) == "no_take_home_doses" for g in plan.safeguards):
        raise DoseLimitExceeded(
            "take-home refused: this patient's screening requires the safeguard 'no take-home "
            "doses: every dose is given under direct supervision in the clinic'"
        )
    for name, text in (("form", form), ("directions", directions)):
        if not text.strip():
            raise InvalidInput(f"{name} is required for a take-home supply")
    at = dispensed_at or now
    if at.tzinfo is None or at > now:
        raise InvalidInput("dispensed_at must be a past time with a time zone")
    new = Dispense(
        id=0,
        at=at,
        molecule=protocol.molecule,
        strength_mg=strength_mg,
        units=units,
        days_supply=days_supply,
        pdmp_checked=pdmp_checked,
    )
    history = [_core(r.row) for r in _rows(session, plan.patient_id) if r.void is None]
    findings = check_dispense(history=history, new=new, policy=take_home_policy(settings))
    refused = [f.message for f in findings if f.severity == "refused"]
    if refused:
        raise DoseLimitExceeded("take-home refused: " + "; ".join(refused))
    needs = [f.message for f in findings if f.severity == "needs_reason"]
    reason = (reason or "").strip() or None
    if needs and reason is None:
        raise SoftLimitNeedsReview("; ".join(needs) + " (give the reason with the dispense)")
    stock = supplies.check_supply(
        session=session,
        actor=actor,
        now=now,
        molecule=protocol.molecule,
        route=protocol.route,
        lot_id=lot_id,
        lot_units=units if lot_units is None else lot_units,
        mg=new.total_mg,
        at=at,
    )
    lot_number = (lot or "").strip()
    if stock is not None:
        if lot_number and lot_number != stock.lot.lot:
            raise InvalidInput(
                f"lot {lot_number!r} is not the number of lot {stock.lot.id} ({stock.lot.lot})"
            )
        lot_number = stock.lot.lot
    if not lot_number:
        raise InvalidInput("lot is required for a take-home supply")
    row = TakeHomeDispense(
        patient_id=plan.patient_id,
        plan_id=plan.id,
        molecule=protocol.molecule,
        route=protocol.route,
        form=form.strip()[:80],
        strength_mg=float(strength_mg),
        units=int(units),
        days_supply=float(days_supply),
        directions=directions.strip(),
        lot=lot_number[:60],
        pdmp_checked=pdmp_checked,
        reason=reason,
        findings=[{"kind": f.kind, "severity": f.severity, "message": f.message} for f in findings],
        dispensed_at=at,
        dispensed_by=actor.user_id,
        recorded_at=now,
    )
    stored = audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="take_home",
        patient_id=plan.patient_id,
        detail={
            "plan": plan.id,
            "total_mg": new.total_mg,
            "days_supply": days_supply,
            "lot_id": lot_id,
        },
    )
    if stock is not None:
        stock.store(take_home_id=stored.id, patient_id=plan.patient_id)
    return stored


def void_dispense(
    *, session: Session, actor: audit.Actor, dispense_id: int, reason: str, now: datetime
) -> TakeHomeVoid:
    """Void a dispense entered in error; the dispense itself stays on record, and its draw
    from stock is voided in the ledger (the units are back on hand)."""
    row = existing(session, TakeHomeDispense, dispense_id, "take-home supply")
    if not reason.strip():
        raise InvalidInput("a void needs the reason the dispense was entered in error")
    if session.scalar(select(TakeHomeVoid.id).where(TakeHomeVoid.dispense_id == dispense_id)):
        raise Conflict(f"take-home supply {dispense_id} is already voided")
    # its draw from stock is reversed by a void entry of the ledger (both stay on record)
    supplies.void_supply_draw(
        session=session, actor=actor, take_home_id=dispense_id, reason=reason.strip(), now=now
    )
    void = TakeHomeVoid(
        dispense_id=dispense_id, reason=reason.strip(), voided_by=actor.user_id, voided_at=now
    )
    return audit.stored(
        void,
        session=session,
        actor=actor,
        at=now,
        resource_type="take_home",
        patient_id=row.patient_id,
        detail={"reason": reason.strip()},
        resource_id=dispense_id,
        action="void",
    )
