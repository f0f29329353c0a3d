"""Pages of screenings: the summary with reasons and sources, the entry form, sign-off."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.screenings import schemas, service
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.screening import input_schema
from ketacare.core.screening.model import MOLECULES
from ketacare.core.terminology.treatments import treatment_vocabulary
from ketacare.web.deps import Ctx, DbSession, FormFields, Now, actor_of, page_permission
from ketacare.web.render import optional_float, page

router = APIRouter(include_in_schema=False)


def _history_fields() -> list[tuple[str, dict[str, Any]]]:
    props = input_schema()["properties"]["history"]["properties"]
    return list(props.items())


def _form_values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "treatment": {
            "molecule": form.get("molecule"),
            "route": form.get("route"),
            "setting": form.get("setting") or "in_clinic",
        },
    }
    history: dict[str, Any] = {}
    for key, spec in _history_fields():
        raw = str(form.get(f"h_{key}") or "")
        if not raw:
            continue
        if "enum" in spec:
            history[key] = raw
        else:
            history[key] = raw == "yes"
    values["history"] = history
    vitals = {
        k: optional_float(str(form.get(k) or ""), k)
        for k in ("systolic_mmhg", "diastolic_mmhg", "heart_rate_bpm")
    }
    values["vitals"] = {k: v for k, v in vitals.items() if v is not None} or None
    labs = []
    for test in ("alt", "ast", "alp", "ggt", "bilirubin"):
        value = optional_float(str(form.get(f"lab_{test}") or ""), f"{test} value")
        uln = optional_float(str(form.get(f"uln_{test}") or ""), f"{test} upper limit of normal")
        if value is None and uln is None:
            continue
        if value is None or uln is None:
            raise InvalidInput(
                f"liver test {test}: give both the value and the upper limit of normal"
            )
        labs.append({"test": test, "value": value, "upper_limit_normal": uln})
    values["labs"] = labs
    if form.get("pregnancy_status"):
        values["pregnancy_status"] = form.get("pregnancy_status")
    if form.get("breastfeeding") in ("yes", "no"):
        values["breastfeeding"] = form.get("breastfeeding") == "yes"
    return values


def _summary(
    request: Request,
    ctx: Ctx,
    session: Any,
    principal: Principal,
    patient_id: int,
    at: Any,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    patient = get_patient(session=session, patient_id=patient_id)
    rows = service.list_screenings(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )
    policy = service.site_policy(ctx.settings)
    return page(
        request,
        ctx,
        "screenings/summary.html",
        {
            "patient": patient,
            "latest": rows[0] if rows else None,
            "rows": rows,
            "history_fields": _history_fields(),
            "molecules": MOLECULES,
            "routes": list(treatment_vocabulary().screening_routes.items()),
            "error": error,
            "in_force": service.in_force(session=session, patient_id=patient_id, today=at.date()),
            "policy_days": policy.get("screening_valid_days") if policy else None,
            "policy_name": policy.name if policy else None,
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}/screening", response_class=HTMLResponse)
def screening_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("screening:read"),
) -> Response:
    return _summary(request, ctx, session, principal, patient_id, at)


@router.post("/patients/{patient_id}/screening")
def run_screening(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("screening:run"),
) -> Response:
    try:
        data = schemas.ScreeningCreate.model_validate(_form_values(form))
        service.run_screening(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            form=data.model_dump(exclude_none=True),
            now=at,
            policy=service.site_policy(ctx.settings),
        )
    except (KetacareError, ValidationError) as exc:
        session.rollback()
        message = str(exc) if isinstance(exc, KetacareError) else _first(exc)
        return _summary(
            request, ctx, session, principal, patient_id, at, error=message, status_code=422
        )
    return RedirectResponse(f"/patients/{patient_id}/screening", status_code=303)


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


@router.post("/screenings/{screening_id}/sign")
def sign_screening(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    screening_id: int,
    principal: Principal = page_permission("screening:sign"),
) -> Response:
    row = service.get_screening(session=session, screening_id=screening_id)
    patient_id = row.patient_id
    try:
        raw = str(form.get("valid_until") or "").strip()
        until = date.fromisoformat(raw) if raw else None
        service.sign(
            session=session,
            actor=actor_of(request, principal),
            screening_id=screening_id,
            note=str(form.get("note") or ""),
            valid_until=until,
            now=at,
            policy=service.site_policy(ctx.settings),
        )
    except ValueError as exc:
        session.rollback()
        message = str(exc) if isinstance(exc, KetacareError) else f"valid_until: {exc}"
        return _summary(
            request, ctx, session, principal, patient_id, at, error=message, status_code=422
        )
    except KetacareError as exc:
        session.rollback()
        return _summary(
            request, ctx, session, principal, patient_id, at, error=str(exc), status_code=422
        )
    return RedirectResponse(f"/patients/{patient_id}/screening", status_code=303)
