"""Rendering helpers: templates with the common context, filters, form parsing."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import BytecodeCache, ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from jinja2.bccache import Bucket
from markupsafe import Markup

from ketacare.core.errors import InvalidInput
from ketacare.infra.permissions import allowed
from ketacare.infra.settings import Settings
from ketacare.web.labels import label

WEB_DIR = Path(__file__).resolve().parent
CLINIC_DIR = WEB_DIR.parent / "clinic"


class _CompiledOnce(BytecodeCache):
    """Compiled templates kept in memory for the life of the process.

    Each app builds its own template environment (its settings go into the filters); an
    app built again in the same process (the test suite builds one per test, a server
    restarted in-process) loads each template's compiled code from here instead of
    parsing and compiling it again. Jinja checks each entry against a checksum of the
    template's source, so a changed template is compiled again.
    """

    def __init__(self) -> None:
        self._kept: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._kept.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._kept[bucket.key] = code


_COMPILED = _CompiledOnce()


def make_templates(settings: Settings) -> Jinja2Templates:
    """Templates from the web shell and from every domain's ``templates/`` folder."""
    folders = [WEB_DIR / "templates"] + sorted(
        p for p in CLINIC_DIR.glob("*/templates") if p.is_dir()
    )
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(f)) for f in folders]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        # templates ship with the code, which is not reloaded either: no file check on
        # every include (a chart includes some templates once per row)
        auto_reload=False,
        bytecode_cache=_COMPILED,
    )
    zone = settings.zone
    env.filters["localtime"] = lambda v, fmt="%Y-%m-%d %H:%M": _localtime(v, zone, fmt)
    env.filters["isodate"] = lambda v: v.isoformat() if isinstance(v, date) else ""
    env.filters["json_script"] = _json_script
    env.filters["label"] = label
    env.globals["can"] = lambda principal, permission: bool(
        principal and allowed(permission, principal.role)
    )
    env.globals["clinic_timezone"] = settings.timezone
    env.globals["live_refresh_ms"] = round(settings.live_refresh_seconds * 1000)
    env.globals["sso_enabled"] = bool(settings.oidc_issuer and settings.oidc_client_id)
    env.globals["staff_passwords"] = settings.local_passwords_for_staff
    return Jinja2Templates(env=env)


def _json_script(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: no ``</script>`` can break out."""
    text = json.dumps(_finite(value), allow_nan=False, default=str)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text)


def _finite(value: Any) -> Any:
    """Arrays become lists; non-finite floats become null (JSON has no NaN or Infinity)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _localtime(value: datetime | None, zone: ZoneInfo, fmt: str) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime(fmt)


def secure_cookies(request: Request, ctx: Any) -> bool:
    """Secure cookies behind https (or when the operator forces it)."""
    forced = ctx.settings.cookie_secure
    if forced is not None:
        return bool(forced)
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto == "https"


def set_cookie(
    response: Response,
    *,
    request: Request,
    ctx: Any,
    name: str,
    value: str,
    samesite: Literal["lax", "strict"],
    max_age: int,
) -> None:
    """Set an http-only cookie, secure as :func:`secure_cookies` says."""
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite=samesite,
        secure=secure_cookies(request, ctx),
        max_age=max_age,
    )


@dataclass(frozen=True, slots=True)
class CrisisContacts:
    """What a patient whose answers raise a safety flag is told besides the emergency
    number: the clinic's crisis message and its telephone (site policy; empty: not set).

    Every page has it as ``crisis`` (``web/templates/_crisis.html`` prints it), so no
    patient-facing form can forget the clinic's number.
    """

    message: str
    phone: str
    #: the clinic's settings and the page's instant, for :attr:`closed_until` (read only
    #: by a page that tells a patient their answers alerted the team)
    settings: Settings | None = None
    now: datetime | None = None

    @classmethod
    def of(cls, settings: Settings, now: datetime | None = None) -> CrisisContacts:
        return cls(settings.crisis_message.strip(), settings.clinic_phone.strip(), settings, now)

    @property
    def closed_until(self) -> str:
        """When the clinic is closed now, when it opens again ("Tue 08 Dec, 08:00"); empty
        when it is open, or when its hours are not set."""
        if self.settings is None or self.now is None:
            return ""
        from ketacare.infra import policy

        hours = policy.clinic_hours(self.settings)
        local = self.now.astimezone(self.settings.zone)
        if hours is None or hours.open_at(local) is not False:
            return ""
        opens = hours.next_opening(local)
        return f"{opens:%a %d %b, %H:%M}" if opens else "a later day"

    @property
    def unset(self) -> str | None:
        """What staff must know when the clinic set neither (None: at least one is set)."""
        if self.message or self.phone:
            return None
        return (
            "The clinic has set no crisis message and no telephone number for patients "
            "(site policy, set by the clinic's administrator): a patient who reports "
            "thoughts of self-harm on a questionnaire is told only to call the local "
            "emergency number."
        )


def page(
    request: Request,
    ctx: Any,
    template: str,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with the principal, CSRF token and clinic time zone in its context."""
    principal = getattr(request.state, "principal", None)
    context = {
        "request": request,
        "principal": principal,
        "csrf_token": principal.csrf_token if principal else "",
        "demo": getattr(request.app.state, "demo", False),
        "demo_example_policy": getattr(request.app.state, "demo_example_policy", False),
        "crisis": CrisisContacts.of(ctx.settings, ctx.clock()),
        **(values or {}),
    }
    response: HTMLResponse = ctx.templates.TemplateResponse(
        request, template, context, status_code=status_code
    )
    return response


def optional_int(text: str, what: str) -> int | None:
    """Parse an optional whole number from a form field."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a whole number") from None


def optional_float(text: str, what: str) -> float | None:
    """Parse an optional decimal number from a form field."""
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a number") from None


def local_datetime(text: str, what: str, zone: ZoneInfo) -> datetime:
    """A form's ``datetime-local`` value, read as a time in the clinic's zone."""
    text = text.strip()
    if not text:
        raise InvalidInput(f"{what} is missing: give a day and a time (YYYY-MM-DD HH:MM)")
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{what} {text!r} is not a day and a time: give YYYY-MM-DD HH:MM"
        ) from None
    return local if local.tzinfo else local.replace(tzinfo=zone)


def optional_date(text: str, what: str) -> date | None:
    """Parse an optional day (YYYY-MM-DD) from a form field or a query parameter."""
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None
