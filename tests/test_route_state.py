"""The suite shares FastAPI's built route state between its apps (tests/route_state.py):
each request must still reach the app it was sent to, and nothing may rely on what is
shared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

import route_state
from conftest import TEST_START, Clock, shared_settings

ROOT = Path(__file__).resolve().parents[1]


def test_no_code_uses_dependency_overrides() -> None:
    # the shared state keeps the first app as its overrides provider; overrides on any
    # other app would be ignored, so none may exist
    here = {Path(route_state.__file__).resolve(), Path(__file__).resolve()}
    found = [
        str(path.relative_to(ROOT))
        for folder in ("src", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if path.resolve() not in here and "dependency_overrides" in path.read_text()
    ]
    assert found == []


def test_each_request_reaches_its_own_app(client: Any, tmp_path: Path) -> None:
    from ketacare.app import create_app
    from ketacare.clinic.demo import DEMO_PASSWORD
    from ketacare.infra.db import make_engine
    from ketacare.infra.migrate import upgrade

    # a second app on an empty database of its own (no accounts)
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    other = create_app(shared_settings(url, tmp_path / "var"), clock=Clock(TEST_START))
    empty = TestClient(other)
    login = {"username": "nurse", "password": DEMO_PASSWORD}
    try:
        for _ in range(2):  # alternating: the demo clinic knows the nurse, the other not
            assert client.post("/api/v1/auth/token", data=login).status_code == 200
            assert empty.post("/api/v1/auth/token", data=login).status_code == 401
        assert route_state._KEPT  # the patch is in place: the two apps shared the state
    finally:
        other.state.engine.dispose()
