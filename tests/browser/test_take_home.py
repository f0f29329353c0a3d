"""A physician dispenses a take-home supply from the cumulative-dose page, sees an early
refill refused without a reason, gives one, and voids a supply entered in error."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, _prepare, login, screened

pytestmark = pytest.mark.browser

# the test clinic's own take-home limits (no source gives any)
POLICY = """
[take_home]
max_days_supply = 14
max_mg_per_dispense = 700
early_refill_tolerance_days = 2
approved = "test clinic board"
"""


@pytest.fixture
def session_policy() -> str:
    return POLICY


def _oral_plan(base: str) -> int:
    _prepare(base)
    with (
        _api(base, "nurse") as nurse,
        _api(base, "physician") as physician,
        _api(base, "physician2", "locum-cosigner-pw") as second,
    ):
        screened(nurse, physician, 2, route="oral")
        plan = physician.post(
            "/api/v1/patients/2/plans", json={"protocol": "oral-followon", "dose_mg": 50}
        ).json()
        signed = physician.post(
            f"/api/v1/plans/{plan['id']}/sign",
            json={"weight_confirmed": True, "reason": "clinic-set oral dose"},
        ).json()
        if signed["status"] == "awaiting_cosign":
            second.post(f"/api/v1/plans/{plan['id']}/cosign").raise_for_status()
    return int(plan["id"])


def _fill(page: Any, units: str, reason: str = "") -> None:
    page.get_by_label("Form", exact=True).fill("oral solution")
    page.get_by_label("Strength (mg per unit)").fill("50")
    page.get_by_label("Units").fill(units)
    page.get_by_label("Days' supply").fill("7")
    page.get_by_label("Lot").fill("OS-7")
    page.get_by_label("Directions").fill("50 mg by mouth once daily")
    page.get_by_label("Reason (when a check asks for one)").fill(reason)
    page.get_by_role("button", name="Dispense").click()
    page.wait_for_load_state("load")


def test_a_physician_dispenses_refills_and_voids(live_server: Any, page: Any) -> None:
    base = live_server.url
    _oral_plan(base)
    login(page, base, "physician")
    page.goto(f"{base}/patients/2/cumulative-dose")
    expect(page.get_by_test_id("take-home-policy")).to_contain_text("test clinic board")
    _fill(page, "7")
    row = page.get_by_test_id("take-home-supplies").locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text("7 × 50 mg oral solution = 350 mg")
    # the same day again: 7 days early, beyond the 2 the clinic allows
    _fill(page, "7")
    expect(page.get_by_test_id("take-home-error")).to_contain_text("a reason is required")
    expect(page.get_by_label("Units")).to_have_value("7")  # the form is kept
    expect(row).to_have_count(1)
    _fill(page, "7", reason="first bottle broken at home")
    expect(row).to_have_count(2)
    # void the newest, entered in error
    newest = row.first
    newest.get_by_role("textbox").fill("charted twice")
    newest.get_by_role("button", name="Void").click()
    page.wait_for_load_state("load")
    expect(row.first).to_contain_text("void: charted twice")
    page.screenshot(path="/tmp/ketacare-take-home.png", full_page=True)


def test_a_physician_registers_a_product_and_dispenses_from_its_lot(
    live_server: Any, page: Any
) -> None:
    """The clinic's oral solution registered from its supplier's label on the stock page,
    ten 100 mg bottles received; the supply of 3 bottles names the lot: 7 left."""
    base = live_server.url
    _oral_plan(base)
    login(page, base, "physician")
    page.goto(f"{base}/stock")
    form = page.get_by_test_id("clinic-product-form")
    form.get_by_label("Molecule").select_option("racemic_ketamine")
    form.get_by_label("Name on the label").fill("ketamine oral solution 10 mg/mL, 10 mL")
    form.get_by_label("Dosage form").select_option("oral_solution")
    form.get_by_label("Unit counted").select_option("bottle")
    form.get_by_label("or mg/mL").fill("10")
    form.get_by_label("and mL per unit").fill("10")
    form.get_by_label("Supplier").fill("Example Compounding Pharmacy")
    form.get_by_label("Read from").fill("bottle label and certificate of analysis, lot OS-7")
    form.get_by_role("button", name="Register").click()
    page.wait_for_load_state("load")
    listed = page.get_by_test_id("clinic-product-list")
    expect(listed).to_contain_text("registered by the clinic from the supplier's label")
    expect(listed).to_contain_text("Example Compounding Pharmacy: bottle label")
    with _api(base, "nurse") as nurse:
        product = next(
            p["id"] for p in nurse.get("/api/v1/stock/products").json() if p["registered_by_clinic"]
        )
        nurse.post(
            "/api/v1/stock/receipts",
            json={
                "site": "main",
                "product": product,
                "lot": "OS-7",
                "expiry": "2030-12-31",
                "units": 10,
                "supplier": "Example Compounding Pharmacy",
                "reference": "INV-7",
            },
        ).raise_for_status()
    page.goto(f"{base}/patients/2/cumulative-dose")
    lot = page.get_by_test_id("take-home-lot")
    expect(lot).to_have_value("")  # no lot pre-selected
    lot.select_option(label=lot.locator("option", has_text="lot OS-7").inner_text())
    page.get_by_label("Form", exact=True).fill("oral solution")
    page.get_by_label("Strength (mg per unit)").fill("100")
    page.get_by_label("Units", exact=True).fill("3")
    page.get_by_label("Days' supply").fill("3")
    page.get_by_label("Directions").fill("100 mg by mouth once daily")
    page.get_by_role("button", name="Dispense").click()
    page.wait_for_load_state("load")
    row = page.get_by_test_id("take-home-supplies").locator("tbody tr")
    expect(row.first).to_contain_text("3 × 100 mg oral solution = 300 mg")
    expect(row.first).to_contain_text("drawn from stock: 3 unit(s)")
    page.goto(f"{base}/stock")
    expect(page.get_by_test_id("lots")).to_contain_text("OS-7")
    expect(page.get_by_test_id("lots").locator("tr", has_text="OS-7")).to_contain_text("700")
    page.screenshot(path="/tmp/ketacare-take-home-stock.png", full_page=True)
