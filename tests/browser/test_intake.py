"""A patient fills a PHQ-9 on a phone; the item-9 answer alerts the clinician."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import login

pytestmark = pytest.mark.browser

OPTIONS = {0: "Not at all", 1: "Several days", 2: "More than half the days", 3: "Nearly every day"}
ANSWERS = [1, 1, 2, 1, 0, 1, 0, 0, 1]  # total 7 = mild (5-9); item 9 = "several days"


def test_patient_fills_phq9_on_a_phone_and_sees_score_and_item9_alert(
    live_server: Any, phone: Any, browser: Any
) -> None:
    login(phone, live_server.url, "patient1")
    phone.get_by_role("link", name="Questionnaires", exact=True).click()
    phone.get_by_role("link", name="PHQ-9").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Patient Health Questionnaire-9")
    for number, value in enumerate(ANSWERS, start=1):
        phone.locator(f"#item-q{number} label.option", has_text=OPTIONS[value]).first.click()
    # the form fits a phone: no horizontal scrolling
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.get_by_role("button", name="Submit").click()
    expect(phone.get_by_test_id("score-total")).to_have_text("7")
    expect(phone.get_by_test_id("score-band")).to_have_text("Mild depression")
    alert = phone.get_by_test_id("safety-alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Your care team (Dr Priya Physician) has been alerted")

    # the responsible clinician sees it at once
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    desk = context.new_page()
    login(desk, live_server.url, "physician")
    expect(desk.locator("nav .badge:not(.behind)")).to_have_text("1")
    desk.get_by_role("link", name="Alerts").click()
    card = desk.get_by_test_id("alert-phq9_item9_positive")
    expect(card).to_contain_text("Jansen, Maria")
    card.get_by_label("Action taken").fill("Called patient, C-SSRS low risk, plan agreed")
    card.get_by_role("button", name="Acknowledge").click()
    expect(desk.get_by_role("status")).to_have_text("No open alerts.")
    context.close()


def test_cssrs_skip_logic_hides_follow_up_questions(live_server: Any, page: Any) -> None:
    login(page, live_server.url, "nurse")
    page.goto(f"{live_server.url}/patients/2/assessments/new/cssrs_screener")
    expect(page.locator("#item-q3")).to_be_hidden()
    page.locator("#item-q2 label.option", has_text="Yes").click()
    expect(page.locator("#item-q3")).to_be_visible()
    page.locator("#item-q2 label.option", has_text="No").click()
    expect(page.locator("#item-q3")).to_be_hidden()
