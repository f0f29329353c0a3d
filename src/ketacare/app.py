"""The composition root: builds the app from settings and mounts every domain's routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ketacare import __version__
from ketacare.clinic.accounts import api as accounts_api
from ketacare.clinic.accounts import pages as accounts_pages
from ketacare.clinic.accounts.throttle import LoginThrottle
from ketacare.clinic.analytics import api as analytics_api
from ketacare.clinic.analytics import pages as analytics_pages
from ketacare.clinic.assessments import api as assessments_api
from ketacare.clinic.assessments import pages as assessments_pages
from ketacare.clinic.audit import api as audit_api
from ketacare.clinic.audit import pages as audit_pages
from ketacare.clinic.audit import service as audit_service
from ketacare.clinic.audit.anchors import anchor_periodically
from ketacare.clinic.consent import api as consent_api
from ketacare.clinic.consent import pages as consent_pages
from ketacare.clinic.demo_policy import demo_settings
from ketacare.clinic.followup import api as followup_api
from ketacare.clinic.followup import pages as followup_pages
from ketacare.clinic.outcomes import api as outcomes_api
from ketacare.clinic.outcomes import pages as outcomes_pages
from ketacare.clinic.patients import api as patients_api
from ketacare.clinic.patients import pages as patients_pages
from ketacare.clinic.personalise import pages as personalise_pages
from ketacare.clinic.plans import api as plans_api
from ketacare.clinic.plans import pages as plans_pages
from ketacare.clinic.rems import api as rems_api
from ketacare.clinic.rems import pages as rems_pages
from ketacare.clinic.research import api as research_api
from ketacare.clinic.research import pages as research_pages
from ketacare.clinic.safeguards import api as safeguards_api
from ketacare.clinic.safeguards import pages as safeguards_pages
from ketacare.clinic.screenings import api as screenings_api
from ketacare.clinic.screenings import pages as screenings_pages
from ketacare.clinic.sessions import api as sessions_api
from ketacare.clinic.sessions import pages as sessions_pages
from ketacare.clinic.simulation import pages as simulation_pages
from ketacare.clinic.stock import api as stock_api
from ketacare.clinic.stock import pages as stock_pages
from ketacare.clinic.system import api as system_api
from ketacare.clinic.system import service as system_service
from ketacare.infra.clock import Clock, utc_now
from ketacare.infra.db import database_failure, make_engine, make_sessionmaker, probe
from ketacare.infra.errors import DatabaseUnavailable
from ketacare.infra.migrate import ensure_current
from ketacare.infra.policy import check_site_policy
from ketacare.infra.settings import Settings, load_settings
from ketacare.web.deps import AppContext
from ketacare.web.headers import SecurityHeaders
from ketacare.web.idempotency import (
    IdempotencyKeys,
    Replayed,
    purge_keys_periodically,
    replayed,
)
from ketacare.web.limits import BodyLimit, StrictTransport
from ketacare.web.problems import API_ERROR_RESPONSES, HANDLERS
from ketacare.web.render import WEB_DIR, make_templates

log = logging.getLogger("ketacare")

API_ROUTERS = (
    sessions_api.router,
    accounts_api.router,
    patients_api.router,
    assessments_api.router,
    screenings_api.router,
    plans_api.router,
    followup_api.router,
    outcomes_api.router,
    safeguards_api.router,
    stock_api.router,
    research_api.router,
    consent_api.router,
    rems_api.router,
    analytics_api.router,
    audit_api.router,
)
PAGE_ROUTERS = (
    accounts_pages.router,
    patients_pages.router,
    assessments_pages.router,
    screenings_pages.router,
    plans_pages.router,
    simulation_pages.router,
    followup_pages.router,
    sessions_pages.router,
    personalise_pages.router,
    outcomes_pages.router,
    safeguards_pages.router,
    stock_pages.router,
    research_pages.router,
    consent_pages.router,
    rems_pages.router,
    analytics_pages.router,
    audit_pages.router,
)

#: front-end libraries installed from the npm registry, served under /assets
ASSETS = {
    "htmx": "htmx.org/dist",
    "chartjs": "chart.js/dist",
    "signature_pad": "signature_pad/dist",
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'self'"
)


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """Build the application; refuses a database whose schema is behind the code."""
    settings = settings or load_settings()
    check_site_policy(settings)  # a bad policy file stops the start, naming file and field
    audit_key = settings.effective_audit_key()  # no key in production: refuse to start
    engine = make_engine(settings.effective_database_url)
    _refuse_unwritable(engine, settings)
    sessions = make_sessionmaker(engine, info=audit_service.session_info(audit_key))
    app = FastAPI(
        lifespan=_lifespan,
        title="ketacare",
        version=__version__,
        description="Ketamine therapy programs for chronic pain: the JSON API.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    with sessions() as session:
        demo = system_service.is_demo(session=session)
        example_policy = system_service.uses_example_policy(session=session)
        session.commit()
    if demo:
        # the demo clinic's EXAMPLE policy, wherever the operator named none
        settings = demo_settings(settings, example_policy=example_policy)
        check_site_policy(settings)
    app.state.ctx = AppContext(
        settings=settings,
        sessions=sessions,
        clock=clock,
        templates=make_templates(settings),
        throttle=LoginThrottle.from_settings(settings),
    )
    app.state.engine = engine
    app.state.demo = demo
    app.state.demo_example_policy = demo and example_policy

    for exc_class, handler in HANDLERS:
        app.add_exception_handler(exc_class, handler)
    app.add_exception_handler(Replayed, replayed)

    for router in API_ROUTERS:
        app.include_router(router, responses=API_ERROR_RESPONSES)
    app.include_router(system_api.router)
    for router in PAGE_ROUTERS:
        app.include_router(router)

    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    for name, sub in ASSETS.items():
        folder = Path(settings.assets_dir) / sub
        if folder.is_dir():
            app.mount(f"/assets/{name}", StaticFiles(directory=folder), name=f"assets-{name}")
        else:
            log.warning("front-end library %s not found at %s: run `make setup`", name, folder)

    app.add_middleware(SecurityHeaders, csp=CSP)
    app.add_middleware(IdempotencyKeys)  # inside the body limit: reads the body whole
    # added last = runs first: the proxy's word on client and scheme, then HSTS and the limit
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(StrictTransport)
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)

    return app


def _refuse_unwritable(engine: Engine, settings: Settings) -> None:
    """Start only on a database at the code's schema that can be read and written."""
    where = settings.effective_database_url.split("@")[-1]
    try:
        ensure_current(engine)
    except DBAPIError as exc:
        raise DatabaseUnavailable(
            f"cannot start on {where}: {database_failure(exc) or exc.orig}"
        ) from None
    failure = probe(engine)
    if failure is not None:
        raise DatabaseUnavailable(f"cannot start on {where}: {failure}")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While serving: the scheduled audit anchors (when a folder is configured) and the
    hourly removal of expired idempotency keys."""
    ctx: AppContext = app.state.ctx
    folder = ctx.settings.audit_anchor_dir
    tasks = [
        asyncio.create_task(
            purge_keys_periodically(
                sessions=ctx.sessions,
                keep_hours=ctx.settings.idempotency_keep_hours,
                clock=ctx.clock,
            )
        )
    ]
    if folder is not None:
        tasks.append(
            asyncio.create_task(
                anchor_periodically(
                    sessions=ctx.sessions,
                    directory=folder,
                    minutes=ctx.settings.audit_anchor_minutes,
                    clock=ctx.clock,
                )
            )
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
