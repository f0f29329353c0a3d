"""Two ``ketacare serve`` processes on one PostgreSQL database, as a multi-worker install runs.

Several clients write on one process and read back on the other, interleaved; a login
session opened on one process is used on the other; at the end no acknowledged write is
missing and the audit chain, written by both processes, verifies.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from ketacare.clinic.demo import DEMO_PASSWORD
from ketacare.infra.db import make_engine
from server_process import ServerProcess, cli, server_env

CLIENTS = 4
WRITES_EACH = 25


def _token(url: str, username: str) -> dict[str, str]:
    r = httpx.post(
        f"{url}/api/v1/auth/token",
        data={"username": username, "password": DEMO_PASSWORD},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _page_login(http: httpx.Client) -> str:
    """Log in through the form; the session's CSRF token."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/login").text)
    assert token
    r = http.post(
        "/login",
        data={"username": "nurse", "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
    )
    assert r.status_code == 303, r.text
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', http.get(r.headers["location"]).text)
    assert found
    return found.group(1)


def test_two_processes_share_writes_sessions_and_one_audit_chain(
    db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several server processes run on PostgreSQL")
    env = server_env(db_url, tmp_path / "var")
    log = tmp_path / "servers.log"
    with ServerProcess(env, log) as one, ServerProcess(env, log) as two:
        servers = (one.url, two.url)
        acknowledged: list[int] = []
        problems: list[str] = []
        lock = threading.Lock()

        def client(c: int) -> None:
            headers = _token(servers[c % 2], "nurse")  # a token from one process ...
            with httpx.Client(headers=headers, timeout=30) as http:
                for i in range(WRITES_EACH):
                    write_on, read_on = servers[(c + i) % 2], servers[(c + i + 1) % 2]
                    patient = 1 + (c + i) % 3
                    r = http.post(  # ... used on both
                        f"{write_on}/api/v1/patients/{patient}/weights",
                        json={"weight_kg": round(40 + c + i / 100, 2)},
                    )
                    if r.status_code != 201:
                        with lock:
                            problems.append(f"write {r.status_code} {r.text[:200]}")
                        continue
                    stored = int(r.json()["id"])
                    with lock:
                        acknowledged.append(stored)
                    chart = http.get(f"{read_on}/api/v1/patients/{patient}")
                    if stored not in {w["id"] for w in chart.json()["weights"]}:
                        with lock:
                            problems.append(f"weight {stored} not seen by the other process")

        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        took = time.monotonic() - started
        assert problems == []
        assert len(acknowledged) == CLIENTS * WRITES_EACH

        # a login session opened on one process works on the other, CSRF token included
        with httpx.Client(base_url=one.url, timeout=30) as browser:
            csrf = _page_login(browser)
            cookies = browser.cookies
        with httpx.Client(base_url=two.url, cookies=cookies, timeout=30) as browser:
            chart = browser.get("/patients/2")
            assert chart.status_code == 200 and "/login" not in str(chart.url)
            r = browser.post("/patients/2/weights", data={"weight_kg": "66.6", "csrf_token": csrf})
            assert r.status_code in (200, 303), r.text[:300]

    engine = make_engine(db_url)
    with engine.connect() as conn:
        stored_ids = set(conn.execute(text("SELECT id FROM body_measurements")).scalars())
        page_weight = conn.execute(
            text("SELECT count(*) FROM body_measurements WHERE weight_kg = 66.6")
        ).scalar()
    engine.dispose()
    assert set(acknowledged) <= stored_ids
    assert page_weight == 1
    print(
        f"\ntwo processes: {len(acknowledged)} writes acknowledged and read back on the other "
        f"process in {took:.1f} s, {len(set(acknowledged) & stored_ids)} stored"
    )
    verified = cli(env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit trail intact" in verified.stdout
