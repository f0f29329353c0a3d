"""Controlled-substance stock: receipts, draws at the chair, witnessed wastes, counts,
disposals and discrepancies, over the core's ledger (read back by
:mod:`~ketacare.clinic.stock.reading`; a session's account:
:mod:`~ketacare.clinic.stock.accounting`; the reports: :mod:`~ketacare.clinic.stock.reports`).

Every write reads the whole ledger, appends the new entry in the core (which replays
it and refuses it with the reason when a rule breaks: nothing is stored then), and
writes one row and one audit event. Witnesses are separate entries recorded by the
second person with their own login.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.stock.accounting import _purpose_account
from ketacare.clinic.stock.orm import STORED_KINDS, TRANSFER_OUTCOME, StockEntry, StockLot
from ketacare.clinic.stock.reading import Ledger, _aware, _patient_of, _supply, ledger, library
from ketacare.core.errors import InvalidInput
from ketacare.core.stock import (
    Count,
    Disposal,
    Draw,
    Entry,
    Receipt,
    Resolution,
    TransferIn,
    TransferOut,
    Void,
    Waste,
    Witness,
    append,
    append_all,
)
from ketacare.infra.errors import Conflict, NotFound

_FINAL = ("discharged", "stopped_early")


def _when(at: datetime | None, now: datetime) -> datetime:
    when = at or now
    _aware(when, "the time")
    if when > now:
        raise InvalidInput(f"the time {when.isoformat()} is in the future: only past times")
    return when


def _store(
    *,
    session: Session,
    actor: audit.Actor,
    book: Ledger,
    entry: Entry,
    row: StockEntry,
    now: datetime,
    patient_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> StockEntry:
    append(book.entries, entry, library())  # InvalidInput with the reason, nothing stored
    return _write(
        session=session,
        actor=actor,
        entry=entry,
        row=row,
        now=now,
        patient_id=patient_id,
        detail=detail,
    )


def _signer(actor: audit.Actor) -> int:
    if actor.user_id is None:
        raise InvalidInput("stock entries are signed by a logged-in person")
    return actor.user_id


def _write(
    *,
    session: Session,
    actor: audit.Actor,
    entry: Entry,
    row: StockEntry,
    now: datetime,
    patient_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> StockEntry:
    """Store an entry the core has accepted, and audit it."""
    row.kind = STORED_KINDS.get(entry.kind, entry.kind)
    row.at = entry.at
    row.user_id = _signer(actor)
    row.recorded_at = now
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="create",
        resource_type=f"stock_{entry.kind}",
        resource_id=row.id,
        patient_id=patient_id,
        at=now,
        detail=detail or {},
    )
    return row


def _site_lot(session: Session, site: str, product: str, lot: str) -> StockLot | None:
    return session.scalar(
        select(StockLot).where(
            StockLot.site == site, StockLot.product == product, StockLot.lot == lot
        )
    )


def _new_lot(
    session: Session,
    actor: audit.Actor,
    site: str,
    product: str,
    lot: str,
    expiry: date,
    now: datetime,
) -> StockLot:
    row = StockLot(
        site=site,
        product=product,
        lot=lot,
        expiry=expiry,
        created_at=now,
        created_by=_signer(actor),
    )
    session.add(row)
    session.flush()
    return row


def _lot(book: Ledger, lot_id: int) -> StockLot:
    lot = book.lots.get(lot_id)
    if lot is None:
        raise NotFound(f"lot {lot_id} has not been received")
    return lot


def _common(book: Ledger, actor: audit.Actor, at: datetime) -> dict[str, Any]:
    return {"id": book.next_id(), "at": at, "by": actor.username}


def receive(
    *,
    session: Session,
    actor: audit.Actor,
    site: str,
    product: str,
    lot: str,
    expiry: date,
    units: int,
    supplier: str,
    reference: str,
    now: datetime,
    received_at: datetime | None = None,
) -> StockEntry:
    """Receive whole units of a lot (a new lot, or more of one already received)."""
    at = _when(received_at, now)
    lib = library()
    if product not in lib:
        raise InvalidInput(f"product {product!r} is not known: known are {', '.join(lib)}")
    book = ledger(session=session, lock=True)
    site, lot = site.strip(), lot.strip()
    found = _site_lot(session, site, product, lot)
    lot_id = found.id if found is not None else 0
    if found is not None and found.expiry != expiry:
        raise InvalidInput(
            f"lot {lot} of {product} at {site} was received with expiry {found.expiry}: "
            f"a receipt of it cannot say {expiry}"
        )
    entry = Receipt(
        **_common(book, actor, at),
        lot_id=lot_id or -1,
        site=site,
        product=product,
        lot=lot,
        expiry=expiry,
        units=units,
        supplier=supplier.strip(),
        reference=reference.strip(),
    )
    if found is None:
        append(book.entries, entry, lib)  # refuse before a lot row is written
        found = _new_lot(session, actor, site, product, lot, expiry, now)
        book = Ledger(book.entries, book.rows, {**book.lots, found.id: found}, book.names)
    entry = replace(entry, lot_id=found.id)
    return _store(
        session=session,
        actor=actor,
        book=book,
        entry=entry,
        row=StockEntry(
            lot_id=found.id, units=units, supplier=entry.supplier, reference=entry.reference
        ),
        now=now,
        detail={"lot": lot, "product": product, "site": site, "units": units},
    )


def draw(
    *,
    session: Session,
    actor: audit.Actor,
    lot_id: int,
    units: int,
    prepared_mg: float,
    now: datetime,
    prepared_ml: float | None = None,
    dosing_session_id: int | None = None,
    take_home_id: int | None = None,
    drawn_at: datetime | None = None,
) -> StockEntry:
    """Open ``units`` of a lot for a dosing session (still open) or a take-home supply.

    Refused: a lot expired on the day, too little on hand, a product of another
    molecule than the session's or the supply's, a closed session.
    """
    at = _when(drawn_at, now)
    book = ledger(session=session, lock=True)
    lot = _lot(book, lot_id)
    product = library()[lot.product]
    patient_id: int | None
    if dosing_session_id is not None:
        row = sessions.get_session(session=session, session_id=dosing_session_id)
        state = sessions.state_of(session=session, session_id=dosing_session_id)
        if state.state in _FINAL:
            raise Conflict(
                f"session {dosing_session_id} is closed ({state.state}): nothing is drawn"
            )
        molecule, patient_id = state.setup.molecule, row.patient_id
    elif take_home_id is not None:
        supply = _supply(session, take_home_id)
        molecule, patient_id = supply.molecule, supply.patient_id
    else:
        raise InvalidInput("a draw names the dosing session or the take-home supply it is for")
    if product.molecule != molecule:
        raise InvalidInput(
            f"lot {lot.lot} is {product.label} ({product.molecule}): the "
            f"{'session' if take_home_id is None else 'supply'} is {molecule}"
        )
    entry = Draw(
        **_common(book, actor, at),
        lot_id=lot_id,
        units=units,
        prepared_mg=prepared_mg,
        prepared_ml=prepared_ml,
        dosing_session_id=dosing_session_id,
        take_home_id=take_home_id,
    )
    return _store(
        session=session,
        actor=actor,
        book=book,
        entry=entry,
        row=StockEntry(
            lot_id=lot_id,
            units=units,
            mg=float(prepared_mg),
            ml=prepared_ml,
            dosing_session_id=dosing_session_id,
            take_home_id=take_home_id,
        ),
        now=now,
        patient_id=patient_id,
        detail={"lot": lot.lot, "units": units, "prepared_mg": prepared_mg},
    )


def waste(
    *,
    session: Session,
    actor: audit.Actor,
    draw_id: int,
    mg: float,
    method: str,
    now: datetime,
    ml: float | None = None,
    wasted_at: datetime | None = None,
) -> StockEntry:
    """Record drug of a draw not given; it counts once a second person witnesses it.

    Refused above what is left: opened minus given minus the waste already recorded.
    """
    at = _when(wasted_at, now)
    book = ledger(session=session, lock=True)
    target = next((e for e in book.entries if e.id == draw_id), None)
    if not isinstance(target, Draw):
        raise NotFound(f"entry {draw_id} is not a draw")
    acc, patient_id = _purpose_account(session, book, target, now)
    left = acc.opened_mg - acc.delivered_mg - acc.wasted_mg - acc.pending_waste_mg
    if mg > left + 0.01:
        raise InvalidInput(
            f"{mg:g} mg is more than is left to waste: {left:.2f} mg (opened {acc.opened_mg:g} mg, "
            f"given {acc.delivered_mg:.2f} mg, wasted {acc.wasted_mg + acc.pending_waste_mg:g} mg)"
        )
    entry = Waste(**_common(book, actor, at), draw_id=draw_id, mg=mg, ml=ml, method=method.strip())
    return _store(
        session=session,
        actor=actor,
        book=book,
        entry=entry,
        row=StockEntry(
            lot_id=target.lot_id,
            target_id=draw_id,
            mg=float(mg),
            ml=ml,
            method=entry.method,
            dosing_session_id=target.dosing_session_id,
            take_home_id=target.take_home_id,
        ),
        now=now,
        patient_id=patient_id,
        detail={"draw": draw_id, "mg": mg, "method": entry.method},
    )


def count(
    *,
    session: Session,
    actor: audit.Actor,
    lot_id: int,
    units_counted: int,
    now: datetime,
    counted_at: datetime | None = None,
) -> StockEntry:
    """A count of a lot's unopened units; a second person witnesses it with their login."""
    at = _when(counted_at, now)
    book = ledger(session=session, lock=True)
    _lot(book, lot_id)
    entry = Count(**_common(book, actor, at), lot_id=lot_id, units_counted=units_counted)
    return _store(
        session=session,
        actor=actor,
        book=book,
        entry=entry,
        row=StockEntry(lot_id=lot_id, units=units_counted),
        now=now,
        detail={"lot": book.lots[lot_id].lot, "units_counted": units_counted},
    )


def dispose(
    *,
    session: Session,
    actor: audit.Actor,
    lot_id: int,
    units: int,
    disposal: str,
    reason: str,
    reference: str,
    now: datetime,
    disposed_at: datetime | None = None,
) -> StockEntry:
    """Units returned or destroyed (expired, damaged, recalled); witnessed like a waste."""
    at = _when(disposed_at, now)
    book = ledger(session=session, lock=True)
    _lot(book, lot_id)
    entry = Disposal(
        **_common(book, actor, at),
        lot_id=lot_id,
        units=units,
        disposal=disposal,  # type: ignore[arg-type]
        reason=reason.strip(),
        reference=reference.strip(),
    )
    return _store(
        session=session,
        actor=actor,
        book=book,
        entry=entry,
        row=StockEntry(
            lot_id=lot_id,
            units=units,
            outcome=disposal,
            reason=entry.reason,
            reference=entry.reference,
        ),
        now=now,
        detail={"lot": book.lots[lot_id].lot, "units": units, "disposal": disposal},
    )


def transfer(
    *,
    session: Session,
    actor: audit.Actor,
    lot_id: int,
    units: int,
    to_site: str,
    reference: str,
    now: datetime,
    transferred_at: datetime | None = None,
) -> tuple[StockEntry, StockEntry]:
    """Send units of a lot to another site: a transfer out of this site and a transfer in
    to the same lot at the other one, stored together; they count once a second person
    witnesses the transfer out (with their own login).

    Refused, nothing stored: more units than on hand, an expired lot, the same site.
    """
    at = _when(transferred_at, now)
    book = ledger(session=session, lock=True)
    source = _lot(book, lot_id)
    site = to_site.strip()
    found = _site_lot(session, site, source.product, source.lot)
    out = TransferOut(
        **_common(book, actor, at), lot_id=lot_id, units=units, reference=reference.strip()
    )
    into = TransferIn(
        id=out.id + 1,
        at=at,
        by=actor.username,
        transfer_id=out.id,
        lot_id=found.id if found is not None else -1,
        site=site,
        product=source.product,
        lot=source.lot,
        expiry=source.expiry,
        units=units,
    )
    append_all(book.entries, (out, into), library())  # the reason, nothing stored
    if found is None:
        found = _new_lot(session, actor, site, source.product, source.lot, source.expiry, now)
    detail = {"lot": source.lot, "units": units, "from": source.site, "to": site}
    sent = _write(
        session=session,
        actor=actor,
        entry=out,
        row=StockEntry(
            lot_id=lot_id, units=units, outcome=TRANSFER_OUTCOME, reference=out.reference
        ),
        now=now,
        detail=detail,
    )
    received = _write(
        session=session,
        actor=actor,
        entry=into,
        row=StockEntry(lot_id=found.id, units=units, target_id=sent.id, reference=out.reference),
        now=now,
        detail=detail,
    )
    return sent, received


def _target(book: Ledger, entry_id: int) -> StockEntry:
    row = book.rows.get(entry_id)
    if row is None:
        raise NotFound(f"stock entry {entry_id} does not exist")
    return row


def _on_entry(
    *,
    session: Session,
    actor: audit.Actor,
    entry_id: int,
    now: datetime,
    make: Any,
    **columns: Any,
) -> StockEntry:
    """Store an entry about another one (a witness, a void, a resolution)."""
    book = ledger(session=session, lock=True)
    row = _target(book, entry_id)
    entry = make(**_common(book, actor, now))
    return _store(
        session=session,
        actor=actor,
        book=book,
        entry=entry,
        row=StockEntry(lot_id=row.lot_id, target_id=entry_id, **columns),
        now=now,
        patient_id=_patient_of(session, row),
        detail={"entry": entry_id, "kind": row.kind, **columns},
    )


def witness(*, session: Session, actor: audit.Actor, entry_id: int, now: datetime) -> StockEntry:
    """The second person's signature on a waste, a count or a disposal (their own login)."""
    return _on_entry(
        session=session,
        actor=actor,
        entry_id=entry_id,
        now=now,
        make=lambda **common: Witness(**common, target_id=entry_id),
    )


def void(
    *, session: Session, actor: audit.Actor, entry_id: int, reason: str, now: datetime
) -> StockEntry:
    """Retire an entry made in error, with the reason (it stays on record)."""
    return _on_entry(
        session=session,
        actor=actor,
        entry_id=entry_id,
        now=now,
        make=lambda **common: Void(**common, target_id=entry_id, reason=reason.strip()),
        reason=reason.strip(),
    )


def resolve(
    *,
    session: Session,
    actor: audit.Actor,
    count_id: int,
    outcome: str,
    reason: str,
    now: datetime,
    report_reference: str | None = None,
) -> StockEntry:
    """A physician's resolution of the discrepancy a count opened (the permission table
    gives it to physicians): a count error, an adjustment, or a loss or theft reported
    to the DEA (Form 106)."""
    reference = (report_reference or "").strip() or None
    return _on_entry(
        session=session,
        actor=actor,
        entry_id=count_id,
        now=now,
        make=lambda **common: Resolution(
            **common,
            count_id=count_id,
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason.strip(),
            report_reference=reference,
        ),
        outcome=outcome,
        reason=reason.strip(),
        reference=reference,
    )
