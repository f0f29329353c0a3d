"""A physician builds a CRPS plan in the browser: exposure preview, hard limit, sign, calendar."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import _prepare, fill_monitoring_order, login
from plan_helpers import MONITORING_ORDER

pytestmark = pytest.mark.browser


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
    fill_monitoring_order(page, MONITORING_ORDER)
    # NEWS2 SpO2 scale 2 is never implied: unticked by default, and it asks for its basis
    scale2 = page.get_by_test_id("order-scale2")
    expect(scale2).not_to_be_checked()
    scale2.check()
    page.locator("input[name=order_spo2_low]").fill("88")  # the 88-92% target's lower end
    page.get_by_label("Basis for SpO2 scale 2").fill("COPD with hypercapnia on ABG; 88-92%")
    page.get_by_role("button", name="Sign plan").click()
    expect(page.get_by_test_id("plan-status")).to_have_text("awaiting cosign")
    expect(page.get_by_test_id("plan-order")).to_contain_text(
        "systolic high (mmHg): 180 (this plan)"
    )
    expect(page.get_by_test_id("plan-order")).to_contain_text(
        "NEWS2 SpO2 scale: 2 (target 88-92%; basis: COPD with hypercapnia on ABG; 88-92%)"
    )
    plan_url = page.url

    second = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    login(second, live_server.url, "physician2", "locum-cosigner-pw")
    second.goto(plan_url)
    # the co-signature restates what it accepts and is refused until reviewed is ticked
    expect(second.get_by_test_id("cosign-form")).to_contain_text("Your co-signature accepts:")
    second.get_by_role("button", name="Co-sign").click()
    expect(second.get_by_role("alert")).to_contain_text("tick that you reviewed what it accepts")
    expect(second.get_by_test_id("plan-status")).to_have_text("awaiting cosign")
    second.get_by_test_id("cosign-reviewed").check()
    second.get_by_role("button", name="Co-sign").click()
    expect(second.get_by_test_id("plan-status")).to_have_text("signed")

    page.reload()
    page.get_by_label("First day").fill("2026-12-07")
    page.get_by_test_id("book-course").get_by_label("Chair").select_option(label="Chair 2")
    page.get_by_role("button", name="Book all sessions").click()
    expect(page.get_by_test_id("appointments").locator("li")).to_have_count(10)
    page.goto(f"{live_server.url}/calendar?week=2026-12-07")
    expect(page.locator("a.appt")).to_have_count(7)  # days 1-7 fall in the first week
    expect(page.locator("a.appt").first).to_contain_text("Okafor #1")
