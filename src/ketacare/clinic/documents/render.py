"""Render a document template to HTML, and HTML to PDF.

The templates live in the domains' ``templates/`` folders (as the pages do) and extend
``documents/base.html``. Times are shown in the clinic's time zone, named on every page.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup

from ketacare.infra.settings import Settings

CLINIC_DIR = Path(__file__).resolve().parents[1]
CSS_FILE = Path(__file__).resolve().parent / "templates" / "documents" / "print.css"


@dataclass(frozen=True, slots=True)
class Letterhead:
    """The clinic as its documents name it (``KETACARE_CLINIC_NAME`` and friends)."""

    name: str
    address_lines: tuple[str, ...] = ()
    phone: str = ""

    @classmethod
    def of(cls, settings: Settings) -> Letterhead:
        """The letterhead from the site settings."""
        lines = [
            part.strip()
            for chunk in settings.clinic_address.splitlines()
            for part in chunk.split(";")
            if part.strip()
        ]
        return cls(settings.clinic_name.strip(), tuple(lines), settings.clinic_phone.strip())


@dataclass(frozen=True, slots=True)
class Identity:
    """The patient identifiers printed on every page."""

    family_name: str
    given_name: str
    mrn: str
    birth_date: date
    sex: str

    @classmethod
    def of(cls, patient: Any) -> Identity:
        """From a patient row (``clinic.patients.orm.Patient``)."""
        return cls(
            patient.family_name, patient.given_name, patient.mrn, patient.birth_date, patient.sex
        )

    @property
    def name(self) -> str:
        """``FAMILY, Given``: the family name first and in capitals, as wristbands print it."""
        return f"{self.family_name.upper()}, {self.given_name}"


def _zone(context: Any) -> ZoneInfo:
    zone = context.get("zone")
    if not isinstance(zone, ZoneInfo):
        raise TypeError("a document template needs the clinic's zone in its context")
    return zone


@pass_context
def _when(context: Any, value: datetime | None, seconds: bool = False) -> str:
    """A time in the clinic's zone: ``3 Mar 2026 10:15``."""
    if value is None:
        return ""
    here = value.astimezone(_zone(context))
    return f"{here.day} {here:%b %Y %H:%M}" + (f":{here:%S}" if seconds else "")


@pass_context
def _clock(context: Any, value: datetime | None) -> str:
    """The time of day only (``10:15``), for tables within one day."""
    return "" if value is None else value.astimezone(_zone(context)).strftime("%H:%M")


@pass_context
def _day(context: Any, value: datetime | date | None) -> str:
    """A calendar day: ``3 March 2026`` (a time is taken in the clinic's zone)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(_zone(context)).date()
    return f"{value.day} {value:%B %Y}"


def _num(value: float | None, digits: int | None = None, empty: str = "—") -> str:
    """A number as a clinician reads it: no trailing zeros, or a fixed number of decimals."""
    if value is None:
        return empty
    if isinstance(value, bool):
        return "yes" if value else "no"
    if digits is None:
        return f"{value:g}"
    # half up, as a clinician rounds by hand (12.25 mg is 12.3 mg, not the float's 12.2)
    exact = Decimal(repr(float(value)))
    return str(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


@cache
def _environment() -> Environment:
    folders = sorted(p for p in CLINIC_DIR.glob("*/templates") if p.is_dir())
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(f)) for f in folders]),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["clock"] = _clock
    env.filters["day"] = _day
    env.filters["num"] = _num
    return env


def _zone_label(zone: ZoneInfo, here: datetime) -> str:
    """``Europe/Amsterdam (CET, UTC+01:00)``: the zone, and its offset when printed."""
    offset = here.strftime("%z")
    return f"{zone.key} ({here:%Z}, UTC{offset[:3]}:{offset[3:]})"


@dataclass(frozen=True, slots=True)
class Document:
    """One document to typeset: its template, title, letterhead, patient and values.

    ``patient`` is None for a document about no patient (a stock report): its template
    then overrides the ``running_right`` and ``identity`` blocks of the base.

    ``template`` extends ``documents/base.html``; ``values`` are its own context; times are
    shown in ``zone`` and ``generated_at`` is printed on every page.
    """

    template: str
    title: str
    letterhead: Letterhead
    patient: Identity | None
    zone: ZoneInfo
    generated_at: datetime
    values: Mapping[str, Any]


def render_html(document: Document) -> str:
    """The document as HTML (what :func:`render_pdf` typesets)."""
    here = document.generated_at.astimezone(document.zone)
    return (
        _environment()
        .get_template(document.template)
        .render(
            title=document.title,
            letterhead=document.letterhead,
            patient=document.patient,
            zone=document.zone,
            zone_label=_zone_label(document.zone, here),
            generated_at=document.generated_at,
            css=Markup(CSS_FILE.read_text(encoding="utf-8")),  # our own file, not user text
            **document.values,
        )
    )


class TypesetCache:
    """The last few PDFs typeset, by the SHA-256 of their HTML.

    Typesetting is most of a document's cost (about a quarter of a second for a signed
    consent) and the PDF is a function of its HTML alone: the stylesheet is inlined and
    the rest are this package's files. So the same HTML again (a signed consent
    downloaded twice, a summary reprinted within its minute) is served from memory.
    Bounded, and per process; it holds nothing the database does not.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._pdfs: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, html: str, typeset: Callable[[str], bytes]) -> bytes:
        """The PDF of ``html``: from memory, or ``typeset`` and kept."""
        key = hashlib.sha256(html.encode("utf-8")).digest()
        with self._lock:
            pdf = self._pdfs.get(key)
            if pdf is not None:
                self._pdfs.move_to_end(key)
                self.hits += 1
                return pdf
        pdf = typeset(html)
        with self._lock:
            self.misses += 1
            self._pdfs[key] = pdf
            while len(self._pdfs) > self.size:
                self._pdfs.popitem(last=False)
        return pdf


#: a few dozen documents of some 100 kB each
TYPESET = TypesetCache(size=32)


def _typeset(html: str) -> bytes:
    from weasyprint import HTML

    pdf = HTML(string=html, base_url=str(CSS_FILE.parent)).write_pdf()
    assert pdf is not None  # write_pdf without a target returns the bytes
    return bytes(pdf)


def render_pdf(document: Document) -> bytes:
    """The document typeset as A4 PDF (letterhead, patient on every page, page N of M)."""
    return TYPESET.get(render_html(document), _typeset)
