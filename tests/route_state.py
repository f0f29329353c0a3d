"""Every test builds its own app (its own database, settings and clock), and FastAPI
builds each included route's request handling (its dependency graph and the pydantic
validators of its parameters and answer) on the app's first request: about 0.3 s per
app for ketacare's 300 routes, paid again by every test.

The routes are the same module-level routers, included the same way, in every app of
the run, and that state holds nothing of the app it was built for except the
``dependency_overrides`` provider, which the suite never uses (``app.dependency_overrides``
appears nowhere in src or tests; a test checks it stays so). So the suite builds it once
per route and process and shares it between apps. The request still reaches the app it
was sent to (``request.app``), its settings, database and clock. Production builds one app
per process and is untouched.

If FastAPI's internals change so that the hook is gone, nothing is patched and the suite
only runs slower.
"""

from __future__ import annotations

import threading
from typing import Any

_KEPT: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


def share_route_state() -> bool:
    """Patch FastAPI to reuse a route's built state across apps; False if not possible."""
    try:
        from fastapi import routing

        context_class: Any = routing._EffectiveRouteContext  # type: ignore[attr-defined]
        build = context_class.from_api_route.__func__
    except AttributeError:
        return False

    def from_api_route(cls: Any, *, original_route: Any, include_context: Any) -> Any:
        key = (
            id(original_route),
            id(include_context.included_router),
            include_context.path_for(original_route),
            tuple(sorted(map(str, include_context.responses))),
        )
        with _LOCK:
            found = _KEPT.get(key)
        if found is None:
            found = build(cls, original_route=original_route, include_context=include_context)
            with _LOCK:
                _KEPT.setdefault(key, found)
        return found

    context_class.from_api_route = classmethod(from_api_route)
    return True
