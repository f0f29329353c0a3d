"""JSON routes of accounts: tokens, the current user, account administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from ketacare.clinic.accounts import approvals, schemas, service, signin, totp
from ketacare.clinic.accounts.orm import RoleRequest, User
from ketacare.infra.errors import NotAuthenticated
from ketacare.web.deps import Call, Ctx, DbSession, Now, api_request

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
        user = signin.authenticate(
            request=request, ctx=ctx, session=session, at=at, username=username, password=password
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
            signin.second_factor(
                request=request, ctx=ctx, session=session, at=at, user=user, code=totp_code
            )
    except Exception:
        session.commit()  # keep the audit row of the failed attempt
        raise
    token = signin.start_session(
        request=request, ctx=ctx, session=session, at=at, user=user, kind="bearer"
    )
    return schemas.Token(access_token=token, expires_in=int(ctx.settings.token_hours * 3600))


@router.delete("/auth/token", status_code=204)
def revoke_token(call: Call = api_request("self:read")) -> Response:
    """Revoke the bearer token this request carries (its holder logs it out)."""
    service.end_session(session=call.session, session_id=call.principal.session_id, now=call.now)
    return Response(status_code=204)


@router.get("/auth/sessions", response_model=list[schemas.SessionRead])
def list_sessions(call: Call = api_request("self:read")) -> list[schemas.SessionRead]:
    """The holder's live page sessions and API tokens (``current``: this token)."""
    rows = service.list_sessions(
        session=call.session, user_id=call.principal.user_id, now=call.now, settings=call.settings
    )
    return [
        schemas.SessionRead.model_validate(row).model_copy(
            update={"current": row.id == call.principal.session_id}
        )
        for row in rows
    ]


@router.delete("/auth/sessions/{session_id}", status_code=204)
def revoke_session(session_id: int, call: Call = api_request("self:read")) -> Response:
    """End one of the holder's page sessions or API tokens."""
    call.do(service.revoke_session, session_id=session_id)
    return Response(status_code=204)


@router.delete("/auth/sessions", status_code=204)
def log_out_everywhere(call: Call = api_request("self:read")) -> Response:
    """Log out everywhere: every page session and API token of the holder ends (this one too)."""
    call.do(service.log_out_everywhere)
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


@router.post("/users/{user_id}/role", response_model=schemas.RoleChangeResult)
def change_role(
    user_id: int, data: schemas.RoleChange, call: Call = api_request("user:write")
) -> schemas.RoleChangeResult:
    """Change an account's role (administrators); a clinical role waits for approval."""
    pending = call.do(approvals.change_role, user_id=user_id, role=data.role)
    return schemas.RoleChangeResult(
        user=schemas.UserRead.model_validate(call.session.get(User, user_id)),
        pending=None if pending is None else schemas.RoleRequestRead.model_validate(pending),
    )


@router.get("/role-requests", response_model=list[schemas.RoleRequestRead])
def pending_role_requests(call: Call = api_request("role:approve")) -> list[object]:
    """Clinical roles waiting for a second person's approval, oldest first."""
    return [
        call.session.get(RoleRequest, p.id) for p in approvals.list_pending(session=call.session)
    ]


@router.post("/role-requests/{request_id}/approve", response_model=schemas.RoleRequestRead)
def approve_role(request_id: int, call: Call = api_request("role:approve")) -> object:
    """Approve a clinical role (a second administrator, or a physician)."""
    return call.do(approvals.decide, request_id=request_id, approve=True)


@router.post("/role-requests/{request_id}/reject", response_model=schemas.RoleRequestRead)
def reject_role(
    request_id: int, data: schemas.RoleDecision, call: Call = api_request("role:approve")
) -> object:
    """Reject a clinical role, with a reason; the account keeps the role it had."""
    return call.do(approvals.decide, request_id=request_id, approve=False, reason=data.reason)
