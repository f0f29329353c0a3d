"""Health (liveness: the database answers) and readiness (it can be read and written)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ketacare.clinic.system import service
from ketacare.infra.db import probe
from ketacare.web.deps import Ctx
from ketacare.web.problems import problem

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


@router.get("/readyz")
def readyz(ctx: Ctx) -> JSONResponse:
    """200 when a real read and a write (rolled back) succeed; else 503 problem+json
    saying what is wrong (down, read-only, disk full)."""
    failure = probe(ctx.sessions.kw["bind"])
    if failure is not None:
        return problem(503, "Not ready", failure)
    return JSONResponse({"status": "ready"})
