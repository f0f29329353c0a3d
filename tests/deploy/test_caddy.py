"""deploy/: the app behind Caddy, as deploy/Caddyfile configures it, checked over https.

Caddy (Debian package ``caddy``) terminates TLS with its internal CA on a loopback port
and forwards to a real ``ketacare serve`` process that trusts only it
(``KETACARE_TRUSTED_PROXIES``). The client connects from 127.0.0.2, Caddy from
127.0.0.1: the audit trail must record 127.0.0.2. Skipped without caddy, failed under
``KETACARE_REQUIRE_ALL=1`` (CI installs it).
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from conftest import NOTICES, REQUIRE_ALL, free_port
from ketacare.clinic.demo import DEMO_PASSWORD
from ketacare.infra.db import make_engine
from server_process import ServerProcess, server_env

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CLIENT_ADDR = "127.0.0.2"  # the "clinic's device": not the proxy's address


@pytest.fixture
def caddy() -> str:
    found = shutil.which("caddy")
    if found is None:
        message = "Caddy test SKIPPED: caddy not found (apt-get install caddy)"
        if REQUIRE_ALL:
            pytest.fail(message)
        NOTICES.append(message)
        pytest.skip(message)
    return found


@pytest.fixture
def behind_caddy(caddy: str, db_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """The app behind Caddy: (https base URL, Caddy's root certificate, database URL)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the proxy path is the same on both databases: run once, on SQLite")
    env = server_env(db_url, tmp_path / "var", KETACARE_TRUSTED_PROXIES='["127.0.0.1"]')
    https_port, http_port = free_port(), free_port()
    options = tmp_path / "options.caddy"
    options.write_text(
        "local_certs\nskip_install_trust\nadmin off\ndefault_bind 127.0.0.1\n"
        f"http_port {http_port}\nhttps_port {https_port}\n"
    )
    with ServerProcess(env, tmp_path / "server.log") as app:
        upstream = f"127.0.0.1:{app.port}"
        caddy_env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
            "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
            "KETACARE_CADDY_OPTIONS": str(options),
            "KETACARE_SITE": f"localhost:{https_port}",
            "KETACARE_UPSTREAM_1": upstream,
            "KETACARE_UPSTREAM_2": upstream,
            "KETACARE_CADDY_LOG": str(tmp_path / "access.log"),
        }
        log = (tmp_path / "caddy.log").open("wb")
        proc = subprocess.Popen(
            [caddy, "run", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
            env=caddy_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        root = tmp_path / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        base = f"https://localhost:{https_port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "caddy.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()[-3000:]
                if root.exists():
                    try:
                        if httpx.get(f"{base}/readyz", verify=_trusting(root)).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                time.sleep(0.2)
            yield base, root, db_url
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()


def _trusting(root: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(root))


def _client(base: str, root: Path) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=CLIENT_ADDR, verify=_trusting(root))
    return httpx.Client(base_url=base, transport=transport, timeout=30)


def test_behind_caddy_login_works_over_https_with_hsts_and_the_client_address_audited(
    behind_caddy: tuple[str, Path, str],
) -> None:
    base, root, db_url = behind_caddy
    with _client(base, root) as browser:
        page = browser.get("/login")
        assert page.status_code == 200
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = browser.post(
            "/login",
            data={"username": "nurse", "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
        )
        assert r.status_code == 303, r.text[:300]
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("kc_session="))
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()
        home = browser.get(r.headers["location"])
        assert home.status_code == 200 and "X-CSRF-Token" in home.text
        # a forwarded header sent by the client itself is not believed through Caddy either
        forged = browser.post(
            "/api/v1/auth/token",
            data={"username": "physician", "password": DEMO_PASSWORD},
            headers={"X-Forwarded-For": "10.6.6.6"},
        )
        assert forged.status_code == 200

    engine = make_engine(db_url)
    with engine.connect() as conn:
        logins = conn.execute(
            text(
                "SELECT username, remote_addr FROM audit_events WHERE action = 'login' "
                "ORDER BY id DESC LIMIT 2"
            )
        ).all()
    engine.dispose()
    assert sorted(logins) == [("nurse", CLIENT_ADDR), ("physician", CLIENT_ADDR)]
