"""Real-browser walks through the foundation: a nurse finds a chart; a patient stays in theirs."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import login

pytestmark = pytest.mark.browser


def test_nurse_logs_in_finds_a_demo_patient_and_opens_the_chart(
    live_server: Any, page: Any
) -> None:
    login(page, live_server.url, "nurse")
    assert page.url.endswith("/patients")
    page.get_by_label("Search by name or MRN").fill("okaf")
    rows = page.locator("#patient-rows tr")
    expect(rows).to_have_count(1)  # htmx replaced the 8 demo rows with the one match
    assert "Okafor, David" in rows.first.inner_text()
    page.get_by_role("link", name="Okafor, David").click()
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", level=1).inner_text() == "Okafor, David"
    assert "G90.521" in page.locator("#conditions-h + ul").inner_text()
    assert "91.5 kg" in page.get_by_test_id("current-weight").inner_text()
    page.get_by_label("Weight (kg, 20-350)").fill("400")
    page.get_by_role("button", name="Record weight").click()
    assert (
        "weight (kg) 400.0 is out of range: allowed 20 to 350 kg"
        in page.get_by_role("alert").inner_text()
    )
    assert "91.5 kg" in page.get_by_test_id("current-weight").inner_text()


def test_patient_login_cannot_open_another_patients_chart(live_server: Any, page: Any) -> None:
    login(page, live_server.url, "patient1")
    assert page.url.endswith("/patients/1")
    assert page.get_by_role("heading", level=1).inner_text() == "Jansen, Maria"
    response = page.goto(f"{live_server.url}/patients/2")
    assert response.status == 403
    assert (
        "a patient account can open only its own record" in page.get_by_role("alert").inner_text()
    )
    assert "Okafor" not in page.content()


def test_researcher_simulates_a_population_in_the_browser(live_server: Any, page: Any) -> None:
    login(page, live_server.url, "researcher")
    assert page.url.endswith("/simulate")
    page.get_by_label("Model").select_option("perez-ruixo-2021")
    page.get_by_label("Age (years)").fill("40")
    page.get_by_label("Route").select_option("intranasal")
    page.get_by_label("Amount (mg)").fill("56")
    page.get_by_label("Population (0-2000)").fill("200")
    page.get_by_role("button", name="Simulate").click()
    expect(page.get_by_test_id("sim-metrics")).to_contain_text("population of 200")
    expect(page.locator("#sim-chart")).to_have_attribute("data-rendered", "true")
