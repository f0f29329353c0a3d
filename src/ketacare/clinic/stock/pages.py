"""Pages of controlled-substance stock: the stock room and a session's draws and wastes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.audit import service as audit
from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.stock import service
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.infra.errors import status_for
from ketacare.web.deps import Ctx, DbSession, FormFields, Now, actor_of, page_permission
from ketacare.web.render import optional_float, optional_int, page

router = APIRouter(include_in_schema=False)


def _stock_page(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    at: datetime,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    found = service.stock_at(session=session, actor=actor_of(request, principal), at=at, now=at)
    book = service.ledger(session=session)
    return page(
        request,
        ctx,
        "stock/stock.html",
        {
            "stock": found,
            "rows": book.rows,
            "names": book.names,
            "products": service.library(),
            "error": error,
            "today": at.astimezone(ctx.settings.zone).date(),
        },
        status_code=status_code,
    )


def _session_page(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    session_id: int,
    at: datetime,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    row = sessions.get_session(session=session, session_id=session_id)
    state = sessions.state_of(session=session, session_id=session_id)
    acc = service.session_account(session=session, dosing_session_id=session_id, now=at)
    why = service.unaccounted_remainder(session=session, dosing_session_id=session_id, now=at)
    found = service.stock_at(session=session, actor=actor_of(request, principal), at=at, now=at)
    audit.record(
        session=session,
        actor=actor_of(request, principal),
        action="read",
        resource_type="stock_session",
        resource_id=session_id,
        patient_id=row.patient_id,
        at=at,
    )
    book = service.ledger(session=session)
    today = at.astimezone(ctx.settings.zone).date()
    lots = [
        b
        for b in found.lots
        if b.product.molecule == state.setup.molecule and b.units_on_hand > 0 and b.expiry >= today
    ]
    draw_ids = {d.id for d in acc.draws}
    wastes = [r for r in book.rows.values() if r.kind == "waste" and r.target_id in draw_ids]
    return page(
        request,
        ctx,
        "stock/session.html",
        {
            "row": row,
            "state": state,
            "account": acc,
            "why": why,
            "lots": lots,
            "wastes": wastes,
            "witnessed": {r.target_id: r for r in book.rows.values() if r.kind == "witness"},
            "voided": found.voided,
            "names": book.names,
            "error": error,
        },
        status_code=status_code,
    )


def _act(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    at: datetime,
    action: Callable[[], Any],
    *,
    back: str,
    session_id: int | None = None,
) -> Response:
    """Run one write; a refusal comes back on its page with the reason (nothing stored)."""
    try:
        action()
    except KetacareError as exc:
        session.rollback()
        status, _ = status_for(exc)
        if session_id is not None:
            return _session_page(
                request, ctx, session, principal, session_id, at, error=str(exc), status_code=status
            )
        return _stock_page(request, ctx, session, principal, at, error=str(exc), status_code=status)
    return RedirectResponse(back, status_code=303)


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


def _required_int(form: Any, name: str, what: str) -> int:
    value = optional_int(_text(form, name), what)
    if value is None:
        raise InvalidInput(f"{what} is required")
    return value


def _required_float(form: Any, name: str, what: str) -> float:
    value = optional_float(_text(form, name), what)
    if value is None:
        raise InvalidInput(f"{what} is required")
    return value


@router.get("/stock", response_class=HTMLResponse)
def stock_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("stock:read"),
) -> Response:
    return _stock_page(request, ctx, session, principal, at)


@router.post("/stock/receipts", response_class=HTMLResponse)
def receipt_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("stock:write"),
) -> Response:
    def act() -> None:
        try:
            expiry = date.fromisoformat(_text(form, "expiry"))
        except ValueError as exc:
            raise InvalidInput("expiry must be a date (YYYY-MM-DD)") from exc
        service.receive(
            session=session,
            actor=actor_of(request, principal),
            site=_text(form, "site"),
            product=_text(form, "product"),
            lot=_text(form, "lot"),
            expiry=expiry,
            units=_required_int(form, "units", "units"),
            supplier=_text(form, "supplier"),
            reference=_text(form, "reference"),
            now=at,
        )

    return _act(request, ctx, session, principal, at, act, back="/stock")


@router.post("/stock/counts", response_class=HTMLResponse)
def count_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("stock:write"),
) -> Response:
    def act() -> None:
        service.count(
            session=session,
            actor=actor_of(request, principal),
            lot_id=_required_int(form, "lot_id", "lot"),
            units_counted=_required_int(form, "units_counted", "units counted"),
            now=at,
        )

    return _act(request, ctx, session, principal, at, act, back="/stock")


@router.post("/stock/disposals", response_class=HTMLResponse)
def disposal_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("stock:write"),
) -> Response:
    def act() -> None:
        service.dispose(
            session=session,
            actor=actor_of(request, principal),
            lot_id=_required_int(form, "lot_id", "lot"),
            units=_required_int(form, "units", "units"),
            disposal=_text(form, "disposal"),
            reason=_text(form, "reason"),
            reference=_text(form, "reference"),
            now=at,
        )

    return _act(request, ctx, session, principal, at, act, back="/stock")


def _back(form: Any) -> str:
    back = _text(form, "back")
    return back if back.startswith("/stock") and "//" not in back else "/stock"


def _session_of(back: str) -> int | None:
    parts = back.split("/")
    return (
        int(parts[3]) if len(parts) == 4 and parts[2] == "sessions" and parts[3].isdigit() else None
    )


@router.post("/stock/entries/{entry_id}/witness", response_class=HTMLResponse)
def witness_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    entry_id: int,
    principal: Principal = page_permission("stock:write"),
) -> Response:
    back = _back(form)

    def act() -> None:
        service.witness(
            session=session, actor=actor_of(request, principal), entry_id=entry_id, now=at
        )

    return _act(request, ctx, session, principal, at, act, back=back, session_id=_session_of(back))


@router.post("/stock/counts/{count_id}/resolve", response_class=HTMLResponse)
def resolve_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    count_id: int,
    principal: Principal = page_permission("stock:resolve"),
) -> Response:
    def act() -> None:
        service.resolve(
            session=session,
            actor=actor_of(request, principal),
            count_id=count_id,
            outcome=_text(form, "outcome"),
            reason=_text(form, "reason"),
            report_reference=_text(form, "report_reference") or None,
            now=at,
        )

    return _act(request, ctx, session, principal, at, act, back="/stock")


@router.get("/stock/sessions/{session_id}", response_class=HTMLResponse)
def session_stock_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    session_id: int,
    principal: Principal = page_permission("stock:read"),
) -> Response:
    return _session_page(request, ctx, session, principal, session_id, at)


@router.post("/stock/sessions/{session_id}/draw", response_class=HTMLResponse)
def draw_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    session_id: int,
    principal: Principal = page_permission("stock:write"),
) -> Response:
    def act() -> None:
        service.draw(
            session=session,
            actor=actor_of(request, principal),
            lot_id=_required_int(form, "lot_id", "lot"),
            units=_required_int(form, "units", "units opened"),
            prepared_mg=_required_float(form, "prepared_mg", "prepared mg"),
            prepared_ml=optional_float(_text(form, "prepared_ml"), "prepared mL"),
            dosing_session_id=session_id,
            now=at,
        )

    back = f"/stock/sessions/{session_id}"
    return _act(request, ctx, session, principal, at, act, back=back, session_id=session_id)


@router.post("/stock/sessions/{session_id}/waste", response_class=HTMLResponse)
def waste_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    session_id: int,
    principal: Principal = page_permission("stock:write"),
) -> Response:
    def act() -> None:
        service.waste(
            session=session,
            actor=actor_of(request, principal),
            draw_id=_required_int(form, "draw_id", "draw"),
            mg=_required_float(form, "mg", "wasted mg"),
            ml=optional_float(_text(form, "ml"), "wasted mL"),
            method=_text(form, "method"),
            now=at,
        )

    back = f"/stock/sessions/{session_id}"
    return _act(request, ctx, session, principal, at, act, back=back, session_id=session_id)


@router.get("/stock/reports/{report}.csv")
def report_csv_page(
    request: Request,
    session: DbSession,
    at: Now,
    report: Literal["inventory", "dispensing", "waste"],
    principal: Principal = page_permission("stock:report"),
) -> Response:
    rows = service.report_rows(session=session, report=report, at=at)
    audit.record(
        session=session,
        actor=actor_of(request, principal),
        action="read",
        resource_type=f"stock_report_{report}",
        at=at,
        detail={"at": at.isoformat(), "format": "csv"},
    )
    return PlainTextResponse(
        service.to_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{report}.csv"'},
    )
