"""Controlled-substance stock: products as data (:mod:`~ketacare.core.stock.products`)
and the append-only ledger of receipts, draws, wastes, counts, disposals and their
resolution, replayed to any instant (:mod:`~ketacare.core.stock.ledger`)."""

from ketacare.core.stock.entries import (
    DISPOSAL_KINDS,
    OUTCOMES,
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
from ketacare.core.stock.ledger import (
    MG_RESOLUTION,
    Account,
    Discrepancy,
    LotBalance,
    Stock,
    account,
    append,
    append_all,
    replay,
)
from ketacare.core.stock.products import MOLECULES, Product, load_products, products

__all__ = [
    "DISPOSAL_KINDS",
    "MG_RESOLUTION",
    "MOLECULES",
    "OUTCOMES",
    "Account",
    "Count",
    "Discrepancy",
    "Disposal",
    "Draw",
    "Entry",
    "LotBalance",
    "Product",
    "Receipt",
    "Resolution",
    "Stock",
    "TransferIn",
    "TransferOut",
    "Void",
    "Waste",
    "Witness",
    "account",
    "append",
    "append_all",
    "load_products",
    "products",
    "replay",
]
