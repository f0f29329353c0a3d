"""Controlled-substance stock: the stored ledger read back as the core's entries (with
the row, lot and signer behind each), the balances at an instant, and the lookups the
writes, the session accounts and the reports share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit import service as audit
from ketacare.clinic.safeguards.orm import TakeHomeDispense, TakeHomeVoid
from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.stock.orm import StockEntry, StockLot
from ketacare.clinic.stock.registry import clinic_library
from ketacare.core.errors import InvalidInput
from ketacare.core.stock import (
    Count,
    Disposal,
    Draw,
    Entry,
    Product,
    Receipt,
    Resolution,
    Stock,
    TransferIn,
    TransferOut,
    Void,
    Waste,
    Witness,
    products,
    replay,
)
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict

_LOCK = text("SELECT pg_advisory_xact_lock(4242016)")


def library(session: Session) -> dict[str, Product]:
    """The products a lot may be received as: ketacare's library and the products the
    clinic registered from its suppliers' labels (:mod:`~ketacare.clinic.stock.registry`)."""
    return {**products(), **clinic_library(session)}


@dataclass(frozen=True, slots=True)
class Ledger:
    """The stored ledger as core entries, with each row and lot behind them."""

    entries: tuple[Entry, ...]
    rows: dict[int, StockEntry]
    lots: dict[int, StockLot]
    names: dict[int, str]
    #: the products its lots may be (:func:`library`)
    library: dict[str, Product]

    def next_id(self) -> int:
        return max(self.rows, default=0) + 1


def _entry(row: StockEntry, lot: StockLot | None, by: str) -> Entry:
    common: dict[str, Any] = {"id": row.id, "at": row.at, "by": by}
    kind = row.entry_kind
    if kind in ("receipt", "transfer_in"):
        assert lot is not None and row.units is not None
        arrival: dict[str, Any] = {
            "lot_id": lot.id,
            "site": lot.site,
            "product": lot.product,
            "lot": lot.lot,
            "expiry": lot.expiry,
            "units": row.units,
        }
        if kind == "transfer_in":
            assert row.target_id is not None
            return TransferIn(**common, **arrival, transfer_id=row.target_id)
        return Receipt(
            **common, **arrival, supplier=row.supplier or "", reference=row.reference or ""
        )
    if kind == "transfer_out":
        return TransferOut(
            **common, lot_id=row.lot_id or 0, units=row.units or 0, reference=row.reference or ""
        )
    if row.kind == "draw":
        return Draw(
            **common,
            lot_id=row.lot_id or 0,
            units=row.units or 0,
            prepared_mg=row.mg or 0.0,
            prepared_ml=row.ml,
            dosing_session_id=row.dosing_session_id,
            take_home_id=row.take_home_id,
        )
    if row.kind == "waste":
        return Waste(
            **common,
            draw_id=row.target_id or 0,
            mg=row.mg or 0.0,
            ml=row.ml,
            method=row.method or "",
        )
    if row.kind == "count":
        return Count(**common, lot_id=row.lot_id or 0, units_counted=row.units or 0)
    if row.kind == "disposal":
        return Disposal(
            **common,
            lot_id=row.lot_id or 0,
            units=row.units or 0,
            disposal=row.outcome,  # type: ignore[arg-type]
            reason=row.reason or "",
            reference=row.reference or "",
        )
    if row.kind == "resolution":
        return Resolution(
            **common,
            count_id=row.target_id or 0,
            outcome=row.outcome,  # type: ignore[arg-type]
            reason=row.reason or "",
            report_reference=row.reference,
        )
    if row.kind == "witness":
        return Witness(**common, target_id=row.target_id or 0)
    return Void(**common, target_id=row.target_id or 0, reason=row.reason or "")


def ledger(*, session: Session, lock: bool = False) -> Ledger:
    """The whole ledger (``lock``: hold the stock lock to the end of the transaction, so
    two writers never both pass a check on the same last vial)."""
    if lock and session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK)
    rows = {r.id: r for r in session.scalars(select(StockEntry).order_by(StockEntry.id))}
    lots = {lot.id: lot for lot in session.scalars(select(StockLot))}
    users = {r.user_id for r in rows.values()}
    names = (
        {u.id: u.username for u in session.scalars(select(User).where(User.id.in_(users)))}
        if users
        else {}
    )
    entries = tuple(
        _entry(
            r,
            lots.get(r.lot_id) if r.lot_id is not None else None,
            names[r.user_id],
        )
        for r in rows.values()
    )
    return Ledger(entries=entries, rows=rows, lots=lots, names=names, library=library(session))


def stock_at(*, session: Session, actor: audit.Actor, at: datetime, now: datetime) -> Stock:
    """Every lot's balance at ``at`` (an audited read)."""
    _aware(at, "at")
    book = ledger(session=session)
    found = replay(book.entries, book.library, at=at)
    read_audited(session=session, actor=actor, what="stock", now=now, detail={"at": at.isoformat()})
    return found


def read_audited(
    *, session: Session, actor: audit.Actor, what: str, now: datetime, **fields: Any
) -> None:
    """The audit event of a read of the stock (``what``: the stock, a session's drug, a
    report), with the resource, patient or detail ``fields`` of :func:`audit.record`."""
    audit.record(session=session, actor=actor, action="read", resource_type=what, at=now, **fields)


def _aware(value: datetime, what: str) -> None:
    if value.tzinfo is None:
        raise InvalidInput(f"{what} must have a time zone")


def _supply(session: Session, take_home_id: int) -> TakeHomeDispense:
    row = existing(session, TakeHomeDispense, take_home_id, "take-home supply")
    if session.scalar(select(TakeHomeVoid.id).where(TakeHomeVoid.dispense_id == take_home_id)):
        raise Conflict(f"take-home supply {take_home_id} is void: nothing is drawn for it")
    return row


def _patient_of(session: Session, row: StockEntry) -> int | None:
    if row.dosing_session_id is not None:
        return int(
            sessions.get_session(session=session, session_id=row.dosing_session_id).patient_id
        )
    if row.take_home_id is not None:
        supply = session.get(TakeHomeDispense, row.take_home_id)
        return supply.patient_id if supply is not None else None
    return None
