"""Signing in from an HTTP request (JSON routes and pages alike): the password check,
the second factor and a new session, each with the client's address (and browser)
for the audit trail."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from sqlalchemy.orm import Session

from ketacare.clinic.accounts import service
from ketacare.clinic.accounts.orm import User
from ketacare.web.deps import AppContext, remote_addr


def authenticate(
    *,
    request: Request,
    ctx: AppContext,
    session: Session,
    at: datetime,
    username: str,
    password: str,
) -> User:
    """:func:`service.authenticate` for the client of ``request``."""
    return service.authenticate(
        session=session,
        username=username,
        password=password,
        now=at,
        throttle=ctx.throttle,
        settings=ctx.settings,
        remote_addr=remote_addr(request),
    )


def second_factor(
    *, request: Request, ctx: AppContext, session: Session, at: datetime, user: User, code: str
) -> None:
    """:func:`service.second_factor` for the client of ``request``."""
    service.second_factor(
        session=session,
        user=user,
        code=code,
        now=at,
        throttle=ctx.throttle,
        remote_addr=remote_addr(request),
    )


def start_session(
    *, request: Request, ctx: AppContext, session: Session, at: datetime, user: User, kind: str
) -> str:
    """:func:`service.start_session` for the client (address and browser) of ``request``."""
    return service.start_session(
        session=session,
        user=user,
        kind=kind,
        now=at,
        settings=ctx.settings,
        remote_addr=remote_addr(request),
        user_agent=request.headers.get("user-agent"),
    )
