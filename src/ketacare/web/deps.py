"""Request dependencies shared by every domain's routes.

Each route declares exactly one permission with :func:`api_request` or :func:`api_call`
(JSON API, bearer tokens) or ``page_call`` (pages, session cookie, CSRF on every non-GET;
:mod:`ketacare.web.page_call`). The permission is attached to the
dependency so a test can walk all routes and check them against the permission table.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from ketacare.clinic.accounts import service as accounts
from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.accounts.throttle import LoginThrottle
from ketacare.clinic.audit.service import Actor
from ketacare.infra.clock import Clock
from ketacare.infra.errors import (
    CsrfRejected,
    Forbidden,
    NotAuthenticated,
    SecondFactorEnrolmentRequired,
)
from ketacare.infra.permissions import Scope, check
from ketacare.infra.settings import Settings
from ketacare.web.idempotency import claim_key

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)

#: a stored row's id in a JSON route's path (the database's integer range)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]

SESSION_COOKIE = "kc_session"
MFA_COOKIE = "kc_mfa"
LOGIN_CSRF_COOKIE = "kc_login_csrf"


@dataclass
class AppContext:
    """What the composition root hands to every request."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    templates: Jinja2Templates
    throttle: LoginThrottle


# ``async def`` where nothing can block: FastAPI runs a plain ``def`` dependency in the
# thread pool, and each such hop costs more than these lookups themselves.
async def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(context)]


async def db_session(ctx: Ctx) -> AsyncIterator[Session]:
    """One unit of work per request: commit when the route returns, roll back on error.

    Opening a session does no I/O (the connection is taken at its first statement, in
    the route's thread), so only the ending goes to the thread pool: one hop, not two.
    """
    session = ctx.sessions()
    try:
        yield session
        await run_in_threadpool(_commit_and_close, session)
    except BaseException:
        await run_in_threadpool(_rollback_and_close, session)
        raise


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _rollback_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


DbSession = Annotated[Session, Depends(db_session, scope="function")]


async def now(ctx: Ctx) -> datetime:
    return ctx.clock()


Now = Annotated[datetime, Depends(now)]


def remote_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


#: a request a page makes by itself (a badge's periodic refresh): not its user's activity,
#: so it neither keeps a session from its idle timeout nor moves its last-seen time
BACKGROUND_HEADER = "x-ketacare-background"


def _bearer_principal(request: Request, session: Session, at: datetime) -> Principal | None:
    token = _bearer_token(request)
    if token is None:
        return None
    return accounts.resolve(session=session, token=token, kind="bearer", now=at)


def _cookie_principal(
    request: Request, session: Session, at: datetime, settings: Settings
) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return accounts.resolve(
        session=session,
        token=token,
        kind="cookie",
        now=at,
        idle_minutes=settings.idle_timeout_minutes,
        touch=BACKGROUND_HEADER not in request.headers,
    )


def optional_page_principal(
    request: Request, ctx: Ctx, session: DbSession, at: Now
) -> Principal | None:
    return _cookie_principal(request, session, at, ctx.settings)


async def _check_csrf(request: Request, principal: Principal) -> None:
    sent = request.headers.get("x-csrf-token")
    if not sent:
        content_type = request.headers.get("content-type", "")
        if "form" in content_type:
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent, principal.csrf_token):
        raise CsrfRejected("the form's security token is missing or stale: reload the page")


#: the methods that change nothing: no CSRF token asked
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: the pages an account that must enrol a second factor may still open
ENROLMENT_PATHS = frozenset({"/account/totp", "/logout"})


def _require_enrolment(request: Request, settings: Settings, principal: Principal) -> None:
    """A role that must use a second factor reaches nothing else until it has one."""
    if (
        not principal.totp_enrolled
        and principal.role.value in settings.totp_roles
        and request.url.path not in ENROLMENT_PATHS
    ):
        raise SecondFactorEnrolmentRequired(
            f"the {principal.role.value} role signs in with a second factor: enrol an "
            "authenticator app on /account/totp first"
        )


def principal_dependency(permission: str, kind: str) -> Callable[..., Any]:
    """Who calls (bearer token or login session), checked against ``permission``; a page's
    non-GET request must carry the session's CSRF token. Not marked with the permission:
    the dependency that uses it declares it (one per route)."""

    # Plain ``def``: FastAPI runs it in the thread pool, so a database wait (SQLite's write
    # lock) never blocks the event loop that other requests need to finish.
    def resolve(request: Request, ctx: Ctx, session: DbSession, at: Now) -> Principal:
        if kind == "api":
            principal = _bearer_principal(request, session, at)
        else:
            principal = _cookie_principal(request, session, at, ctx.settings)
        if principal is None:
            raise NotAuthenticated(
                "log in first" if kind == "page" else "send a valid bearer token"
            )
        request.state.principal = principal  # set first: a refusal is audited with who
        _require_enrolment(request, ctx.settings, principal)
        check(permission, principal.role)
        if kind == "api":
            claim_key(request, session, principal.user_id, at)
        return principal

    if kind == "api":
        return resolve

    async def with_csrf(request: Request, principal: Principal = Depends(resolve)) -> Principal:
        if request.method not in SAFE_METHODS:
            await _check_csrf(request, principal)
        return principal

    return with_csrf


@dataclass(frozen=True)
class Authenticated:
    """What a one-hop API route's work gets: the unit of work, who, when, and the body."""

    session: Session
    principal: Principal
    now: datetime
    actor: Actor
    raw_body: bytes

    def body(self, model: type[ModelT]) -> ModelT:
        """The request body as ``model``; refused as FastAPI refuses a body (422)."""
        if not self.raw_body:
            raise RequestValidationError(
                [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
            )
        try:
            return model.model_validate_json(self.raw_body)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from None


class ApiCall:
    """A JSON route that does all its work in one thread-pool hop, authentication first.

    A route with :func:`api_request` crosses to the thread pool three times (the
    token lookup, the route, the answer's validation). The vitals a chair posts every
    few minutes, at every chair, are worth one: :meth:`run` opens the unit of work,
    resolves the bearer token and checks the permission, and only then validates the
    body and calls the route's work, then commits, all in one thread. The route never
    sees the session or the body except through :class:`Authenticated`, so it cannot
    skip the check. The body is declared with :func:`body_schema` for the API docs.
    """

    def __init__(self, request: Request, ctx: AppContext, permission: str) -> None:
        self._request = request
        self._ctx = ctx
        self._permission = permission

    async def run(self, work: Callable[[Authenticated], T]) -> T:
        raw = await self._request.body()
        return await run_in_threadpool(self._run, work, raw)

    def _run(self, work: Callable[[Authenticated], T], raw: bytes) -> T:
        session = self._ctx.sessions()
        try:
            now = self._ctx.clock()
            principal = _bearer_principal(self._request, session, now)
            if principal is None:
                raise NotAuthenticated("send a valid bearer token")
            self._request.state.principal = principal
            _require_enrolment(self._request, self._ctx.settings, principal)
            check(self._permission, principal.role)
            claim_key(self._request, session, principal.user_id, now)
            actor = principal.actor(remote_addr(self._request))
            result = work(Authenticated(session, principal, now, actor, raw))
            session.commit()
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def api_call(permission: str) -> Any:
    """Dependency for a one-hop JSON route (see :class:`ApiCall`)."""
    check_known(permission)

    async def declare(request: Request, ctx: Ctx) -> ApiCall:
        if _bearer_token(request) is None:  # no token at all: refused before any I/O
            raise NotAuthenticated("send a valid bearer token")
        return ApiCall(request, ctx, permission)

    declare.permission = permission  # type: ignore[attr-defined]
    declare.kind = "api"  # type: ignore[attr-defined]
    return Depends(declare)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body that :meth:`Authenticated.body` reads."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


async def read_form(request: Request) -> FormData:
    """The posted form, read once (handlers stay plain ``def`` and run in the thread pool)."""
    return await request.form()


FormFields = Annotated[FormData, Depends(read_form)]


@dataclass
class Call:
    """What a route handler gets from :func:`api_request` (a page's
    :class:`~ketacare.web.page_call.PageCall` adds its form): the request's unit of work,
    who asks (checked against the route's one permission), when, and the settings."""

    request: Request
    ctx: AppContext
    session: Session
    principal: Principal
    now: datetime
    permission: str

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @cached_property
    def actor(self) -> Actor:
        """Who, for the audit trail (the account, its role and the address)."""
        return self.principal.actor(remote_addr(self.request))

    def own(self, patient_id: int) -> None:
        """A patient account reaches only its own record (the route's permission)."""
        ensure_patient_scope(self.principal, self.permission, patient_id)

    def do(self, use_case: Callable[..., T], **values: Any) -> T:
        """A service function called with this request's unit of work, actor and time
        (``session=``, ``actor=``, ``now=``) and the given keyword ``values``."""
        return use_case(session=self.session, actor=self.actor, now=self.now, **values)


def api_request(permission: str) -> Any:
    """Dependency for a JSON route: a bearer token whose role holds ``permission``,
    handed over with the unit of work and the time as a :class:`Call`."""
    check_known(permission)
    principal = principal_dependency(permission, "api")

    async def declare(
        request: Request, ctx: Ctx, session: DbSession, at: Now, who: Principal = Depends(principal)
    ) -> Call:
        return Call(request, ctx, session, who, at, permission)

    declare.permission = permission  # type: ignore[attr-defined]
    declare.kind = "api"  # type: ignore[attr-defined]
    return Depends(declare)


def check_known(permission: str) -> None:
    from ketacare.infra.permissions import PERMISSIONS

    if permission not in PERMISSIONS:
        raise KeyError(f"permission {permission!r} is not in the permission table")


def ensure_patient_scope(principal: Principal, permission: str, patient_id: int) -> None:
    """A patient account reaches only its own record."""
    if check(permission, principal.role) is Scope.OWN and principal.patient_id != patient_id:
        raise Forbidden("a patient account can open only its own record")
