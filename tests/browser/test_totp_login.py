"""A physician enrols an authenticator app and signs in with it, in Chromium.

The codes are computed as the physician's phone would, with ``pyotp`` from the key the
enrolment page shows (the server runs on the real clock).
"""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from ketacare.clinic.demo import DEMO_PASSWORD
from ketacare.infra.settings import Settings

pytestmark = pytest.mark.browser


@pytest.fixture
def totp_required_roles() -> str:
    """The shipped default: admins and physicians need a second factor."""
    return str(Settings.model_fields["totp_required_roles"].default)


def _password(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill("physician")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_physician_enrols_totp_then_signs_in_with_a_code(live_server: Any, page: Any) -> None:
    base = live_server.url
    _password(page, base)
    expect(page).to_have_url(f"{base}/account/totp")
    expect(
        page.get_by_role("img", name="QR code of your ketacare authenticator secret")
    ).to_be_visible()
    # nothing else opens until enrolment: no navigation, and no background request refused
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    page.wait_for_timeout(500)
    expect(page.locator("#htmx-error")).to_have_count(0)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Enrol").click()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    # the chart opens now
    page.goto(f"{base}/patients")
    expect(page).to_have_url(f"{base}/patients")
    page.get_by_role("button", name="Log out").click()

    # next login: the password, then the code (the next 30-second step: a code that was
    # accepted once is refused, and the next step is within the allowed drift)
    _password(page, base)
    expect(page).to_have_url(f"{base}/login/totp")
    page.get_by_label("Authenticator code").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong authenticator code")
    page.get_by_label("Authenticator code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{base}/patients")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
