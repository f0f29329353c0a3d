"""What an HTML page handler gets: one dependency, like the JSON API's ``api_call``.

A page handler declares ``call: PageCall = page_call("plan:write")`` and nothing else of
the shell: the dependency resolves the login session, checks the permission (and the
second factor's enrolment), checks the CSRF token on every non-GET, reads the posted form
and hands the handler the unit of work, who, when, the settings and the audit actor.
:meth:`PageCall.attempt` is the one "act, then show the form again with the reason", and
:meth:`PageCall.parse` reads a form through the API's schema of the same action::

    @router.post("/plans/{plan_id}/status")
    def plan_status(plan_id: int, call: PageCall = page_call("plan:write")) -> Response:
        return call.attempt(
            lambda: call.do(
                service.transition, plan_id=plan_id, **call.parse(EndRequest).model_dump()
            ),
            done=f"/plans/{plan_id}",
            again=lambda refused: _plan_page(call, plan_id, refused),
        )
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from ketacare.clinic.accounts.service import Principal
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.sessions.orders import LABELS as ORDER_LABELS
from ketacare.core.sessions.orders import SCALE as ORDER_SCALE
from ketacare.core.sessions.orders import SCALE_BASIS as ORDER_SCALE_BASIS
from ketacare.infra.errors import Conflict, status_for
from ketacare.web.deps import (
    SAFE_METHODS,
    Call,
    Ctx,
    DbSession,
    Now,
    check_known,
    principal_dependency,
)
from ketacare.web.render import page

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)


def validation_message(exc: ValidationError) -> str:
    """The first problem of a schema's refusal, as ``field: why``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "input"
    return f"{where}: {first.get('msg', 'invalid')}"


#: A form field's API name as its form label says it: a page's refusal names the field the
#: user sees (the API keeps its field names, which its clients send).
PAGE_FIELD_WORDS: dict[str, str] = {
    "birth_date": "date of birth",
    "weight_kg": "weight (kg)",
    "height_cm": "height (cm)",
    # the monitoring order's fields, by the labels of its form
    **ORDER_LABELS,
    ORDER_SCALE: "NEWS2 SpO2 scale",
    ORDER_SCALE_BASIS: "basis for SpO2 scale 2",
    # the therapist's note
    "what_came_up": "what came up",
    "integration_steps": "integration steps",
    "risk_check": "risk check",
}
_FIELD_TOKEN = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, PAGE_FIELD_WORDS), key=len, reverse=True)) + r")\b"
)


def page_words(error: Exception) -> str:
    """A refusal as a page shows it: each field by its form label, not its API name.

    >>> from ketacare.core.errors import InvalidInput, OutOfRange
    >>> page_words(OutOfRange("weight_kg", 400.0, "20 to 350 kg"))
    'weight (kg) 400.0 is out of range: allowed 20 to 350 kg'
    >>> page_words(InvalidInput("monitoring order: sbp_low 185 must be below sbp_high 180"))
    'monitoring order: systolic low (mmHg) 185 must be below systolic high (mmHg) 180'
    >>> page_words(InvalidInput("missing: spo2_low (SpO2 low (%))"))
    'missing: SpO2 low (%)'
    >>> page_words(OutOfRange("dose", 9, "1 to 5"))
    'dose 9 is out of range: allowed 1 to 5'
    """
    text = str(error)
    for name, words in PAGE_FIELD_WORDS.items():  # "name (its label)" says it once
        text = text.replace(f"{name} ({words})", name)
    return _FIELD_TOKEN.sub(lambda m: PAGE_FIELD_WORDS[m.group(0)], text)


def unprocessable(_error: Exception) -> int:
    """A refused form answers 422 whatever the reason (the form is shown again)."""
    return 422


def conflict_or_unprocessable(error: Exception) -> int:
    """409 when the stored state changed under the form, else 422."""
    return 409 if isinstance(error, Conflict) else 422


def mapped_status(error: Exception) -> int:
    """The status the error tree maps the refusal to (as the API answers it)."""
    return status_for(error)[0] if isinstance(error, KetacareError) else 422


@dataclass(frozen=True)
class Refusal:
    """Why an action was refused, to show with the form again: the message and status."""

    error: Exception
    message: str
    status: int


@dataclass
class PageCall(Call):
    """A page request's unit of work, who asks, when, and the posted form (see module)."""

    form: FormData = field(default_factory=FormData)

    @property
    def base_url(self) -> str:
        return str(self.request.base_url).rstrip("/")

    def text(self, name: str, default: str = "") -> str:
        """One posted field as text ('' or ``default`` when absent or blank)."""
        return str(self.form.get(name) or default)

    def texts(self, names: Iterable[str]) -> dict[str, str]:
        """The named posted fields, stripped (to show them again in the form)."""
        return {name: self.text(name).strip() for name in names}

    def posted(self) -> dict[str, str]:
        """Every posted field but the CSRF token (to show them again in the form)."""
        return {k: str(v) for k, v in self.form.items() if k != "csrf_token"}

    def parse(self, schema: type[ModelT], **values: Any) -> ModelT:
        """The form through the API's schema of the same action (the same refusals, as
        :class:`InvalidInput` naming the first field refused and why).

        The schema's fields are read from the form as sent, a blank field left out (the
        schema's default applies); ``values`` given here (already typed) take precedence.
        """
        raw = {
            name: self.text(name)
            for name in schema.model_fields
            if name not in values and self.text(name).strip()
        }
        try:
            return schema.model_validate({**raw, **values})
        except ValidationError as exc:
            raise InvalidInput(validation_message(exc)) from None

    def render(
        self,
        template: str,
        values: dict[str, Any] | None = None,
        status_code: int = 200,
        *,
        refused: Refusal | None = None,
    ) -> HTMLResponse:
        """A page of ``template``; when ``refused``, with its reason (``error``) and status."""
        if refused is not None:
            values, status_code = {**(values or {}), "error": refused.message}, refused.status
        return page(self.request, self.ctx, template, values, status_code=status_code)

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def attempt(
        self,
        act: Callable[[], T],
        *,
        done: str | Callable[[T], Response],
        again: Callable[[Refusal], Response],
        status: Callable[[Exception], int] = unprocessable,
    ) -> Response:
        """Do ``act``; when refused, nothing of it is kept and ``again`` shows the form
        with the reason; else go to ``done`` (a URL, or a function of the result)."""
        then = (lambda _: self.redirect(done)) if isinstance(done, str) else done
        return attempt(self.session, act, done=then, again=again, status=status)


def attempt(
    session: Session,
    act: Callable[[], T],
    *,
    done: Callable[[T], Response],
    again: Callable[[Refusal], Response],
    status: Callable[[Exception], int] = unprocessable,
) -> Response:
    """:meth:`PageCall.attempt` for a page without a login (a self-report link)."""
    try:
        result = act()
    except (KetacareError, ValidationError) as exc:
        session.rollback()  # nothing of the refused request is kept
        message = validation_message(exc) if isinstance(exc, ValidationError) else page_words(exc)
        return again(Refusal(exc, message, status(exc)))
    return done(result)


def page_call(permission: str) -> Any:
    """Dependency of a page handler: a login session whose role holds ``permission``
    (CSRF checked on every non-GET), handed over as a :class:`PageCall`."""
    check_known(permission)
    principal = principal_dependency(permission, "page")

    async def declare(
        request: Request,
        ctx: Ctx,
        session: DbSession,
        at: Now,
        who: Principal = Depends(principal),
    ) -> PageCall:
        form = await request.form() if request.method not in SAFE_METHODS else FormData()
        return PageCall(request, ctx, session, who, at, permission, form)

    declare.permission = permission  # type: ignore[attr-defined]
    declare.kind = "page"  # type: ignore[attr-defined]
    return Depends(declare)
