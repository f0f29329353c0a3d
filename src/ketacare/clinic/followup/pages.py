"""Pages of follow-up: staff send a link; the patient fills what is due without logging in;
outcome schedules of plans (the editor, the clinician's due lists, the patient's own list)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.assessments.pages import _answers_from_form, result_values
from ketacare.clinic.assessments.service import (
    UNANSWERED_FLAGS,
    record_assessment,
    refuse_incomplete,
)
from ketacare.clinic.followup import reminders, schedules, senders, service
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans.service import get_plan
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.instruments import IncompleteAnswers, get_instrument
from ketacare.core.outcomes.schedule import STARTS, WHENS
from ketacare.core.outcomes.templates import load_templates
from ketacare.infra.errors import Conflict
from ketacare.web.deps import Ctx, DbSession, FormFields, Now, remote_addr
from ketacare.web.page_call import (
    PageCall,
    Refusal,
    attempt,
    conflict_or_unprocessable,
    page_call,
    unprocessable,
)
from ketacare.web.render import optional_float, optional_int, page

router = APIRouter(include_in_schema=False)


def _send(
    call: PageCall,
    patient: Any,
    issue: Callable[..., tuple[Any, str]],
    again: Callable[[Refusal], Response],
    status: Callable[[Exception], int] = unprocessable,
    **values: Any,
) -> Response:
    """Issue a self-report link (the form's hours valid and channel) through the service
    ``issue``, then show it and where it was sent; refused, ``again`` shows why."""

    def sent(created: tuple[Any, str]) -> Response:
        link, token = created
        url = f"{call.base_url}/r/{token}"
        return call.render(
            "followup/sent.html",
            {
                "patient": patient,
                "link": link,
                "url": url,
                "channel": call.text("channel"),
            },
        )

    return call.attempt(
        lambda: call.do(
            issue,
            patient_id=patient.id,
            valid_hours=optional_float(call.text("valid_hours", "72"), "valid_hours") or 0,
            base_url=call.base_url,
            zone=call.settings.zone,
            channel=call.text("channel") or None,
            sendable=senders.sendable(call.settings),
            **values,
        ),
        done=sent,
        again=again,
        status=status,
    )


@router.post("/patients/{patient_id}/self-report-links", response_class=HTMLResponse)
def send_link(patient_id: int, call: PageCall = page_call("followup:write")) -> Response:
    patient = get_patient(session=call.session, patient_id=patient_id)
    return _send(
        call,
        patient,
        service.create_link,
        again=lambda refused: call.render(
            "followup/sent.html", {"patient": patient}, refused=refused
        ),
        instruments=[str(v) for v in call.form.getlist("instrument")],
    )


def _link_page(
    request: Request, ctx: Ctx, session: Any, token: str, at: Any, **extra: Any
) -> Response:
    try:
        link = service.open_link(session=session, token=token, now=at)
    except KetacareError as exc:
        return page(
            request,
            ctx,
            "followup/link.html",
            {"closed": str(exc), **extra},
            status_code=410 if "expired" in str(exc) or "used" in str(exc) else 404,
        )
    due = [get_instrument(i) for i in link.instruments if i not in link.completed]
    asked = [
        a
        for a, o in zip(_asked(link.occurrences), link.occurrences or [], strict=True)
        if o.get("instrument") not in link.completed
    ]
    return page(
        request,
        ctx,
        "followup/link.html",
        {
            "link": link,
            "due": due,
            "asked": asked,
            "token": token,
            "values": {},
            **extra,
        },
    )


@router.get("/r/{token}", response_class=HTMLResponse)
def link_page(request: Request, ctx: Ctx, session: DbSession, at: Now, token: str) -> Response:
    """A patient's self-report page, reached by a single-use link (no login)."""
    return _link_page(request, ctx, session, token, at)


@router.post("/r/{token}/{instrument_id}", response_class=HTMLResponse)
def link_submit(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    token: str,
    instrument_id: str,
) -> Response:
    """One questionnaire submitted through the link; safety flags alert the clinician."""
    values: dict[str, object] = {}
    instrument = None

    def act() -> tuple[Any, Any, list[Any]]:
        nonlocal instrument
        instrument = get_instrument(instrument_id)
        values.update(_answers_from_form(instrument, form))
        return service.submit_via_link(
            session=session,
            token=token,
            instrument_id=instrument_id,
            answers=values,
            now=at,
            remote_addr=remote_addr(request),
            accept_partial=ctx.settings.accept_partial_questionnaires,
        )

    def again(refused: Refusal) -> Response:
        if not isinstance(refused.error, IncompleteAnswers):
            return _link_page(request, ctx, session, token, at, error=refused.message)
        # nothing kept and the link not spent: the same questionnaire again, blanks named
        service.refuse_via_link(
            session=session,
            token=token,
            error=refused.error,
            now=at,
            remote_addr=remote_addr(request),
        )
        return _refused(
            _link_page(request, ctx, session, token, at, **_refusal(refused.error, values))
        )

    def done(recorded: tuple[Any, Any, list[Any]]) -> Response:
        link, row, alerts = recorded
        patient = get_patient(session=session, patient_id=link.patient_id)
        shown = result_values(session=session, patient=patient, row=row, alerts=alerts)
        return page(
            request,
            ctx,
            "followup/link_result.html",
            {"instrument": instrument, "token": token, "more": link.used_at is None, **shown},
        )

    return attempt(session, act, done=done, again=again)


def _refusal(exc: IncompleteAnswers, values: dict[str, object]) -> dict[str, Any]:
    """What a patient's page needs to show a form refused for blanks: the answers given
    (checked again), the blank questions named, and whether item 9 was among them."""
    return {
        "values": values,
        "unanswered": exc.unanswered,
        "refused": exc.instrument.id,
        "ask_item9": bool(set(exc.result.flags) & UNANSWERED_FLAGS),
    }


def _refused(response: Response) -> Response:
    """A refused submission answers 422 (the form again), like every other refusal."""
    if response.status_code == 200:
        response.status_code = 422
    return response


# --------------------------------------------------------------------------- outcome schedules

ROWS_SPARE = 3
_ROW_FIELDS = (
    "lead_hours",
    "offset_hours",
    "every_days",
    "lookback_days",
    "grace_hours",
)


def _asked(occurrences: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A link's or a schedule's occurrences for the patient's page (titles, local times)."""
    out = []
    for o in occurrences or []:
        try:
            title = get_instrument(str(o.get("instrument"))).title
        except KetacareError:
            title = str(o.get("instrument"))
        overdue_at = o.get("overdue_at")
        out.append(
            {
                "title": title,
                "label": o.get("label", ""),
                "status": o.get("status", ""),
                "overdue_at": datetime.fromisoformat(overdue_at)
                if isinstance(overdue_at, str)
                else overdue_at,
            }
        )
    return out


def _rows_from_spec(spec: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = [dict(i) for i in (spec or {}).get("items", [])]
    return rows + [{} for _ in range(ROWS_SPARE)]


def _spec_from_form(form: Any, zone: ZoneInfo) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The schedule dict a form describes, and the rows as typed (to show them again)."""
    rows: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    count = optional_int(str(form.get("rows") or "0"), "rows") or 0
    for index in range(min(count, 40)):
        row = {
            key: str(form.get(f"item-{index}-{key}") or "").strip()
            for key in ("instrument", "when", "starts", *_ROW_FIELDS)
        }
        row["anchored_to_last_treatment"] = form.get(f"item-{index}-anchored") == "yes"
        rows.append(row)
        if not row["instrument"]:
            continue
        item: dict[str, Any] = {"instrument": row["instrument"], "when": row["when"]}
        for key in _ROW_FIELDS:
            if row[key]:
                item[key] = optional_float(row[key], f"items[{len(items)}].{key}")
        if row["starts"]:
            item["starts"] = row["starts"]
        if row["anchored_to_last_treatment"]:
            item["anchored_to_last_treatment"] = True
        items.append(item)
    stop: dict[str, Any] = {}
    after = optional_float(str(form.get("after_plan_end_days") or ""), "after_plan_end_days")
    if after is not None:
        stop["after_plan_end_days"] = after
    until = str(form.get("until") or "").strip()
    if until:
        try:
            day = date.fromisoformat(until)
        except ValueError:
            raise InvalidInput(f"stop date {until!r} is not a date (YYYY-MM-DD)") from None
        stop["until"] = datetime.combine(day, time(0, 0), tzinfo=zone).isoformat()
    if form.get("when_plan_stopped") == "yes":
        stop["when_plan_stopped"] = True
    spec = {
        "grace_hours": optional_float(str(form.get("grace_hours") or ""), "grace_hours"),
        "stop": stop,
        "items": items,
    }
    return spec, rows


def _schedule_page(
    call: PageCall,
    plan_id: int,
    *,
    form_spec: dict[str, Any] | None = None,
    rows: list[dict[str, Any]] | None = None,
    refused: Refusal | None = None,
    template_id: str | None = None,
) -> Response:
    session, at = call.session, call.now
    plan, current, versions = schedules.read_schedule(
        session=session, actor=call.actor, plan_id=plan_id, now=at
    )
    patient = get_patient(session=session, patient_id=plan.patient_id)
    live = current is not None and plan.status != "superseded"
    found = schedules.evaluate_plan(session=session, plan=plan, now=at) if live else None
    spec = form_spec if form_spec is not None else (current.spec if current else None)
    templates = {t.id: t for t in load_templates()}
    chosen = templates.get(template_id or "")
    if rows is None:
        rows = _rows_from_spec(spec)
        if chosen is not None:
            filled = [r for r in rows if r]
            rows = filled + [{"instrument": i} for i in chosen.instruments] + [{}]
    raw_stop = (spec or {}).get("stop")
    stop: dict[str, Any] = dict(raw_stop) if isinstance(raw_stop, dict) else {}
    until = stop.get("until")
    if isinstance(until, str):
        try:
            stop["until_date"] = datetime.fromisoformat(until).astimezone(call.settings.zone).date()
        except ValueError:
            stop["until_date"] = None
    return call.render(
        "followup/schedule.html",
        {
            "plan": plan,
            "patient": patient,
            "current": current,
            "versions": versions,
            "found": found,
            "spec": spec or {},
            "stop": stop,
            "rows": rows,
            "instruments": [get_instrument(i) for i in service.SELF_REPORT],
            "whens": WHENS,
            "starts": STARTS,
            "templates": list(templates.values()),
            "chosen": chosen,
        },
        refused=refused,
    )


@router.get("/plans/{plan_id}/outcome-schedule", response_class=HTMLResponse)
def schedule_page(
    plan_id: int, template: str = "", call: PageCall = page_call("followup:read")
) -> Response:
    """The plan's outcome schedule: what is due now, the editor, the versions."""
    return _schedule_page(call, plan_id, template_id=template[:60] or None)


@router.post("/plans/{plan_id}/outcome-schedule", response_class=HTMLResponse)
def save_schedule(plan_id: int, call: PageCall = page_call("outcome_schedule:write")) -> Response:
    """Save the edited schedule as a new version (bad input: the form again, with why)."""
    get_plan(session=call.session, plan_id=plan_id)
    typed: dict[str, Any] = {}

    def act() -> object:
        typed["spec"], typed["rows"] = _spec_from_form(call.form, call.settings.zone)
        return call.do(
            schedules.set_schedule, plan_id=plan_id, spec=typed["spec"], reason=call.text("reason")
        )

    return call.attempt(
        act,
        done=f"/plans/{plan_id}/outcome-schedule",
        again=lambda refused: _schedule_page(
            call, plan_id, form_spec=typed.get("spec"), rows=typed.get("rows"), refused=refused
        ),
        status=conflict_or_unprocessable,
    )


def _patient_due_page(call: PageCall, patient_id: int, refused: Refusal | None = None) -> Response:
    patient = get_patient(session=call.session, patient_id=patient_id)
    found = call.do(schedules.due_for_patient, patient_id=patient_id)
    return call.render(
        "followup/patient_due.html",
        {
            "patient": patient,
            "found": found,
            "reminders": reminders.reminders_of(session=call.session, found=found, now=call.now),
            "sendable": senders.sendable(call.settings),
        },
        refused=refused,
    )


@router.get("/patients/{patient_id}/due-questionnaires", response_class=HTMLResponse)
def patient_due_page(patient_id: int, call: PageCall = page_call("followup:read")) -> Response:
    """The clinician's view of one patient's scheduled questionnaires."""
    return _patient_due_page(call, patient_id)


@router.post("/patients/{patient_id}/due-questionnaires/link", response_class=HTMLResponse)
def link_for_due_page(patient_id: int, call: PageCall = page_call("followup:write")) -> Response:
    """A single-use link for exactly what is due now."""
    patient = get_patient(session=call.session, patient_id=patient_id)
    return _send(
        call,
        patient,
        schedules.link_for_due,
        again=lambda refused: _patient_due_page(call, patient_id, refused),
        status=conflict_or_unprocessable,
    )


@router.get("/due-questionnaires", response_class=HTMLResponse)
def overview_page(call: PageCall = page_call("followup:read")) -> Response:
    """Patients with questionnaires due or overdue now, most overdue first."""
    rows = call.do(schedules.overview)
    unsent = call.do(service.unsent_reminders)
    return call.render("followup/overview.html", {"rows": rows, "unsent": unsent})


def _my_page(call: PageCall, refused: Refusal | None = None, **extra: Any) -> Response:
    found = call.do(schedules.due_for_patient, patient_id=call.principal.patient_id or 0)
    asked = _asked(
        [schedules.occurrence_record(d.plan.id, s) for d in found for s in d.outstanding]
    )
    due = [get_instrument(i) for i in schedules.outstanding_instruments(found)]
    upcoming = [
        (get_instrument(s.item.instrument).title, s.next_due_at)
        for d in found
        for s in d.status.items
        if s.status in ("upcoming", "satisfied") and s.next_due_at is not None
    ]
    return call.render(
        "followup/my.html",
        {
            "asked": asked,
            "due": due,
            "upcoming": sorted(upcoming, key=lambda u: u[1]),
            "values": {},
            **extra,
        },
        refused=refused,
    )


@router.get("/my/questionnaires", response_class=HTMLResponse)
def my_questionnaires(call: PageCall = page_call("selfreport:fill")) -> Response:
    """A logged-in patient's questionnaires due now, the first one ready to fill."""
    return _my_page(call)


@router.post("/my/questionnaires/{instrument_id}", response_class=HTMLResponse)
def my_submit(instrument_id: str, call: PageCall = page_call("selfreport:fill")) -> Response:
    """One due questionnaire filled by the logged-in patient."""
    patient_id = call.principal.patient_id or 0
    values: dict[str, object] = {}
    outstanding: list[str] = []
    instrument = None

    def act() -> tuple[Any, list[Any]]:
        nonlocal instrument
        instrument = get_instrument(instrument_id)
        found = call.do(schedules.due_for_patient, patient_id=patient_id)
        outstanding.extend(schedules.outstanding_instruments(found))
        if instrument.id not in outstanding:
            raise Conflict(f"{instrument.title} is not due now")
        values.update(_answers_from_form(instrument, call.form))
        return call.do(
            record_assessment,
            patient_id=patient_id,
            instrument_id=instrument.id,
            answers=values,
            context="follow_up",
            source="patient",
            accept_partial=call.settings.accept_partial_questionnaires,
        )

    def again(refused: Refusal) -> Response:
        if not isinstance(refused.error, IncompleteAnswers):
            return _my_page(call, refused)
        call.do(refuse_incomplete, patient_id=patient_id, error=refused.error)
        return _refused(_my_page(call, **_refusal(refused.error, values)))

    def done(recorded: tuple[Any, list[Any]]) -> Response:
        row, alerts = recorded
        patient = get_patient(session=call.session, patient_id=patient_id)
        shown = result_values(session=call.session, patient=patient, row=row, alerts=alerts)
        return call.render(
            "followup/link_result.html",
            {
                "instrument": instrument,
                "more": len(outstanding) > 1 or bool(row.missing),
                "next_url": "/my/questionnaires",
                **shown,
            },
        )

    return call.attempt(act, done=done, again=again, status=conflict_or_unprocessable)
