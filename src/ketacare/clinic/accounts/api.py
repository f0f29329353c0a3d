"""JSON routes of accounts: tokens, the current user, account administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from ketacare.clinic.accounts import schemas, service
from ketacare.clinic.accounts.service import Principal
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission, remote_addr

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.post("/auth/token", response_model=schemas.Token)
def issue_token(
    request: Request,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
) -> schemas.Token:
    """Exchange a username and password for a bearer token."""
    try:
        user = service.authenticate(
            session=session,
            username=username,
            password=password,
            now=at,
            settings=ctx.settings,
            remote_addr=remote_addr(request),
        )
    except Exception:
        session.commit()  # keep the failure count and the audit row of the failed attempt
        raise
    token = service.start_session(
        session=session,
        user=user,
        kind="bearer",
        now=at,
        settings=ctx.settings,
        remote_addr=remote_addr(request),
    )
    return schemas.Token(access_token=token, expires_in=int(ctx.settings.token_hours * 3600))


@router.get("/users/me", response_model=schemas.Me)
def read_me(principal: Principal = api_permission("self:read")) -> schemas.Me:
    """The account behind the token."""
    return schemas.Me(
        id=principal.user_id,
        username=principal.username,
        full_name=principal.full_name,
        role=principal.role.value,
        patient_id=principal.patient_id,
    )


@router.get("/users", response_model=list[schemas.UserRead])
def list_users(session: DbSession, _: Principal = api_permission("user:read")) -> list[object]:
    """Every account (administrators)."""
    return list(service.list_users(session=session))


@router.post("/users", response_model=schemas.UserRead, status_code=201)
def create_user(
    request: Request,
    data: schemas.UserCreate,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("user:write"),
) -> object:
    """Create an account (administrators)."""
    return service.create_user(
        session=session,
        username=data.username,
        full_name=data.full_name,
        role=data.role,
        password=data.password,
        patient_id=data.patient_id,
        now=at,
        settings=ctx.settings,
        actor=actor_of(request, principal),
    )
