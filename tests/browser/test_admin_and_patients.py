"""Registration warns of a duplicate; deactivation asks first; a patient never sees a draft."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import login

pytestmark = pytest.mark.browser


def test_registration_warns_of_a_duplicate_and_registers_only_when_confirmed(
    live_server: Any, page: Any
) -> None:
    login(page, live_server.url, "nurse")
    page.goto(f"{live_server.url}/patients/new")
    page.get_by_label("Given name").fill("  maria ")
    page.get_by_label("Family name").fill("JANSEN")
    page.get_by_label("Date of birth").fill("1979-04-12")
    page.get_by_label("Sex").select_option("female")
    page.get_by_role("button", name="Register").click()
    warning = page.get_by_test_id("duplicate-warning")
    expect(warning).to_contain_text("This may be a patient already registered")
    expect(warning.get_by_role("link", name="Jansen, Maria")).to_have_attribute(
        "href", "/patients/1"
    )
    page.screenshot(path="/tmp/admin-duplicate-warning.png", full_page=True)
    expect(page.get_by_label("Family name")).to_have_value("JANSEN")
    page.get_by_test_id("register-anyway").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("JANSEN, maria")
    assert page.url.rstrip("/").split("/")[-1] != "1"


def test_deactivating_an_account_asks_first_and_does_nothing_until_confirmed(
    live_server: Any, page: Any
) -> None:
    login(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/admin/users")
    menu = page.get_by_label("Action for therapist")
    expect(menu).to_have_value("")  # no action chosen by default
    menu.select_option("deactivate")
    row = page.get_by_role("row").filter(has=menu)
    row.get_by_role("button", name="Apply").click()
    confirm = page.get_by_test_id("confirm-deactivate")
    expect(confirm).to_contain_text("deactivate the account")
    expect(confirm).to_contain_text("therapist")
    page.screenshot(path="/tmp/admin-confirm-deactivate.png", full_page=True)
    page.get_by_role("link", name="Cancel: change nothing").click()
    therapist_row = page.get_by_role("row").filter(has=page.get_by_label("Action for therapist"))
    expect(therapist_row.get_by_role("cell", name="yes", exact=True)).to_be_visible()

    page.get_by_label("Action for therapist").select_option("deactivate")
    therapist_row.get_by_role("button", name="Apply").click()
    page.get_by_role("button", name="Deactivate therapist").click()
    expect(page).to_have_url(f"{live_server.url}/admin/users")
    therapist_row = page.get_by_role("row").filter(has=page.get_by_label("Action for therapist"))
    expect(therapist_row.get_by_role("cell", name="no", exact=True)).to_be_visible()
    page.screenshot(path="/tmp/admin-users.png", full_page=True)


def test_a_patient_does_not_see_their_draft_plan(live_server: Any, phone: Any) -> None:
    login(phone, live_server.url, "patient1")
    phone.get_by_role("link", name="Plans").click()
    expect(phone.get_by_role("cell", name="No plan yet.")).to_be_visible()
    expect(phone.get_by_role("link", name="Plan 1")).to_have_count(0)
    phone.goto(f"{live_server.url}/plans/1")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Page not found")
    phone.screenshot(path="/tmp/admin-patient-draft-404.png", full_page=True)
