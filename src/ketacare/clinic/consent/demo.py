"""The demo clinic's consents: the EXAMPLE templates published, and each demo patient's
consent signed (on the clinic's tablet, a synthetic drawn stroke) and countersigned
before their first plan of a program is signed, all through :mod:`.service`."""

from __future__ import annotations

import base64
import io
import random
from datetime import datetime, timedelta

from PIL import Image, ImageDraw
from sqlalchemy.orm import Session

from ketacare.clinic.audit.service import Actor
from ketacare.clinic.consent import service
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans.dosing import library
from ketacare.core.consent import example_programs, program_for
from ketacare.infra.settings import Settings


def publish_examples(*, session: Session, actor: Actor, at: datetime) -> None:
    """Version 1 of every program: the shipped EXAMPLE text (marked as one on every page)."""
    for program in example_programs():
        if service.current_template(session=session, program=program) is None:
            service.publish_template(
                session=session,
                actor=actor,
                program=program,
                content=None,
                reconsent_required=False,
                note="demo clinic: the EXAMPLE text as shipped",
                now=at,
            )


def drawn(rng: random.Random) -> str:
    """A synthetic drawn signature (a black scribble on a clear PNG) as a data URL."""
    image = Image.new("RGBA", (240, 80), (0, 0, 0, 0))
    points = [(10 + 22 * i, rng.randint(15, 65)) for i in range(11)]
    ImageDraw.Draw(image).line(points, fill=(0, 0, 0, 255), width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return service.PNG_PREFIX + base64.b64encode(buffer.getvalue()).decode()


def consent_before_plan(
    *,
    session: Session,
    settings: Settings,
    nurse: Actor,
    physician: Actor,
    patient_id: int,
    protocol_id: str,
    at: datetime,
    rng: random.Random,
) -> bool:
    """The patient signs (and the physician countersigns) the consent the protocol's
    program needs, unless one is in force; True when one was recorded."""
    protocol = library(settings).get(protocol_id=protocol_id)
    program = program_for(molecule=protocol.molecule, route=protocol.route)
    assert program is not None  # every demo protocol's treatment is in a program
    return consent_to(
        session=session,
        settings=settings,
        nurse=nurse,
        physician=physician,
        patient_id=patient_id,
        program=program.id,
        at=at,
        rng=rng,
    )


def consent_to(
    *,
    session: Session,
    settings: Settings,
    nurse: Actor,
    physician: Actor,
    patient_id: int,
    program: str,
    at: datetime,
    rng: random.Random,
) -> bool:
    """The patient signs (and the physician countersigns) their consent to ``program``
    half an hour before ``at``, unless one is in force; True when one was recorded."""
    if service.program_problem(session=session, patient_id=patient_id, program_id=program) is None:
        return False
    template = service.current_template(session=session, program=program)
    assert template is not None  # publish_examples ran at the start
    patient = get_patient(session=session, patient_id=patient_id)
    consent = service.sign(
        session=session,
        actor=nurse,
        patient_id=patient_id,
        template_id=template.id,
        typed_name=f"{patient.given_name} {patient.family_name}",
        signature=drawn(rng),
        answers={q.id: q.answer for q in service.content_of(template).teach_back},
        now=at - timedelta(minutes=30),
    )
    service.countersign(
        session=session,
        actor=physician,
        consent_id=consent.id,
        capacity="clinician",
        settings=settings,
        now=at - timedelta(minutes=25),
    )
    return True
