"""The demo's esketamine nasal spray course under the SPRAVATO REMS.

One patient of the demo's depression group is treated with esketamine nasal spray
instead of IV ketamine, so that a newcomer sees the REMS at work: the clinic's site
certification, the patient's enrolment, each session from check-in through the label's
observation (the monitoring the session policy enforces), and each Patient Monitoring
Form answered and submitted three days later, the newest still due. Identifiers are
EXAMPLE values for the demo, not real REMS numbers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ketacare.clinic.demo_model import Ctx
from ketacare.clinic.demo_steps import arrive, discharge, vitals_event
from ketacare.clinic.rems import forms as rems_forms
from ketacare.clinic.rems import service as rems
from ketacare.core.rems import rules as rems_rules

#: the screening and the plan's treatment
ESKETAMINE = {"molecule": "esketamine", "route": "intranasal"}
PROTOCOL = "esketamine-trd"
#: the demo clinic's site as its REMS certification names it (EXAMPLE identifier)
SITE = "ketacare demo clinic"


def certify_site(ctx: Ctx, at: datetime) -> None:
    """The clinic's certification as a SPRAVATO REMS treatment setting (EXAMPLE number)."""
    rems.record_certification(
        session=ctx.session,
        actor=ctx.staff.physician,
        site=SITE,
        identifier="EXAMPLE-SITE-0001",
        certified_on=(at - timedelta(days=30)).date(),
        now=at,
    )


def enrol(ctx: Ctx, patient_id: int, at: datetime) -> None:
    """The patient's REMS enrolment, signed at intake (EXAMPLE number)."""
    rems.record_enrolment(
        session=ctx.session,
        actor=ctx.staff.nurse,
        patient_id=patient_id,
        identifier=f"EXAMPLE-PT-{patient_id:04d}",
        enrolled_on=at.date(),
        now=at,
    )


def give_spray(ctx: Ctx, plan_id: int, number: int, start: datetime) -> datetime:
    """One esketamine session from check-in to discharge; returns when the patient left.
    Its monitoring form is answered, marked ready and, unless it is one of the newest,
    submitted three days later."""
    rng = ctx.rng
    base = (rng.randint(116, 128), rng.randint(70, 80), rng.randint(62, 78))
    chair, setup, t = arrive(ctx, plan_id, number, start, base=base, lot=f"E{start:%y%m}")
    first = t + timedelta(minutes=15)
    # the planned dose in devices of the size the session's sourced rules give
    assert setup.planned_dose_mg is not None and setup.device_mg is not None
    devices = round(setup.planned_dose_mg / setup.device_mg)
    chair(first, kind="self_administration", devices=devices)
    chair(first + timedelta(minutes=1), kind="stop", reason="completed")
    dissociated = rng.random() < 0.5
    if dissociated:
        chair(
            first + timedelta(minutes=20),
            kind="side_effects",
            dissociation=True,
            sedation_moaas=5,
            note="mild dissociation, resolved within the hour",
        )
    # the label's observation and the EXAMPLE policy's interval, as the session set them
    assert setup.observation.value is not None and setup.recovery_vitals_interval.value
    observe = float(setup.observation.value)
    interval = float(setup.recovery_vitals_interval.value)
    # every interval of the policy, and the blood pressure about 40 minutes after the
    # first device that the label asks for (the usual rise near it)
    bp_minute = float(rems_rules().bp_after_first_device_min)
    minutes = sorted({*(k * interval for k in range(1, int(observe // interval) + 1)), bp_minute})
    for minute in minutes:
        rise = 10 if 30 <= minute <= 50 else 3
        chair(first + timedelta(minutes=minute), **vitals_event(rng, base, rise))
    leave = first + timedelta(minutes=observe + 4)
    chair(leave - timedelta(minutes=2), **vitals_event(rng, base))
    discharge(
        chair,
        number,
        leave,
        "no driving until tomorrow after a restful sleep; call with any concern",
    )
    ctx.count("sessions")
    _file_form(ctx, chair.session_id, number, leave, dissociated=dissociated, first=first)
    return leave


def _file_form(
    ctx: Ctx, session_id: int, number: int, leave: datetime, *, dissociated: bool, first: datetime
) -> None:
    """The form's answers the session log does not hold, then ready; submitted online
    three days later unless that day has not come (those stay due in the queue)."""
    local = ctx.settings.zone
    answers: dict[str, object] = {
        "provider_telephone": "+1 555 010 0000",
        "provider_email": "nurse@demo-clinic.example",
        "first_treatment": number == 1,
        "concomitant_benzodiazepines": False,
        "concomitant_non_benzo_hypnotics": False,
        "concomitant_psychostimulants": False,
        "concomitant_maois": False,
        "concomitant_opioids": False,
        "vitals_acceptable_before": True,
        "vitals_acceptable_at_completion": True,
        "sedation": {"present": False, "at": ""},
        "dissociation": {
            "present": dissociated,
            "at": (first + timedelta(minutes=20)).astimezone(local).strftime("%H:%M")
            if dissociated
            else "",
        },
        "respiratory_depression": {"present": False, "at": ""},
        "ready_to_leave_min": 75,
    }
    at = leave + timedelta(minutes=10)
    rems_forms.record_answers(
        session=ctx.session,
        actor=ctx.staff.nurse,
        settings=ctx.settings,
        session_id=session_id,
        answers=answers,
        now=at,
    )
    rems_forms.mark_ready(
        session=ctx.session,
        actor=ctx.staff.nurse,
        settings=ctx.settings,
        session_id=session_id,
        now=at,
    )
    sent = leave + timedelta(days=3)
    if sent > ctx.now:
        return
    rems_forms.mark_submitted(
        session=ctx.session,
        actor=ctx.staff.nurse,
        settings=ctx.settings,
        session_id=session_id,
        submitted_on=_day(sent, ctx),
        route="online",
        reference=f"EXAMPLE-{session_id:05d}",
        now=sent,
    )
    ctx.count("REMS forms submitted")


def _day(at: datetime, ctx: Ctx) -> date:
    return at.astimezone(ctx.settings.zone).date()
