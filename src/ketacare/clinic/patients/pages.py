"""Pages of the patient record: the list with search, registration, the chart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any, get_args

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from ketacare.clinic.patients import schemas, service
from ketacare.core.errors import InvalidInput
from ketacare.core.terminology import icd10cm_codes
from ketacare.infra.errors import PossibleDuplicate
from ketacare.infra.permissions import Scope, allowed, check
from ketacare.web.deps import ensure_patient_scope
from ketacare.web.page_call import PageCall, Refusal, conflict_or_unprocessable, page_call
from ketacare.web.render import optional_float, optional_int

router = APIRouter(include_in_schema=False)

#: the plausible weight and height a form states beside its fields (the service checks them)
RANGES = {"weight": service.WEIGHT_KG, "height": service.HEIGHT_CM}


@router.get("/patients", response_class=HTMLResponse)
def patient_list(q: str = "", call: PageCall = page_call("patient:read")) -> Response:
    own = check("patient:read", call.principal.role) is Scope.OWN
    rows, total = call.do(
        service.list_patients,
        search=q[:100],
        only_patient_id=(call.principal.patient_id or -1) if own else None,
        limit=100,
    )
    partial = call.request.headers.get("hx-request")
    return call.render(
        "patients/rows.html" if partial else "patients/list.html",
        {"patients": rows, "total": total, "q": q, "today": call.now.date()},
    )


@router.get("/patients/new", response_class=HTMLResponse)
def new_patient_form(call: PageCall = page_call("patient:create")) -> Response:
    return call.render("patients/new.html", {"form": {}, "ranges": RANGES})


REGISTRATION_FIELDS = (
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "phone",
    "email",
    "address",
    "weight_kg",
    "height_cm",
)


@router.post("/patients")
def register_patient(call: PageCall = page_call("patient:create")) -> Response:
    def act() -> Any:
        if not call.text("sex").strip():
            raise InvalidInput(f"sex is missing: choose one of {', '.join(get_args(schemas.Sex))}")
        data = call.parse(
            schemas.PatientCreate,
            birth_date=_date(call.text("birth_date")),
            weight_kg=optional_float(call.text("weight_kg"), "weight (kg)"),
            height_cm=optional_float(call.text("height_cm"), "height (cm)"),
            confirm_duplicate=call.text("confirm_duplicate") == "yes",
        )
        return call.do(service.create_patient, data=data)

    def again(refused: Refusal) -> Response:
        duplicates = []
        if isinstance(refused.error, PossibleDuplicate):
            duplicates = [
                service.get_patient(session=call.session, patient_id=i)
                for i in refused.error.matches
            ]
        return call.render(
            "patients/new.html",
            {"form": call.texts(REGISTRATION_FIELDS), "duplicates": duplicates, "ranges": RANGES},
            refused=None if duplicates else refused,
            status_code=409 if duplicates else 200,
        )

    return call.attempt(
        act,
        done=lambda patient: call.redirect(f"/patients/{patient.id}"),
        again=again,
        status=conflict_or_unprocessable,
    )


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"date {text!r} is not a date: use YYYY-MM-DD") from None


def _chart(call: PageCall, patient_id: int, refused: Refusal | None = None) -> Response:
    session, principal, at, settings = call.session, call.principal, call.now, call.settings
    ensure_patient_scope(principal, "patient:read", patient_id)
    # Held until the page is built: the panels below read the same patient, and the
    # session finds a row it still holds without asking the database again (it keeps
    # only weak references to what it loaded).
    held = service.get_patient(session=session, patient_id=patient_id)
    chart = service.read_chart(session=session, actor=call.actor, patient_id=patient_id, now=at)
    from ketacare.clinic.outcomes.panel import panel_for_chart

    outcomes = panel_for_chart(
        session=session, actor=call.actor, patient_id=patient_id, now=at, settings=settings
    )
    cumulative = None
    if allowed("session:read", principal.role):
        from ketacare.clinic.safeguards import schemas as safeguards_schemas
        from ketacare.clinic.safeguards import service as safeguards

        cumulative = safeguards_schemas.CumulativeDose.of(
            safeguards.cumulative_dose(
                session=session,
                actor=call.actor,
                settings=settings,
                patient_id=patient_id,
                now=at,
            )
        )
    in_force = None
    if allowed("screening:read", principal.role):
        from ketacare.clinic.screenings.service import in_force as screenings_in_force

        in_force = screenings_in_force(session=session, patient_id=patient_id, today=at.date())
    treatment_consent = None
    if allowed("consent:read", principal.role):
        from ketacare.clinic.consent.pages import chart_panel
        from ketacare.clinic.plans.gates import consent_programs_needed

        needed, treated = consent_programs_needed(
            session=session, settings=settings, patient_id=patient_id
        )
        treatment_consent = chart_panel(
            session=session, patient_id=patient_id, needed=needed, treated=treated
        )
    rems_enrolment = None
    if allowed("rems:read", principal.role):
        from ketacare.clinic.rems.service import enrolment

        rems_enrolment = enrolment(session=session, patient_id=patient_id)
    from ketacare.clinic.research import service as research

    # staff see every decision; a patient sees their own, and may withdraw one in force
    consents = research.consent_history(session=session, patient_id=patient_id)
    retired_by = None
    if chart.patient.retired_by is not None:
        from ketacare.clinic.accounts.orm import User

        retired_by = call.session.get(User, chart.patient.retired_by)
    from ketacare.clinic.assessments.pages import open_alerts_shown

    page = call.render(
        "patients/chart.html",
        {
            "ranges": RANGES,
            "retired_by": retired_by,
            "consents": consents,
            "tc": treatment_consent,
            "rems_enrolment": rems_enrolment,
            "rems_shown": allowed("rems:read", principal.role),
            "chart": chart,
            "p": chart.patient,
            "today": at.date(),
            "known_codes": sorted(icd10cm_codes().items()),
            "outcomes": outcomes,
            "cumulative": cumulative,
            "in_force": in_force,
            **open_alerts_shown(call, patient_id),
        },
        refused=refused,
    )
    del held
    return page


@router.get("/patients/{patient_id}/report.pdf")
def report_pdf(patient_id: int, call: PageCall = page_call("plan:read")) -> Response:
    from ketacare.clinic.documents import Letterhead
    from ketacare.clinic.outcomes.policy import booster_rules
    from ketacare.clinic.outcomes.report import progress_report

    call.own(patient_id)
    data = call.do(
        progress_report,
        patient_id=patient_id,
        zone=call.settings.zone,
        loss_confirmations=call.settings.outcome_loss_confirmations,
        booster_rules=booster_rules(call.settings),
        letterhead=Letterhead.of(call.settings),
        patient_view=call.principal.role == "patient",
    )
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="progress-report-{patient_id}.pdf"'},
    )


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def chart_page(patient_id: int, call: PageCall = page_call("patient:read")) -> Response:
    return _chart(call, patient_id)


def _write(
    call: PageCall, patient_id: int, add: Callable[..., object], parse: Callable[[], BaseModel]
) -> Response:
    """The form through the API's schema, then one change of the record through its
    service; back to the chart, or the chart again with the reason (nothing kept)."""
    return call.attempt(
        lambda: call.do(add, patient_id=patient_id, data=parse()),
        done=f"/patients/{patient_id}",
        again=lambda refused: _chart(call, patient_id, refused),
    )


@router.post("/patients/{patient_id}/weights")
def add_weight(patient_id: int, call: PageCall = page_call("patient:write")) -> Response:
    def parse() -> BaseModel:
        weight = optional_float(call.text("weight_kg"), "weight (kg)")
        if weight is None:
            raise InvalidInput("weight_kg is required")
        height = optional_float(call.text("height_cm"), "height (cm)")
        return schemas.WeightCreate(weight_kg=weight, height_cm=height)

    return _write(call, patient_id, service.add_weight, parse)


@router.post("/patients/{patient_id}/conditions")
def add_condition(patient_id: int, call: PageCall = page_call("patient:write")) -> Response:
    def parse() -> BaseModel:
        onset = call.text("onset_date").strip()
        return call.parse(schemas.ConditionCreate, onset_date=_date(onset) if onset else None)

    return _write(call, patient_id, service.add_condition, parse)


@router.post("/patients/{patient_id}/medications")
def add_medication(patient_id: int, call: PageCall = page_call("patient:write")) -> Response:
    return _write(
        call, patient_id, service.add_medication, lambda: call.parse(schemas.MedicationCreate)
    )


@router.post("/patients/{patient_id}/allergies")
def add_allergy(patient_id: int, call: PageCall = page_call("patient:write")) -> Response:
    return _write(call, patient_id, service.add_allergy, lambda: call.parse(schemas.AllergyCreate))


@router.post("/patients/{patient_id}/retire")
def retire_patient(patient_id: int, call: PageCall = page_call("patient:retire")) -> Response:
    """Retire a record entered in error (reason required); back to it, now read-only."""
    return call.attempt(
        lambda: call.do(
            service.retire_patient,
            patient_id=patient_id,
            reason=call.text("reason"),
            zone=call.settings.zone,
        ),
        done=f"/patients/{patient_id}",
        again=lambda refused: _chart(call, patient_id, refused),
        status=conflict_or_unprocessable,
    )


#: the fields of the record a correction may change (blank: leave as it is)
AMENDABLE = ("given_name", "family_name", "sex", "phone", "email", "address")


@router.post("/patients/{patient_id}/amend")
def amend_patient(patient_id: int, call: PageCall = page_call("patient:write")) -> Response:
    def parse() -> BaseModel:
        patient = service.get_patient(session=call.session, patient_id=patient_id)
        changes: dict[str, Any] = {
            k: v for k, v in call.texts(AMENDABLE).items() if v != (getattr(patient, k) or "")
        }
        birth_date = call.text("birth_date")
        if birth_date.strip() and _date(birth_date) != patient.birth_date:
            changes["birth_date"] = _date(birth_date)
        return schemas.PatientAmend(
            reason=call.text("reason"),
            version=optional_int(call.text("version"), "version") or 0,
            **{k: (v if v != "" else None) for k, v in changes.items()},
        )

    return _write(call, patient_id, service.amend_patient, parse)


@router.post("/patients/{patient_id}/entries/{kind}/{entry_id}/status")
def change_status(
    patient_id: int, kind: str, entry_id: int, call: PageCall = page_call("patient:write")
) -> Response:
    return _write(
        call,
        patient_id,
        partial(service.change_status, kind=kind, entry_id=entry_id),
        lambda: call.parse(schemas.StatusChange),
    )
