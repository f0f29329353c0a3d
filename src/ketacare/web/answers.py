"""JSON answers written directly, for routes on a hot path.

A plain ``def`` route that returns a dict has its answer validated against the return
annotation in the thread pool: one more thread hop per request, and a validation of
data the route has just built. :func:`json_answer` serialises with the same encoder
(pydantic's), so the bytes on the wire are the same.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi.responses import Response

OBJECT = {"application/json": {"schema": {"type": "object"}}}


def json_answer(content: Any, status_code: int = 200) -> Response:
    """``content`` as JSON (datetimes as ISO 8601, as everywhere else in the API)."""
    return Response(
        pydantic_core.to_json(content), status_code=status_code, media_type="application/json"
    )
