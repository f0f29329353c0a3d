"""A serving process killed with SIGKILL under concurrent writes loses no acknowledged write.

Bounded and loopback only: four writers for about two seconds against a real
``ketacare serve`` process, then ``kill -9``, a restart on the same database, and the
checks: every acknowledged weight is stored, the audit chain verifies, and the requests
cut off by the kill, sent again with their ``Idempotency-Key``, are stored at most once.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from ketacare.clinic.demo import DEMO_PASSWORD
from ketacare.infra.db import make_engine
from server_process import ServerProcess, cli, server_env

WRITERS = 4
WRITE_SECONDS = 2.0


def _token(url: str, username: str) -> dict[str, str]:
    r = httpx.post(
        f"{url}/api/v1/auth/token",
        data={"username": username, "password": DEMO_PASSWORD},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _stored(url: str) -> dict[int, float]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, weight_kg FROM body_measurements")).all()
    engine.dispose()
    return {int(i): float(w) for i, w in rows}


def test_kill_9_under_concurrent_writes_loses_no_acknowledged_write(
    db_url: str, tmp_path: Path
) -> None:
    env = server_env(db_url, tmp_path / "var")
    server = ServerProcess(env, tmp_path / "server.log").start()
    headers = _token(server.url, "nurse")
    numbers = itertools.count()
    lock = threading.Lock()
    acknowledged: dict[str, int] = {}  # Idempotency-Key -> stored id
    cut_off: dict[str, float] = {}  # Idempotency-Key -> weight sent, no answer
    refused: list[str] = []
    killed = threading.Event()

    def writer() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            while True:
                with lock:
                    n = next(numbers)
                key, kg = f"crash-{n}", round(20 + n / 100, 2)  # one weight per request
                try:
                    r = http.post(
                        f"/api/v1/patients/{1 + n % 3}/weights",
                        headers={"Idempotency-Key": key},
                        json={"weight_kg": kg},
                    )
                except httpx.TransportError:  # in flight when the server died
                    with lock:
                        cut_off[key] = kg
                    return
                with lock:
                    if r.status_code == 201:
                        acknowledged[key] = int(r.json()["id"])
                    else:
                        refused.append(f"{r.status_code} {r.text[:200]}")
                if killed.is_set():
                    return

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(WRITE_SECONDS)
    killed.set()  # each writer ends after the request it has in flight
    server.kill()
    for t in threads:
        t.join(timeout=30)
    assert not refused, refused[:3]
    assert len(acknowledged) > 20, f"too few writes before the kill: {len(acknowledged)}"

    restarted = ServerProcess(env, tmp_path / "server.log", port=server.port)
    with restarted:
        stored = _stored(db_url)
        missing = [k for k, i in acknowledged.items() if i not in stored]
        print(
            f"\ncrash test ({db_url.split(':')[0]}): {len(acknowledged)} writes acknowledged "
            f"before kill -9, {len(acknowledged) - len(missing)} found after restart; "
            f"{len(cut_off)} cut off by the kill"
        )
        assert missing == [], f"acknowledged writes lost: {missing[:10]}"
        # the requests the kill cut off, sent again with their keys: at most one row each
        for key, kg in cut_off.items():
            n = int(key.split("-")[1])
            r = httpx.post(
                f"{restarted.url}/api/v1/patients/{1 + n % 3}/weights",
                headers={**headers, "Idempotency-Key": key},
                json={"weight_kg": kg},
                timeout=30,
            )
            assert r.status_code in (201, 409), r.text
        after = list(_stored(db_url).values())
        for kg in cut_off.values():
            assert after.count(kg) <= 1, f"the retried {kg} kg was stored twice"
    verified = cli(env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit trail intact" in verified.stdout
