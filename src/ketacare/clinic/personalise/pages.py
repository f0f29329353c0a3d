"""The Personalise view of a plan: levels, the individual fit, recommendations, accept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.personalise import service
from ketacare.clinic.plans import service as plans
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.infra.permissions import Role
from ketacare.web.deps import ensure_patient_scope
from ketacare.web.page_call import PageCall, Refusal, page_call
from ketacare.web.render import local_datetime, optional_float

router = APIRouter(include_in_schema=False)


def _target(form: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]], float | None]:
    auc = optional_float(str(form.get("target_auc") or ""), "target AUC")
    conc = optional_float(str(form.get("target_concentration") or ""), "target concentration")
    if auc is None and conc is None:
        return None, [], None
    target = {"auc_ng_h_per_ml": auc} if auc is not None else {"concentration_ng_per_ml": conc}
    options: list[dict[str, Any]] = []
    duration = optional_float(str(form.get("iv_duration_h") or ""), "IV duration")
    if duration:
        options.append({"route": "iv_infusion", "duration_h": duration})
    interval = optional_float(str(form.get("interval_h") or ""), "interval")
    route = str(form.get("route") or "")
    if interval and route:
        options.append({"route": route, "interval_h": interval, "n_doses": 1})
    if not options:
        raise InvalidInput("give at least one option: an IV duration, or a route and interval")
    return target, options, optional_float(str(form.get("ceiling") or ""), "ceiling")


def _view(
    call: PageCall, plan_id: int, refused: Refusal | None = None, *, recommend: bool = False
) -> Response:
    session = call.session
    plan = plans.get_plan(
        session=session, plan_id=plan_id, patient_view=call.principal.role is Role.PATIENT
    )
    ensure_patient_scope(call.principal, "plan:read", plan.patient_id)
    patient = get_patient(session=session, patient_id=plan.patient_id)
    form = call.form if recommend else None
    result = None
    problem = None
    if refused is None:
        try:
            target, options, ceiling = _target(form) if form is not None else (None, [], None)
            result = service.personalise(
                session=session,
                actor=call.actor,
                settings=call.settings,
                plan_id=plan_id,
                now=call.now,
                target=target,
                options=options,
                ceiling=ceiling,
            )
        except KetacareError as exc:
            problem = str(exc)
    return call.render(
        "personalise/personalise.html",
        {
            "plan": plan,
            "patient": patient,
            "result": result,
            "problem": problem,
            "unavailable": service.unavailable(settings=call.settings, plan=plan),
            "levels": service.levels(session=session, plan=plan),
            "form": {k: str(v) for k, v in (form or {}).items()},
            "chart": None
            if result is None
            else {
                "time_h": result["prediction"]["time_h"],
                "map": result["prediction"]["plasma_ng_per_ml"],
                "band": result["prediction"]["plasma_band"],
                "typical": result["prediction"]["typical_plasma_ng_per_ml"],
                "samples": result["samples"],
            },
        },
        refused=refused,
    )


@router.get("/plans/{plan_id}/personalise", response_class=HTMLResponse)
def personalise_page(plan_id: int, call: PageCall = page_call("plan:read")) -> Response:
    return _view(call, plan_id)


@router.post("/plans/{plan_id}/personalise", response_class=HTMLResponse)
def recommend_page(plan_id: int, call: PageCall = page_call("plan:write")) -> Response:
    return _view(call, plan_id, recommend=True)


@router.post("/plans/{plan_id}/levels")
def add_level(plan_id: int, call: PageCall = page_call("patient:write")) -> Response:
    def act() -> None:
        sampled = local_datetime(call.text("sampled_at"), "sample time", call.settings.zone)
        blq = call.form.get("below_lloq") == "yes"
        call.do(
            service.add_level,
            settings=call.settings,
            plan_id=plan_id,
            sampled_at=sampled,
            analyte=call.text("analyte").strip(),  # no default: the form asks which
            value=None if blq else optional_float(call.text("value"), "value"),
            lloq=optional_float(call.text("lloq"), "LLOQ"),
        )
        if not blq and call.form.get("value") in (None, ""):
            raise InvalidInput("give the measured value, or tick 'below the LLOQ'")

    return call.attempt(
        act,
        done=f"/plans/{plan_id}/personalise",
        again=lambda refused: _view(call, plan_id, refused),
    )


@router.post("/plans/{plan_id}/personalise/accept")
def accept_page(plan_id: int, call: PageCall = page_call("plan:write")) -> Response:
    return call.attempt(
        lambda: call.do(
            service.accept,
            settings=call.settings,
            plan_id=plan_id,
            dose_mg=optional_float(call.text("dose_mg"), "dose"),
            rate_mg_per_h=optional_float(call.text("rate_mg_per_h"), "rate"),
        ),
        done=lambda new: call.redirect(f"/plans/{new.id}"),
        again=lambda refused: _view(call, plan_id, refused),
    )
