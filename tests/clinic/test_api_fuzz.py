"""The OpenAPI schema, fuzzed: no server error, no response that breaks its own schema.

Bounded (a few examples per operation) so it stays quick; every operation is
exercised with a physician's token on a copy of the demo database.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import api_token


@pytest.fixture
def fuzz_app(sqlite_template: Path, tmp_path: Path) -> Iterator[Any]:
    from ketacare.app import create_app
    from ketacare.infra.settings import load_settings

    db = tmp_path / "fuzz.sqlite3"
    shutil.copy(sqlite_template, db)
    app = create_app(
        load_settings(
            database_url=f"sqlite:///{db}",
            var_dir=tmp_path / "var",
            secret_key="f" * 40,
            login_throttle_per_account_address="1000000/minute",
            login_throttle_per_address="1000000/minute",
            totp_required_roles="",
        )
    )
    app.state.fuzz_headers = api_token(TestClient(app), "physician")
    yield app
    app.state.engine.dispose()


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def fuzz(app: Any, only_path: str | None = None) -> tuple[int, list[str]]:
    """Fuzz every operation (or one path); returns (operations, first failure of each)."""
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    headers = app.state.fuzz_headers
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if only_path is not None and operation.path != only_path:
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        def exercise(case: Any) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)
            if case.method.upper() == "DELETE" and case.path == "/api/v1/auth/token":
                headers.update(api_token(TestClient(app), "physician"))  # it revoked itself

        try:
            exercise()
        except Exception as exc:  # collect every operation's first failure, then report all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:800])
    return operations, failures


def test_api_operations_never_fail_or_break_their_schema(fuzz_app: Any) -> None:
    operations, failures = fuzz(fuzz_app)
    assert operations >= 10
    assert failures == []


def test_the_fuzzer_does_catch_a_server_error(fuzz_app: Any) -> None:
    @fuzz_app.get("/api/v1/broken")
    def broken(n: int = 0) -> dict[str, int]:
        return {"x": 1 // (n - n)}

    fuzz_app.openapi_schema = None
    operations, failures = fuzz(fuzz_app, only_path="/api/v1/broken")
    assert operations == 1
    assert len(failures) == 1 and "division" in failures[0]
