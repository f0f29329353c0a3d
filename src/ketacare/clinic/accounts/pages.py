"""Pages of accounts: login, logout, account administration."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ketacare.clinic.accounts import approvals, oidc, schemas, service, signin, totp
from ketacare.clinic.accounts.orm import User
from ketacare.clinic.accounts.service import Principal
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.infra.db import existing
from ketacare.infra.errors import CsrfRejected, NotFound, Throttled
from ketacare.infra.permissions import Role
from ketacare.web.deps import (
    LOGIN_CSRF_COOKIE,
    MFA_COOKIE,
    SESSION_COOKIE,
    Ctx,
    DbSession,
    Now,
    remote_addr,
)
from ketacare.web.page_call import PageCall, Refusal, mapped_status, page_call
from ketacare.web.render import optional_int, page, set_cookie

router = APIRouter(include_in_schema=False)


def _home_for(principal_role: str, patient_id: int | None) -> str:
    if principal_role == Role.PATIENT.value and patient_id is not None:
        return f"/patients/{patient_id}"
    if principal_role == Role.ADMIN.value:
        return "/admin/users"
    if principal_role == Role.RESEARCHER.value:
        return "/simulate"
    return "/patients"


def _safe_next(target: str | None) -> str | None:
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ch.isprintable() for ch in target)
    ):
        return target
    return None


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, ctx: Ctx, next: str | None = None) -> Response:
    return _login_page(request, ctx, {"next": _safe_next(next)})


def _login_page(
    request: Request, ctx: Ctx, values: Mapping[str, object], status_code: int = 200
) -> Response:
    """The login form with a fresh security token (in the form and in its cookie)."""
    token = secrets.token_urlsafe(24)
    values = {"login_csrf": token, **values}
    response = page(request, ctx, "login.html", values, status_code=status_code)
    set_cookie(
        response,
        request=request,
        ctx=ctx,
        name=LOGIN_CSRF_COOKIE,
        value=token,
        samesite="strict",
        max_age=3600,
    )
    return response


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        raise CsrfRejected("the login form's security token is missing or stale: reload the page")
    try:
        user = signin.authenticate(
            request=request, ctx=ctx, session=session, at=at, username=username, password=password
        )
    except KetacareError as exc:
        session.commit()  # keep the audit row of the failed attempt
        values = {"login_csrf": cookie, "username": username, "next": next}
        return _login_refused(request, ctx, "login.html", values, exc)
    if user.totp_secret is not None:  # the password was right: now the second factor
        pending = signin.start_session(
            request=request, ctx=ctx, session=session, at=at, user=user, kind="mfa"
        )
        target = "/login/totp" + (f"?next={quote(_safe_next(next) or '')}" if next else "")
        response = RedirectResponse(target, status_code=303)
        set_cookie(
            response,
            request=request,
            ctx=ctx,
            name=MFA_COOKIE,
            value=pending,
            samesite="strict",
            max_age=service.MFA_STEP_MINUTES * 60,
        )
        return response
    # a role that must use a second factor and has none is led to enrol it (deps.py)
    needs_enrolment = totp.required(ctx.settings, user.role)
    return _logged_in(request, ctx, session, at, user, "/account/totp" if needs_enrolment else next)


def _login_refused(
    request: Request, ctx: Ctx, template: str, values: Mapping[str, object], exc: KetacareError
) -> Response:
    """A login step refused: the form again with why (401), or 429 and when to try again."""
    throttled = isinstance(exc, Throttled)
    response = page(
        request, ctx, template, {**values, "error": str(exc)}, status_code=429 if throttled else 401
    )
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _logged_in(
    request: Request, ctx: Ctx, session: Session, at: datetime, user: User, next: str | None
) -> Response:
    token = signin.start_session(
        request=request, ctx=ctx, session=session, at=at, user=user, kind="cookie"
    )
    target = _safe_next(next) or _home_for(user.role, user.patient_id)
    response = RedirectResponse(target, status_code=303)
    set_cookie(
        response,
        request=request,
        ctx=ctx,
        name=SESSION_COOKIE,
        value=token,
        samesite="lax",
        max_age=int(ctx.settings.session_hours * 3600),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    response.delete_cookie(MFA_COOKIE)
    return response


def _pending(request: Request, session: Session, at: datetime) -> Principal | None:
    token = request.cookies.get(MFA_COOKIE)
    if not token:
        return None
    return service.resolve(session=session, token=token, kind="mfa", now=at)


@router.get("/login/totp", response_class=HTMLResponse)
def second_factor_form(
    request: Request, ctx: Ctx, session: DbSession, at: Now, next: str | None = None
) -> Response:
    pending = _pending(request, session, at)
    if pending is None:
        return RedirectResponse("/login", status_code=303)
    return page(
        request,
        ctx,
        "accounts/login_totp.html",
        {"pending_csrf": pending.csrf_token, "next": _safe_next(next)},
    )


@router.post("/login/totp")
def second_factor_login(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    code: Annotated[str, Form(max_length=40)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    pending = _pending(request, session, at)
    if pending is None:
        return RedirectResponse("/login", status_code=303)
    if not secrets.compare_digest(pending.csrf_token, csrf_token):
        raise CsrfRejected("the form's security token is missing or stale: log in again")
    user = session.get(User, pending.user_id)
    assert user is not None
    try:
        signin.second_factor(request=request, ctx=ctx, session=session, at=at, user=user, code=code)
    except KetacareError as exc:
        session.commit()  # keep the audit row of the failed attempt
        values = {"pending_csrf": pending.csrf_token, "next": next}
        return _login_refused(request, ctx, "accounts/login_totp.html", values, exc)
    service.end_session(session=session, session_id=pending.session_id, now=at)
    return _logged_in(request, ctx, session, at, user, next)


@router.post("/logout")
def logout(call: PageCall = page_call("self:read")) -> Response:
    service.end_session(session=call.session, session_id=call.principal.session_id, now=call.now)
    response = call.redirect("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", include_in_schema=False)
def home(call: PageCall = page_call("self:read")) -> Response:
    return call.redirect(_home_for(call.principal.role.value, call.principal.patient_id))


@router.get("/account/totp", response_class=HTMLResponse)
def totp_page(call: PageCall = page_call("self:read")) -> Response:
    return call.render("accounts/totp.html", _totp_context(call))


def _totp_context(call: PageCall) -> dict[str, object]:
    session, settings = call.session, call.settings
    user = session.get(User, call.principal.user_id)
    assert user is not None
    if user.totp_secret is not None:
        return {
            "enrolled_at": user.totp_enrolled_at,
            "unused": totp.unused_recovery_codes(session=session, user_id=user.id),
        }
    secret = totp.offer(session=session, user_id=user.id)
    uri = totp.provisioning_uri(secret=secret, username=user.username, issuer=settings.totp_issuer)
    return {
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "qr": totp.qr_data_uri(uri),
        "required": totp.required(settings, user.role),
        # nothing else opens until enrolment: no navigation (and no background requests)
        "enrolment_only": totp.required(settings, user.role),
    }


#: what the second-factor page's form may ask
TOTP_ACTIONS = {"enrol": totp.confirm, "renew": totp.renew_recovery_codes}


@router.post("/account/totp")
def totp_post(
    action: Annotated[str, Form(max_length=20)],
    code: Annotated[str, Form(max_length=40)] = "",
    call: PageCall = page_call("self:read"),
) -> Response:
    try:
        if action not in TOTP_ACTIONS:
            raise InvalidInput(f"unknown action {action!r}: allowed enrol, renew")
        codes = call.do(TOTP_ACTIONS[action], user_id=call.principal.user_id, code=code)
    except KetacareError as exc:
        context = _totp_context(call)
        call.session.commit()  # a failed check still spends the code's step; nothing else changed
        return call.render("accounts/totp.html", {**context, "error": str(exc)}, status_code=422)
    return call.render("accounts/totp.html", {**_totp_context(call), "recovery_codes": codes})


@router.get("/account", response_class=HTMLResponse)
def account_page(call: PageCall = page_call("self:read")) -> Response:
    return call.render("accounts/account.html", {})


@router.post("/account/password")
def change_password_page(
    current: Annotated[str, Form(max_length=200)],
    new: Annotated[str, Form(max_length=200)],
    call: PageCall = page_call("self:read"),
) -> Response:
    try:
        service.change_password(
            session=call.session,
            user_id=call.principal.user_id,
            current=current,
            new=new,
            now=call.now,
            throttle=call.ctx.throttle,
            settings=call.settings,
            keep_session_id=call.principal.session_id,
            remote_addr=remote_addr(call.request),
        )
    except Throttled as exc:
        call.session.commit()  # the failure's audit row and this session's end
        response = call.render("accounts/account.html", {"error": str(exc)}, status_code=429)
        response.delete_cookie(SESSION_COOKIE)
        return response
    except KetacareError as exc:
        call.session.commit()  # only a wrong password's audit row precedes a refusal
        return call.render("accounts/account.html", {"error": str(exc)}, status_code=422)
    return call.render("accounts/account.html", {"message": "Password changed."})


def _users_page(call: PageCall, refused: Refusal | None = None, **form: str) -> Response:
    users = service.list_users(session=call.session)
    kept = {"form": form} if refused else {}
    return call.render(
        "accounts/users.html", {"users": users, "roles": list(Role), **kept}, refused=refused
    )


#: the account menu's actions (the menu starts on none: nothing is done by default)
ACCOUNT_ACTIONS = {
    "activate": "activate",
    "deactivate": "deactivate",
    "reset": "reset password",
    "reset_totp": "reset second factor",
}


def _confirm_page(call: PageCall, target: User, change: dict[str, object]) -> Response:
    """The step before a deactivation or a role change: who, what changes, and a second
    button that posts the same form confirmed (no script needed); nothing is changed yet."""
    return call.render("accounts/confirm.html", {"target": target, **change})


def _account(call: PageCall, user_id: int) -> User:
    return existing(call.session, User, user_id, "user")


@router.post("/admin/users/{user_id}")
def manage_user(user_id: int, call: PageCall = page_call("user:write")) -> Response:
    action = call.text("action").strip()
    confirmed = call.text("confirmed") == "yes"
    shown: dict[str, Response] = {}

    def act() -> None:
        session, actor, now = call.session, call.actor, call.now
        if action not in ACCOUNT_ACTIONS:
            allowed = ", ".join(ACCOUNT_ACTIONS.values())
            raise InvalidInput(
                "choose an action in the account's menu: " + allowed
                if not action
                else f"unknown action {action!r}: allowed {', '.join(ACCOUNT_ACTIONS)}"
            )
        target = _account(call, user_id)
        if action == "deactivate" and not confirmed:
            if target.id == actor.user_id:
                raise InvalidInput("you cannot deactivate your own account")
            if not target.is_active:
                raise InvalidInput(f"the account {target.username} is already inactive")
            shown["page"] = _confirm_page(
                call,
                target,
                {
                    "kind": "deactivate",
                    "title": "Deactivate an account",
                    "action_url": f"/admin/users/{target.id}",
                    "fields": {"action": "deactivate"},
                    "change": "deactivate the account",
                    "consequence": "They are logged out everywhere at once and cannot log in "
                    "until an administrator activates the account again. Nothing they "
                    "recorded is changed.",
                    "button": f"Deactivate {target.username}",
                },
            )
        elif action == "reset_totp":
            reason = call.text("reason")
            totp.reset(session=session, actor=actor, user_id=user_id, reason=reason, now=now)
        elif action in ("deactivate", "activate"):
            service.set_active(
                session=session, actor=actor, user_id=user_id, active=action == "activate", now=now
            )
        else:
            service.reset_password(
                session=session,
                actor=actor,
                user_id=user_id,
                new=call.text("password"),
                now=now,
                settings=call.settings,
            )

    return call.attempt(
        act,
        done=lambda _: shown.get("page") or call.redirect("/admin/users"),
        again=lambda refused: _users_page(call, refused),
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(call: PageCall = page_call("user:read")) -> Response:
    return _users_page(call)


@router.post("/admin/users")
def create_user_page(call: PageCall = page_call("user:write")) -> Response:
    def act() -> object:
        if not call.text("role").strip():
            roles = ", ".join(r.value for r in Role)
            raise InvalidInput(f"role is required: choose the new account's role ({roles})")
        data = call.parse(
            schemas.UserCreate, patient_id=optional_int(call.text("patient_id"), "patient id")
        )
        return call.do(service.create_user, settings=call.settings, **data.model_dump())

    return call.attempt(
        act,
        done="/admin/users",
        again=lambda refused: _users_page(
            call, refused, **call.texts(("username", "full_name", "role", "patient_id"))
        ),
    )


@router.get("/account/sessions", response_class=HTMLResponse)
def sessions_page(call: PageCall = page_call("self:read")) -> Response:
    """One's live page sessions and API tokens, each with a button that ends it."""
    settings = call.settings
    rows = service.list_sessions(
        session=call.session, user_id=call.principal.user_id, now=call.now, settings=settings
    )
    return call.render(
        "accounts/sessions.html",
        {
            "sessions": rows,
            "current": call.principal.session_id,
            "idle_minutes": f"{settings.idle_timeout_minutes:g}"
            if settings.idle_timeout_minutes
            else "",
        },
    )


@router.post("/account/sessions/{session_id}/revoke")
def revoke_session_page(session_id: int, call: PageCall = page_call("self:read")) -> Response:
    """End one of one's sessions or tokens (this one: back to the login page)."""
    call.do(service.revoke_session, session_id=session_id)
    if session_id == call.principal.session_id:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response
    return RedirectResponse("/account/sessions", status_code=303)


@router.post("/account/sessions/revoke-all")
def log_out_everywhere_page(call: PageCall = page_call("self:read")) -> Response:
    """Log out everywhere: every page session and API token of the account ends."""
    call.do(service.log_out_everywhere)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/admin/users/{user_id}/role")
def change_role_page(user_id: int, call: PageCall = page_call("user:write")) -> Response:
    """Change an account's role, after a confirmation step naming the account and the
    change; a clinical role then waits for a second person's approval."""
    role = call.text("role").strip()
    shown: dict[str, Response] = {}

    def act() -> None:
        target = _account(call, user_id)
        if call.text("confirmed") == "yes":
            call.do(approvals.change_role, user_id=user_id, role=role)
            return
        staff = [r.value for r in Role if r is not Role.PATIENT]
        if role not in staff:
            raise InvalidInput(
                f"choose the new role of {target.username}: one of {', '.join(staff)}"
            )
        if target.id == call.principal.user_id:
            raise InvalidInput("nobody changes their own role: another administrator does")
        if role == target.role and target.role_approved:
            raise InvalidInput(f"{target.username} already holds the role {role}")
        clinical = Role(role) in approvals.CLINICAL_ROLES
        shown["page"] = _confirm_page(
            call,
            target,
            {
                "kind": "role",
                "title": "Change an account's role",
                "action_url": f"/admin/users/{target.id}/role",
                "fields": {"role": role},
                "change": f"change the role from {target.role} to {role}",
                "consequence": (
                    f"A clinical role waits for a second administrator or a physician to "
                    f"approve it; {target.username} keeps the role {target.role} meanwhile."
                    if clinical
                    else f"The account holds the role {role} at once, with what that role "
                    "may see and do."
                ),
                "button": f"Change {target.username} to {role}",
            },
        )

    return call.attempt(
        act,
        done=lambda _: shown.get("page") or call.redirect("/admin/users"),
        again=lambda refused: _users_page(call, refused),
        status=mapped_status,
    )


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(call: PageCall = page_call("role:approve")) -> Response:
    """Clinical roles waiting for a second person (another administrator or a physician)."""
    pending = approvals.list_pending(session=call.session)
    return call.render("accounts/approvals.html", {"pending": pending})


@router.post("/approvals/{request_id}")
def decide_role_page(request_id: int, call: PageCall = page_call("role:approve")) -> Response:
    """Approve or reject a pending clinical role."""
    action = call.text("action").strip()
    if action not in ("approve", "reject"):
        raise InvalidInput(f"unknown action {action!r}: allowed approve, reject")
    call.do(
        approvals.decide,
        request_id=request_id,
        approve=action == "approve",
        reason=call.text("reason").strip(),
    )
    return RedirectResponse("/approvals", status_code=303)


@router.get("/login/oidc")
def oidc_start(request: Request, ctx: Ctx, at: Now, next: str | None = None) -> Response:
    """Single sign-on: off to the OpenID provider (authorization code with PKCE)."""
    if not oidc.enabled(ctx.settings):
        raise NotFound("single sign-on is not configured (KETACARE_OIDC_ISSUER)")
    redirect_uri = ctx.settings.oidc_redirect_url or str(request.url_for("oidc_callback"))
    url, state = oidc.begin(
        settings=ctx.settings, redirect_uri=redirect_uri, next_path=_safe_next(next), now=at
    )
    response = RedirectResponse(url, status_code=303)
    set_cookie(
        response,
        request=request,
        ctx=ctx,
        name=oidc.STATE_COOKIE,
        value=state,
        samesite="lax",  # the provider's redirect back is a top-level navigation
        max_age=oidc.STATE_MINUTES * 60,
    )
    return response


@router.get("/login/oidc/callback", name="oidc_callback")
def oidc_callback(request: Request, ctx: Ctx, session: DbSession, at: Now) -> Response:
    """Single sign-on: the provider's answer; the ID token checked, the account opened."""
    if not oidc.enabled(ctx.settings):
        raise NotFound("single sign-on is not configured (KETACARE_OIDC_ISSUER)")
    try:
        claims, next_path = oidc.finish(
            settings=ctx.settings,
            cookie=request.cookies.get(oidc.STATE_COOKIE),
            params=dict(request.query_params),
            now=at,
        )
        user = oidc.account_for(
            session=session,
            settings=ctx.settings,
            claims=claims,
            now=at,
            remote_addr=remote_addr(request),
        )
    except KetacareError as exc:
        session.commit()  # keep the audit row (and a provisioned account waiting for approval)
        # the password form stays usable (patients)
        refused = _login_page(request, ctx, {"error": str(exc)}, status_code=401)
        refused.delete_cookie(oidc.STATE_COOKIE)
        return refused
    response = _logged_in(request, ctx, session, at, user, next_path)
    response.delete_cookie(oidc.STATE_COOKIE)
    return response
