"""A physician builds a CRPS plan in the browser: exposure preview, hard limit, sign, calendar."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from browser_helpers import login

pytestmark = pytest.mark.browser


def _api(base: str, username: str, password: str | None = None) -> httpx.Client:
    r = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"username": username, "password": password or f"demo-{username}"},
    )
    r.raise_for_status()
    return httpx.Client(
        base_url=base, timeout=20, headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )


def _prepare(base: str) -> None:
    """Patient 2 (David Okafor, CRPS) screened and signed; a second physician exists."""
    with _api(base, "admin") as admin:
        admin.post(
            "/api/v1/users",
            json={
                "username": "physician2",
                "full_name": "Dr Second",
                "role": "physician",
                "password": "second-physician",
            },
        )
    with _api(base, "nurse") as nurse, _api(base, "physician") as physician:
        for instrument, answers in (
            ("ort", [False] * 10),
            ("dast10", [False, False, True] + [False] * 7),
        ):
            nurse.post(
                "/api/v1/patients/2/assessments",
                json={"instrument": instrument, "answers": answers},
            ).raise_for_status()
        sid = nurse.post(
            "/api/v1/patients/2/screenings",
            json={
                "treatment": {"molecule": "ketamine", "route": "iv_infusion"},
                "vitals": {"systolic_mmhg": 124, "diastolic_mmhg": 80},
            },
        ).json()["id"]
        physician.post(
            f"/api/v1/screenings/{sid}/sign",
            json={"note": "history reviewed", "valid_until": "2099-01-01"},
        ).raise_for_status()


def test_physician_builds_signs_and_books_a_crps_plan(
    live_server: Any, page: Any, browser: Any
) -> None:
    _prepare(live_server.url)
    login(page, live_server.url, "physician")
    page.goto(f"{live_server.url}/patients/2")
    page.get_by_role("link", name="Plans").click()
    page.get_by_label("Protocol").select_option("crps-outpatient")
    page.get_by_label("Bag ketamine (mg)").fill("100")
    page.get_by_label("Bag volume (mL)").fill("100")
    page.get_by_label("Rate override (mg/kg/h)").fill("2.1")
    page.get_by_role("button", name="Build draft plan").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "dose 2.1 mg/kg/h exceeds the hard limit 1.0 mg/kg/h of protocol crps-outpatient"
    )
    expect(page.locator("table.compact tbody")).to_contain_text("No plan yet.")

    page.get_by_label("Rate override (mg/kg/h)").fill("")
    page.get_by_role("button", name="Build draft plan").click()
    expect(page.get_by_test_id("plan-status")).to_have_text("draft")
    # 91.5 kg x 0.35 = 32.0 mg/h, capped at 25 mg/h by the protocol; 25 x 4 h = 100 mg
    expect(page.get_by_test_id("total-dose")).to_have_text("1000 mg")
    expect(page.locator("#exposure-chart")).to_have_attribute("data-rendered", "true")

    page.get_by_label("The weight 91.5 kg is current").check()
    page.get_by_label("Reason for going beyond the limits").fill(
        "site soft limits not yet configured"
    )
    page.get_by_role("button", name="Sign plan").click()
    expect(page.get_by_test_id("plan-status")).to_have_text("awaiting cosign")
    plan_url = page.url

    second = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    login(second, live_server.url, "physician2", "second-physician")
    second.goto(plan_url)
    second.get_by_role("button", name="Co-sign").click()
    expect(second.get_by_test_id("plan-status")).to_have_text("signed")

    page.reload()
    page.get_by_label("First day").fill("2026-12-07")
    page.get_by_label("Chair").select_option(label="Chair 2")
    page.get_by_role("button", name="Book all sessions").click()
    expect(page.get_by_test_id("appointments").locator("li")).to_have_count(10)
    page.goto(f"{live_server.url}/calendar?week=2026-12-07")
    expect(page.locator("a.appt")).to_have_count(7)  # days 1-7 fall in the first week
    expect(page.locator("a.appt").first).to_contain_text("Okafor #1")
