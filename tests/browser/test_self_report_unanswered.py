"""On a phone, a PHQ-9 with item 9 left blank is not accepted as complete: the page names
question 9, keeps the other answers, and the single-use link still works; the responsible
clinician finds an alert to ask item 9 in the inbox, worded as unanswered, not positive.

PHQ-9 answers and item 9's wording from Kroenke 2001 / LOINC LL358-3; item 9 needs
follow-up whatever the total (calcipedia PHQ-9 calculator).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, login

pytestmark = pytest.mark.browser

OPTIONS = {0: "Not at all", 1: "Several days", 2: "More than half the days", 3: "Nearly every day"}
EIGHT = [1, 1, 2, 1, 0, 1, 0, 0]  # items 1-8; item 9 left blank

WORDING = (
    "Question 9: “Thoughts that you would be better off dead, or of hurting yourself in some way”"
)
SHOTS = Path("/tmp/ketacare-shots")


def test_blank_item_9_is_not_accepted_and_the_clinician_is_alerted(
    live_server: Any, phone: Any, page: Any, tmp_path: Path
) -> None:
    base = live_server.url
    with _api(base, "nurse") as nurse:
        r = nurse.post(
            "/api/v1/patients/1/self-report-links",
            json={"instruments": ["phq9"], "valid_hours": 48},
        )
        r.raise_for_status()
        url = r.json()["url"]

    phone.goto(url)
    for number, value in enumerate(EIGHT, start=1):
        phone.locator(f"#item-q{number} label.option", has_text=OPTIONS[value]).first.click()
    phone.get_by_role("button", name="Submit").click()

    # not accepted: question 9 named, nothing said to be saved, the answers given kept
    notice = phone.get_by_test_id("unanswered")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("question 9 needs an answer")
    # in the words the patient sees on the form, not the clinical label
    expect(notice).to_contain_text(WORDING)
    expect(phone.get_by_test_id("saved")).to_have_count(0)
    item9 = phone.locator("#item-q9")
    expect(item9).to_have_attribute("aria-invalid", "true")
    expect(item9).to_contain_text("Please answer this question.")
    expect(item9.locator("input:checked")).to_have_count(0)  # nothing chosen for the patient
    expect(phone.locator("#item-q3 input[value='2']")).to_be_checked()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    SHOTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(SHOTS / "unanswered-phone.png"), full_page=True)
    # the link in the notice takes the patient to question 9
    notice.get_by_role("link", name=WORDING).click()
    expect(item9).to_be_in_viewport()

    # the responsible clinician (Dr Priya Physician) sees the alert to ask item 9
    login(page, base, "physician")
    expect(page.locator("nav .badge:not(.behind)")).to_have_text("1")
    page.get_by_label("Main").get_by_role("link", name="Alerts").click()
    card = page.get_by_test_id("alert-phq9_item9_unanswered")
    expect(card).to_contain_text("Jansen, Maria")
    expect(card).to_contain_text("left unanswered")
    expect(card).not_to_contain_text("answered above 0")
    page.screenshot(path=str(SHOTS / "unanswered-inbox.png"), full_page=True)

    # the same link still works: item 9 answered, the form is saved and the link spent
    phone.locator("#item-q9 label.option", has_text=OPTIONS[0]).first.click()
    phone.get_by_role("button", name="Submit").click()
    expect(phone.get_by_test_id("saved")).to_have_text("Your PHQ-9 answers were saved.")
    phone.goto(url)
    expect(phone.get_by_role("alert")).to_contain_text("already used")
