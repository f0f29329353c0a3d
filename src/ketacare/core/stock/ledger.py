"""The controlled-substance ledger: its entries (:mod:`~ketacare.core.stock.entries`),
their validation and the replay.

Every movement of stock is an entry, appended and never changed: a **receipt** brings
whole units of a lot in; a **draw** opens units for a dosing session or a take-home
supply (they leave stock when opened); a **waste** records what of a draw was not
given, in front of a witness; a **count** is two people's count of a lot; a
**disposal** sends units back or destroys them (expired, damaged, recalled); a
**resolution** is a physician's answer to a count that disagreed with the balance
(a count error, an adjustment with its reason, or a loss or theft reported to the DEA).
A **witness** is the second person's signature on a waste, a count or a disposal
(which count only once witnessed, never by the person who recorded them), and a
**void** retires an entry entered in error, with the reason (it stays on record).

The replay gives each lot's balance at any instant; validation replays the whole
ledger with a candidate entry and refuses it, with the reason, when any rule breaks.

Examples
--------
A hand-worked day. Ten 50 mg/mL 10 mL vials (500 mg each: 5000 mg) are received.
Session 7 opens one vial and prepares 100 mg in a 100 mL bag; the log says 70 mg
was given, so 430 mg are wasted (the 400 mg left in the vial and 30 mg in the bag),
witnessed by a second nurse. Session 8 opens two vials (1000 mg) and gives 1000 mg.

>>> from datetime import UTC, date, datetime
>>> t = lambda h: datetime(2026, 3, 2, h, tzinfo=UTC)
>>> lib = products()
>>> ledger = (
...     Receipt(id=1, at=t(8), by="ana", lot_id=1, site="main",
...             product="ketamine-50mg-ml-10ml-vial", lot="K123", expiry=date(2027, 1, 31),
...             units=10, supplier="Acme Wholesale", reference="INV-1"),
...     Draw(id=2, at=t(9), by="ana", lot_id=1, units=1, prepared_mg=100, prepared_ml=100,
...          dosing_session_id=7),
...     Waste(id=3, at=t(11), by="ana", draw_id=2, mg=430, ml=None, method="sink, denatured"),
...     Witness(id=4, at=t(11), by="ben", target_id=3),
...     Draw(id=5, at=t(12), by="ana", lot_id=1, units=2, prepared_mg=1000, prepared_ml=100,
...          dosing_session_id=8),
... )
>>> stock = replay(ledger, lib)
>>> [(b.lot, b.units_on_hand, b.mg_on_hand) for b in stock.lots]
[('K123', 7, 3500.0)]
>>> a = account(ledger, lib, dosing_session_id=7, delivered_mg=70)
>>> (a.opened_mg, a.delivered_mg, a.wasted_mg, a.remainder_mg, a.accounted)
(500.0, 70, 430.0, 0.0, True)

The day ends with a count of six vials by two nurses: one vial (500 mg) is missing.

>>> ledger += (Count(id=6, at=t(18), by="ana", lot_id=1, units_counted=6),
...            Witness(id=7, at=t(18), by="ben", target_id=6))
>>> [(d.expected, d.counted, d.difference, d.resolved) for d in replay(ledger, lib).discrepancies]
[(7, 6, -1, False)]

Nobody witnesses their own waste; nothing is appended:

>>> wasted = (*ledger, Waste(id=8, at=t(18), by="ana", draw_id=5, mg=1, ml=None, method="sink"))
>>> append(wasted, Witness(id=9, at=t(18), by="ana", target_id=8), lib)
Traceback (most recent call last):
...
ketacare.core.errors.InvalidInput: entry 9: ana recorded waste 8: a second person must witness it
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from ketacare.core.errors import InvalidInput
from ketacare.core.stock.entries import (
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
)
from ketacare.core.stock.products import Product, products

__all__ = [
    "MG_RESOLUTION",
    "Account",
    "Discrepancy",
    "LotBalance",
    "Stock",
    "account",
    "append",
    "append_all",
    "replay",
]

#: The precision of a milligram record (two decimals): a remainder smaller than this is
#: rounding of the dose the log integrates, not drug. A recording precision, not a
#: clinical number.
MG_RESOLUTION = 0.01


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class LotBalance:
    """One lot at an instant: what came in, what went out, what is on hand."""

    lot_id: int
    site: str
    product: Product
    lot: str
    expiry: date
    received: int
    drawn: int
    disposed: int
    adjusted: int
    transferred_in: int = 0
    transferred_out: int = 0

    @property
    def units_on_hand(self) -> int:
        """Unopened units on hand."""
        return (
            self.received
            + self.transferred_in
            - self.drawn
            - self.disposed
            - self.transferred_out
            + self.adjusted
        )

    @property
    def mg_on_hand(self) -> float:
        """The mg held by the units on hand."""
        return self.product.mg(self.units_on_hand)


@dataclass(frozen=True, slots=True, kw_only=True)
class Discrepancy:
    """A witnessed count that disagreed with the balance at its time."""

    count: Count
    expected: int
    resolution: Resolution | None = None

    @property
    def counted(self) -> int:
        return self.count.units_counted

    @property
    def difference(self) -> int:
        """Counted minus expected (negative: units missing)."""
        return self.counted - self.expected

    @property
    def resolved(self) -> bool:
        return self.resolution is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stock:
    """The ledger replayed to an instant."""

    lots: tuple[LotBalance, ...]
    discrepancies: tuple[Discrepancy, ...]
    pending: tuple[Entry, ...]
    voided: frozenset[int] = field(default_factory=frozenset)

    def lot(self, lot_id: int) -> LotBalance:
        """The balance of lot ``lot_id`` (InvalidInput when unknown)."""
        for b in self.lots:
            if b.lot_id == lot_id:
                return b
        raise InvalidInput(f"lot {lot_id} has not been received")


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """What became of the drug opened for one session or supply."""

    draws: tuple[Draw, ...]
    opened_mg: float
    delivered_mg: float
    wasted_mg: float
    pending_waste_mg: float

    @property
    def remainder_mg(self) -> float:
        """Opened minus given minus witnessed waste (negative: more given than opened);
        0 when smaller than the recording precision (:data:`MG_RESOLUTION`)."""
        remainder = round(self.opened_mg - self.delivered_mg - self.wasted_mg, 6)
        return 0.0 if abs(remainder) < MG_RESOLUTION else remainder

    @property
    def accounted(self) -> bool:
        """True when every mg opened was given or wasted in front of a witness."""
        return abs(self.remainder_mg) < MG_RESOLUTION


# --------------------------------------------------------------------------- replay


def _by_id(entries: Iterable[Entry]) -> dict[int, Entry]:
    out: dict[int, Entry] = {}
    for e in entries:
        if e.id in out:
            raise InvalidInput(f"entry {e.id}: the number is already used")
        out[e.id] = e
    return out


def _signatures(
    entries: Sequence[Entry], at: datetime | None
) -> tuple[dict[int, Witness], dict[int, Void]]:
    witnesses: dict[int, Witness] = {}
    voids: dict[int, Void] = {}
    for e in entries:
        if at is not None and e.at > at:
            continue
        if isinstance(e, Witness):
            witnesses.setdefault(e.target_id, e)
        elif isinstance(e, Void):
            voids.setdefault(e.target_id, e)
    return witnesses, voids


class _Lot:
    __slots__ = (
        "adjusted",
        "disposed",
        "drawn",
        "first",
        "moved_in",
        "moved_out",
        "receipt",
        "received",
    )

    def __init__(self, origin: Receipt | TransferIn) -> None:
        #: what brought the lot to its site first: a receipt, or a transfer from another site
        self.receipt = origin
        self.first = origin.at
        self.received = self.drawn = self.disposed = self.adjusted = 0
        self.moved_in = self.moved_out = 0

    @property
    def on_hand(self) -> int:
        return (
            self.received + self.moved_in - self.drawn - self.disposed - self.moved_out
        ) + self.adjusted

    def available(self, e: Draw | Disposal | TransferOut) -> None:
        """Refuse taking ``e.units`` the lot does not hold, or from an expired lot."""
        if self.first > e.at:
            raise _fail(e, f"lot {e.lot_id} had not been received at {e.at.isoformat()}")
        if e.units > self.on_hand:
            raise _fail(
                e,
                f"lot {self.receipt.lot} has {self.on_hand} {self.receipt.product} on hand: "
                f"{e.units} cannot be taken from it",
            )
        if not isinstance(e, Disposal) and e.at.date() > self.receipt.expiry:
            verb = "drawn from" if isinstance(e, Draw) else "transferred"
            raise _fail(
                e,
                f"lot {self.receipt.lot} expired on {self.receipt.expiry.isoformat()}: an "
                f"expired lot is not {verb} (record its disposal instead)",
            )


def _fail(entry: Entry, problem: str) -> InvalidInput:
    return InvalidInput(f"entry {entry.id}: {problem}")


def replay(
    entries: Sequence[Entry],
    library: Mapping[str, Product] | None = None,
    *,
    at: datetime | None = None,
) -> Stock:
    """Replay the ledger (to ``at``, or all of it), checking every rule on the way.

    An entry counts at its own time once it is witnessed (if it must be) and not
    voided, both by ``at``. A broken rule raises :class:`InvalidInput` naming the entry.
    """
    lib = products() if library is None else library
    index = _by_id(entries)
    witnesses, voids = _signatures(entries, at)
    lots: dict[int, _Lot] = {}
    draws: dict[int, Draw] = {}
    opened: dict[tuple[str, int], float] = {}
    wasted: dict[tuple[str, int], float] = {}
    counts: dict[int, Discrepancy] = {}
    outs: dict[int, TransferOut] = {}
    pending: list[Entry] = []
    _check_signatures(entries, index)
    _check_transfers(entries, index)
    live = [
        e
        for e in entries
        if not isinstance(e, Witness | Void) and (at is None or e.at <= at) and e.id not in voids
    ]
    for e in sorted(live, key=lambda e: (e.at, e.id)):
        if e.witnessed and e.id not in witnesses:
            if isinstance(e, TransferOut):  # refused when made, not at its witness
                _lot_of(e, lots).available(e)
            pending.append(e)
            continue
        if isinstance(e, TransferIn) and e.transfer_id not in outs:
            continue  # its transfer out awaits a witness or is voided: nothing moved yet
        if isinstance(e, Receipt | TransferIn):
            if e.product not in lib:
                raise _fail(e, f"product {e.product!r} is not known: known {', '.join(lib)}")
            lot = lots.get(e.lot_id)
            if lot is None:
                lot = lots[e.lot_id] = _Lot(e)
            else:
                first = lot.receipt
                if (first.site, first.product, first.lot, first.expiry) != (
                    e.site,
                    e.product,
                    e.lot,
                    e.expiry,
                ):
                    raise _fail(
                        e, f"lot {e.lot_id} was received as another site, product or expiry"
                    )
            if isinstance(e, Receipt):
                lot.received += e.units
            else:
                lot.moved_in += e.units
            continue
        if isinstance(e, Resolution):
            _resolve(e, counts, lots)
            continue
        if isinstance(e, Waste):
            d = draws.get(e.draw_id)
            if d is None or d.at > e.at:
                raise _fail(e, f"draw {e.draw_id} is not a draw recorded before the waste")
            key = d.purpose
            wasted[key] = wasted.get(key, 0.0) + float(e.mg)
            if wasted[key] > opened[key] + MG_RESOLUTION:
                raise _fail(
                    e,
                    f"{wasted[key]:g} mg wasted is more than the {opened[key]:g} mg opened for "
                    f"{key[0].replace('_', '-')} {key[1]}",
                )
            continue
        assert isinstance(e, Draw | Count | Disposal | TransferOut)
        lot = _lot_of(e, lots)
        if isinstance(e, Count):
            if lot.first > e.at:
                raise _fail(e, f"lot {e.lot_id} had not been received at {e.at.isoformat()}")
            counts[e.id] = Discrepancy(count=e, expected=lot.on_hand)
            continue
        lot.available(e)
        if isinstance(e, Disposal):
            lot.disposed += e.units
            continue
        if isinstance(e, TransferOut):
            lot.moved_out += e.units
            outs[e.id] = e
            continue
        product = lib[lot.receipt.product]
        if e.prepared_mg > product.mg(e.units) + MG_RESOLUTION:
            raise _fail(
                e,
                f"{e.prepared_mg:g} mg prepared is more than the {product.mg(e.units):g} mg in "
                f"{e.units} {product.unit}(s) opened",
            )
        lot.drawn += e.units
        draws[e.id] = e
        opened[e.purpose] = opened.get(e.purpose, 0.0) + product.mg(e.units)
    return Stock(
        lots=tuple(
            LotBalance(
                lot_id=lot_id,
                site=lot.receipt.site,
                product=lib[lot.receipt.product],
                lot=lot.receipt.lot,
                expiry=lot.receipt.expiry,
                received=lot.received,
                drawn=lot.drawn,
                disposed=lot.disposed,
                adjusted=lot.adjusted,
                transferred_in=lot.moved_in,
                transferred_out=lot.moved_out,
            )
            for lot_id, lot in sorted(lots.items())
        ),
        discrepancies=tuple(d for d in counts.values() if d.difference != 0),
        pending=tuple(pending),
        voided=frozenset(voids),
    )


def _lot_of(e: Draw | Count | Disposal | TransferOut, lots: Mapping[int, _Lot]) -> _Lot:
    lot = lots.get(e.lot_id)
    if lot is None:
        raise _fail(e, f"lot {e.lot_id} had not been received at {e.at.isoformat()}")
    return lot


def _check_transfers(entries: Sequence[Entry], index: Mapping[int, Entry]) -> None:
    """Each transfer out with its one transfer in: the same units of the same lot
    (product, lot number, expiry), at another site, recorded together."""
    origins: dict[int, Receipt | TransferIn] = {}
    for e in entries:
        if isinstance(e, Receipt | TransferIn):
            origins.setdefault(e.lot_id, e)
    received: dict[int, TransferIn] = {}
    for e in entries:
        if not isinstance(e, TransferIn):
            continue
        out = index.get(e.transfer_id)
        if not isinstance(out, TransferOut):
            raise _fail(e, f"entry {e.transfer_id} is not a transfer out")
        if out.id in received:
            raise _fail(e, f"transfer {out.id} is already received (entry {received[out.id].id})")
        received[out.id] = e
        if e.units != out.units or e.at < out.at:
            raise _fail(e, f"a transfer in takes the units of transfer {out.id}, at its time")
        source = origins.get(out.lot_id)
        if source is None:
            raise _fail(out, f"lot {out.lot_id} has not been received")
        if (source.product, source.lot, source.expiry) != (e.product, e.lot, e.expiry):
            raise _fail(e, "a transfer in is the same product, lot and expiry as its transfer out")
        if source.site == e.site:
            raise _fail(
                e, f"lot {e.lot} is at site {e.site} already: a transfer is between two sites"
            )
    for e in entries:
        if isinstance(e, TransferOut) and e.id not in received:
            raise _fail(e, "a transfer out is recorded with its transfer in at the other site")


def _check_signatures(entries: Sequence[Entry], index: Mapping[int, Entry]) -> None:
    """Witnesses and voids: a real target, once, after it, a second person to witness."""
    seen: set[tuple[str, int]] = set()
    for e in entries:
        if not isinstance(e, Witness | Void):
            continue
        target = index.get(e.target_id)
        if target is None or isinstance(target, Witness | Void):
            raise _fail(e, f"entry {e.target_id} is not an entry that can be {e.kind}ed")
        if isinstance(e, Witness):
            if not target.witnessed:
                raise _fail(
                    e,
                    f"a {target.kind} is not witnessed (only waste, count, disposal, transfer out)",
                )
            if e.by == target.by:
                raise _fail(
                    e,
                    f"{target.by} recorded {target.kind} {target.id}: "
                    "a second person must witness it",
                )
        elif isinstance(target, TransferIn):
            raise _fail(e, f"void the transfer out {target.transfer_id}: its transfer in follows")
        if (e.kind, e.target_id) in seen:
            raise _fail(e, f"{target.kind} {target.id} is already {e.kind}ed")
        seen.add((e.kind, e.target_id))
        if e.at < target.at:
            raise _fail(e, f"the {e.kind} is earlier than the {target.kind} {target.id}")
    voided = {e.target_id for e in entries if isinstance(e, Void)}
    for e in entries:
        parent = (
            e.draw_id if isinstance(e, Waste) else e.count_id if isinstance(e, Resolution) else None
        )
        if parent is not None and parent in voided and e.id not in voided:
            raise _fail(
                e, f"entry {parent} is voided while this {e.kind} of it stands: void it first"
            )


def _resolve(e: Resolution, counts: dict[int, Discrepancy], lots: dict[int, _Lot]) -> None:
    d = counts.get(e.count_id)
    if d is None or d.count.at > e.at:
        raise _fail(e, f"entry {e.count_id} is not a witnessed count recorded before")
    if d.difference == 0:
        raise _fail(e, f"count {e.count_id} agreed with the balance: there is nothing to resolve")
    if d.resolution is not None:
        raise _fail(e, f"count {e.count_id} is already resolved (entry {d.resolution.id})")
    if e.outcome != "count_error":
        lot = lots[d.count.lot_id]
        if lot.on_hand + d.difference < 0:
            raise _fail(e, "the adjustment would leave a negative balance: recount the lot")
        lot.adjusted += d.difference
    counts[e.count_id] = Discrepancy(count=d.count, expected=d.expected, resolution=e)


def append(
    entries: Sequence[Entry], new: Entry, library: Mapping[str, Product] | None = None
) -> tuple[Entry, ...]:
    """The ledger with ``new`` appended, or :class:`InvalidInput` saying why not.

    The whole ledger is replayed with the new entry (a back-dated draw must not leave
    a later one without stock; a void must not leave a draw without its receipt).
    """
    out = (*entries, new)
    replay(out, library)
    return out


def append_all(
    entries: Sequence[Entry], new: Sequence[Entry], library: Mapping[str, Product] | None = None
) -> tuple[Entry, ...]:
    """The ledger with the entries ``new`` appended together (a transfer out and its
    transfer in), or :class:`InvalidInput` saying why not."""
    out = (*entries, *new)
    replay(out, library)
    return out


#: whose drug an account follows: ("session", dosing session id) or ("take_home", supply id)
Purpose = tuple[str, int]


def account(
    entries: Sequence[Entry],
    library: Mapping[str, Product] | None = None,
    *,
    delivered_mg: float,
    dosing_session_id: int | None = None,
    take_home_id: int | None = None,
) -> Account:
    """What became of the drug opened for one session (or one take-home supply).

    ``delivered_mg`` is what the session's log says was given (or the supply's total).
    """
    if dosing_session_id is not None:
        key: Purpose = ("session", dosing_session_id)
    elif take_home_id is not None:
        key = ("take_home", take_home_id)
    else:
        raise InvalidInput("an account follows a dosing session or a take-home supply: name one")
    return accounts(entries, library, delivered={key: delivered_mg})[key]


def accounts(
    entries: Sequence[Entry],
    library: Mapping[str, Product] | None = None,
    *,
    delivered: Mapping[Purpose, float],
) -> dict[Purpose, Account]:
    """The account of each purpose in ``delivered`` (what its log says was given), read
    from the ledger in one pass: a page that checks every closed session reads the
    ledger once, not once a session.

    Each account is the one :func:`account` gives for that purpose alone.
    """
    lib = products() if library is None else library
    _by_id(entries)
    witnesses, voids = _signatures(entries, None)
    lot_product = {e.lot_id: e.product for e in entries if isinstance(e, Receipt | TransferIn)}
    draws: dict[Purpose, list[Draw]] = {key: [] for key in delivered}
    for e in entries:
        if isinstance(e, Draw) and e.purpose in draws and e.id not in voids:
            draws[e.purpose].append(e)
    owner = {d.id: key for key, found in draws.items() for d in found}
    wastes: dict[Purpose, list[Waste]] = {key: [] for key in delivered}
    for e in entries:
        if isinstance(e, Waste) and e.draw_id in owner and e.id not in voids:
            wastes[owner[e.draw_id]].append(e)
    return {
        key: Account(
            draws=tuple(draws[key]),
            opened_mg=sum(lib[lot_product[d.lot_id]].mg(d.units) for d in draws[key]),
            delivered_mg=given,
            wasted_mg=sum(float(w.mg) for w in wastes[key] if w.id in witnesses),
            pending_waste_mg=sum(float(w.mg) for w in wastes[key] if w.id not in witnesses),
        )
        for key, given in delivered.items()
    }
