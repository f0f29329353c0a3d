"""API shapes of controlled-substance stock."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from ketacare.clinic.stock.orm import StockEntry
from ketacare.core.stock import Account, LotBalance, Product

Id = Field(ge=1, le=2**31 - 1)


class ProductRead(BaseModel):
    id: str
    molecule: str
    label: str
    form: str
    unit: str
    mg_per_unit: float
    strength_mg_per_ml: float | None
    volume_ml: float | None
    ndc: str | None = Field(description="Only where a source names it for this product")
    source: str

    @classmethod
    def of(cls, p: Product) -> ProductRead:
        return cls(
            id=p.id,
            molecule=p.molecule,
            label=p.label,
            form=p.form,
            unit=p.unit,
            mg_per_unit=p.mg_per_unit,
            strength_mg_per_ml=p.strength_mg_per_ml,
            volume_ml=p.volume_ml,
            ndc=p.ndc,
            source=p.source.text,
        )


class LotRead(BaseModel):
    lot_id: int
    site: str
    product: str
    lot: str
    expiry: date
    received: int
    drawn: int
    disposed: int
    adjusted: int
    transferred_in: int
    transferred_out: int
    units_on_hand: int
    mg_on_hand: float

    @classmethod
    def of(cls, b: LotBalance) -> LotRead:
        return cls(
            lot_id=b.lot_id,
            site=b.site,
            product=b.product.id,
            lot=b.lot,
            expiry=b.expiry,
            received=b.received,
            drawn=b.drawn,
            disposed=b.disposed,
            adjusted=b.adjusted,
            transferred_in=b.transferred_in,
            transferred_out=b.transferred_out,
            units_on_hand=b.units_on_hand,
            mg_on_hand=b.mg_on_hand,
        )


class DiscrepancyRead(BaseModel):
    count_id: int
    lot_id: int
    counted: int
    expected: int
    difference: int
    resolved: bool
    outcome: str | None


class StockRead(BaseModel):
    at: datetime
    lots: list[LotRead]
    discrepancies: list[DiscrepancyRead]
    awaiting_witness: list[int] = Field(description="Entries a second person has not signed yet")


class EntryRead(BaseModel):
    id: int
    kind: str
    at: datetime
    lot_id: int | None
    units: int | None
    mg: float | None
    ml: float | None
    dosing_session_id: int | None
    take_home_id: int | None
    target_id: int | None

    @classmethod
    def of(cls, r: StockEntry) -> EntryRead:
        return cls(
            id=r.id,
            kind=r.entry_kind,
            at=r.at,
            lot_id=r.lot_id,
            units=r.units,
            mg=r.mg,
            ml=r.ml,
            dosing_session_id=r.dosing_session_id,
            take_home_id=r.take_home_id,
            target_id=r.target_id,
        )


class ReceiptIn(BaseModel):
    site: str = Field(min_length=1, max_length=60)
    product: str = Field(min_length=1, max_length=80)
    lot: str = Field(min_length=1, max_length=60)
    expiry: date
    units: int = Field(ge=1, le=100_000)
    supplier: str = Field(min_length=1, max_length=500)
    reference: str = Field(
        min_length=1, max_length=200, description="The invoice or order the units came with"
    )
    received_at: datetime | None = None


class DrawIn(BaseModel):
    lot_id: int = Id
    units: int = Field(ge=1, le=1000)
    prepared_mg: float = Field(gt=0, le=100_000)
    prepared_ml: float | None = Field(default=None, gt=0, le=10_000)
    dosing_session_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    take_home_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    drawn_at: datetime | None = None


class WasteIn(BaseModel):
    draw_id: int = Id
    mg: float = Field(gt=0, le=100_000)
    ml: float | None = Field(default=None, gt=0, le=10_000)
    method: str = Field(min_length=1, max_length=500)
    wasted_at: datetime | None = None


class CountIn(BaseModel):
    lot_id: int = Id
    units_counted: int = Field(ge=0, le=100_000)
    counted_at: datetime | None = None


class DisposalIn(BaseModel):
    lot_id: int = Id
    units: int = Field(ge=1, le=100_000)
    disposal: Literal["returned", "destroyed"]
    reason: str = Field(min_length=1, max_length=2000)
    reference: str = Field(min_length=1, max_length=200)


class TransferRequest(BaseModel):
    lot_id: int = Id
    units: int = Field(ge=1, le=100_000)
    to_site: str = Field(min_length=1, max_length=60, description="The site the units go to")
    reference: str = Field(
        min_length=1, max_length=200, description="The transfer sheet or order the units go with"
    )
    transferred_at: datetime | None = None


class TransferRead(BaseModel):
    transfer_out: EntryRead = Field(description="At the first site; a second person witnesses it")
    transfer_in: EntryRead = Field(description="At the other site; counts with its transfer out")


class VoidIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ResolveIn(BaseModel):
    outcome: Literal["count_error", "adjusted", "loss", "theft"]
    reason: str = Field(min_length=1, max_length=2000)
    report_reference: str | None = Field(
        default=None, max_length=200, description="DEA Form 106 reference (loss or theft)"
    )


class AccountRead(BaseModel):
    dosing_session_id: int
    opened_mg: float
    delivered_mg: float
    wasted_mg: float
    pending_waste_mg: float
    remainder_mg: float
    accounted: bool
    draws: list[int]
    can_close: bool
    reason: str | None

    @classmethod
    def of(cls, sid: int, a: Account, reason: str | None) -> AccountRead:
        return cls(
            dosing_session_id=sid,
            opened_mg=a.opened_mg,
            delivered_mg=round(a.delivered_mg, 3),
            wasted_mg=a.wasted_mg,
            pending_waste_mg=a.pending_waste_mg,
            remainder_mg=a.remainder_mg,
            accounted=a.accounted,
            draws=[d.id for d in a.draws],
            can_close=reason is None,
            reason=reason,
        )
