"""Controlled-substance stock: products as data (:mod:`~ketacare.core.stock.products`)
and the append-only ledger of receipts, draws, wastes, counts, disposals and their
resolution, replayed to any instant (:mod:`~ketacare.core.stock.ledger`)."""

from ketacare.core.stock.ledger import (
    DISPOSAL_KINDS,
    MG_RESOLUTION,
    OUTCOMES,
    Account,
    Count,
    Discrepancy,
    Disposal,
    Draw,
    Entry,
    LotBalance,
    Receipt,
    Resolution,
    Stock,
    Void,
    Waste,
    Witness,
    account,
    append,
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
    "Void",
    "Waste",
    "Witness",
    "account",
    "append",
    "load_products",
    "products",
    "replay",
]
