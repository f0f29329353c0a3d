"""JSON routes of controlled-substance stock: lots, the ledger's entries, reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from ketacare.clinic.stock import (
    accounting,
    documents,
    reading,
    registry,
    reports,
    schemas,
    service,
)
from ketacare.clinic.stock.orm import StockEntry
from ketacare.web.answers import OBJECT
from ketacare.web.deps import Call, api_request

router = APIRouter(prefix="/api/v1/stock", tags=["stock"])
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
At = Annotated[datetime | None, Query(description="The instant (default: now)")]


def _entry(
    call: Call, use_case: Callable[..., StockEntry], data: BaseModel | None, **values: Any
) -> schemas.EntryRead:
    """Run one write with the request's fields (named as the use case's) and ``values``."""
    fields = data.model_dump() if data is not None else {}
    return schemas.EntryRead.of(call.do(use_case, **fields, **values))


@router.get("/products", response_model=list[schemas.ProductRead])
def product_list(
    call: Call = api_request("stock:read"),
) -> list[schemas.ProductRead]:
    """The products a lot may be received as, with the label each cites: ketacare's
    library and the products the clinic registered from its suppliers' labels."""
    return [schemas.ProductRead.of(p) for p in reading.library(call.session).values()]


@router.get("/clinic-products", response_model=list[schemas.ClinicProductRead])
def clinic_products(
    call: Call = api_request("stock:read"),
) -> list[schemas.ClinicProductRead]:
    """The products the clinic registered from its suppliers' labels (retired ones too),
    each with its source statement and every entry (registration, amendments, retirement)."""
    return [schemas.ClinicProductRead.of(r) for r in registry.registered(call.session).values()]


def _registered(call: Call, registration_id: int) -> schemas.ClinicProductRead:
    return schemas.ClinicProductRead.of(
        registry.registered(call.session)[f"clinic-{registration_id}"]
    )


@router.post("/clinic-products", response_model=schemas.ClinicProductRead, status_code=201)
def register_product(
    data: schemas.ClinicProductIn,
    call: Call = api_request("stock:register"),
) -> schemas.ClinicProductRead:
    """Register a product the clinic stocks from its supplier's label: molecule, dosage
    form, unit, strength (mg per unit, or mg/mL and mL per unit), the supplier and the
    label or certificate of analysis it was read from. Lots are then received as it."""
    row = call.do(registry.register, **data.model_dump())
    return _registered(call, row.id)


@router.post(
    "/clinic-products/{registration_id}/amend",
    response_model=schemas.ClinicProductRead,
    status_code=201,
)
def amend_product(
    registration_id: Id,
    data: schemas.ClinicProductAmendIn,
    call: Call = api_request("stock:register"),
) -> schemas.ClinicProductRead:
    """A new entry correcting the product, with the reason (what one unit holds is fixed
    once a lot of it is on record: retire it and register the right one)."""
    call.do(registry.amend, registration_id=registration_id, **data.model_dump())
    return _registered(call, registration_id)


@router.post(
    "/clinic-products/{registration_id}/retire",
    response_model=schemas.ClinicProductRead,
    status_code=201,
)
def retire_product(
    registration_id: Id,
    data: schemas.RetireIn,
    call: Call = api_request("stock:register"),
) -> schemas.ClinicProductRead:
    """Retire the product (no new receipt of it; its entries and lots stay on record)."""
    call.do(registry.retire, registration_id=registration_id, reason=data.reason)
    return _registered(call, registration_id)


@router.get("/lots", response_model=schemas.StockRead)
def lots(
    at: At = None,
    call: Call = api_request("stock:read"),
) -> schemas.StockRead:
    """Every lot's balance at an instant, the open discrepancies and what awaits a witness."""
    when = at or call.now
    found = call.do(reading.stock_at, at=when)
    return schemas.StockRead(
        at=when,
        lots=[schemas.LotRead.of(b) for b in found.lots],
        discrepancies=[schemas.DiscrepancyRead.of(d) for d in found.discrepancies],
        awaiting_witness=[e.id for e in found.pending],
    )


@router.post("/receipts", response_model=schemas.EntryRead, status_code=201)
def receive(
    data: schemas.ReceiptIn,
    call: Call = api_request("stock:write"),
) -> schemas.EntryRead:
    """Receive whole units of a lot (supplier, invoice or order, lot, expiry)."""
    return _entry(call, service.receive, data)


@router.post("/draws", response_model=schemas.EntryRead, status_code=201)
def draw(
    data: schemas.DrawIn,
    call: Call = api_request("stock:write"),
) -> schemas.EntryRead:
    """Open units of a lot for a dosing session (refused: an expired lot, too little on
    hand, another molecule, a closed session; a take-home supply draws when dispensed)."""
    return _entry(call, service.draw, data)


@router.post("/wastes", response_model=schemas.EntryRead, status_code=201)
def waste(
    data: schemas.WasteIn,
    call: Call = api_request("stock:write"),
) -> schemas.EntryRead:
    """Waste what of a draw was not given; a second person witnesses it afterwards."""
    return _entry(call, service.waste, data)


@router.post("/counts", response_model=schemas.EntryRead, status_code=201)
def count(
    data: schemas.CountIn,
    call: Call = api_request("stock:write"),
) -> schemas.EntryRead:
    """Count a lot's unopened units; a second person witnesses the count."""
    return _entry(call, service.count, data)


@router.post("/disposals", response_model=schemas.EntryRead, status_code=201)
def dispose(
    data: schemas.DisposalIn,
    call: Call = api_request("stock:write"),
) -> schemas.EntryRead:
    """Return or destroy units (expired, damaged, recalled); witnessed like a waste."""
    return _entry(call, service.dispose, data)


@router.post("/transfers", response_model=schemas.TransferRead, status_code=201)
def transfer(
    data: schemas.TransferRequest,
    call: Call = api_request("stock:write"),
) -> schemas.TransferRead:
    """Send units of a lot to another site (refused: more than on hand, an expired lot, the
    same site); a second person witnesses the transfer out before either counts."""
    sent, received = call.do(service.transfer, **data.model_dump())
    return schemas.TransferRead(
        transfer_out=schemas.EntryRead.of(sent), transfer_in=schemas.EntryRead.of(received)
    )


@router.post("/entries/{entry_id}/witness", response_model=schemas.EntryRead, status_code=201)
def witness(
    entry_id: Id,
    call: Call = api_request("stock:write"),
) -> schemas.EntryRead:
    """Witness a waste, a count or a disposal (not one's own)."""
    return _entry(call, service.witness, None, entry_id=entry_id)


@router.post("/entries/{entry_id}/void", response_model=schemas.EntryRead, status_code=201)
def void(
    entry_id: Id,
    data: schemas.VoidIn,
    call: Call = api_request("stock:write"),
) -> schemas.EntryRead:
    """Void an entry made in error, with the reason (it stays on record)."""
    return _entry(call, service.void, data, entry_id=entry_id)


@router.post("/counts/{count_id}/resolve", response_model=schemas.EntryRead, status_code=201)
def resolve(
    count_id: Id,
    data: schemas.ResolveIn,
    call: Call = api_request("stock:resolve"),
) -> schemas.EntryRead:
    """Resolve the discrepancy a count opened (loss and theft need the DEA Form 106)."""
    return _entry(call, service.resolve, data, count_id=count_id)


@router.get("/sessions/{session_id}", response_model=schemas.AccountRead)
def session_account(
    session_id: Id,
    call: Call = api_request("stock:read"),
) -> schemas.AccountRead:
    """What became of the drug opened for a dosing session, and whether it may close."""
    acc, why = call.do(accounting.read_session_account, dosing_session_id=session_id)
    return schemas.AccountRead.of(session_id, acc, why)


PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "The report as A4 PDF"}
}


def pdf_response(data: bytes, name: str, disposition: str = "attachment") -> Response:
    """A typeset report as the response (``inline``: shown in the browser)."""
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'{disposition}; filename="{name}.pdf"'},
    )


@router.get("/reports/inventory.pdf", response_class=Response, responses=PDF)
def inventory_pdf(
    at: At = None,
    call: Call = api_request("stock:report"),
) -> Response:
    """The inventory at an instant (21 CFR 1304.11) typeset as PDF."""
    when = at or call.now
    data = call.do(documents.read_inventory_pdf, at=when, paper=documents.Paper.of(call.settings))
    return pdf_response(data, "inventory")


@router.get("/reports/log.pdf", response_class=Response, responses=PDF)
def log_pdf(
    start: Annotated[date, Query(alias="from", description="The first day (clinic's zone)")],
    end: Annotated[date, Query(alias="to", description="The last day (clinic's zone)")],
    call: Call = api_request("stock:report"),
) -> Response:
    """The log of a period (receipts, draws, wastes with witnesses, counts and
    discrepancies, disposals, voids) typeset as PDF."""
    paper = documents.Paper.of(call.settings)
    data = call.do(documents.log_pdf, start_day=start, end_day=end, paper=paper)
    return pdf_response(data, f"stock-log-{start.isoformat()}-{end.isoformat()}")


@router.get(
    "/reports/{report}",
    response_model=None,
    responses={
        200: {
            "content": {**OBJECT, "text/csv": {"schema": {"type": "string"}}},
            "description": "The rows, as JSON (default) or CSV (format=csv)",
        }
    },
)
def report(
    report: Literal["inventory", "dispensing", "waste"],
    at: At = None,
    format: Literal["json", "csv"] = "json",
    call: Call = api_request("stock:report"),
) -> Any:
    """The inventory at an instant (21 CFR 1304.11), the dispensing log or the waste log,
    as JSON or CSV."""
    when = at or call.now
    rows = call.do(reports.read_report, report=report, at=when, export=format)
    if format == "csv":
        return PlainTextResponse(
            reports.to_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{report}.csv"'},
        )
    return {"report": report, "at": when.isoformat(), "rows": rows}
