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

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.stock.accounting import CLOSED_STATES, _purpose_account
from ketacare.clinic.stock.orm import STORED_KINDS, TRANSFER_OUTCOME, StockEntry, StockLot
from ketacare.clinic.stock.reading import Ledger, _aware, _patient_of, _supply, ledger
from ketacare.clinic.stock.registry import refuse_retired
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
    append_all,
)
from ketacare.infra.errors import Conflict, NotFound


def _when(at: datetime | None, now: datetime) -> datetime:
    when = at or now
    _aware(when, "the time")
    if when > now:
        raise InvalidInput(f"the time {when.isoformat()} is in the future: only past times")
    return when


def _signer(actor: audit.Actor) -> int:
    if actor.user_id is None:
        raise InvalidInput("stock entries are signed by a logged-in person")
    return actor.user_id


@dataclass(frozen=True, slots=True)
class _Write:
    """One write to the ledger: who, when, and the ledger as it stands (under the lock)."""

    session: Session
    actor: audit.Actor
    now: datetime
    book: Ledger

    @classmethod
    def begin(cls, session: Session, actor: audit.Actor, now: datetime) -> _Write:
        return cls(session, actor, now, ledger(session=session, lock=True))

    def common(self, at: datetime | None = None) -> dict[str, Any]:
        """The number, time and signer of the next entry."""
        return {"id": self.book.next_id(), "at": at or self.now, "by": self.actor.username}

    def check(self, *entries: Entry) -> None:
        """:class:`InvalidInput` with the reason when the core refuses the entries."""
        append_all(self.book.entries, entries, self.book.library)

    def store(
        self,
        entry: Entry,
        row: StockEntry,
        *,
        patient_id: int | None = None,
        detail: dict[str, Any] | None = None,
        checked: bool = False,
    ) -> StockEntry:
        """Store one row for ``entry`` (checked by the core first unless ``checked``) and
        audit it; a refused entry stores nothing."""
        if not checked:
            self.check(entry)
        row.kind = STORED_KINDS.get(entry.kind, entry.kind)
        row.at = entry.at
        row.user_id = _signer(self.actor)
        row.recorded_at = self.now
        self.session.add(row)
        self.session.flush()
        audit.record(
            session=self.session,
            actor=self.actor,
            action="create",
            resource_type=f"stock_{entry.kind}",
            resource_id=row.id,
            patient_id=patient_id,
            at=self.now,
            detail=detail or {},
        )
        return row

    def lot(self, lot_id: int) -> StockLot:
        """A lot on record (:class:`NotFound` otherwise)."""
        lot = self.book.lots.get(lot_id)
        if lot is None:
            raise NotFound(f"lot {lot_id} has not been received")
        return lot

    def site_lot(self, site: str, product: str, lot: str) -> StockLot | None:
        """The lot of ``product`` numbered ``lot`` at ``site``, if any."""
        return self.session.scalar(
            select(StockLot).where(
                StockLot.site == site, StockLot.product == product, StockLot.lot == lot
            )
        )

    def new_lot(self, site: str, product: str, lot: str, expiry: date) -> StockLot:
        """A lot's row, written once the core has accepted the entry that brings it."""
        row = StockLot(
            site=site,
            product=product,
            lot=lot,
            expiry=expiry,
            created_at=self.now,
            created_by=_signer(self.actor),
        )
        self.session.add(row)
        self.session.flush()
        return row


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
    w = _Write.begin(session, actor, now)
    lib = w.book.library
    if product not in lib:
        raise InvalidInput(f"product {product!r} is not known: known are {', '.join(lib)}")
    refuse_retired(session, product)
    site, lot = site.strip(), lot.strip()
    found = w.site_lot(site, product, lot)
    if found is not None and found.expiry != expiry:
        raise InvalidInput(
            f"lot {lot} of {product} at {site} was received with expiry {found.expiry}: "
            f"a receipt of it cannot say {expiry}"
        )
    entry = Receipt(
        **w.common(at),
        lot_id=found.id if found is not None else -1,
        site=site,
        product=product,
        lot=lot,
        expiry=expiry,
        units=units,
        supplier=supplier.strip(),
        reference=reference.strip(),
    )
    if found is None:
        w.check(entry)  # refuse before a lot row is written
        found = w.new_lot(site, product, lot, expiry)
    entry = replace(entry, lot_id=found.id)
    return w.store(
        entry,
        StockEntry(
            lot_id=found.id, units=units, supplier=entry.supplier, reference=entry.reference
        ),
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
    """Open ``units`` of a lot for a dosing session (still open).

    Refused: a lot expired on the day, too little on hand, a product of another
    molecule than the session's or of a form its route does not take, a closed session;
    a take-home supply (it draws when it
    is dispensed: :mod:`~ketacare.clinic.stock.supplies`).
    """
    at = _when(drawn_at, now)
    w = _Write.begin(session, actor, now)
    lot = w.lot(lot_id)
    product = w.book.library[lot.product]
    patient_id: int | None
    if dosing_session_id is not None:
        row = sessions.get_session(session=session, session_id=dosing_session_id)
        state = sessions.state_of(session=session, session_id=dosing_session_id)
        if state.state in CLOSED_STATES:
            raise Conflict(
                f"session {dosing_session_id} is closed ({state.state}): nothing is drawn"
            )
        molecule, route, patient_id = state.setup.molecule, state.setup.route, row.patient_id
    elif take_home_id is not None:
        supply = _supply(session, take_home_id)
        raise Conflict(
            f"take-home supply {take_home_id} is on record: a supply draws from stock when it "
            f"is dispensed (POST /api/v1/plans/{supply.plan_id}/take-home naming lot_id), "
            "never afterwards"
        )
    else:
        raise InvalidInput("a draw names the dosing session or the take-home supply it is for")
    if product.molecule != molecule:
        raise InvalidInput(
            f"lot {lot.lot} is {product.shown} ({product.molecule}): the session is {molecule}"
        )
    if not product.fits(route):
        raise InvalidInput(
            f"lot {lot.lot} is {product.shown}, a form ({product.form_label}) not given by "
            f"the session's route ({route.replace('_', ' ')})"
        )
    purpose: dict[str, Any] = {"dosing_session_id": dosing_session_id, "take_home_id": take_home_id}
    entry = Draw(
        **w.common(at),
        lot_id=lot_id,
        units=units,
        prepared_mg=prepared_mg,
        prepared_ml=prepared_ml,
        **purpose,
    )
    return w.store(
        entry,
        StockEntry(lot_id=lot_id, units=units, mg=float(prepared_mg), ml=prepared_ml, **purpose),
        patient_id=patient_id,
        detail={"lot": lot.lot, "units": units, "prepared_mg": prepared_mg},
    )


def _left_mg(left: float) -> str:
    """What is left to waste, to the hundredth of a mg: "0" when nothing is (a remainder
    overspent by less than the rounding, or more, is never shown as a negative zero)."""
    hundredths = round(left, 2)
    return "0" if hundredths <= 0 else f"{hundredths:.2f}"


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
    w = _Write.begin(session, actor, now)
    target = next((e for e in w.book.entries if e.id == draw_id), None)
    if not isinstance(target, Draw):
        raise NotFound(f"entry {draw_id} is not a draw")
    acc, patient_id = _purpose_account(session, w.book, target, now)
    left = acc.opened_mg - acc.delivered_mg - acc.wasted_mg - acc.pending_waste_mg
    if mg > left + 0.01:
        raise InvalidInput(
            f"{mg:g} mg is more than is left to waste: {_left_mg(left)} mg (opened "
            f"{acc.opened_mg:g} mg, given {acc.delivered_mg:.2f} mg, wasted "
            f"{acc.wasted_mg + acc.pending_waste_mg:g} mg)"
        )
    entry = Waste(**w.common(at), draw_id=draw_id, mg=mg, ml=ml, method=method.strip())
    return w.store(
        entry,
        StockEntry(
            lot_id=target.lot_id,
            target_id=draw_id,
            mg=float(mg),
            ml=ml,
            method=entry.method,
            dosing_session_id=target.dosing_session_id,
            take_home_id=target.take_home_id,
        ),
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
    w = _Write.begin(session, actor, now)
    lot = w.lot(lot_id)
    return w.store(
        Count(**w.common(at), lot_id=lot_id, units_counted=units_counted),
        StockEntry(lot_id=lot_id, units=units_counted),
        detail={"lot": lot.lot, "units_counted": units_counted},
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
    w = _Write.begin(session, actor, now)
    lot = w.lot(lot_id)
    entry = Disposal(
        **w.common(at),
        lot_id=lot_id,
        units=units,
        disposal=disposal,  # type: ignore[arg-type]
        reason=reason.strip(),
        reference=reference.strip(),
    )
    return w.store(
        entry,
        StockEntry(
            lot_id=lot_id,
            units=units,
            outcome=disposal,
            reason=entry.reason,
            reference=entry.reference,
        ),
        detail={"lot": lot.lot, "units": units, "disposal": disposal},
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
    w = _Write.begin(session, actor, now)
    source = w.lot(lot_id)
    site = to_site.strip()
    found = w.site_lot(site, source.product, source.lot)
    out = TransferOut(**w.common(at), lot_id=lot_id, units=units, reference=reference.strip())
    into = TransferIn(
        **{**w.common(at), "id": out.id + 1},
        transfer_id=out.id,
        lot_id=found.id if found is not None else -1,
        site=site,
        product=source.product,
        lot=source.lot,
        expiry=source.expiry,
        units=units,
    )
    w.check(out, into)  # the reason, nothing stored
    if found is None:
        found = w.new_lot(site, source.product, source.lot, source.expiry)
    detail = {"lot": source.lot, "units": units, "from": source.site, "to": site}
    sent = w.store(
        out,
        StockEntry(lot_id=lot_id, units=units, outcome=TRANSFER_OUTCOME, reference=out.reference),
        detail=detail,
        checked=True,
    )
    received = w.store(
        into,
        StockEntry(lot_id=found.id, units=units, target_id=sent.id, reference=out.reference),
        detail=detail,
        checked=True,
    )
    return sent, received


def _on_entry(
    *,
    session: Session,
    actor: audit.Actor,
    entry_id: int,
    now: datetime,
    make: Callable[..., Entry],
    **columns: Any,
) -> StockEntry:
    """Store an entry about another one (a witness, a void, a resolution)."""
    w = _Write.begin(session, actor, now)
    row = w.book.rows.get(entry_id)
    if row is None:
        raise NotFound(f"stock entry {entry_id} does not exist")
    return w.store(
        make(**w.common()),
        StockEntry(lot_id=row.lot_id, target_id=entry_id, **columns),
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
