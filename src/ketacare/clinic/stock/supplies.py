"""Take-home supplies drawn from stock: the lots that fit a plan, the checks a supply's
lot passes before anything is stored, its draw, and the reversal of the draw when the
supply is voided as entered in error.

A supply draws when it is dispensed (:func:`ketacare.clinic.safeguards.service.dispense`),
in the same transaction: a refusal stores neither the supply nor the draw. Once the clinic
keeps stock of the plan's molecule (:func:`~ketacare.clinic.stock.accounting.keeps_stock_of`,
the rule a session's close uses), a supply must name its lot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.stock.accounting import keeps_stock_of
from ketacare.clinic.stock.orm import StockEntry, StockLot
from ketacare.clinic.stock.reading import ledger
from ketacare.clinic.stock.service import _Write, void
from ketacare.core.errors import InvalidInput
from ketacare.core.stock import MG_RESOLUTION, Draw, LotBalance, Product, replay
from ketacare.core.terminology.treatments import molecule_label, route_label
from ketacare.infra.errors import NotFound


def fitting_lots(*, session: Session, molecule: str, route: str, today: date) -> list[LotBalance]:
    """The lots a supply of ``molecule`` by ``route`` may come from today: the product's
    molecule, a form given by the route, units on hand, not expired."""
    book = ledger(session=session)
    return [
        b
        for b in replay(book.entries, book.library).lots
        if b.product.molecule == molecule
        and b.product.fits(route)
        and b.units_on_hand > 0
        and b.expiry >= today
    ]


@dataclass(frozen=True, slots=True)
class SupplyDraw:
    """A supply's lot, checked under the stock lock, ready to be drawn once the supply
    itself is stored."""

    write: _Write
    lot: StockLot
    product: Product
    units: int
    mg: float
    at: datetime

    def store(self, *, take_home_id: int, patient_id: int) -> StockEntry:
        """The draw of the supply's units, linked to the supply (the core checks it again)."""
        w = self.write
        entry = Draw(
            **w.common(self.at),
            lot_id=self.lot.id,
            units=self.units,
            prepared_mg=self.mg,
            take_home_id=take_home_id,
        )
        return w.store(
            entry,
            StockEntry(lot_id=self.lot.id, units=self.units, mg=self.mg, take_home_id=take_home_id),
            patient_id=patient_id,
            detail={
                "lot": self.lot.lot,
                "units": self.units,
                "prepared_mg": self.mg,
                "take_home": take_home_id,
            },
        )


def check_supply(
    *,
    session: Session,
    actor: audit.Actor,
    now: datetime,
    molecule: str,
    route: str,
    lot_id: int | None,
    lot_units: int,
    mg: float,
    at: datetime,
) -> SupplyDraw | None:
    """The lot a supply of ``mg`` comes from, checked; None when no lot is named and the
    clinic keeps no stock of the molecule.

    Refused (:class:`InvalidInput`, nothing stored): no lot named while the clinic keeps
    stock of the molecule; a lot of another molecule, or of a form not given by the
    plan's route; an expired lot; too few units on hand; mg that are not what the units
    hold (both numbers named).
    """
    name = molecule_label(molecule)
    if lot_id is None:
        if keeps_stock_of(session, molecule):
            raise InvalidInput(
                f"the clinic keeps stock of {name}: a take-home supply names the lot it comes "
                "from (lot_id and its units); register the product the clinic stocks from its "
                "supplier's label and receive the lot first if it is not on record"
            )
        return None
    w = _Write.begin(session, actor, now)
    lot = w.book.lots.get(lot_id)
    if lot is None:
        raise NotFound(f"lot {lot_id} has not been received")
    product = w.book.library[lot.product]
    if product.molecule != molecule:
        raise InvalidInput(
            f"lot {lot.lot} is {product.shown} ({molecule_label(product.molecule)}): the plan "
            f"is {name}"
        )
    if not product.fits(route):
        raise InvalidInput(
            f"lot {lot.lot} is {product.shown}, a form ({product.form_label}) not given by "
            f"the plan's route ({route_label(route)})"
        )
    if at.date() > lot.expiry:
        raise InvalidInput(
            f"lot {lot.lot} expired on {lot.expiry.isoformat()}: an expired lot is not "
            "dispensed (record its disposal instead)"
        )
    balance = replay(w.book.entries, w.book.library, at=at).lot(lot_id)
    if lot_units > balance.units_on_hand:
        raise InvalidInput(
            f"lot {lot.lot} has {balance.units_on_hand} {product.unit}(s) on hand: "
            f"{lot_units} cannot be dispensed from it"
        )
    held = product.mg(lot_units)
    if abs(held - mg) >= MG_RESOLUTION:
        raise InvalidInput(
            f"the supply is {mg:g} mg but {lot_units} {product.unit}(s) of lot {lot.lot} "
            f"({product.mg_per_unit:g} mg each) hold {held:g} mg: the mg dispensed must equal "
            "what the units hold"
        )
    return SupplyDraw(w, lot, product, lot_units, float(mg), at)


def void_supply_draw(
    *, session: Session, actor: audit.Actor, take_home_id: int, reason: str, now: datetime
) -> StockEntry | None:
    """Reverse the draw of a supply voided as entered in error: a void entry of the ledger
    naming the draw, with the reason (both stay on record); None when it drew nothing."""
    drawn = supply_draws(session, [take_home_id]).get(take_home_id)
    if drawn is None:
        return None
    return void(
        session=session,
        actor=actor,
        entry_id=drawn.id,
        reason=f"take-home supply {take_home_id} voided: {reason}",
        now=now,
    )


def supply_draws(session: Session, take_home_ids: list[int]) -> dict[int, StockEntry]:
    """The live draw of each supply that drew from stock (by supply id)."""
    if not take_home_ids:
        return {}
    book = ledger(session=session)
    voided = {r.target_id for r in book.rows.values() if r.kind == "void"}
    return {
        r.take_home_id: r
        for r in book.rows.values()
        if r.kind == "draw"
        and r.take_home_id in take_home_ids
        and r.id not in voided
        and r.take_home_id is not None
    }
