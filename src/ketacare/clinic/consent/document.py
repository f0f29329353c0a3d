"""The signed consent as PDF, behind one function (:func:`consent_pdf`).

Typeset from ``consent/consent_document.html`` like every clinical document
(:mod:`ketacare.clinic.documents`): letterhead, the patient on every page, the
template's text, its risks with their sources, the teach-back answers, the typed
name with the drawn signature, and the countersignature. The PDF is rendered once,
at the countersignature, and stored with its SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ketacare.clinic.documents import Document, Identity, Letterhead, render_pdf
from ketacare.core.consent import TemplateContent


@dataclass(frozen=True, slots=True, kw_only=True)
class Signatures:
    """Who signed what, when, as the document shows it."""

    typed_name: str
    signed_at: datetime
    signature_png: bytes
    answers: dict[str, int]
    counter_capacity: str
    counter_name: str
    counter_at: datetime


@dataclass(frozen=True, slots=True)
class _Answer:
    question: str
    given: str | None
    correct: bool


def _answers(template: TemplateContent, answers: dict[str, int]) -> list[_Answer]:
    out = []
    for q in template.teach_back:
        given = answers.get(q.id)
        if isinstance(given, int) and 0 <= given < len(q.choices):
            out.append(_Answer(q.question, q.choices[given], given == q.answer))
        else:
            out.append(_Answer(q.question, None, False))
    return out


def consent_pdf(
    *,
    template: TemplateContent,
    version: int,
    consent_id: int,
    program_label: str,
    patient: Any,
    signatures: Signatures,
    letterhead: Letterhead,
    zone: ZoneInfo,
) -> bytes:
    """The signed consent document as A4 PDF, printed at the countersignature."""
    s = signatures
    png = base64.b64encode(s.signature_png).decode("ascii")
    return render_pdf(
        Document(
            template="consent/consent_document.html",
            title="Treatment consent",
            letterhead=letterhead,
            patient=Identity.of(patient),
            zone=zone,
            generated_at=s.counter_at,
            values={
                "content": template,
                "version": version,
                "consent_id": consent_id,
                "program_label": program_label,
                "teach_back": _answers(template, s.answers),
                "typed_name": s.typed_name,
                "signed_at": s.signed_at,
                "signature_uri": f"data:image/png;base64,{png}",
                "counter_capacity": s.counter_capacity,
                "counter_name": s.counter_name,
                "counter_at": s.counter_at,
            },
        )
    )


def sha256(data: bytes) -> str:
    """The hex SHA-256 the record stores beside the document."""
    return hashlib.sha256(data).hexdigest()
