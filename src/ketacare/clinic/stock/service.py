"""Controlled-substance stock: receipts, draws at the chair, witnessed wastes, counts,
disposals, discrepancies and the reports, over the core's ledger.

Every write reads the whole ledger, appends the new entry in the core (which replays
it and refuses it with the reason when a rule breaks: nothing is stored then), and
writes one row and one audit event. Witnesses are separate entries recorded by the
second person with their own login. The dose a session gave is what its own log says
(:func:`ketacare.clinic.sessions.service.state_of`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit import service as audit
from ketacare.clinic.safeguards.orm import TakeHomeDispense, TakeHomeVoid
from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.stock.orm import StockEntry, StockLot
from ketacare.core.errors import InvalidInput
from ketacare.core.sessions import delivered_mg
from ketacare.core.stock import (
    Account,
    Count,
    Disposal,
    Draw,
    Entry,
    LotBalance,
    Product,
    Receipt,
    Resolution,
    Stock,
    Void,
    Waste,
    Witness,
    account,
    append,
    products,
    replay,
)
from ketacare.infra.errors import Conflict, NotFound

#: What closes a dosing session (a remainder must be accounted for first).
CLOSING_KINDS = ("discharge", "end_session")
_FINAL = ("discharged", "stopped_early")
_LOCK = text("SELECT pg_advisory_xact_lock(4242016)")


def library() -> dict[str, Product]:
    """The products a lot may be received as."""
    return products()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Ledger:
    """The stored ledger as core entries, with each row and lot behind them."""

    entries: tuple[Entry, ...]
    rows: dict[int, StockEntry]
    lots: dict[int, StockLot]
    names: dict[int, str]

    def next_id(self) -> int:
        return max(self.rows, default=0) + 1


def _entry(row: StockEntry, lot: StockLot | None, by: str) -> Entry:
    common: dict[str, Any] = {"id": row.id, "at": row.at, "by": by}
    if row.kind == "receipt":
        assert lot is not None and row.units is not None
        return Receipt(
            **common,
            lot_id=lot.id,
            site=lot.site,
            product=lot.product,
            lot=lot.lot,
            expiry=lot.expiry,
            units=row.units,
            supplier=row.supplier or "",
            reference=row.reference or "",
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
    return Ledger(entries=entries, rows=rows, lots=lots, names=names)


def stock_at(*, session: Session, actor: audit.Actor, at: datetime, now: datetime) -> Stock:
    """Every lot's balance at ``at`` (an audited read)."""
    _aware(at, "at")
    found = replay(ledger(session=session).entries, library(), at=at)
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="stock",
        at=now,
        detail={"at": at.isoformat()},
    )
    return found


# --------------------------------------------------------------------------- writing


def _aware(value: datetime, what: str) -> None:
    if value.tzinfo is None:
        raise InvalidInput(f"{what} must have a time zone")


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
    if actor.user_id is None:
        raise InvalidInput("stock entries are signed by a logged-in person")
    row.kind = entry.kind
    row.at = entry.at
    row.user_id = actor.user_id
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
    found = session.scalar(
        select(StockLot).where(
            StockLot.site == site, StockLot.product == product, StockLot.lot == lot
        )
    )
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
        if actor.user_id is None:
            raise InvalidInput("stock entries are signed by a logged-in person")
        found = StockLot(
            site=site,
            product=product,
            lot=lot,
            expiry=expiry,
            created_at=now,
            created_by=actor.user_id,
        )
        session.add(found)
        session.flush()
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


def _delivered(session: Session, dosing_session_id: int, now: datetime) -> tuple[float, Any]:
    state = sessions.state_of(session=session, session_id=dosing_session_id)
    if state.dosing_started_at is None:
        return 0.0, state
    ended = state.dosing_ended_at or state.finished_at
    return delivered_mg(state, at=ended or now), state


def _supply(session: Session, take_home_id: int) -> TakeHomeDispense:
    row = session.get(TakeHomeDispense, take_home_id)
    if row is None:
        raise NotFound(f"take-home supply {take_home_id} does not exist")
    if session.scalar(select(TakeHomeVoid.id).where(TakeHomeVoid.dispense_id == take_home_id)):
        raise Conflict(f"take-home supply {take_home_id} is void: nothing is drawn for it")
    return row


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


def _purpose_account(
    session: Session, book: Ledger, draw_entry: Draw, now: datetime
) -> tuple[Account, int]:
    if draw_entry.dosing_session_id is not None:
        given, _ = _delivered(session, draw_entry.dosing_session_id, now)
        patient = sessions.get_session(
            session=session, session_id=draw_entry.dosing_session_id
        ).patient_id
        return (
            account(
                book.entries,
                library(),
                delivered_mg=given,
                dosing_session_id=draw_entry.dosing_session_id,
            ),
            patient,
        )
    assert draw_entry.take_home_id is not None
    supply = _supply(session, draw_entry.take_home_id)
    return (
        account(
            book.entries,
            library(),
            delivered_mg=supply.strength_mg * supply.units,
            take_home_id=draw_entry.take_home_id,
        ),
        supply.patient_id,
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


def _target(book: Ledger, entry_id: int) -> StockEntry:
    row = book.rows.get(entry_id)
    if row is None:
        raise NotFound(f"stock entry {entry_id} does not exist")
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


# --------------------------------------------------------------------------- sessions


def session_account(*, session: Session, dosing_session_id: int, now: datetime) -> Account:
    """What became of the drug opened for a dosing session (not audited: the caller's)."""
    given, _ = _delivered(session, dosing_session_id, now)
    return account(
        ledger(session=session).entries,
        library(),
        delivered_mg=given,
        dosing_session_id=dosing_session_id,
    )


def read_session_account(
    *, session: Session, actor: audit.Actor, dosing_session_id: int, now: datetime
) -> tuple[Account, str | None]:
    """The session's account and why it cannot close yet (None: it may), audited as a read."""
    from ketacare.clinic.sessions.service import get_session

    acc = session_account(session=session, dosing_session_id=dosing_session_id, now=now)
    why = unaccounted_remainder(session=session, dosing_session_id=dosing_session_id, now=now)
    row = get_session(session=session, session_id=dosing_session_id)
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="stock_session",
        resource_id=dosing_session_id,
        patient_id=row.patient_id,
        at=now,
    )
    return acc, why


def _keeps_stock_of(session: Session, molecule: str) -> bool:
    kept = {p.id for p in library().values() if p.molecule == molecule}
    return bool(session.scalar(select(StockLot.id).where(StockLot.product.in_(kept)).limit(1)))


def unaccounted_remainder(
    *, session: Session, dosing_session_id: int, now: datetime | None = None
) -> str | None:
    """Why the session cannot be closed yet, or None when every mg is accounted for.

    A session that drew from stock must have given or wasted (witnessed) every mg it
    opened; once the clinic keeps stock of the session's molecule, a session that gave
    a dose without a draw cannot be closed either.
    """
    from ketacare.infra.clock import utc_now

    at = now or utc_now()
    given, state = _delivered(session, dosing_session_id, at)
    acc = account(
        ledger(session=session).entries,
        library(),
        delivered_mg=given,
        dosing_session_id=dosing_session_id,
    )
    if not acc.draws:
        if given > 0 and _keeps_stock_of(session, state.setup.molecule):
            return (
                f"session {dosing_session_id} gave {given:.2f} mg of {state.setup.molecule} but "
                "drew nothing from stock: record the draw (lot and units opened) first"
            )
        return None
    if acc.accounted:
        return None
    pending = (
        f" ({acc.pending_waste_mg:g} mg of waste awaits its witness)"
        if acc.pending_waste_mg
        else ""
    )
    if acc.remainder_mg < 0:
        return (
            f"session {dosing_session_id}: the log says {acc.delivered_mg:.2f} mg was given but "
            f"only {acc.opened_mg:g} mg was opened: record the missing draw or amend the log"
        )
    return (
        f"session {dosing_session_id} has {acc.remainder_mg:.2f} mg unaccounted for (opened "
        f"{acc.opened_mg:g} mg, given {acc.delivered_mg:.2f} mg, wasted {acc.wasted_mg:g} mg "
        f"with a witness){pending}: waste the remainder in front of a witness first"
    )


def refuse_unaccounted(
    *, session: Session, dosing_session_id: int, kind: str, now: datetime
) -> None:
    """The hook a session's close goes through: :class:`Conflict` while drug is
    unaccounted for (called before a ``discharge`` or ``end_session`` is recorded)."""
    if kind not in CLOSING_KINDS:
        return
    why = unaccounted_remainder(session=session, dosing_session_id=dosing_session_id, now=now)
    if why is not None:
        raise Conflict(f"the session cannot be closed: {why}")


# --------------------------------------------------------------------------- reports


REPORTS = ("inventory", "dispensing", "waste")


def inventory(*, entries: Sequence[Entry], at: datetime) -> list[LotBalance]:
    """The inventory at ``at`` per site and lot (21 CFR 1304.11), lots ever received."""
    return sorted(
        replay(entries, library(), at=at).lots, key=lambda b: (b.site, b.product.id, b.lot)
    )


def inventory_json(lots: Sequence[LotBalance], at: datetime) -> dict[str, Any]:
    """The command's and the API's JSON: per lot, and the totals per molecule."""
    totals: dict[str, dict[str, float]] = {}
    for b in lots:
        t = totals.setdefault(b.product.molecule, {"units_on_hand": 0, "mg_on_hand": 0.0})
        t["units_on_hand"] += b.units_on_hand
        t["mg_on_hand"] += b.mg_on_hand
    return {
        "at": at.isoformat(),
        "lots": [
            {
                "lot": b.lot,
                "lot_id": b.lot_id,
                "site": b.site,
                "product": b.product.id,
                "ndc": b.product.ndc,
                "expiry": b.expiry.isoformat(),
                "units_on_hand": b.units_on_hand,
                "mg_on_hand": b.mg_on_hand,
            }
            for b in lots
        ],
        "totals": {
            "units_on_hand": sum(b.units_on_hand for b in lots),
            "mg_on_hand": sum(b.mg_on_hand for b in lots),
            "by_molecule": totals,
        },
    }


def report_rows(*, session: Session, report: str, at: datetime) -> list[dict[str, Any]]:
    """The rows of one report at ``at``: inventory, dispensing log or waste log."""
    if report not in REPORTS:
        raise InvalidInput(f"report {report!r} is not known: allowed {', '.join(REPORTS)}")
    book = ledger(session=session)
    if report == "inventory":
        return inventory_json(inventory(entries=book.entries, at=at), at)["lots"]  # type: ignore[no-any-return]
    stock = replay(book.entries, library(), at=at)
    witnesses = {e.target_id: e for e in book.entries if isinstance(e, Witness) and e.at <= at}
    rows: list[dict[str, Any]] = []
    for e in book.entries:
        if e.at > at or e.id in stock.voided:
            continue
        if report == "dispensing" and isinstance(e, Draw):
            lot = book.lots[e.lot_id]
            rows.append(
                {
                    "entry": e.id,
                    "at": e.at.isoformat(),
                    "lot": lot.lot,
                    "product": lot.product,
                    "units": e.units,
                    "mg_opened": library()[lot.product].mg(e.units),
                    "prepared_mg": e.prepared_mg,
                    "prepared_ml": e.prepared_ml,
                    "dosing_session": e.dosing_session_id,
                    "take_home_supply": e.take_home_id,
                    "patient": _patient_of(session, book.rows[e.id]),
                    "by": e.by,
                }
            )
        elif report == "waste" and isinstance(e, Waste | Disposal):
            w = witnesses.get(e.id)
            lot = book.lots[book.rows[e.id].lot_id or 0]
            rows.append(
                {
                    "entry": e.id,
                    "at": e.at.isoformat(),
                    "kind": e.kind if isinstance(e, Waste) else e.disposal,
                    "lot": lot.lot,
                    "product": lot.product,
                    "mg": e.mg if isinstance(e, Waste) else library()[lot.product].mg(e.units),
                    "units": None if isinstance(e, Waste) else e.units,
                    "method": e.method if isinstance(e, Waste) else e.reason,
                    "dosing_session": book.rows[e.id].dosing_session_id,
                    "by": e.by,
                    "witness": w.by if w is not None else None,
                    "witnessed_at": w.at.isoformat() if w is not None else None,
                }
            )
    return rows


def read_report(
    *,
    session: Session,
    actor: audit.Actor,
    report: str,
    at: datetime,
    export: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """:func:`report_rows`, audited as a read of the report (with its instant and format)."""
    rows = report_rows(session=session, report=report, at=at)
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type=f"stock_report_{report}",
        at=now,
        detail={"at": at.isoformat(), "format": export},
    )
    return rows


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV (a header of the first row's keys)."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
