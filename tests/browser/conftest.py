"""A live server on 127.0.0.1 and Debian's Chromium driven by Playwright (headless).

The browser is never downloaded: ``executable_path`` points at ``/usr/bin/chromium``.
Without it the browser tests are skipped with a notice (failed under
``KETACARE_REQUIRE_ALL=1``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import NOTICES, REQUIRE_ALL
from live_server import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        message = f"browser tests SKIPPED: {CHROMIUM} not found (apt-get install chromium)"
        if REQUIRE_ALL:
            pytest.fail(message)
        NOTICES.append(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def session_policy() -> str | None:
    """A test clinic's session policy (TOML); a test module overrides this to set one."""
    return None


@pytest.fixture
def clinic_hours() -> str | None:
    """A test clinic's opening days and closures (TOML); a test module overrides this."""
    return None


@pytest.fixture
def totp_required_roles() -> str:
    """Roles that must sign in with a second factor; a test module overrides this."""
    return ""


class LiveClock:
    """The live server's clock: real time, moved on by a test that must wait hours (a
    2-hour observation) without waiting them."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, minutes: float) -> None:
        self.offset += timedelta(minutes=minutes)


@pytest.fixture
def live_clock() -> LiveClock:
    return LiveClock()


@pytest.fixture
def live_server(
    sqlite_template: Path,
    tmp_path: Path,
    session_policy: str | None,
    totp_required_roles: str,
    clinic_hours: str | None,
    live_clock: LiveClock,
) -> Iterator[LiveServer]:
    """The app on a fresh copy of the demo database, on a loopback port."""
    from ketacare.app import create_app
    from ketacare.infra.settings import load_settings
    from protocol_policy import TEST_PROTOCOL_POLICY_FILE

    db = tmp_path / "live.sqlite3"
    shutil.copy(sqlite_template, db)
    policy = None
    if session_policy is not None:
        policy = tmp_path / "session-policy.toml"
        policy.write_text(session_policy)
    hours = None
    if clinic_hours is not None:
        hours = tmp_path / "clinic-hours.toml"
        hours.write_text(clinic_hours)
    settings = load_settings(
        database_url=f"sqlite:///{db}",
        var_dir=tmp_path / "var",
        secret_key="b" * 40,
        timezone="Europe/Amsterdam",
        session_policy_file=policy,
        clinic_hours_file=hours,
        protocol_policy_file=TEST_PROTOCOL_POLICY_FILE,  # test values: the hard ceilings
        totp_required_roles=totp_required_roles,  # "" unless a module asks for the default
        live_refresh_seconds=1,  # the chair and the board show news within a second
    )
    app = create_app(settings, clock=live_clock)
    with LiveServer(app) as server:
        yield server
    app.state.engine.dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
