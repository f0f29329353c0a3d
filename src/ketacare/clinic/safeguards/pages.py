"""Pages of safeguards: the cumulative dose of a patient, with its chart."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans import dosing
from ketacare.clinic.plans import service as plans
from ketacare.clinic.plans.orm import Plan
from ketacare.clinic.safeguards import schemas, service
from ketacare.clinic.safeguards.orm import TakeHomeDispense
from ketacare.clinic.safeguards.service import PatientDose
from ketacare.clinic.stock import supplies as stock_supplies
from ketacare.clinic.stock.accounting import keeps_stock_of
from ketacare.core.errors import InvalidInput
from ketacare.core.safeguards import DoseGiven, molecule_label, total
from ketacare.infra.db import existing
from ketacare.web.page_call import PageCall, Refusal, mapped_status, page_call
from ketacare.web.render import optional_float, optional_int

router = APIRouter(include_in_schema=False)


def chart_points(dose: PatientDose, zone: ZoneInfo) -> dict[str, Any]:
    """The page's chart: per molecule, the running total given (one step per session),
    and for each mg cap the total of its window ending at each session, with the cap."""
    doses = dose.cumulative.doses

    def point(d: DoseGiven, y: float, text: str) -> dict[str, Any]:
        local = d.at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        return {"x": int(d.at.timestamp() * 1000), "y": round(y, 3), "local": local, "text": text}

    series: list[dict[str, Any]] = []
    for m in dose.cumulative.molecules:
        running = 0.0
        points = []
        for d in doses:
            if d.molecule == m:
                running += d.mg
                points.append(point(d, running, f"session {d.session_id}: {running:.1f} mg in all"))
        series.append({"label": f"{molecule_label(m)}: running total (mg)", "points": points})
    for s in dose.caps:
        if s.measure != "mg":
            continue
        cap = s.cap
        points = [
            point(
                d,
                total(doses, molecule=cap.molecule, window_days=cap.window_days, at=d.at).mg,
                f"session {d.session_id}: {cap.window_text()}",
            )
            for d in doses
            if d.molecule == cap.molecule
        ]
        series.append(
            {
                "label": f"{molecule_label(cap.molecule)} {cap.window_text()} (mg)",
                "points": points,
                "limit": s.limit,
                "limit_label": f"clinic cap {s.limit:g} mg {cap.window_text()}",
            }
        )
    return {"zone": zone.key, "series": series}


TAKE_HOME_FIELDS = (
    "plan_id",
    "form",
    "strength_mg",
    "units",
    "days_supply",
    "directions",
    "lot",
    "lot_id",
    "lot_units",
    "pdmp_checked",
    "reason",
)


def _page(
    call: PageCall,
    patient_id: int,
    refused: Refusal | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    session, at, settings = call.session, call.now, call.settings
    patient = get_patient(session=session, patient_id=patient_id)
    found = service.cumulative_dose(
        session=session, actor=call.actor, settings=settings, patient_id=patient_id, now=at
    )
    supplies = [
        schemas.TakeHomeRead.of(r)
        for r in service.dispenses(session=session, actor=call.actor, patient_id=patient_id, now=at)
    ]
    library = dosing.library(settings)
    take_home_plans = [
        p
        for p in session.scalars(
            select(Plan)
            .where(Plan.patient_id == patient_id, Plan.status.in_(("signed", "active")))
            .order_by(Plan.id)
        )
        if (proto := library.get(protocol_id=p.protocol_id)).route in service.TAKE_HOME_ROUTES
        and proto.molecule != "esketamine"
    ]
    treatments = {
        (proto.molecule, proto.route)
        for p in take_home_plans
        for proto in (library.get(protocol_id=p.protocol_id),)
    }
    today = at.astimezone(settings.zone).date()
    lots = {
        b.lot_id: b
        for molecule, route in sorted(treatments)
        for b in stock_supplies.fitting_lots(
            session=session, molecule=molecule, route=route, today=today
        )
    }
    return call.render(
        "safeguards/cumulative.html",
        {
            "patient": patient,
            "dose": schemas.CumulativeDose.of(found),
            "chart": chart_points(found, settings.zone),
            "supplies": supplies,
            "take_home_policy": service.take_home_policy(settings),
            "take_home_plans": take_home_plans,
            "stock_kept": any(keeps_stock_of(session, m) for m, _ in treatments),
            "lots": list(lots.values()),
            "form": form or {},
        },
        refused=refused,
    )


@router.get("/patients/{patient_id}/cumulative-dose", response_class=HTMLResponse)
def cumulative_dose_page(patient_id: int, call: PageCall = page_call("session:read")) -> Response:
    return _page(call, patient_id)


@router.post("/patients/{patient_id}/take-home", response_class=HTMLResponse)
def dispense_page(patient_id: int, call: PageCall = page_call("takehome:dispense")) -> Response:
    """Dispense from the page; a refusal comes back with the reason and the form kept."""
    values = call.texts(TAKE_HOME_FIELDS)

    def act() -> object:
        plan_id = optional_int(values["plan_id"], "plan")
        strength = optional_float(values["strength_mg"], "strength (mg per unit)")
        units = optional_int(values["units"], "units")
        days = optional_int(values["days_supply"], "days' supply (whole days)")
        if plan_id is None or strength is None or units is None or days is None:
            raise InvalidInput("plan, strength, units and days' supply are all required")
        data = call.parse(
            schemas.TakeHomeIn,
            strength_mg=strength,
            units=units,
            days_supply=days,
            pdmp_checked=values["pdmp_checked"] == "yes",
        )
        plan = plans.get_plan(session=call.session, plan_id=plan_id)
        if plan.patient_id != patient_id:
            raise InvalidInput(f"plan {plan_id} is not a plan of this patient")
        return call.do(
            service.dispense, settings=call.settings, plan_id=plan_id, **data.model_dump()
        )

    return call.attempt(
        act,
        done=f"/patients/{patient_id}/cumulative-dose",
        again=lambda refused: _page(call, patient_id, refused, form=values),
        status=mapped_status,
    )


@router.post("/take-home/{dispense_id}/void", response_class=HTMLResponse)
def void_page(dispense_id: int, call: PageCall = page_call("takehome:dispense")) -> Response:
    row = existing(call.session, TakeHomeDispense, dispense_id, "take-home supply")
    patient_id = row.patient_id
    return call.attempt(
        lambda: call.do(
            service.void_dispense,
            dispense_id=dispense_id,
            reason=call.parse(schemas.VoidIn).reason,
        ),
        done=f"/patients/{patient_id}/cumulative-dose",
        again=lambda refused: _page(call, patient_id, refused),
        status=mapped_status,
    )
