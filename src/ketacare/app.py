"""The composition root: builds the app from settings and mounts every domain's routes."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

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
from ketacare.clinic.demo_policy import demo_settings
from ketacare.clinic.followup import api as followup_api
from ketacare.clinic.followup import pages as followup_pages
from ketacare.clinic.outcomes import api as outcomes_api
from ketacare.clinic.outcomes import pages as outcomes_pages
from ketacare.clinic.outcomes.policy import outcome_policy
from ketacare.clinic.patients import api as patients_api
from ketacare.clinic.patients import pages as patients_pages
from ketacare.clinic.personalise import pages as personalise_pages
from ketacare.clinic.plans import api as plans_api
from ketacare.clinic.plans import pages as plans_pages
from ketacare.clinic.research import api as research_api
from ketacare.clinic.research import pages as research_pages
from ketacare.clinic.safeguards import api as safeguards_api
from ketacare.clinic.safeguards import pages as safeguards_pages
from ketacare.clinic.screenings import api as screenings_api
from ketacare.clinic.screenings import pages as screenings_pages
from ketacare.clinic.sessions import api as sessions_api
from ketacare.clinic.sessions import pages as sessions_pages
from ketacare.clinic.simulation import pages as simulation_pages
from ketacare.clinic.system import api as system_api
from ketacare.clinic.system import service as system_service
from ketacare.infra.clock import Clock, utc_now
from ketacare.infra.db import make_engine, make_sessionmaker
from ketacare.infra.migrate import ensure_current
from ketacare.infra.settings import Settings, load_settings
from ketacare.web.deps import AppContext
from ketacare.web.headers import SecurityHeaders
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
    research_api.router,
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
    research_pages.router,
    analytics_pages.router,
    audit_pages.router,
)

#: front-end libraries installed from the npm registry, served under /assets
ASSETS = {"htmx": "htmx.org/dist", "chartjs": "chart.js/dist"}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'self'"
)


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """Build the application; refuses a database whose schema is behind the code."""
    settings = settings or load_settings()
    outcome_policy(settings)  # a bad outcome policy file stops the start, naming the entry
    engine = make_engine(settings.effective_database_url)
    ensure_current(engine)
    sessions = make_sessionmaker(engine)
    app = FastAPI(
        title="ketacare",
        version=__version__,
        description="Ketamine therapy programs for chronic pain: the JSON API.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    with sessions() as session:
        demo = system_service.is_demo(session=session)
        session.commit()
    if demo:
        # the demo clinic's EXAMPLE protocol policy, unless the operator named one
        settings = demo_settings(settings)
    app.state.ctx = AppContext(
        settings=settings,
        sessions=sessions,
        clock=clock,
        templates=make_templates(settings),
        throttle=LoginThrottle.from_settings(settings),
    )
    app.state.engine = engine
    app.state.demo = demo

    for exc_class, handler in HANDLERS:
        app.add_exception_handler(exc_class, handler)

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

    return app
