"""Controlled-substance stock: lots, the ledger, draws at the chair, counts, reports."""
