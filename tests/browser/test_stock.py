"""Controlled-substance stock in Chromium: a nurse receives a lot, an infusion draws from
it, the remainder is wasted and witnessed by a second nurse with her own login, and the
day ends with a count by two people."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, _prepare, login
from plan_helpers import IV_CHECKS, MONITORING_ORDER

pytestmark = pytest.mark.browser

WITNESS_PASSWORD = "amber-lantern-quay-71"


def _session_dosing(base: str) -> int:
    """A signed IV plan for patient 2 and its first session, dosing at 24.5 mg/h."""
    _prepare(base)
    with _api(base, "admin") as admin:
        admin.post(
            "/api/v1/users",
            json={
                "username": "nurse2",
                "full_name": "Second Nurse",
                "role": "nurse",
                "password": WITNESS_PASSWORD,
            },
        ).raise_for_status()
    with _api(base, "physician") as physician:  # a clinical role needs a second person
        for pending in physician.get("/api/v1/role-requests").json():
            physician.post(f"/api/v1/role-requests/{pending['id']}/approve").raise_for_status()
    with (
        _api(base, "physician") as physician,
        _api(base, "physician2", "locum-cosigner-pw") as second,
        _api(base, "nurse") as nurse,
    ):
        plan = physician.post(
            "/api/v1/patients/2/plans",
            json={"protocol": "crps-outpatient", "bag_mg": 100, "bag_ml": 100},
        ).json()
        physician.post(
            f"/api/v1/plans/{plan['id']}/sign",
            json={
                "monitoring_order": MONITORING_ORDER,
                "weight_confirmed": True,
                "reason": "site limits not configured",
            },
        ).raise_for_status()
        second.post(f"/api/v1/plans/{plan['id']}/cosign").raise_for_status()
        sid = int(
            nurse.post(f"/api/v1/plans/{plan['id']}/sessions", json={"session_number": 1}).json()[
                "id"
            ]
        )
        vitals = {"kind": "vitals", "sbp_mmhg": 124, "dbp_mmhg": 78, "hr_per_min": 70}
        events = [
            {"kind": "check_in"},
            {**vitals, "spo2_pct": 98, "rr_per_min": 14},
            *(
                {"kind": "pre_dose_check", "item": i, "ok": True, "detail": "K-77"}
                for i in IV_CHECKS
            ),
            {"kind": "start_infusion", "rate_mg_per_h": 24.5},
        ]
        for event in events:
            seq = nurse.get(f"/api/v1/sessions/{sid}").json()["last_seq"]
            r = nurse.post(
                f"/api/v1/sessions/{sid}/events", json={"expected_seq": seq, "event": event}
            )
            assert r.status_code == 201, r.text
    return sid


def _stop(base: str, sid: int) -> Any:
    with _api(base, "nurse") as nurse:
        seq = nurse.get(f"/api/v1/sessions/{sid}").json()["last_seq"]
        return nurse.post(
            f"/api/v1/sessions/{sid}/events",
            json={"expected_seq": seq, "event": {"kind": "stop", "reason": "completed"}},
        )


def _close(base: str, sid: int) -> Any:
    with _api(base, "nurse") as nurse:
        seq = nurse.get(f"/api/v1/sessions/{sid}").json()["last_seq"]
        return nurse.post(
            f"/api/v1/sessions/{sid}/events",
            json={"expected_seq": seq, "event": {"kind": "end_session", "reason": "done"}},
        )


def test_receive_draw_waste_with_a_witness_and_count(
    live_server: Any, page: Any, browser: Any
) -> None:
    base = live_server.url
    sid = _session_dosing(base)
    login(page, base, "nurse")
    page.goto(f"{base}/stock")
    form = page.get_by_test_id("receipt-form")
    form.get_by_label("Site").fill("main")
    form.get_by_label("Product").select_option("ketamine-50mg-ml-10ml-vial")
    form.get_by_label("Lot").fill("K-77")
    form.get_by_label("Expiry").fill("2099-12-31")
    form.get_by_label("Units").fill("10")
    form.get_by_label("Supplier").fill("Example Wholesale")
    form.get_by_label("Invoice or order reference").fill("INV-77")
    form.get_by_role("button", name="Receive").click()
    page.wait_for_load_state("load")
    lot = page.get_by_test_id("lots").locator("tbody tr")
    expect(lot).to_have_count(1)
    expect(lot.first).to_contain_text("K-77")
    expect(lot.first).to_contain_text("5000")
    # the chair's draw: one vial, a 100 mg bag (from the chair view's link)
    page.goto(f"{base}/sessions/{sid}")
    page.get_by_test_id("chair-stock").click()
    page.wait_for_load_state("load")
    draw = page.get_by_test_id("draw-form")
    expect(draw.get_by_label("Lot")).to_have_value("")  # no lot is chosen for the nurse
    draw.get_by_label("Lot").select_option(index=1)
    draw.get_by_label("Units opened").fill("1")
    draw.get_by_label("Prepared mg").fill("100")
    draw.get_by_label("Prepared mL").fill("100")
    draw.get_by_role("button", name="Record the draw").click()
    page.wait_for_load_state("load")
    expect(page.get_by_test_id("opened-mg")).to_have_text("500 mg")
    time.sleep(2)
    assert _stop(base, sid).status_code == 201
    # the session cannot close with the remainder unaccounted for
    refused = _close(base, sid)
    assert refused.status_code == 409 and "unaccounted" in refused.json()["detail"]
    page.reload()
    expect(page.get_by_test_id("close-status")).to_contain_text("unaccounted")
    waste = page.get_by_test_id("waste-form")
    expect(waste.get_by_label("mg", exact=True)).not_to_have_value("")  # the remainder
    waste.get_by_label("Draw").select_option(index=1)
    waste.get_by_label("Method").fill("drug-waste container")
    waste.get_by_role("button", name="Record the waste").click()
    page.wait_for_load_state("load")
    expect(page.get_by_text("awaiting a second person's witness")).to_be_visible()
    # the witness signs with her own login
    other = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    login(other, base, "nurse2", WITNESS_PASSWORD)
    other.goto(f"{base}/stock/sessions/{sid}")
    other.get_by_role("button", name="Witness as nurse2").click()
    other.wait_for_load_state("load")
    expect(other.get_by_test_id("close-status")).to_contain_text("may close")
    expect(other.get_by_test_id("remainder-mg")).to_have_text("0.00 mg")
    assert _close(base, sid).status_code == 201
    # end of the day: nurse2 counts nine vials, the first nurse witnesses the count
    other.goto(f"{base}/stock")
    count = other.get_by_test_id("count-form")
    count.get_by_label("Lot").select_option(index=1)
    count.get_by_label("Units counted").fill("9")
    count.get_by_role("button", name="Record the count").click()
    other.wait_for_load_state("load")
    expect(other.get_by_test_id("awaiting-witness")).to_contain_text(
        "(a second person witnesses it)"
    )
    page.goto(f"{base}/stock")
    page.get_by_role("button", name="Witness as nurse").click()
    page.wait_for_load_state("load")
    expect(page.get_by_test_id("awaiting-witness")).to_have_count(0)
    expect(page.get_by_test_id("discrepancies")).to_have_count(0)
    expect(page.get_by_test_id("lots").locator("tbody tr").first).to_contain_text("4500")
