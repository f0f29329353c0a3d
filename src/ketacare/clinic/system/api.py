"""Health check."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ketacare.clinic.system import service
from ketacare.web.deps import Ctx

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(ctx: Ctx) -> JSONResponse:
    """200 when the database is reachable, 503 when it is not."""
    try:
        with ctx.sessions() as session:
            ok = service.ping(session=session)
    except Exception as exc:  # any driver error means "not reachable"
        return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)
