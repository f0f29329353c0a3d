"""Pages of the patient record: the list with search, registration, the chart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.patients import schemas, service
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.terminology import icd10cm_codes
from ketacare.infra.permissions import Scope, allowed, check
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, ensure_patient_scope, page_permission
from ketacare.web.render import optional_float, optional_int, page

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=500)]


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "input"
    return f"{field}: {first.get('msg', 'invalid')}"


@router.get("/patients", response_class=HTMLResponse)
def patient_list(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    q: str = "",
    principal: Principal = page_permission("patient:read"),
) -> Response:
    own = check("patient:read", principal.role) is Scope.OWN
    rows, total = service.list_patients(
        session=session,
        actor=actor_of(request, principal),
        now=at,
        search=q[:100],
        only_patient_id=(principal.patient_id or -1) if own else None,
        limit=100,
    )
    template = "patients/rows.html" if request.headers.get("hx-request") else "patients/list.html"
    return page(
        request, ctx, template, {"patients": rows, "total": total, "q": q, "today": at.date()}
    )


@router.get("/patients/new", response_class=HTMLResponse)
def new_patient_form(
    request: Request, ctx: Ctx, _: Principal = page_permission("patient:create")
) -> Response:
    return page(request, ctx, "patients/new.html", {"form": {}})


@router.post("/patients")
def register_patient(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    given_name: Text,
    family_name: Text,
    birth_date: Text,
    sex: Text,
    phone: Text = "",
    email: Text = "",
    address: Text = "",
    weight_kg: Text = "",
    height_cm: Text = "",
    principal: Principal = page_permission("patient:create"),
) -> Response:
    form = {
        "given_name": given_name,
        "family_name": family_name,
        "birth_date": birth_date,
        "sex": sex,
        "phone": phone,
        "email": email,
        "address": address,
        "weight_kg": weight_kg,
        "height_cm": height_cm,
    }
    try:
        data = schemas.PatientCreate(
            given_name=given_name,
            family_name=family_name,
            birth_date=_date(birth_date),
            sex=sex,
            phone=phone or None,
            email=email or None,
            address=address or None,
            weight_kg=optional_float(weight_kg, "weight_kg"),
            height_cm=optional_float(height_cm, "height_cm"),
        )
        patient = service.create_patient(
            session=session, actor=actor_of(request, principal), data=data, now=at
        )
    except (KetacareError, ValidationError) as exc:
        session.rollback()
        message = _validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
        return page(
            request, ctx, "patients/new.html", {"form": form, "error": message}, status_code=422
        )
    return RedirectResponse(f"/patients/{patient.id}", status_code=303)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"date {text!r} is not a date: use YYYY-MM-DD") from None


def _chart(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    patient_id: int,
    at: Any,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    ensure_patient_scope(principal, "patient:read", patient_id)
    chart = service.read_chart(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )
    from ketacare.clinic.outcomes.panel import panel_for_chart

    outcomes = panel_for_chart(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        now=at,
        settings=ctx.settings,
    )
    cumulative = None
    if allowed("session:read", principal.role):
        from ketacare.clinic.safeguards import schemas as safeguards_schemas
        from ketacare.clinic.safeguards import service as safeguards

        cumulative = safeguards_schemas.CumulativeDose.of(
            safeguards.cumulative_dose(
                session=session,
                actor=actor_of(request, principal),
                settings=ctx.settings,
                patient_id=patient_id,
                now=at,
            )
        )
    in_force = None
    if allowed("screening:read", principal.role):
        from ketacare.clinic.screenings.service import in_force as screenings_in_force

        in_force = screenings_in_force(session=session, patient_id=patient_id, today=at.date())
    consents = None
    if principal.role != "patient":
        from ketacare.clinic.research import service as research

        consents = research.consent_history(session=session, patient_id=patient_id)
    return page(
        request,
        ctx,
        "patients/chart.html",
        {
            "consents": consents,
            "chart": chart,
            "p": chart.patient,
            "error": error,
            "today": at.date(),
            "known_codes": sorted(icd10cm_codes().items()),
            "outcomes": outcomes,
            "cumulative": cumulative,
            "in_force": in_force,
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}/report.pdf")
def report_pdf(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("plan:read"),
) -> Response:
    from ketacare.clinic.documents import Letterhead
    from ketacare.clinic.outcomes.policy import booster_rules
    from ketacare.clinic.outcomes.report import progress_report

    ensure_patient_scope(principal, "plan:read", patient_id)
    data = progress_report(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        now=at,
        zone=ctx.settings.zone,
        loss_confirmations=ctx.settings.outcome_loss_confirmations,
        booster_rules=booster_rules(ctx.settings),
        letterhead=Letterhead.of(ctx.settings),
    )
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="progress-report-{patient_id}.pdf"'},
    )


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def chart_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("patient:read"),
) -> Response:
    return _chart(request, ctx, session, principal, patient_id, at)


def _write(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    patient_id: int,
    at: Any,
    action: Callable[[], object],
) -> Response:
    try:
        action()
    except (KetacareError, ValidationError) as exc:
        session.rollback()  # nothing of the refused request is kept
        message = _validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
        return _chart(
            request, ctx, session, principal, patient_id, at, error=message, status_code=422
        )
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


@router.post("/patients/{patient_id}/weights")
def add_weight(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    weight_kg: Text,
    height_cm: Text = "",
    principal: Principal = page_permission("patient:write"),
) -> Response:
    def act() -> object:
        weight = optional_float(weight_kg, "weight_kg")
        if weight is None:
            raise InvalidInput("weight_kg is required")
        data = schemas.WeightCreate(
            weight_kg=weight, height_cm=optional_float(height_cm, "height_cm")
        )
        return service.add_weight(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            data=data,
            now=at,
        )

    return _write(request, ctx, session, principal, patient_id, at, act)


@router.post("/patients/{patient_id}/conditions")
def add_condition(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    icd10_code: Text,
    display: Text = "",
    onset_date: Text = "",
    principal: Principal = page_permission("patient:write"),
) -> Response:
    def act() -> object:
        data = schemas.ConditionCreate(
            icd10_code=icd10_code,
            display=display or None,
            onset_date=_date(onset_date) if onset_date.strip() else None,
        )
        return service.add_condition(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            data=data,
            now=at,
        )

    return _write(request, ctx, session, principal, patient_id, at, act)


@router.post("/patients/{patient_id}/medications")
def add_medication(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    name: Text,
    rxnorm_code: Text = "",
    dose_text: Text = "",
    principal: Principal = page_permission("patient:write"),
) -> Response:
    def act() -> object:
        data = schemas.MedicationCreate(
            name=name, rxnorm_code=rxnorm_code or None, dose_text=dose_text or None
        )
        return service.add_medication(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            data=data,
            now=at,
        )

    return _write(request, ctx, session, principal, patient_id, at, act)


@router.post("/patients/{patient_id}/allergies")
def add_allergy(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    substance: Text,
    reaction: Text = "",
    severity: Text = "",
    principal: Principal = page_permission("patient:write"),
) -> Response:
    def act() -> object:
        data = schemas.AllergyCreate(
            substance=substance, reaction=reaction or None, severity=severity or None
        )  # type: ignore[arg-type]
        return service.add_allergy(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            data=data,
            now=at,
        )

    return _write(request, ctx, session, principal, patient_id, at, act)


@router.post("/patients/{patient_id}/amend")
def amend_patient(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    reason: Text,
    version: Text,
    given_name: Text = "",
    family_name: Text = "",
    birth_date: Text = "",
    sex: Text = "",
    phone: Text = "",
    email: Text = "",
    address: Text = "",
    principal: Principal = page_permission("patient:write"),
) -> Response:
    def act() -> object:
        patient = service.get_patient(session=session, patient_id=patient_id)
        submitted: dict[str, Any] = {
            "given_name": given_name,
            "family_name": family_name,
            "sex": sex,
            "phone": phone,
            "email": email,
            "address": address,
        }
        changes = {
            k: v.strip() for k, v in submitted.items() if v.strip() != (getattr(patient, k) or "")
        }
        if birth_date.strip() and _date(birth_date) != patient.birth_date:
            changes["birth_date"] = _date(birth_date)
        data = schemas.PatientAmend(
            reason=reason,
            version=optional_int(version, "version") or 0,
            **{k: (v if v != "" else None) for k, v in changes.items()},
        )
        return service.amend_patient(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            data=data,
            now=at,
        )

    return _write(request, ctx, session, principal, patient_id, at, act)


@router.post("/patients/{patient_id}/entries/{kind}/{entry_id}/status")
def change_status(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    kind: str,
    entry_id: int,
    status: Text,
    reason: Text,
    principal: Principal = page_permission("patient:write"),
) -> Response:
    def act() -> object:
        data = schemas.StatusChange(status=status, reason=reason)
        return service.change_status(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            kind=kind,
            entry_id=entry_id,
            data=data,
            now=at,
        )

    return _write(request, ctx, session, principal, patient_id, at, act)
