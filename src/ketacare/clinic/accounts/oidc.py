"""OpenID Connect single sign-on: the authorization code flow with PKCE.

Authlib builds the authorization request (state, nonce, an S256 code challenge, RFC 7636)
and exchanges the code at the token endpoint (client_secret_basic); the ID token is
checked with joserfc against the provider's published keys: signature, issuer,
audience, expiry and the nonce of this login. The provider's userinfo claims are added
when its discovery document names a userinfo endpoint (same ``sub`` required).

The login's state, nonce and code verifier travel in a short-lived HttpOnly cookie
signed with the server's secret key, so a callback is accepted only in the browser that
started it, once its state matches.

Accounts: the claim ``KETACARE_OIDC_USERNAME_CLAIM`` names the ketacare account. With
``KETACARE_OIDC_PROVISION`` a first login creates the account when a group of
``KETACARE_OIDC_GROUPS_CLAIM`` maps to a role (``KETACARE_OIDC_ROLE_MAP``); a clinical
role then waits for approval like any other (see :mod:`.approvals`). An existing
account keeps the role assigned in ketacare.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts import service
from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit import service as audit
from ketacare.infra.errors import NotAuthenticated
from ketacare.infra.permissions import Role
from ketacare.infra.settings import Settings

STATE_COOKIE = "kc_oidc"
#: how long a started single sign-on waits for the provider's answer
STATE_MINUTES = 10
HTTP_TIMEOUT = 10
#: the signature algorithms accepted on an ID token (no "none", no shared-secret HS*)
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
#: the actor that provisions accounts: not a person, and its clinical roles still ask
SSO_ACTOR = audit.Actor(None, "single-sign-on", "system")


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the provider's discovery document says (OpenID Connect Discovery 1.0)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None


def enabled(settings: Settings) -> bool:
    """Whether single sign-on is configured."""
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def discover(settings: Settings) -> ProviderMetadata:
    """Fetch the provider's discovery document; its issuer must be the configured one."""
    issuer = settings.oidc_issuer.rstrip("/")
    try:
        doc = requests.get(
            f"{issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT
        ).json()
    except (requests.RequestException, ValueError) as exc:
        raise NotAuthenticated(f"the single sign-on provider cannot be reached: {exc}") from exc
    if str(doc.get("issuer", "")).rstrip("/") != issuer:
        raise NotAuthenticated(
            f"the provider's discovery document names issuer {doc.get('issuer')!r}, "
            f"not the configured {settings.oidc_issuer!r}"
        )
    return ProviderMetadata(
        issuer=str(doc["issuer"]),
        authorization_endpoint=str(doc["authorization_endpoint"]),
        token_endpoint=str(doc["token_endpoint"]),
        jwks_uri=str(doc["jwks_uri"]),
        userinfo_endpoint=doc.get("userinfo_endpoint"),
    )


def _client(settings: Settings, redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        scope=settings.oidc_scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        default_timeout=HTTP_TIMEOUT,
    )


def begin(
    *, settings: Settings, redirect_uri: str, next_path: str | None, now: datetime
) -> tuple[str, str]:
    """The provider's authorization URL, and the signed cookie that remembers this login."""
    provider = discover(settings)
    verifier = generate_token(64)  # RFC 7636: 43-128 characters
    nonce = generate_token(32)
    url, state = _client(settings, redirect_uri).create_authorization_url(
        provider.authorization_endpoint, code_verifier=verifier, nonce=nonce
    )
    cookie = _sign(
        settings,
        {
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "next": next_path or "",
            "redirect": redirect_uri,
            "at": int(now.timestamp()),
        },
    )
    return url, cookie


def finish(
    *, settings: Settings, cookie: str | None, params: Mapping[str, str], now: datetime
) -> tuple[dict[str, Any], str]:
    """Check the provider's answer and the ID token; returns its claims and the next page."""
    started = _unsign(settings, cookie or "", now)
    if "error" in params:
        raise NotAuthenticated(
            f"the provider refused the sign-in: {params['error']} "
            f"{params.get('error_description', '')}".strip()
        )
    if not secrets.compare_digest(params.get("state", ""), started["state"]):
        raise NotAuthenticated("the sign-in's state does not match: start again")
    code = params.get("code", "")
    if not code:
        raise NotAuthenticated("the provider sent no authorization code: start again")
    provider = discover(settings)
    client = _client(settings, started["redirect"])
    try:
        token = client.fetch_token(
            provider.token_endpoint, code=code, code_verifier=started["verifier"]
        )
        keys = requests.get(provider.jwks_uri, timeout=HTTP_TIMEOUT).json()
    except Exception as exc:  # the token endpoint's OAuth errors and network errors alike
        raise NotAuthenticated(f"the provider did not issue tokens: {exc}") from exc
    claims = _check_id_token(
        str(token.get("id_token", "")), keys, settings, provider, started["nonce"], now
    )
    if provider.userinfo_endpoint:
        info = client.get(provider.userinfo_endpoint).json()
        if info.get("sub") != claims["sub"]:
            raise NotAuthenticated("the provider's userinfo names another subject")
        claims = {**info, **claims}
    return claims, started["next"]


def _check_id_token(
    id_token: str,
    keys: Any,  # the provider's JWKS document, as fetched (checked by joserfc)
    settings: Settings,
    provider: ProviderMetadata,
    nonce: str,
    now: datetime,
) -> dict[str, Any]:
    if not id_token:
        raise NotAuthenticated("the provider sent no ID token (is the openid scope asked?)")
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=ID_TOKEN_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=60,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": settings.oidc_client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise NotAuthenticated(f"the ID token was refused: {exc}") from exc
    return dict(token.claims)


def _sign(settings: Settings, data: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode()
    mac = hmac.new(_key(settings), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def _unsign(settings: Settings, cookie: str, now: datetime) -> dict[str, Any]:
    body, _, mac = cookie.rpartition(".")
    expected = hmac.new(_key(settings), body.encode(), hashlib.sha256).hexdigest()
    if not body or not secrets.compare_digest(mac, expected):
        raise NotAuthenticated("this sign-in was not started here, or has expired: start again")
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body))
    if int(now.timestamp()) - int(data["at"]) > STATE_MINUTES * 60:
        raise NotAuthenticated("this sign-in has expired: start again")
    return data


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"oidc-state:" + settings.effective_secret_key().encode()).digest()


def mapped_role(settings: Settings, claims: Mapping[str, Any]) -> Role | None:
    """The role the first mapped group of the person's groups claim gives, or None."""
    if not settings.oidc_groups_claim:
        return None
    groups = claims.get(settings.oidc_groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    for group in groups:
        if group in settings.oidc_role_map:
            return Role(settings.oidc_role_map[group])
    return None


def account_for(
    *,
    session: Session,
    settings: Settings,
    claims: Mapping[str, Any],
    now: datetime,
    remote_addr: str | None = None,
) -> User:
    """The account a verified sign-in opens (provisioned when allowed); audited."""
    username = str(claims.get(settings.oidc_username_claim) or "").strip().lower()
    if not username:
        raise NotAuthenticated(
            f"the provider sent no {settings.oidc_username_claim!r} claim to name the account"
        )
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        role = mapped_role(settings, claims)
        if not settings.oidc_provision or role is None:
            service._audit_login(session, username, None, "sso_no_account", now, remote_addr)
            raise NotAuthenticated(
                f"no ketacare account is named {username!r}: ask an administrator to "
                "create it" + ("" if not settings.oidc_provision else " (no group maps to a role)")
            )
        user = service.create_user(
            session=session,
            username=username,
            full_name=str(claims.get("name") or username),
            role=role,
            password=secrets.token_urlsafe(32),  # never told to anyone: sign-in is by SSO
            now=now,
            settings=settings,
            actor=SSO_ACTOR,
            require_approval=True,
        )
    if not user.is_active:
        service._audit_login(session, username, user, "sso_inactive", now, remote_addr)
        raise NotAuthenticated(f"the account {username!r} is deactivated")
    if not user.role_approved:
        service._audit_login(session, username, user, "login_unapproved", now, remote_addr)
        raise NotAuthenticated(
            "this account's role waits for approval by a second administrator or a "
            "physician: ask them to approve it"
        )
    service._audit_login(session, username, user, "login", now, remote_addr, {"method": "oidc"})
    return user
