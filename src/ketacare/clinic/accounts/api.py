"""JSON routes of accounts: tokens, the current user, account administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from ketacare.clinic.accounts import schemas, service, totp
from ketacare.infra.errors import NotAuthenticated
from ketacare.web.deps import Call, Ctx, DbSession, Now, api_request, remote_addr

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.post("/auth/token", response_model=schemas.Token)
def issue_token(
    request: Request,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    totp_code: Annotated[
        str,
        Form(
            alias="totp",
            max_length=40,
            description="The authenticator app's 6-digit code, or an unused recovery code: "
            "needed by accounts with a second factor (by default admins and physicians)",
        ),
    ] = "",
) -> schemas.Token:
    """Exchange a username and password (and the second factor, where needed) for a token."""
    try:
        user = service.authenticate(
            session=session,
            username=username,
            password=password,
            now=at,
            throttle=ctx.throttle,
            settings=ctx.settings,
            remote_addr=remote_addr(request),
        )
        if totp.needs_second_factor(ctx.settings, user):
            if user.totp_secret is None:
                raise NotAuthenticated(
                    f"the {user.role} role signs in with a second factor: enrol an "
                    "authenticator app on the account page (/account/totp) first"
                )
            if not totp_code.strip():
                raise NotAuthenticated(
                    "this account signs in with a second factor: send the authenticator "
                    "app's code (or a recovery code) in the form field totp"
                )
            service.second_factor(
                session=session,
                user=user,
                code=totp_code,
                now=at,
                throttle=ctx.throttle,
                remote_addr=remote_addr(request),
            )
    except Exception:
        session.commit()  # keep the audit row of the failed attempt
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


@router.delete("/auth/token", status_code=204)
def revoke_token(call: Call = api_request("self:read")) -> Response:
    """Revoke the bearer token this request carries (its holder logs it out)."""
    service.end_session(session=call.session, session_id=call.principal.session_id, now=call.now)
    return Response(status_code=204)


@router.get("/users/me", response_model=schemas.Me)
def read_me(call: Call = api_request("self:read")) -> schemas.Me:
    """The account behind the token."""
    return schemas.Me(
        id=call.principal.user_id,
        username=call.principal.username,
        full_name=call.principal.full_name,
        role=call.principal.role.value,
        patient_id=call.principal.patient_id,
    )


@router.get("/users", response_model=list[schemas.UserRead])
def list_users(call: Call = api_request("user:read")) -> list[object]:
    """Every account (administrators)."""
    return list(service.list_users(session=call.session))


@router.post("/users", response_model=schemas.UserRead, status_code=201)
def create_user(
    data: schemas.UserCreate,
    call: Call = api_request("user:write"),
) -> object:
    """Create an account (administrators)."""
    return call.do(service.create_user, settings=call.settings, **data.model_dump())
