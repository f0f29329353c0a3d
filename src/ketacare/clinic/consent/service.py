"""Treatment consent: publish template versions, sign, countersign, withdraw, and the gate.

A program's template is the clinic's text (an EXAMPLE from the core is a starting point
to adapt); each publication is a new version, and a signed consent keeps pointing at the
version it was signed on. A patient signs the newest version after answering its
teach-back questions right, typing their name and drawing a signature; a witness or the
clinician countersigns, which renders the signed document (:func:`document.consent_pdf`)
and stores its SHA-256. :func:`consent_problem` is the gate the plan's signature and
every session's opening ask (:mod:`ketacare.core.consent.standing` decides). Every read
and write of a patient's consent is audited.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit import service as audit
from ketacare.clinic.consent import document
from ketacare.clinic.consent.orm import (
    Consent,
    ConsentCountersignature,
    ConsentTemplate,
    ConsentWithdrawal,
)
from ketacare.clinic.documents import Letterhead
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.patients.service import get_patient
from ketacare.core.consent import (
    Published,
    Signed,
    Standing,
    TemplateContent,
    example_template,
    parse_template,
    program_for,
    programs,
    read_clinic_template,
    standing,
    teach_back_errors,
    template_to_dict,
    template_to_toml,
)
from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict
from ketacare.infra.settings import Settings

CAPACITIES = ("witness", "clinician")
PNG_PREFIX = "data:image/png;base64,"
#: the largest drawn signature accepted (a storage bound, not a clinical number)
MAX_SIGNATURE_BYTES = 512 * 1024


# ---------------------------------------------------------------- templates


def content_of(row: ConsentTemplate) -> TemplateContent:
    """The checked content of a stored version."""
    return parse_template(row.content, name=f"consent template {row.id}")


def publish_template(
    *,
    session: Session,
    actor: audit.Actor,
    program: str,
    content: Mapping[str, Any] | str | None,
    reconsent_required: bool,
    note: str,
    now: datetime,
) -> ConsentTemplate:
    """Publish the next version of ``program``'s template: ``content`` is the clinic's
    text (TOML, as the pages edit it, or the mapping the API takes), or None for the
    shipped EXAMPLE."""
    if program not in programs():
        raise UnknownItem("consent program", program, tuple(programs()))
    parsed = read_clinic_template(content, program=program)
    newest = session.scalar(
        select(func.max(ConsentTemplate.version)).where(ConsentTemplate.program == program)
    )
    if reconsent_required and newest is None:
        raise InvalidInput(
            "re-consent can only be required by a new version: program "
            f"{program} has no earlier version"
        )
    row = ConsentTemplate(
        program=program,
        version=(newest or 0) + 1,
        title=parsed.title,
        content=template_to_dict(parsed),
        reconsent_required=reconsent_required,
        note=note.strip()[:2000],
        published_at=now,
        published_by=actor.user_id,
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="consent_template",
        detail={
            "program": program,
            "version": row.version,
            "reconsent_required": reconsent_required,
            "example": parsed.example,
        },
    )


def list_templates(*, session: Session, program: str | None = None) -> list[ConsentTemplate]:
    """Every published version (of one program), newest first within a program."""
    query = select(ConsentTemplate).order_by(
        ConsentTemplate.program, ConsentTemplate.version.desc()
    )
    if program is not None:
        query = query.where(ConsentTemplate.program == program)
    return list(session.scalars(query))


def get_template(*, session: Session, template_id: int) -> ConsentTemplate:
    return existing(session, ConsentTemplate, template_id, "consent template")


def current_template(*, session: Session, program: str) -> ConsentTemplate | None:
    """The newest version of ``program``'s template (None before the first)."""
    return session.scalar(
        select(ConsentTemplate)
        .where(ConsentTemplate.program == program)
        .order_by(ConsentTemplate.version.desc())
        .limit(1)
    )


def template_text(*, session: Session, program: str) -> str:
    """The text a clinic edits for ``program``: its newest version, or the shipped
    EXAMPLE before the first (TOML, read back by :func:`publish_template`)."""
    if program not in programs():
        raise UnknownItem("consent program", program, tuple(programs()))
    row = current_template(session=session, program=program)
    return template_to_toml(content_of(row) if row is not None else example_template(program))


# ---------------------------------------------------------------- signing


def signature_png(data_url: str) -> bytes:
    """The PNG bytes of a drawn signature, refused when it is not one or is blank."""
    if not data_url.startswith(PNG_PREFIX):
        raise InvalidInput(
            "signature must be a PNG drawing as a data URL (data:image/png;base64,...)"
        )
    try:
        raw = base64.b64decode(data_url[len(PNG_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("signature is not valid base64") from None
    if len(raw) > MAX_SIGNATURE_BYTES:
        raise InvalidInput(f"signature is larger than {MAX_SIGNATURE_BYTES} bytes")
    import matplotlib.image as mpimg

    try:
        pixels = mpimg.imread(io.BytesIO(raw), format="png")
    except Exception:  # noqa: BLE001 - any decoding failure is a bad drawing
        raise InvalidInput("signature is not a readable PNG image") from None
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise InvalidInput("signature must be a colour PNG image")
    ink = pixels[..., :3].mean(axis=2) < 0.5
    if pixels.shape[2] == 4:
        ink &= pixels[..., 3] > 0.5
    if not ink.any():
        raise InvalidInput("signature is blank: the patient must draw their signature")
    return raw


def _name_matches(typed: str, patient: Patient) -> bool:
    words = typed.casefold().split()
    return all(
        part in words
        for name in (patient.given_name, patient.family_name)
        for part in name.casefold().split()
    )


def sign(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    template_id: int,
    typed_name: str,
    signature: str,
    answers: Mapping[str, object],
    now: datetime,
) -> Consent:
    """Record the patient's signature on the newest version of a program's template."""
    patient = get_patient(session=session, patient_id=patient_id)
    template = get_template(session=session, template_id=template_id)
    newest = current_template(session=session, program=template.program)
    if newest is not None and newest.id != template.id:
        raise Conflict(
            f"version {template.version} of the {template.program} consent is superseded by "
            f"version {newest.version}: sign the current version (template {newest.id})"
        )
    content = content_of(template)
    wrong = teach_back_errors(content, answers)
    if wrong:
        asked = {q.id: q.question for q in content.teach_back}
        raise InvalidInput(
            "each question under 'Check your understanding' needs the right answer before "
            "signing; read the part of the text it asks about again, and ask the clinic's "
            f"staff if anything is unclear: {'; '.join(repr(asked[w]) for w in wrong)}"
        )
    typed = " ".join(typed_name.split())
    if not _name_matches(typed, patient):
        raise InvalidInput(
            f"the typed name must be the patient's name ({patient.given_name} "
            f"{patient.family_name}), got {typed!r}"
        )
    row = Consent(
        patient_id=patient_id,
        template_id=template.id,
        typed_name=typed[:200],
        signature_png=signature_png(signature),
        teach_back={k: v for k, v in answers.items() if isinstance(v, int)},
        signed_at=now,
        recorded_by=actor.user_id,
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="consent",
        patient_id=patient_id,
        detail={"program": template.program, "version": template.version},
    )


def get_consent(*, session: Session, consent_id: int) -> Consent:
    return existing(session, Consent, consent_id, "consent")


def _countersignature(session: Session, consent_id: int) -> ConsentCountersignature | None:
    return session.scalar(
        select(ConsentCountersignature).where(ConsentCountersignature.consent_id == consent_id)
    )


def _withdrawal(session: Session, consent_id: int) -> ConsentWithdrawal | None:
    return session.scalar(
        select(ConsentWithdrawal).where(ConsentWithdrawal.consent_id == consent_id)
    )


def countersign(
    *,
    session: Session,
    actor: audit.Actor,
    consent_id: int,
    capacity: str,
    settings: Settings,
    now: datetime,
) -> ConsentCountersignature:
    """A witness or the clinician countersigns; the signed document is rendered and hashed."""
    if capacity not in CAPACITIES:
        raise UnknownItem("countersignature capacity", capacity, CAPACITIES)
    consent = get_consent(session=session, consent_id=consent_id)
    if _countersignature(session, consent_id) is not None:
        raise Conflict(f"consent {consent_id} is already countersigned")
    if _withdrawal(session, consent_id) is not None:
        raise Conflict(f"consent {consent_id} was withdrawn: it cannot be countersigned")
    signer = session.get(User, actor.user_id) if actor.user_id is not None else None
    if signer is None:
        raise InvalidInput("a countersignature needs a named staff account")
    patient = get_patient(session=session, patient_id=consent.patient_id)
    pdf = document.consent_pdf(
        template=content_of(consent.template),
        version=consent.template.version,
        consent_id=consent_id,
        program_label=programs()[consent.template.program].label,
        patient=patient,
        signatures=document.Signatures(
            typed_name=consent.typed_name,
            signed_at=consent.signed_at,
            signature_png=consent.signature_png,
            answers=dict(consent.teach_back),
            counter_capacity=capacity,
            counter_name=signer.full_name,
            counter_at=now,
        ),
        letterhead=Letterhead.of(settings),
        zone=settings.zone,
    )
    row = ConsentCountersignature(
        consent_id=consent_id,
        capacity=capacity,
        signed_by=signer.id,
        signer_name=signer.full_name,
        signed_at=now,
        pdf=pdf,
        pdf_sha256=document.sha256(pdf),
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="consent",
        patient_id=consent.patient_id,
        detail={"capacity": capacity, "pdf_sha256": row.pdf_sha256},
        resource_id=consent_id,
        action="sign",
    )


def withdraw(
    *, session: Session, actor: audit.Actor, consent_id: int, reason: str, now: datetime
) -> ConsentWithdrawal:
    """Record that the patient withdrew this consent (kept as history; no further dose)."""
    consent = get_consent(session=session, consent_id=consent_id)
    if not reason.strip():
        raise InvalidInput("reason is required: say how and why the patient withdrew")
    if _withdrawal(session, consent_id) is not None:
        raise Conflict(f"consent {consent_id} is already withdrawn")
    row = ConsentWithdrawal(
        consent_id=consent_id,
        reason=reason.strip()[:2000],
        withdrawn_at=now,
        recorded_by=actor.user_id,
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="consent",
        patient_id=consent.patient_id,
        resource_id=consent_id,
        action="withdraw",
    )


def signed_document(
    *, session: Session, actor: audit.Actor, consent_id: int, now: datetime
) -> bytes:
    """The signed PDF (an audited read); refused until the consent is countersigned."""
    consent = get_consent(session=session, consent_id=consent_id)
    counter = _countersignature(session, consent_id)
    if counter is None:
        raise Conflict(f"consent {consent_id} awaits its countersignature: no signed document yet")
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="consent_document",
        resource_id=consent_id,
        patient_id=consent.patient_id,
        at=now,
    )
    return counter.pdf


# ---------------------------------------------------------------- standing and the gate


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    """One consent of the patient as the chart and the API show it."""

    consent: Consent
    countersignature: ConsentCountersignature | None
    withdrawal: ConsentWithdrawal | None

    @property
    def status(self) -> str:
        if self.withdrawal is not None:
            return "withdrawn"
        return "signed" if self.countersignature is not None else "awaiting countersignature"


# Built once (the chart reads them on every request).
_CONSENTS = (
    select(Consent)
    .where(Consent.patient_id == bindparam("patient_id"))
    .order_by(Consent.signed_at.desc(), Consent.id.desc())
)
_TEMPLATES = select(ConsentTemplate)


def entries(*, session: Session, patient_id: int) -> list[ConsentEntry]:
    """The patient's consents, newest first, each with its countersignature and withdrawal."""
    rows = list(session.scalars(_CONSENTS, {"patient_id": patient_id}))
    if not rows:
        return []
    ids = [c.id for c in rows]
    counters = {
        c.consent_id: c
        for c in session.scalars(
            select(ConsentCountersignature).where(ConsentCountersignature.consent_id.in_(ids))
        )
    }
    withdrawals = {
        w.consent_id: w
        for w in session.scalars(
            select(ConsentWithdrawal).where(ConsentWithdrawal.consent_id.in_(ids))
        )
    }
    return [ConsentEntry(c, counters.get(c.id), withdrawals.get(c.id)) for c in rows]


def all_templates(*, session: Session) -> list[ConsentTemplate]:
    """Every published template version of every program (one read)."""
    return list(session.scalars(_TEMPLATES))


def newest_templates(templates: list[ConsentTemplate]) -> dict[str, ConsentTemplate | None]:
    """Each program's newest version among ``templates`` (None before its first), as
    :func:`current_template` gives it, for every program."""
    newest: dict[str, ConsentTemplate | None] = dict.fromkeys(programs())
    for t in templates:
        found = newest.get(t.program)
        if t.program in newest and (found is None or t.version > found.version):
            newest[t.program] = t
    return newest


def _published(session: Session) -> list[Published]:
    return _published_of(all_templates(session=session))


def _published_of(templates: list[ConsentTemplate]) -> list[Published]:
    return [
        Published(
            program=t.program,
            version=t.version,
            published_at=t.published_at,
            reconsent_required=t.reconsent_required,
        )
        for t in templates
    ]


def _signed(found: list[ConsentEntry]) -> list[Signed]:
    return [
        Signed(
            id=e.consent.id,
            program=e.consent.template.program,
            version=e.consent.template.version,
            signed_at=e.consent.signed_at,
            countersigned_at=e.countersignature.signed_at if e.countersignature else None,
            withdrawn_at=e.withdrawal.withdrawn_at if e.withdrawal else None,
        )
        for e in found
    ]


def standings(*, session: Session, patient_id: int) -> dict[str, Standing]:
    """The patient's standing in every program."""
    return standings_of(
        entries(session=session, patient_id=patient_id), all_templates(session=session)
    )


def standings_of(
    found: list[ConsentEntry], templates: list[ConsentTemplate]
) -> dict[str, Standing]:
    """:func:`standings` from the patient's consents and the templates already read."""
    signed, published = _signed(found), _published_of(templates)
    return {p: standing(program=p, consents=signed, published=published) for p in programs()}


def consent_problem(*, session: Session, patient_id: int, molecule: str, route: str) -> str | None:
    """Why no dose of (molecule, route) may be planned or given now (None: consent holds)."""
    program = program_for(molecule=molecule, route=route)
    if program is None:
        return (
            f"no consent program covers {molecule} by {route}: the clinic must add it to a "
            "program (core/consent/data/programs.toml) before it is planned or given"
        )
    return program_problem(session=session, patient_id=patient_id, program_id=program.id)


def program_problem(*, session: Session, patient_id: int, program_id: str) -> str | None:
    """Why the patient's signed consent to ``program_id`` is not in force (None: it is)."""
    signed = _signed(entries(session=session, patient_id=patient_id))
    found = standing(program=program_id, consents=signed, published=_published(session))
    return None if found.ok else f"consent: {found.problem}"


def _consenting(session: Session) -> Iterator[tuple[int, list[Signed]]]:
    """Each patient who has signed any consent, with the consents they signed."""
    for pid in sorted(set(session.scalars(select(Consent.patient_id)))):
        yield pid, _signed(entries(session=session, patient_id=pid))


def _record_reconsent_read(
    session: Session, actor: audit.Actor, now: datetime, detail: dict[str, Any]
) -> None:
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="consent_reconsent",
        at=now,
        detail=detail,
    )


def reconsent_flags(*, session: Session, actor: audit.Actor, now: datetime) -> list[dict[str, Any]]:
    """Patients whose consent in force predates a version that requires re-consent (an
    audited read naming them)."""
    published = _published(session)
    flagged = []
    for pid, signed in _consenting(session):
        for program in sorted({s.program for s in signed}):
            found = standing(program=program, consents=signed, published=published)
            if found.reconsent_due and found.consent is not None:
                patient = get_patient(session=session, patient_id=pid)
                flagged.append(
                    {
                        "patient_id": pid,
                        "patient_name": f"{patient.family_name}, {patient.given_name}",
                        "mrn": patient.mrn,
                        "program": program,
                        "consent_id": found.consent.id,
                        "signed_version": found.consent.version,
                        "problem": found.problem,
                    }
                )
    _record_reconsent_read(
        session, actor, now, {"patients": sorted({f["patient_id"] for f in flagged})}
    )
    return flagged


def reconsent_impact(
    *, session: Session, actor: audit.Actor, program: str, now: datetime
) -> list[Patient]:
    """The patients whose consent to ``program`` is in force now: a new version marked
    "re-consent required" would stop each one's next session until they sign it (shown to
    the publisher before publishing; an audited read naming them)."""
    published = _published(session)
    out = [
        get_patient(session=session, patient_id=pid)
        for pid, signed in _consenting(session)
        if standing(program=program, consents=signed, published=published).ok
    ]
    _record_reconsent_read(
        session, actor, now, {"program": program, "patients": [p.id for p in out], "impact": True}
    )
    return out


def read_consents(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime
) -> tuple[dict[str, Standing], list[ConsentEntry]]:
    """The patient's standing in every program and their consents (an audited read)."""
    get_patient(session=session, patient_id=patient_id)
    audit.read_patient(patient_id, session=session, actor=actor, at=now, resource_type="consent")
    return standings(session=session, patient_id=patient_id), entries(
        session=session, patient_id=patient_id
    )
