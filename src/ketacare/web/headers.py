"""Security headers on every answer, as a plain ASGI middleware.

Why not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` wraps every
response in a stream and a task of its own, which cost about a millisecond per request
on the chairs' vitals endpoint; this one only edits the headers as they pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNCACHED_PREFIXES = ("/static", "/assets")


class SecurityHeaders:
    """Adds nosniff, frame denial, referrer policy, the CSP and (for data) no-store.

    A header the route set itself is kept (``setdefault`` semantics).
    """

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self.app = app
        base = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"content-security-policy", csp.encode()),
        ]
        self.static_headers = base
        self.data_headers = [*base, (b"cache-control", b"no-store")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        extra = self.static_headers if path.startswith(UNCACHED_PREFIXES) else self.data_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
