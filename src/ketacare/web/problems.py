"""Errors as ``application/problem+json`` (RFC 9457) for the API, pages for the browser."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ketacare.clinic.audit import service as audit
from ketacare.core.errors import KetacareError
from ketacare.infra.db import database_failure
from ketacare.infra.errors import (
    CsrfRejected,
    Forbidden,
    NotAuthenticated,
    SecondFactorEnrolmentRequired,
    status_for,
)

log = logging.getLogger("ketacare")

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """An error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


#: Documented on every API route so clients (and schema fuzzers) know the error shape.
API_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM: {}}, "description": title}
    for code, title in (
        (401, "Not authenticated"),
        (403, "Forbidden"),
        (404, "Not found"),
        (409, "Conflict"),
        (422, "Invalid input"),
        (429, "Too many attempts"),
        (503, "Database unavailable (down, read-only or its disk full)"),
    )
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    retry_after: int | None = None,
    extensions: Mapping[str, object] | None = None,
) -> JSONResponse:
    """A problem response; ``extensions`` are members beside the standard ones (RFC 9457
    section 3.2), e.g. ``duplicates`` of a possible duplicate patient."""
    body: dict[str, object] = {
        **(extensions or {}),
        **Problem(title=title, status=status, detail=detail).model_dump(),
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


#: what a person reading an error page is told, by status: a heading and what to do next
FRIENDLY: dict[int, tuple[str, str]] = {
    403: (
        "Not allowed",
        "Your account's role does not give access to this page or action. If your work "
        "needs it, ask an administrator.",
    ),
    404: (
        "Page not found",
        "There is no page at this address, or the record it names does not exist (or is "
        "not yours to see). Check the address, or start again from your home page.",
    ),
    405: (
        "This address is a form's destination",
        "It is used when a form is sent, not opened as a page. Go back to the page that "
        "holds the form.",
    ),
}


def _error_page(
    request: Request, status: int, title: str, detail: str, *, back: str | None = None
) -> Response:
    ctx = request.app.state.ctx
    principal = getattr(request.state, "principal", None)
    heading, hint = FRIENDLY.get(status, (title, None))
    response: Response = ctx.templates.TemplateResponse(
        request,
        "error.html",
        {
            "request": request,
            "principal": principal,
            "title": heading,
            # the framework's bare reason phrase says nothing the heading does not
            "detail": None if detail in (title, "Not Found", "Method Not Allowed") else detail,
            "hint": hint,
            "back": back,
            "status": status,
            "csrf_token": principal.csrf_token if principal else "",
            "demo": getattr(request.app.state, "demo", False),
        },
        status_code=status,
    )
    return response


def _page_above(request: Request) -> str | None:
    """The nearest page above ``request``'s path that answers GET (the form's own page for a
    form's POST-only address), or None."""
    parts = request.url.path.rstrip("/").split("/")
    while len(parts) > 1:
        parts.pop()
        candidate = "/".join(parts) or "/"
        scope = {**request.scope, "path": candidate, "method": "GET"}
        for route in request.app.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return candidate
    return None


_MAX_ID = 2**31 - 1


def _path_patient_id(request: Request) -> int | None:
    raw = request.path_params.get("patient_id")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.isdigit() and len(raw) <= 10:
        value = int(raw)
    else:
        return None
    return value if 1 <= value <= _MAX_ID else None


def _audit_refusal(request: Request, exc: KetacareError) -> None:
    """One audit row for a refused attempt, in a transaction of its own.

    The request's own unit of work is rolled back with the refusal, so its rows are
    gone; the attempt itself is what a security review looks for (who tried to open
    which record, or posted a form without its token).
    """
    ctx = request.app.state.ctx
    principal = getattr(request.state, "principal", None)
    addr = request.client.host if request.client else None
    actor = (
        principal.actor(addr)
        if principal is not None
        else audit.Actor(user_id=None, username="anonymous", role="none", remote_addr=addr)
    )
    with ctx.sessions() as session, session.begin():
        audit.record(
            session=session,
            actor=actor,
            action="denied",
            resource_type="request",
            resource_id=request.url.path[:64],
            patient_id=_path_patient_id(request),
            at=ctx.clock(),
            detail={
                "method": request.method,
                "path": request.url.path[:500],
                "reason": str(exc)[:500],
                "error": type(exc).__name__,
            },
        )


async def ketacare_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KetacareError)
    status, title = status_for(exc)
    if isinstance(exc, Forbidden | CsrfRejected):
        await run_in_threadpool(_audit_refusal, request, exc)
    if _is_api(request):
        return problem(
            status,
            title,
            str(exc),
            retry_after=getattr(exc, "retry_after", None),
            extensions=getattr(exc, "problem_extensions", None),
        )
    if isinstance(exc, SecondFactorEnrolmentRequired):
        if request.headers.get("hx-request"):  # a fragment (e.g. the alerts badge): no swap
            return Response(status_code=403)
        return RedirectResponse("/account/totp", status_code=303)
    if isinstance(exc, NotAuthenticated):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/login?next={target}", status_code=303)
    return _error_page(request, status, title, str(exc))


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    detail = _describe(errors)
    if _is_api(request):
        return problem(422, "Invalid input", detail)
    if errors and all(e.get("loc", ("",))[0] == "path" for e in errors):
        # a page address that names no record (/sessions/board): no such page
        return _error_page(request, 404, "Not found", f"there is no page at {request.url.path}")
    return _error_page(request, 422, "Invalid input", detail)


async def integrity_error(request: Request, _exc: Exception) -> Response:
    detail = "the request conflicts with stored data (a duplicate or a missing reference)"
    if _is_api(request):
        return problem(409, "Conflict", detail)
    return _error_page(request, 409, "Conflict", detail)


async def out_of_range(request: Request, _exc: Exception) -> Response:
    detail = "a number in the request is out of range (ids are at most 2147483647)"
    if _is_api(request):
        return problem(422, "Invalid input", detail)
    return _error_page(request, 422, "Invalid input", detail)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail)
    if _is_api(request):
        return problem(exc.status_code, detail, detail)
    if exc.status_code == 405:
        above = _page_above(request)
        if above is not None and request.method in ("GET", "HEAD"):
            # a form's address opened as a page (a bookmark, a reload): its form's page
            return RedirectResponse(above, status_code=303)
        return _error_page(request, 405, detail, detail, back=above)
    return _error_page(request, exc.status_code, detail, detail)


async def database_error(request: Request, exc: Exception) -> Response:
    """Database down, read-only or disk full: 503 with what is wrong, one log line, no
    traceback; any other driver error is a bug and goes on to the 500 handler."""
    meaning = database_failure(exc)
    if meaning is None:
        raise exc
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]
    log.error("503 %s %s: %s (%s)", request.method, request.url.path, meaning, first)
    if _is_api(request) or request.url.path in ("/readyz", "/healthz"):
        return problem(503, "Database unavailable", meaning)
    return _error_page(request, 503, "Database unavailable", meaning)


HANDLERS: tuple[tuple[type[Exception], Any], ...] = (
    (KetacareError, ketacare_error),
    (RequestValidationError, validation_error),
    (IntegrityError, integrity_error),
    (OverflowError, out_of_range),
    (DataError, out_of_range),
    (DBAPIError, database_error),
    (StarletteHTTPException, http_error),
)
