"""Single sign-on end to end in Chromium, against a real OpenID provider on loopback.

The provider is the certified ``oidc-provider`` npm package (tests/oidc_provider.mjs);
the browser follows ketacare's button to the provider's own login and consent forms
and comes back signed in, with no step taken outside the browser.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest import REQUIRE_ALL, free_port
from live_server import LiveServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "oidc_provider.mjs"
SECRET = "sso-browser-client-secret-0123456789"
ACCOUNT = {
    "sub": "f00d-dr-browser",
    "preferred_username": "dr.browser",
    "name": "Dr Bea Browser",
    "groups": ["clinic-physicians"],
}


@pytest.fixture
def sso_server(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """ketacare on a fresh demo database, its OpenID provider started once its URL is known."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider").is_dir():
        if REQUIRE_ALL:
            pytest.fail("node and the oidc-provider package are needed (npm install)")
        pytest.skip("node or node_modules/oidc-provider missing (npm install)")
    from ketacare.app import create_app
    from ketacare.clinic.accounts import service as accounts
    from ketacare.infra.clock import utc_now
    from ketacare.infra.settings import load_settings

    db = tmp_path / "sso.sqlite3"
    shutil.copy(sqlite_template, db)
    issuer_port = free_port()
    settings = load_settings(
        database_url=f"sqlite:///{db}",
        var_dir=tmp_path / "var",
        secret_key="c" * 40,
        timezone="Europe/Amsterdam",
        totp_required_roles="",
        oidc_issuer=f"http://127.0.0.1:{issuer_port}",
        oidc_client_id="ketacare",
        oidc_client_secret=SECRET,
        oidc_scopes="openid profile groups",
    )
    app = create_app(settings)
    with app.state.ctx.sessions() as session, session.begin():  # the account SSO matches
        accounts.create_user(
            session=session,
            username=ACCOUNT["preferred_username"],
            full_name=ACCOUNT["name"],
            role="physician",
            password="quiet-harbour-lantern-93",
            now=utc_now(),
            settings=settings,
        )
    server = LiveServer(app)
    env = {
        **os.environ,
        "PORT": str(issuer_port),
        "REDIRECT_URI": f"{server.url}/login/oidc/callback",
        "CLIENT_SECRET": SECRET,
        "ACCOUNT": json.dumps(ACCOUNT),
    }
    provider = subprocess.Popen(
        [node, str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert provider.stdout is not None
        line = provider.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"the OpenID provider did not start: {line}")
        with server:
            yield server
    finally:
        provider.terminate()
        provider.wait(timeout=10)
        app.state.engine.dispose()


def test_a_physician_signs_in_with_single_sign_on(sso_server: LiveServer, page: Any) -> None:
    base = sso_server.url
    page.goto(f"{base}/login?next=/account")
    page.get_by_test_id("sso-login").click()
    # the provider's own login form (its development form takes the account id)
    page.locator("input[name=login]").fill(ACCOUNT["sub"])
    page.locator("input[name=password]").fill("any")
    page.locator("button[type=submit]").click()
    # its consent form: the scopes ketacare asked for
    page.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/account")
    expect(page.locator("body")).to_contain_text("Dr Bea Browser")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    # the session is ketacare's own: a protected page opens without another sign-in
    page.goto(f"{base}/patients")
    expect(page).to_have_url(f"{base}/patients")
