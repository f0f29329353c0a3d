"""The signed consent as PDF, behind one function (:func:`consent_pdf`).

Rendered with matplotlib, as the session summary is (no extra dependency, no browser):
the template's text, its risks with their sources, the teach-back answers, the typed
name and the drawn signature, and the countersignature. The metadata carries no
creation time, so the same record always renders the same bytes and its SHA-256 can
be checked against the stored one.
"""

from __future__ import annotations

import hashlib
import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from ketacare.core.consent import TemplateContent  # noqa: E402

WIDTH = 110
PER_PAGE = 70


@dataclass(frozen=True, slots=True, kw_only=True)
class Signatures:
    """Who signed what, when, as the document shows it."""

    patient: str
    patient_mrn: str
    patient_birth_date: str
    typed_name: str
    signed_at: datetime
    signature_png: bytes
    answers: dict[str, int]
    counter_capacity: str
    counter_name: str
    counter_at: datetime


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent) or [""]


def _lines(t: TemplateContent, version: int, s: Signatures, zone: ZoneInfo) -> list[str]:
    def local(at: datetime) -> str:
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    lines = [f"{t.title} - program {t.program}, version {version}", ""]
    if t.example:
        lines += _wrap(f"EXAMPLE TEXT: {t.notice}") + [""]
    lines += [f"Patient: {s.patient} (MRN {s.patient_mrn}, born {s.patient_birth_date})", ""]
    for section in t.sections:
        lines += [section.heading.upper(), *_wrap(section.text, "  "), ""]
    lines += ["RISKS"]
    for risk in t.risks:
        lines += _wrap(f"{risk.label}: {risk.statement} [{', '.join(risk.sources)}]", "  ")
    lines += ["", "TEACH-BACK (question: answer given)"]
    for q in t.teach_back:
        given = s.answers.get(q.id)
        answer = q.choices[given] if isinstance(given, int) and 0 <= given < len(q.choices) else "-"
        lines += _wrap(f"{q.question}: {answer}", "  ")
    lines += ["", "SOURCES"]
    for key, source in t.sources.items():
        lines += _wrap(f"[{key}] {source.text}", "  ")
    lines += [
        "",
        f"Signed by the patient, typed name '{s.typed_name}', on {local(s.signed_at)} "
        f"({zone.key}); drawn signature below.",
        f"Countersigned by {s.counter_name} as {s.counter_capacity} on {local(s.counter_at)}.",
    ]
    return lines


def text_pdf(lines: list[str], *, image_png: bytes | None = None) -> bytes:
    """A4 pages of monospace text (and a PNG under the text of the last page), with no
    creation time in the metadata so that the same lines give the same bytes."""
    pages: Sequence[list[str]] = [
        lines[i : i + PER_PAGE] for i in range(0, max(len(lines), 1), PER_PAGE)
    ]
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"CreationDate": None, "Creator": "ketacare"}) as pdf:
        for number, chunk in enumerate(pages, start=1):
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.06, 0.97, "\n".join(chunk), va="top", family="monospace", fontsize=6.8)
            fig.text(0.94, 0.02, f"page {number} of {len(pages)}", ha="right", fontsize=6)
            if number == len(pages) and image_png is not None:
                image = mpimg.imread(io.BytesIO(image_png), format="png")
                ax = fig.add_axes((0.06, 0.04, 0.5, 0.12))
                ax.imshow(image)
                ax.set_axis_off()
            pdf.savefig(fig)
            plt.close(fig)
    return buffer.getvalue()


def consent_pdf(
    *, template: TemplateContent, version: int, signatures: Signatures, zone: ZoneInfo
) -> bytes:
    """The signed consent document (A4 pages of text, the drawn signature on the last)."""
    return text_pdf(_lines(template, version, signatures, zone), image_png=signatures.signature_png)


def sha256(data: bytes) -> str:
    """The hex SHA-256 the record stores beside the document."""
    return hashlib.sha256(data).hexdigest()
