"""The ``Idempotency-Key`` header on API writes: one mechanism for every route.

:class:`IdempotencyKeys` (a plain ASGI middleware) reads the body of an API write that
carries the header, notes the key, the route and the body's SHA-256 for the request,
and keeps the answer once it is sent. :func:`claim_key`, called by the API's
authentication in the request's unit of work (:mod:`ketacare.web.deps`), reserves the
key for that account, or stops the request with :class:`Replayed` when the key already
has an answer, which :func:`replayed` sends back as it was first sent. The rules are in
:mod:`ketacare.clinic.system.idempotency`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from ketacare.clinic.system import idempotency as keys
from ketacare.infra.periodic import every
from ketacare.web.headers import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("ketacare")

HEADER = "idempotency-key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REPLAYED_HEADER = "idempotent-replayed"


@dataclass
class PendingKey:
    """One API write's key, noted by the middleware and claimed by the authentication."""

    key: str
    route: str
    body_sha256: str
    claim_id: int | None = None


class Replayed(Exception):  # noqa: N818 - not an error: the stored first answer
    """The key already has an answer: it is sent instead of running the route again."""

    def __init__(self, answer: keys.StoredAnswer) -> None:
        super().__init__("replayed")
        self.answer = answer


def claim_key(request: Request, session: Session, user_id: int, now: datetime) -> None:
    """Reserve this request's key (if it sent one) for ``user_id`` in ``session``."""
    pending: PendingKey | None = request.scope.get("state", {}).get("idempotency")
    if pending is None or pending.claim_id is not None:
        return
    claim_id, answer = keys.claim(
        session=session,
        user_id=user_id,
        key=pending.key,
        route=pending.route,
        body_sha256=pending.body_sha256,
        now=now,
        keep=timedelta(hours=request.app.state.ctx.settings.idempotency_keep_hours),
    )
    if answer is not None:
        raise Replayed(answer)
    pending.claim_id = claim_id


async def replayed(_request: Request, exc: Exception) -> Response:
    """The stored first answer, marked as a replay."""
    assert isinstance(exc, Replayed)
    answer = exc.answer
    return Response(
        answer.body,
        status_code=answer.status,
        media_type=answer.content_type,
        headers={REPLAYED_HEADER: "true"},
    )


def _valid(key: str) -> bool:
    return 0 < len(key) <= keys.MAX_KEY_LENGTH and all(0x21 <= ord(c) <= 0x7E for c in key)


class IdempotencyKeys:
    """Notes the ``Idempotency-Key`` of an API write and keeps the answer it got."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_of(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _valid(key):
            await _refuse(send, key)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        pending = PendingKey(
            key=key,
            route=f"{scope['method']} {scope['path']}"[:500],
            body_sha256=hashlib.sha256(body).hexdigest(),
        )
        scope.setdefault("state", {})["idempotency"] = pending
        replay_done = False

        async def replay() -> Message:
            nonlocal replay_done
            if not replay_done:
                replay_done = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 0
        content_type = "application/json"
        sent: list[bytes] = []

        async def keeping(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body" and pending.claim_id is not None:
                sent.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, keeping)
        if pending.claim_id is not None and status:
            await run_in_threadpool(
                _keep, scope["app"], pending.claim_id, status, content_type, b"".join(sent)
            )


def _key_of(scope: Scope) -> str | None:
    if (
        scope["type"] != "http"
        or scope["method"] not in WRITE_METHODS
        or not scope["path"].startswith("/api/")
    ):
        return None
    for name, value in scope.get("headers", []):
        if name == HEADER.encode():
            return str(value.decode("latin-1"))
    return None


def _keep(app: Any, claim_id: int, status: int, content_type: str, body: bytes) -> None:
    try:
        with app.state.ctx.sessions() as session, session.begin():
            keys.keep_answer(
                session=session,
                claim_id=claim_id,
                status=status,
                content_type=content_type,
                body=body,
            )
    except SQLAlchemyError as exc:  # the write stands; a replay is told the answer was lost
        log.error("idempotency key %s: answer not kept (%s)", claim_id, type(exc).__name__)


async def _refuse(send: Send, key: str) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Invalid input",
            "status": 422,
            "detail": f"Idempotency-Key must be 1 to {keys.MAX_KEY_LENGTH} visible ASCII "
            f"characters (a UUID, for example); got {len(key)} characters",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def purge_keys_periodically(
    *, sessions: sessionmaker[Session], keep_hours: float, clock: Callable[[], datetime]
) -> None:
    """The server's housekeeping: expired keys removed at start, then every hour; a
    failure is logged in one line and retried at the next turn."""

    def once() -> int:
        with sessions() as session, session.begin():
            return keys.purge(session=session, now=clock(), keep=timedelta(hours=keep_hours))

    await every(
        3600,
        once,
        done=lambda removed: f"idempotency keys: {removed} expired removed" if removed else None,
        failed="idempotency keys NOT purged",
    )
