"""Pages of controlled-substance stock: the stock room and a session's draws and wastes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.stock import accounting, documents, reading, registry, reports, service
from ketacare.clinic.stock.api import pdf_response
from ketacare.core.errors import InvalidInput
from ketacare.core.stock import MOLECULES, OUTCOMES, UNITS, forms
from ketacare.web.page_call import PageCall, Refusal, mapped_status, page_call
from ketacare.web.render import optional_float, optional_int

router = APIRouter(include_in_schema=False)


def _stock_page(call: PageCall, refused: Refusal | None = None) -> Response:
    found = call.do(reading.stock_at, at=call.now)
    book = reading.ledger(session=call.session)
    registered = registry.registered(call.session)
    retired = {key for key, r in registered.items() if r.retired}
    return call.render(
        "stock/stock.html",
        {
            "stock": found,
            "rows": book.rows,
            "names": book.names,
            "products": {k: p for k, p in book.library.items() if k not in retired},
            "registered": list(registered.values()),
            "forms": forms(),
            "molecules": MOLECULES,
            "units": UNITS,
            "error": None,
            "today": call.now.astimezone(call.settings.zone).date(),
            "unbalanced": accounting.closed_unbalanced(session=call.session, now=call.now),
        },
        refused=refused,
    )


def _session_page(call: PageCall, session_id: int, refused: Refusal | None = None) -> Response:
    row = sessions.get_session(session=call.session, session_id=session_id)
    state = sessions.state_of(session=call.session, session_id=session_id)
    acc, why = call.do(accounting.read_session_account, dosing_session_id=session_id)
    found = call.do(reading.stock_at, at=call.now)
    book = reading.ledger(session=call.session)
    today = call.now.astimezone(call.settings.zone).date()
    lots = [
        b
        for b in found.lots
        if b.product.molecule == state.setup.molecule
        and b.product.fits(state.setup.route)
        and b.units_on_hand > 0
        and b.expiry >= today
    ]
    draw_ids = {d.id for d in acc.draws}
    wastes = [r for r in book.rows.values() if r.kind == "waste" and r.target_id in draw_ids]
    return call.render(
        "stock/session.html",
        {
            "row": row,
            "state": state,
            "account": acc,
            "why": why,
            "keeps_stock": accounting.keeps_stock_of(call.session, state.setup.molecule),
            "lots": lots,
            "wastes": wastes,
            "witnessed": {r.target_id: r for r in book.rows.values() if r.kind == "witness"},
            "voided": found.voided,
            "names": book.names,
            "error": None,
        },
        refused=refused,
    )


def _act(
    call: PageCall, action: Callable[[], Any], *, back: str, session_id: int | None = None
) -> Response:
    """Run one write; a refusal comes back on its page with the reason (nothing stored)."""

    def again(refused: Refusal) -> Response:
        if session_id is not None:
            return _session_page(call, session_id, refused)
        return _stock_page(call, refused)

    return call.attempt(action, done=back, again=again, status=mapped_status)


def _required_int(call: PageCall, name: str, what: str) -> int:
    value = optional_int(call.text(name).strip(), what)
    if value is None:
        raise InvalidInput(f"{what} is required")
    return value


def _chosen_id(call: PageCall, name: str, what: str) -> int:
    """The id picked in a list that starts on no choice (a lot, a draw)."""
    value = optional_int(call.text(name).strip(), what)
    if value is None:
        raise InvalidInput(f"{what} is missing: choose the {what} from the list")
    return value


def _chosen(
    call: PageCall, name: str, what: str, allowed: Iterable[str] | Callable[[], Iterable[str]]
) -> str:
    """The value picked in a list that starts on no choice; missing, it is refused naming
    what may be chosen, in the list's own words (an unknown one is refused by the
    service)."""
    value = call.text(name).strip()
    if not value:
        choices = allowed() if callable(allowed) else allowed
        raise InvalidInput(f"{what} is missing: choose one of {'; '.join(choices)}")
    return value


def _offered_products(call: PageCall) -> list[str]:
    """The products the receipt form lists (retired clinic products are not)."""
    library = reading.ledger(session=call.session).library
    retired = {key for key, r in registry.registered(call.session).items() if r.retired}
    return [p.shown for key, p in library.items() if key not in retired]


def _required_float(call: PageCall, name: str, what: str) -> float:
    value = optional_float(call.text(name).strip(), what)
    if value is None:
        raise InvalidInput(f"{what} is required")
    return value


@router.get("/stock", response_class=HTMLResponse)
def stock_page(call: PageCall = page_call("stock:read")) -> Response:
    return _stock_page(call)


@router.post("/stock/receipts", response_class=HTMLResponse)
def receipt_page(call: PageCall = page_call("stock:write")) -> Response:
    def act() -> None:
        try:
            expiry = date.fromisoformat(call.text("expiry").strip())
        except ValueError as exc:
            raise InvalidInput("expiry must be a date (YYYY-MM-DD)") from exc
        call.do(
            service.receive,
            site=call.text("site").strip(),
            product=_chosen(call, "product", "product", lambda: _offered_products(call)),
            lot=call.text("lot").strip(),
            expiry=expiry,
            units=_required_int(call, "units", "units"),
            supplier=call.text("supplier").strip(),
            reference=call.text("reference").strip(),
        )

    return _act(call, act, back="/stock")


@router.post("/stock/clinic-products", response_class=HTMLResponse)
def register_product_page(call: PageCall = page_call("stock:register")) -> Response:
    """Register a product the clinic stocks from its supplier's label."""

    def act() -> None:
        call.do(
            registry.register,
            molecule=_chosen(
                call, "molecule", "molecule", (m.replace("_", " ") for m in MOLECULES)
            ),
            label=call.text("label").strip(),
            form=_chosen(call, "form", "dosage form", (f.label for f in forms().values())),
            unit=_chosen(call, "unit", "unit counted", UNITS),
            mg_per_unit=optional_float(call.text("mg_per_unit").strip(), "mg per unit"),
            strength_mg_per_ml=optional_float(
                call.text("strength_mg_per_ml").strip(), "strength (mg/mL)"
            ),
            volume_ml=optional_float(call.text("volume_ml").strip(), "volume (mL per unit)"),
            supplier=call.text("supplier").strip(),
            statement=call.text("statement").strip(),
        )

    return _act(call, act, back="/stock")


@router.post("/stock/clinic-products/{registration_id}/retire", response_class=HTMLResponse)
def retire_product_page(
    registration_id: int, call: PageCall = page_call("stock:register")
) -> Response:
    return _act(
        call,
        lambda: call.do(
            registry.retire, registration_id=registration_id, reason=call.text("reason").strip()
        ),
        back="/stock",
    )


@router.post("/stock/counts", response_class=HTMLResponse)
def count_page(call: PageCall = page_call("stock:write")) -> Response:
    def act() -> None:
        call.do(
            service.count,
            lot_id=_chosen_id(call, "lot_id", "lot"),
            units_counted=_required_int(call, "units_counted", "units counted"),
        )

    return _act(call, act, back="/stock")


@router.post("/stock/disposals", response_class=HTMLResponse)
def disposal_page(call: PageCall = page_call("stock:write")) -> Response:
    def act() -> None:
        call.do(
            service.dispose,
            lot_id=_chosen_id(call, "lot_id", "lot"),
            units=_required_int(call, "units", "units"),
            disposal=_chosen(call, "disposal", "how the units leave", ("returned", "destroyed")),
            reason=call.text("reason").strip(),
            reference=call.text("reference").strip(),
        )

    return _act(call, act, back="/stock")


@router.post("/stock/transfers", response_class=HTMLResponse)
def transfer_page(call: PageCall = page_call("stock:write")) -> Response:
    def act() -> None:
        call.do(
            service.transfer,
            lot_id=_chosen_id(call, "lot_id", "lot"),
            units=_required_int(call, "units", "units"),
            to_site=call.text("to_site").strip(),
            reference=call.text("reference").strip(),
        )

    return _act(call, act, back="/stock")


def _back(call: PageCall) -> str:
    back = call.text("back").strip()
    return back if back.startswith("/stock") and "//" not in back else "/stock"


def _session_of(back: str) -> int | None:
    parts = back.split("/")
    return (
        int(parts[3]) if len(parts) == 4 and parts[2] == "sessions" and parts[3].isdigit() else None
    )


@router.post("/stock/entries/{entry_id}/witness", response_class=HTMLResponse)
def witness_page(entry_id: int, call: PageCall = page_call("stock:write")) -> Response:
    back = _back(call)
    return _act(
        call,
        lambda: call.do(service.witness, entry_id=entry_id),
        back=back,
        session_id=_session_of(back),
    )


@router.post("/stock/counts/{count_id}/resolve", response_class=HTMLResponse)
def resolve_page(count_id: int, call: PageCall = page_call("stock:resolve")) -> Response:
    def act() -> None:
        call.do(
            service.resolve,
            count_id=count_id,
            outcome=_chosen(call, "outcome", "outcome", (o.replace("_", " ") for o in OUTCOMES)),
            reason=call.text("reason").strip(),
            report_reference=call.text("report_reference").strip() or None,
        )

    return _act(call, act, back="/stock")


@router.get("/stock/sessions/{session_id}", response_class=HTMLResponse)
def session_stock_page(session_id: int, call: PageCall = page_call("stock:read")) -> Response:
    return _session_page(call, session_id)


@router.post("/stock/sessions/{session_id}/draw", response_class=HTMLResponse)
def draw_page(session_id: int, call: PageCall = page_call("stock:write")) -> Response:
    def act() -> None:
        call.do(
            service.draw,
            lot_id=_chosen_id(call, "lot_id", "lot"),
            units=_required_int(call, "units", "units opened"),
            prepared_mg=_required_float(call, "prepared_mg", "prepared mg"),
            prepared_ml=optional_float(call.text("prepared_ml").strip(), "prepared mL"),
            dosing_session_id=session_id,
        )

    back = f"/stock/sessions/{session_id}"
    return _act(call, act, back=back, session_id=session_id)


@router.post("/stock/sessions/{session_id}/waste", response_class=HTMLResponse)
def waste_page(session_id: int, call: PageCall = page_call("stock:write")) -> Response:
    def act() -> None:
        call.do(
            service.waste,
            draw_id=_chosen_id(call, "draw_id", "draw"),
            mg=_required_float(call, "mg", "wasted mg"),
            ml=optional_float(call.text("ml").strip(), "wasted mL"),
            method=call.text("method").strip(),
        )

    back = f"/stock/sessions/{session_id}"
    return _act(call, act, back=back, session_id=session_id)


@router.get("/stock/reports/{report}.csv")
def report_csv_page(
    report: Literal["inventory", "dispensing", "waste"],
    call: PageCall = page_call("stock:report"),
) -> Response:
    rows = call.do(reports.read_report, report=report, at=call.now, export="csv")
    return PlainTextResponse(
        reports.to_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{report}.csv"'},
    )


def _day(value: str | None, what: str, default: date) -> date:
    if not (value or "").strip():
        return default
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError as exc:
        raise InvalidInput(f"{what} must be a date (YYYY-MM-DD), got {value!r}") from exc


@router.get("/stock/reports/inventory.pdf")
def inventory_pdf_page(
    at: Annotated[str | None, Query(description="A day: the inventory at its close")] = None,
    call: PageCall = page_call("stock:report"),
) -> Response:
    """The inventory at the close of a day (today by default) as PDF."""
    zone = call.settings.zone
    day = _day(at, "the inventory's day", call.now.astimezone(zone).date())
    when = min(documents.close_of(day, zone), call.now)
    data = call.do(
        documents.read_inventory_pdf,
        at=when,
        day=day if when < call.now else None,
        paper=documents.Paper.of(call.settings),
    )
    return pdf_response(data, f"inventory-{day.isoformat()}", "inline")


@router.get("/stock/reports/log.pdf")
def log_pdf_page(
    start: Annotated[str | None, Query(alias="from", description="The first day")] = None,
    end: Annotated[str | None, Query(alias="to", description="The last day")] = None,
    call: PageCall = page_call("stock:report"),
) -> Response:
    """The log of a period of days (today by default) as PDF."""
    today = call.now.astimezone(call.settings.zone).date()
    first = _day(start, "the first day", today)
    last = _day(end, "the last day", first if start else today)
    paper = documents.Paper.of(call.settings)
    data = call.do(documents.log_pdf, start_day=first, end_day=last, paper=paper)
    return pdf_response(data, f"stock-log-{first.isoformat()}-{last.isoformat()}", "inline")
