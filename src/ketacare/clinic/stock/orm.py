"""Tables of controlled-substance stock: lots, the ledger and the products the clinic
registered from its suppliers' labels (all append-only)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime

#: The kinds of ledger entry (:mod:`ketacare.core.stock.entries`).
ENTRY_KINDS = ("receipt", "draw", "waste", "count", "disposal", "resolution", "witness", "void")
#: How a transfer between sites is stored: the units leave the lot at the first site as
#: a disposal whose ``outcome`` is "transfer", and come into the same lot at the other
#: site as a receipt naming that disposal in ``target_id``.
TRANSFER_OUTCOME = "transfer"
STORED_KINDS = {"transfer_out": "disposal", "transfer_in": "receipt"}


class StockLot(Base):
    """One lot of one product at one site, named by its first receipt; never changed."""

    __tablename__ = "stock_lots"
    __table_args__ = (UniqueConstraint("site", "product", "lot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(60))
    product: Mapped[str] = mapped_column(String(80))
    lot: Mapped[str] = mapped_column(String(60))
    expiry: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class StockEntry(Base):
    """One line of the controlled-substance ledger, appended and never changed.

    ``kind`` says which fields it uses (see :mod:`ketacare.core.stock.entries`); a
    witness or a void names its entry in ``target_id``; corrections are voids with the
    reason, followed by the right entry. ``user_id`` is who recorded it (their login).
    """

    __tablename__ = "stock_entries"
    __table_args__ = (
        CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in ENTRY_KINDS) + ")", name="kind"),
        CheckConstraint("units IS NULL OR units >= 0", name="units"),
        CheckConstraint("mg IS NULL OR mg > 0", name="mg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    lot_id: Mapped[int | None] = mapped_column(
        ForeignKey("stock_lots.id"), index=True, default=None
    )
    units: Mapped[int | None] = mapped_column(Integer, default=None)
    mg: Mapped[float | None] = mapped_column(Float, default=None)
    ml: Mapped[float | None] = mapped_column(Float, default=None)
    dosing_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("dosing_sessions.id"), index=True, default=None
    )
    take_home_id: Mapped[int | None] = mapped_column(
        ForeignKey("take_home_dispenses.id"), index=True, default=None
    )
    target_id: Mapped[int | None] = mapped_column(
        ForeignKey("stock_entries.id"), index=True, default=None
    )
    supplier: Mapped[str | None] = mapped_column(Text, default=None)
    reference: Mapped[str | None] = mapped_column(Text, default=None)
    method: Mapped[str | None] = mapped_column(Text, default=None)
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def entry_kind(self) -> str:
        """The ledger's kind of the entry (a transfer's two rows: transfer_out, transfer_in)."""
        if self.kind == "disposal" and self.outcome == TRANSFER_OUTCOME:
            return "transfer_out"
        if self.kind == "receipt" and self.target_id is not None:
            return "transfer_in"
        return self.kind


class ClinicProduct(Base):
    """One entry of a product the clinic stocks and registered from its supplier's label
    (or certificate of analysis): its registration, an amendment or its retirement, each
    a new row, never changed (database triggers refuse it).

    The product is ``clinic-N``, N the id of its first entry (``registration_id`` of the
    later ones); its latest entry says what it is now. It is the clinic's data, not a
    product of ketacare's library: pages and reports say "registered by the clinic from
    the supplier's label".
    """

    __tablename__ = "clinic_products"
    __table_args__ = (
        CheckConstraint("mg_per_unit > 0", name="mg_per_unit"),
        CheckConstraint(
            "strength_mg_per_ml IS NULL OR strength_mg_per_ml > 0", name="strength_mg_per_ml"
        ),
        CheckConstraint("volume_ml IS NULL OR volume_ml > 0", name="volume_ml"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("clinic_products.id"), index=True, default=None
    )
    molecule: Mapped[str] = mapped_column(String(30))
    label: Mapped[str] = mapped_column(String(200))
    form: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(20))
    mg_per_unit: Mapped[float] = mapped_column(Float)
    strength_mg_per_ml: Mapped[float | None] = mapped_column(Float, default=None)
    volume_ml: Mapped[float | None] = mapped_column(Float, default=None)
    supplier: Mapped[str] = mapped_column(Text)
    statement: Mapped[str] = mapped_column(Text)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    entered_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def product_id(self) -> str:
        """The product's id in the ledger (``clinic-N``)."""
        return f"clinic-{self.registration_id or self.id}"
