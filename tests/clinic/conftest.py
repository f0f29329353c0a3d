"""Fixtures of the clinic tests."""

from __future__ import annotations

from typing import Any

import pytest

from plan_helpers import build_clinic


@pytest.fixture
def clinic(request: pytest.FixtureRequest, client: Any, login_api: Any) -> dict[str, Any]:
    """A 70 kg patient with a signed screening for racemic IV ketamine, and the team.

    Built once per worker and database kind and copied for each test (``db_url`` copies
    the built database when the test's settings, app and clock are the shared ones): the
    copy holds exactly what building it here would store, tokens included."""
    built: dict[str, Any] | None = getattr(request.node, "clinic_snapshot", None)
    if built is not None:
        return built
    return build_clinic(client, login_api)
