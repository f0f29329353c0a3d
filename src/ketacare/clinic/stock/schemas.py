"""API shapes of controlled-substance stock."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ketacare.clinic.stock.orm import StockEntry
from ketacare.clinic.stock.registry import Registered
from ketacare.core.stock import CLINIC_MARK, Account, Discrepancy, LotBalance, Product, form

Id = Field(ge=1, le=2**31 - 1)


def _fields(model: type[BaseModel], obj: object, /, **given: Any) -> dict[str, Any]:
    """The model's fields: ``given``, and the rest read from the attributes of ``obj``."""
    return {
        name: given[name] if name in given else getattr(obj, name) for name in model.model_fields
    }


class ProductRead(BaseModel):
    id: str
    molecule: str
    label: str
    form: str = Field(description="A dosage form of the library's forms.toml")
    form_label: str
    routes: list[str] = Field(description="The protocol routes the form is given by")
    unit: str
    mg_per_unit: float
    strength_mg_per_ml: float | None
    volume_ml: float | None
    ndc: str | None = Field(description="Only where a source names it for this product")
    source: str
    registered_by_clinic: bool = Field(
        description="The clinic's own product, registered from its supplier's label (not "
        "a product of ketacare's library)"
    )

    @classmethod
    def of(cls, p: Product) -> ProductRead:
        routes = list(form(p.form).routes)
        return cls(**_fields(cls, p, source=p.source.text, routes=routes, form_label=p.form_label))


class ClinicProductIn(BaseModel):
    """A product the clinic stocks, read from its supplier's label."""

    molecule: Literal["racemic_ketamine", "esketamine"]
    label: str = Field(
        min_length=1, max_length=200, description="As the label names it (product, strength)"
    )
    form: str = Field(
        min_length=1, max_length=40, description="A dosage form id (GET /stock/products)"
    )
    unit: str = Field(min_length=1, max_length=20, description="What one counted unit is")
    mg_per_unit: float | None = Field(default=None, gt=0, le=100_000)
    strength_mg_per_ml: float | None = Field(default=None, gt=0, le=10_000)
    volume_ml: float | None = Field(default=None, gt=0, le=10_000, description="mL per unit")
    supplier: str = Field(min_length=1, max_length=500)
    statement: str = Field(
        min_length=1,
        max_length=2000,
        description="What it was read from: the label or certificate of analysis (lot, date)",
    )


class ClinicProductAmendIn(ClinicProductIn):
    reason: str = Field(min_length=1, max_length=2000)


class ClinicProductEntryRead(BaseModel):
    entry: int
    action: Literal["registered", "amended", "retired"]
    at: datetime
    by: str
    reason: str | None


class ClinicProductRead(BaseModel):
    """A clinic's product as its latest entry says, with every entry."""

    product: ProductRead
    supplier: str
    statement: str
    marking: str = Field(description="How pages and reports mark it")
    retired: bool
    registered_at: datetime
    registered_by: str
    entries: list[ClinicProductEntryRead]

    @classmethod
    def of(cls, r: Registered) -> ClinicProductRead:
        return cls(
            product=ProductRead.of(r.product),
            supplier=r.current.supplier,
            statement=r.current.statement,
            marking=CLINIC_MARK,
            retired=r.retired,
            registered_at=r.first.entered_at,
            registered_by=r.names.get(r.first.entered_by, str(r.first.entered_by)),
            entries=[
                ClinicProductEntryRead(
                    entry=e.id,
                    action="retired"
                    if e.retired
                    else "registered"
                    if e.registration_id is None
                    else "amended",
                    at=e.entered_at,
                    by=r.names.get(e.entered_by, str(e.entered_by)),
                    reason=e.reason,
                )
                for e in r.entries
            ],
        )


class RetireIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


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
        return cls(**_fields(cls, b, product=b.product.id))


class DiscrepancyRead(BaseModel):
    count_id: int
    lot_id: int
    counted: int
    expected: int
    difference: int
    resolved: bool
    outcome: str | None

    @classmethod
    def of(cls, d: Discrepancy) -> DiscrepancyRead:
        outcome = d.resolution.outcome if d.resolution else None
        return cls(**_fields(cls, d, count_id=d.count.id, lot_id=d.count.lot_id, outcome=outcome))


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
        return cls(**_fields(cls, r, kind=r.entry_kind))


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
            **_fields(
                cls,
                a,
                dosing_session_id=sid,
                delivered_mg=round(a.delivered_mg, 3),
                draws=[d.id for d in a.draws],
                can_close=reason is None,
                reason=reason,
            )
        )
