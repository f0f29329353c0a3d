"""Controlled-substance stock as typeset documents: the inventory at an instant
(21 CFR 1304.11) and the log of a period (21 CFR 1304.21-1304.22), from
``stock/inventory_document.html`` and ``stock/log_document.html``.

Both name no patient on their running head (a draw names the patient's MRN in its
row); the letterhead, the printing time, the clinic's time zone and "page N of M" are
on every page, as on every clinical document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.documents import Document, Letterhead, render_pdf
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.stock.reading import Ledger, _patient_of, ledger, read_audited
from ketacare.clinic.stock.reports import inventory
from ketacare.core.errors import InvalidInput
from ketacare.core.stock import (
    Count,
    Discrepancy,
    Disposal,
    Draw,
    LotBalance,
    Receipt,
    TransferIn,
    TransferOut,
    Void,
    Waste,
    Witness,
    replay,
)
from ketacare.core.terminology.treatments import molecule_label
from ketacare.infra.settings import Settings

#: The longest period one log covers (a printed log, not an export of the ledger).
MAX_LOG_DAYS = 366


def start_of(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in the clinic's zone."""
    return datetime.combine(day, time(0), tzinfo=zone)


def close_of(day: date, zone: ZoneInfo) -> datetime:
    """The close of ``day`` in the clinic's zone (its last microsecond)."""
    return start_of(day + timedelta(days=1), zone) - timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class MoleculeTotal:
    molecule: str
    units: int
    mg: float


def _totals(lots: Sequence[LotBalance]) -> list[MoleculeTotal]:
    by: dict[str, list[float]] = {}
    for b in lots:
        t = by.setdefault(b.product.molecule, [0, 0.0])
        t[0] += b.units_on_hand
        t[1] += b.mg_on_hand
    return [MoleculeTotal(molecule_label(m), int(u), mg) for m, (u, mg) in sorted(by.items())]


@dataclass(frozen=True, slots=True)
class Paper:
    """What a report is printed with: the clinic's letterhead and time zone."""

    letterhead: Letterhead
    zone: ZoneInfo

    @classmethod
    def of(cls, settings: Settings) -> Paper:
        return cls(Letterhead.of(settings), settings.zone)

    def pdf(self, template: str, title: str, now: datetime, values: dict[str, Any]) -> bytes:
        """The template typeset as A4 PDF, about no patient."""
        return render_pdf(
            Document(
                template=template,
                title=title,
                letterhead=self.letterhead,
                patient=None,
                zone=self.zone,
                generated_at=now,
                values=values,
            )
        )


def inventory_values(*, book: Ledger, at: datetime, day: date | None = None) -> dict[str, Any]:
    """What the inventory shows: per site, each lot on record, with its totals."""
    lots = inventory(entries=book.entries, at=at, library=book.library)
    by_site: dict[str, list[LotBalance]] = {}
    for b in lots:
        by_site.setdefault(b.site, []).append(b)
    return {
        "at": at,
        "day": day,
        "sites": [(site, found, _totals(found)) for site, found in sorted(by_site.items())],
        "totals": _totals(lots),
    }


def inventory_pdf(
    *, book: Ledger, at: datetime, paper: Paper, now: datetime, day: date | None = None
) -> bytes:
    """The inventory at ``at`` (the close of ``day`` when given) as A4 PDF."""
    values = inventory_values(book=book, at=at, day=day)
    return paper.pdf("stock/inventory_document.html", "Controlled-substance inventory", now, values)


@dataclass(frozen=True, slots=True)
class Movement:
    """One lot over the period: the balance at each end and what moved in between."""

    lot: LotBalance
    opening: int
    received: int
    drawn: int
    disposed: int
    adjusted: int
    moved_in: int = 0
    moved_out: int = 0

    @property
    def closing(self) -> int:
        return self.lot.units_on_hand


def _movements(start: Sequence[LotBalance], end: Sequence[LotBalance]) -> list[Movement]:
    before = {b.lot_id: b for b in start}
    out = []
    for b in sorted(end, key=lambda b: (b.site, b.product.id, b.lot)):
        a = before.get(b.lot_id)
        out.append(
            Movement(
                lot=b,
                opening=a.units_on_hand if a else 0,
                received=b.received - (a.received if a else 0),
                drawn=b.drawn - (a.drawn if a else 0),
                disposed=b.disposed - (a.disposed if a else 0),
                adjusted=b.adjusted - (a.adjusted if a else 0),
                moved_in=b.transferred_in - (a.transferred_in if a else 0),
                moved_out=b.transferred_out - (a.transferred_out if a else 0),
            )
        )
    return out


def log_values(*, session: Session, book: Ledger, start: datetime, end: datetime) -> dict[str, Any]:
    """What the log of ``start``..``end`` shows, every entry of the period by kind."""
    lib = book.library
    opened = replay(book.entries, lib, at=start - timedelta(microseconds=1))
    closed = replay(book.entries, lib, at=end)
    signed = [e for e in book.entries if e.at <= end]
    witnesses = {e.target_id: e for e in signed if isinstance(e, Witness)}
    voids = {e.target_id: e for e in signed if isinstance(e, Void)}
    found: dict[int, Discrepancy] = {d.count.id: d for d in closed.discrepancies}
    period = [
        e
        for e in book.entries
        if start <= e.at <= end and not isinstance(e, Witness | Void) and e.id not in voids
    ]
    mrn: dict[int, str] = {}

    def patient(entry_id: int) -> str:
        pid = _patient_of(session, book.rows[entry_id])
        if pid is None:
            return ""
        if pid not in mrn:
            row = session.get(Patient, pid)
            mrn[pid] = row.mrn if row is not None else str(pid)
        return mrn[pid]

    def lot_of(entry_id: int) -> Any:
        return book.lots[book.rows[entry_id].lot_id or 0]

    draws = {e.id: e for e in book.entries if isinstance(e, Draw)}
    arrivals = {e.transfer_id: e for e in book.entries if isinstance(e, TransferIn)}
    return {
        "start": start,
        "end": end,
        "movements": _movements(opened.lots, closed.lots),
        "receipts": [(e, lib[e.product]) for e in period if isinstance(e, Receipt)],
        "draws": [
            (e, lot_of(e.id), lib[lot_of(e.id).product], patient(e.id))
            for e in period
            if isinstance(e, Draw)
        ],
        "wastes": [
            (e, draws[e.draw_id], lot_of(e.id), patient(e.id), witnesses.get(e.id))
            for e in period
            if isinstance(e, Waste)
        ],
        "counts": [
            (e, lot_of(e.id), found.get(e.id), witnesses.get(e.id))
            for e in period
            if isinstance(e, Count)
        ],
        "disposals": [
            (e, lot_of(e.id), lib[lot_of(e.id).product], witnesses.get(e.id))
            for e in period
            if isinstance(e, Disposal)
        ],
        "transfers": [
            (e, arrivals[e.id], lot_of(e.id), lot_of(arrivals[e.id].id), witnesses.get(e.id))
            for e in period
            if isinstance(e, TransferOut)
        ],
        "voids": [
            (v, next(e for e in book.entries if e.id == target))
            for target, v in sorted(voids.items())
            if start <= v.at <= end
        ],
        "names": book.names,
    }


def log_pdf(
    *,
    session: Session,
    actor: audit.Actor,
    start_day: date,
    end_day: date,
    paper: Paper,
    now: datetime,
) -> bytes:
    """The log of the days ``start_day`` to ``end_day`` (the clinic's zone) as A4 PDF,
    audited as a read of the report."""
    if end_day < start_day:
        raise InvalidInput(f"the period ends ({end_day}) before it starts ({start_day})")
    if (end_day - start_day).days >= MAX_LOG_DAYS:
        raise InvalidInput(f"a log covers at most {MAX_LOG_DAYS} days: print it in parts")
    start, end = start_of(start_day, paper.zone), close_of(end_day, paper.zone)
    values = log_values(session=session, book=ledger(session=session), start=start, end=end)
    period = {"from": start.isoformat(), "to": end.isoformat(), "format": "pdf"}
    read_audited(session=session, actor=actor, what="stock_report_log", now=now, detail=period)
    values = {**values, "start_day": start_day, "end_day": end_day}
    return paper.pdf("stock/log_document.html", "Controlled-substance log", now, values)


def read_inventory_pdf(
    *,
    session: Session,
    actor: audit.Actor,
    at: datetime,
    paper: Paper,
    now: datetime,
    day: date | None = None,
) -> bytes:
    """:func:`inventory_pdf` of the stored ledger, audited as a read of the report."""
    detail = {"at": at.isoformat(), "format": "pdf"}
    read_audited(
        session=session, actor=actor, what="stock_report_inventory", now=now, detail=detail
    )
    book = ledger(session=session)
    return inventory_pdf(book=book, at=at, paper=paper, now=now, day=day)
