"""Concurrent requests on a real server: no lost entry, no stall (SQLite serialises writes)."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from conftest import api_token
from live_server import LiveServer


def test_overlapping_requests_neither_stall_nor_lose_writes(
    sqlite_template: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from ketacare.app import create_app
    from ketacare.infra.settings import load_settings

    db = tmp_path / "c.sqlite3"
    shutil.copy(sqlite_template, db)
    app = create_app(
        load_settings(database_url=f"sqlite:///{db}", var_dir=tmp_path, secret_key="c" * 40)
    )
    headers = api_token(TestClient(app), "nurse")
    with (
        LiveServer(app) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=20) as client,
    ):

        def read(_: int) -> int:
            return client.get("/api/v1/patients/1").status_code

        def write(i: int) -> int:
            return client.post(
                "/api/v1/patients/1/weights", json={"weight_kg": 60 + i / 10}
            ).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            reads = list(pool.map(read, range(40)))
            writes = list(pool.map(write, range(40)))
        elapsed = time.monotonic() - started
        weights = client.get("/api/v1/patients/1").json()["weights"]
    app.state.engine.dispose()
    assert reads == [200] * 40 and writes == [201] * 40
    assert len(weights) == 2 + 40  # the demo's two and every one posted
    assert elapsed < 15, f"80 requests took {elapsed:.1f} s: requests are stalling"
