"""Pages of screenings: the summary with reasons and sources, the entry form, sign-off."""

from __future__ import annotations

from datetime import date
from typing import Any, get_args

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.screenings import schemas, service
from ketacare.core.errors import InvalidInput
from ketacare.core.screening import input_schema
from ketacare.core.screening.model import MOLECULES
from ketacare.core.terminology.treatments import treatment_vocabulary
from ketacare.web.page_call import PageCall, Refusal, page_call
from ketacare.web.render import optional_float

router = APIRouter(include_in_schema=False)


def _history_fields() -> list[tuple[str, dict[str, Any]]]:
    props = input_schema()["properties"]["history"]["properties"]
    return list(props.items())


def _treatment(form: Any) -> dict[str, str]:
    """The treatment screened for, each part chosen on the form (none pre-selected)."""
    allowed: dict[str, list[str]] = {
        "molecule": list(MOLECULES),
        "route": list(treatment_vocabulary().screening_routes),
        "setting": [str(a) for a in get_args(schemas.Treatment.model_fields["setting"].annotation)],
    }
    chosen = {name: str(form.get(name) or "").strip() for name in allowed}
    for name, options in allowed.items():
        if not chosen[name]:
            raise InvalidInput(f"{name} is missing: choose one of {', '.join(options)}")
    return chosen


#: the vitals the form asks for, in the words of its labels
_VITALS = {
    "systolic_mmhg": "systolic blood pressure (mmHg)",
    "diastolic_mmhg": "diastolic blood pressure (mmHg)",
    "heart_rate_bpm": "heart rate (/min)",
}


def _bounds(name: str) -> tuple[float, float]:
    """The data-entry bounds of one vital, read from the API's schema (one place)."""
    low = high = None
    for rule in schemas.Vitals.model_fields[name].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    if low is None or high is None:
        raise LookupError(f"{name} has no data-entry bounds in the screening schema")
    return float(low), float(high)


def _form_values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"treatment": _treatment(form)}
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
    vitals = {k: optional_float(str(form.get(k) or ""), words) for k, words in _VITALS.items()}
    for name, value in vitals.items():
        low, high = _bounds(name)
        if value is not None and not low <= value <= high:
            raise InvalidInput(
                f"{_VITALS[name]} {value:g} is out of range: allowed {low:g} to {high:g} "
                "(a data-entry bound, not a clinical threshold)"
            )
    sbp, dbp = vitals["systolic_mmhg"], vitals["diastolic_mmhg"]
    if sbp is not None and dbp is not None and dbp >= sbp:
        raise InvalidInput(
            f"diastolic blood pressure {dbp:g} mmHg must be below systolic {sbp:g} mmHg: "
            "check the two values"
        )
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


def _summary(call: PageCall, patient_id: int, refused: Refusal | None = None) -> Response:
    session, at = call.session, call.now
    patient = get_patient(session=session, patient_id=patient_id)
    rows = service.list_screenings(session=session, actor=call.actor, patient_id=patient_id, now=at)
    policy = service.site_policy(call.settings)
    return call.render(
        "screenings/summary.html",
        {
            "patient": patient,
            "latest": rows[0] if rows else None,
            "rows": rows,
            "history_fields": _history_fields(),
            "molecules": MOLECULES,
            "routes": list(treatment_vocabulary().screening_routes.items()),
            "in_force": service.in_force(session=session, patient_id=patient_id, today=at.date()),
            "policy_days": policy.get("screening_valid_days") if policy else None,
            "policy_name": policy.name if policy else None,
            "entered": call.posted() if refused else {},
        },
        refused=refused,
    )


@router.get("/patients/{patient_id}/screening", response_class=HTMLResponse)
def screening_page(patient_id: int, call: PageCall = page_call("screening:read")) -> Response:
    return _summary(call, patient_id)


@router.post("/patients/{patient_id}/screening")
def run_screening(patient_id: int, call: PageCall = page_call("screening:run")) -> Response:
    def act() -> object:
        data = schemas.ScreeningCreate.model_validate(_form_values(call.form))
        return call.do(
            service.run_screening,
            patient_id=patient_id,
            form=data.model_dump(exclude_none=True),
            policy=service.site_policy(call.settings),
        )

    return call.attempt(
        act,
        done=f"/patients/{patient_id}/screening",
        again=lambda refused: _summary(call, patient_id, refused),
    )


def _valid_until(text: str) -> date | None:
    text = text.strip()
    try:
        return date.fromisoformat(text) if text else None
    except ValueError as exc:
        raise InvalidInput(f"valid_until: {exc}") from None


@router.post("/screenings/{screening_id}/sign")
def sign_screening(screening_id: int, call: PageCall = page_call("screening:sign")) -> Response:
    patient_id = service.get_screening(session=call.session, screening_id=screening_id).patient_id
    return call.attempt(
        lambda: call.do(
            service.sign,
            screening_id=screening_id,
            note=call.text("note"),
            valid_until=_valid_until(call.text("valid_until")),
            policy=service.site_policy(call.settings),
        ),
        done=f"/patients/{patient_id}/screening",
        again=lambda refused: _summary(call, patient_id, refused),
    )
