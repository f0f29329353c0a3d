"""A whole dosing session in Chromium, with the nurses' board open beside it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, _prepare, login
from plan_helpers import MONITORING_ORDER

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots-chair")  # screenshots to look at (not part of the project)

# a test clinic's own alert limit (no published source gives one)
POLICY = "[thresholds]\nsbp_mmhg = { high = 160 }\n"


@pytest.fixture
def session_policy() -> str:
    return POLICY


def _signed_plan(base: str) -> int:
    _prepare(base)
    with (
        _api(base, "physician") as physician,
        _api(base, "physician2", "locum-cosigner-pw") as second,
    ):
        plan = physician.post(
            "/api/v1/patients/2/plans",
            json={"protocol": "crps-outpatient", "bag_mg": 100, "bag_ml": 100},
        ).json()
        physician.post(
            f"/api/v1/plans/{plan['id']}/sign",
            json={
                # systolic high is left to the clinic's policy above (pre-filled: 160)
                # the observation is 3 s (test data) so that the live clock reaches discharge
                "monitoring_order": {k: v for k, v in MONITORING_ORDER.items() if k != "sbp_high"}
                | {"observation_min": 0.05},
                "weight_confirmed": True,
                "reason": "site limits not configured",
            },
        ).raise_for_status()
        second.post(f"/api/v1/plans/{plan['id']}/cosign").raise_for_status()
    return int(plan["id"])


def _record(page: Any, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state("load")


def test_nurse_runs_a_whole_session(live_server: Any, page: Any, browser: Any) -> None:
    base = live_server.url
    plan_id = _signed_plan(base)
    board = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    login(board, base, "physician")
    login(page, base, "nurse")
    page.goto(f"{base}/plans/{plan_id}")
    _record(page, "Open session at the chair")  # no booking and no chair chosen: refused
    expect(page.locator("main")).to_contain_text("has no booking: choose the chair")
    page.goto(f"{base}/plans/{plan_id}")
    page.get_by_test_id("open-chair").select_option(label="Chair 2")
    _record(page, "Open session at the chair")
    expect(page.get_by_test_id("state")).to_have_text("scheduled")
    session_url = page.url
    sid = session_url.rsplit("/", 1)[1]

    _record(page, "Check in")
    board.goto(f"{base}/board")
    expect(board.get_by_test_id(f"board-row-{sid}").locator(".state")).to_have_text("checked in")
    expect(board.get_by_test_id(f"board-row-{sid}").locator("td").first).to_have_text("Chair 2")

    page.get_by_label("Systolic").fill("128")
    page.get_by_label("Diastolic").fill("78")
    page.get_by_label("Heart rate").fill("72")
    page.get_by_label("SpO2 %").fill("98")
    page.get_by_label("Resp. rate").fill("14")
    _record(page, "Record vitals")
    for box in page.locator("input[name=item]").all():
        box.check()
    page.get_by_label("Lot number").fill("K-2291")
    _record(page, "Record checks")
    expect(page.get_by_test_id("state")).to_have_text("pre dose checks")
    _record(page, "Start infusion")
    expect(page.get_by_test_id("state")).to_have_text("dosing")
    expect(page.get_by_test_id("rate")).to_have_text("25 mg/h")  # 91.5 kg, capped at 25 mg/h
    expect(board.get_by_test_id(f"board-row-{sid}").locator(".state")).to_have_text(
        "dosing", timeout=12_000
    )  # the board refreshes itself

    # the planned 4 h infusion (crps-outpatient, Schwartzman 2009) has just started
    expect(page.get_by_test_id("banner-time-left")).to_contain_text(
        re.compile(r"^(4 h 00|3 h 59) min")
    )
    page.get_by_label("New rate (mg/h)").fill("20")
    _record(page, "Change rate")  # no reason: the browser does not send it
    expect(page.get_by_test_id("rate")).to_have_text("25 mg/h")
    page.get_by_test_id("rate-reason").evaluate("e => e.removeAttribute('required')")
    _record(page, "Change rate")  # sent blank all the same: refused in words, nothing stored
    expect(page.get_by_test_id("error")).to_contain_text("rate change: the reason is required")
    expect(page.get_by_test_id("rate")).to_have_text("25 mg/h")
    page.get_by_label("New rate (mg/h)").fill("20")
    page.get_by_test_id("rate-reason").fill("nausea")
    _record(page, "Change rate")
    expect(page.get_by_test_id("rate")).to_have_text("20 mg/h")
    # the event list beside the vitals keeps the reason
    expect(page.get_by_test_id("event-list")).to_contain_text(
        "rate changed to 20 mg/h (reason: nausea)"
    )
    page.get_by_label("Rescue / adjunct").fill("ondansetron")
    page.get_by_label("Dose", exact=True).fill("4 mg")
    page.get_by_label("Route").fill("IV")
    page.get_by_test_id("medication-purpose").fill("nausea after the rate change")
    _record(page, "Record given")
    expect(page.get_by_test_id("event-list")).to_contain_text(
        "ondansetron 4 mg IV, purpose nausea after the rate change"
    )
    page.get_by_label("Systolic").fill("172")
    page.get_by_label("Diastolic").fill("96")
    _record(page, "Record vitals")
    alert = page.get_by_test_id("open-alert")
    expect(alert).to_contain_text("172")
    expect(board.get_by_test_id(f"board-row-{sid}").locator(".badge")).to_have_text(
        "1", timeout=12_000
    )
    # the breach is highlighted with its change from the baseline: (172 - 128) / 128 = +34 %
    expect(page.get_by_test_id("breach").first).to_contain_text("172 (+34 %)")
    expect(board.get_by_test_id(f"board-row-{sid}")).to_contain_text("172", timeout=12_000)
    # the physician's inbox links to the chair's acknowledgement (no free-text form for it)
    inbox = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    login(inbox, base, "physician")
    inbox.goto(f"{base}/alerts")
    expect(inbox.get_by_test_id("acknowledge-at-chair")).to_have_count(1)
    expect(inbox.get_by_test_id("alert-session_vitals").locator("form")).to_have_count(0)
    SHOTS.mkdir(exist_ok=True)
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"chair-alert-{width}.png"), full_page=True)
        board.set_viewport_size({"width": width, "height": height})
        board.screenshot(path=str(SHOTS / f"board-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    inbox.screenshot(path=str(SHOTS / "inbox-1280.png"), full_page=True)
    inbox.get_by_role("link", name=f"Go to the chair of session {sid}").click()
    expect(inbox.get_by_test_id("open-alert")).to_have_count(1)
    inbox.close()
    alert.get_by_label("Action taken").select_option("continue")
    alert.get_by_label("Note").fill("physician informed; rate kept at 20 mg/h")
    # the chair's refresh (every second in this clinic) does not wipe a form being filled in
    page.wait_for_timeout(2_500)
    expect(alert.get_by_label("Action taken")).to_have_value("continue")
    expect(alert.get_by_label("Note")).to_have_value("physician informed; rate kept at 20 mg/h")
    _record(page, "Acknowledge")
    expect(page.get_by_test_id("open-alert")).to_have_count(0)

    page.get_by_label("Stop reason").select_option("completed")
    _record(page, "Stop")
    expect(page.get_by_test_id("state")).to_have_text("recovery")
    expect(page.get_by_test_id("discharge-status")).to_contain_text("Not yet")
    # in recovery: SpO2 89 % is below the order's 92 %: an alert that blocks discharge
    for name, value in (("sbp_mmhg", "130"), ("dbp_mmhg", "80"), ("hr_per_min", "72")):
        page.locator(f"input[name={name}]").fill(value)
    page.locator("input[name=spo2_pct]").fill("89")
    _record(page, "Record vitals")
    expect(page.get_by_test_id("open-alert")).to_contain_text("SpO2 (%) 89")
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"discharge-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    # the discharge form answers nothing by default
    for item in ("vital_signs", "ambulation", "nausea_vomiting", "pain", "bleeding", "escort"):
        expect(page.get_by_test_id(f"padss-{item}")).to_have_value("")
    # 130/128 = +1.6 %, 80/78 = +2.6 %, 72/72 = 0 %: the record gives the vital-signs item 2
    expect(page.get_by_test_id("record-vital-signs")).to_contain_text("From the record: 2")
    for item, value in (
        ("vital_signs", "2"),
        ("ambulation", "1"),  # walks with assistance: 9 of 10...
        ("nausea_vomiting", "2"),
        ("pain", "1"),  # ...and moderate pain: 8 of 10
        ("bleeding", "2"),
        ("escort", "yes"),
    ):
        page.get_by_test_id(f"padss-{item}").select_option(value)
    _record(page, "Record discharge score")
    expect(page.get_by_test_id("discharge-status")).to_contain_text("Not yet")
    for item, value in (
        ("vital_signs", "2"),
        ("ambulation", "2"),
        ("nausea_vomiting", "2"),
        ("pain", "2"),
        ("bleeding", "2"),
        ("escort", "yes"),
    ):
        page.get_by_test_id(f"padss-{item}").select_option(value)
    _record(page, "Record discharge score")
    page.get_by_label("Escort name").fill("J. Okafor")
    page.get_by_label("Relation").fill("brother")
    _record(page, "Confirm escort")
    expect(page.get_by_test_id("discharge-status")).to_contain_text("open alert")
    page.get_by_label("Instructions").fill("Accompanied home; must not drive home today.")
    _record(page, "Discharge")
    expect(page.get_by_test_id("error")).to_contain_text("open alert")
    expect(page.get_by_test_id("state")).to_have_text("recovery")
    page.get_by_test_id("open-alert").get_by_label("Action taken").select_option("call_physician")
    _record(page, "Acknowledge")
    expect(page.get_by_test_id("discharge-status")).to_have_text("Discharge allowed.")
    page.get_by_label("Instructions").fill("Accompanied home; must not drive home today.")
    _record(page, "Discharge")
    expect(page.get_by_test_id("state")).to_have_text("discharged")
    expect(board.get_by_test_id(f"board-row-{sid}")).to_have_count(0, timeout=12_000)

    pdf = page.request.get(f"{base}/sessions/{sid}/summary.pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    Path("/tmp/ketacare-session-summary.pdf").write_bytes(pdf.body())

    # the patient's cumulative dose: the card on the chart, the page with its chart
    page.goto(f"{base}/patients/2")
    expect(page.get_by_test_id("cumulative-dose")).to_contain_text("racemic ketamine")
    page.get_by_role("link", name="Every session, course and the running total").click()
    expect(page.get_by_test_id("session-doses").locator("tbody tr")).to_have_count(1)
    expect(page.locator("#cumulative-chart")).to_have_attribute("data-rendered", "true")
    page.screenshot(path="/tmp/ketacare-cumulative-dose.png", full_page=True)
