"""Controlled-substance stock reports: the inventory at an instant (per lot and per
molecule), the dispensing log and the waste log, as rows, JSON or CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.stock.reading import _patient_of, ledger, read_audited
from ketacare.core.errors import InvalidInput
from ketacare.core.stock import (
    Disposal,
    Draw,
    Entry,
    LotBalance,
    Product,
    Waste,
    Witness,
    replay,
)

REPORTS = ("inventory", "dispensing", "waste")


def inventory(
    *, entries: Sequence[Entry], at: datetime, library: Mapping[str, Product]
) -> list[LotBalance]:
    """The inventory at ``at`` per site and lot (21 CFR 1304.11), lots ever received."""
    return sorted(replay(entries, library, at=at).lots, key=lambda b: (b.site, b.product.id, b.lot))


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
        lots = inventory(entries=book.entries, at=at, library=book.library)
        return inventory_json(lots, at)["lots"]  # type: ignore[no-any-return]
    stock = replay(book.entries, book.library, at=at)
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
                    "product_label": book.library[lot.product].shown,
                    "units": e.units,
                    "mg_opened": book.library[lot.product].mg(e.units),
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
                    "mg": e.mg if isinstance(e, Waste) else book.library[lot.product].mg(e.units),
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
    read_audited(
        session=session,
        actor=actor,
        what=f"stock_report_{report}",
        now=now,
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
