"""An esketamine nasal spray session run at the chair in the browser; its Patient
Monitoring Form appears in the REMS queue, is completed with the answers the log does not
hold, marked ready and marked submitted.

The physician's plan is signed through the API. In the browser the nurse opens the session
at the chair, checks the patient in, records baseline vitals and the pre-dose checks with
the lot, records two devices, and charts vitals through the label's two-hour observation
(the live server's clock is moved on twenty minutes at a time, as the hours pass), then
the discharge score, the escort and the discharge. She finds the form due in the queue,
records the answers, marks it ready and submitted, and the queue shows it submitted. A
second test charts a session after the fact through the API.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, _prepare, login, screened
from plan_helpers import ESK_CHECKS, MONITORING_ORDER, PADSS_READY

pytestmark = pytest.mark.browser


def _signed_plan(base: str) -> int:
    """Patient 2 screened, consented and enrolled for esketamine nasal spray, and a signed,
    co-signed esketamine plan; the plan's id."""
    _prepare(base)
    with (
        _api(base, "nurse") as nurse,
        _api(base, "physician") as physician,
        _api(base, "physician2", "locum-cosigner-pw") as second,
    ):
        screened(nurse, physician, 2, molecule="esketamine", route="intranasal")
        plan = physician.post("/api/v1/patients/2/plans", json={"protocol": "esketamine-trd"})
        plan.raise_for_status()
        plan_id = plan.json()["id"]
        physician.post(
            f"/api/v1/plans/{plan_id}/sign",
            json={
                "monitoring_order": MONITORING_ORDER,
                "weight_confirmed": True,
                "reason": "site limits not configured",
            },
        ).raise_for_status()
        second.post(f"/api/v1/plans/{plan_id}/cosign").raise_for_status()
        return int(plan_id)


def _chart_session(base: str) -> int:
    plan_id = _signed_plan(base)
    with _api(base, "nurse") as nurse:
        start = datetime.now(UTC) - timedelta(days=2)
        opened = nurse.post(
            f"/api/v1/plans/{plan_id}/sessions",
            json={"session_number": 1, "at": start.isoformat()},
        )
        opened.raise_for_status()
        sid = int(opened.json()["id"])
        seq = opened.json()["last_seq"]

        def chart(minutes: int, event: dict[str, Any]) -> None:
            nonlocal seq
            at = (start + timedelta(minutes=minutes)).isoformat()
            r = nurse.post(
                f"/api/v1/sessions/{sid}/events",
                json={"expected_seq": seq, "event": {**event, "at": at}},
            )
            assert r.status_code == 201, r.text
            seq = r.json()["last_seq"]

        vitals = {"kind": "vitals", "hr_per_min": 72, "spo2_pct": 97, "rr_per_min": 14}
        chart(1, {"kind": "check_in"})
        chart(2, {**vitals, "sbp_mmhg": 122, "dbp_mmhg": 76})
        for item in ESK_CHECKS:
            chart(3, {"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot E7"})
        chart(5, {"kind": "self_administration", "devices": 2})
        chart(5, {"kind": "stop", "reason": "completed"})
        for minute in (20, 35, 45, 60, 75, 90, 105, 120, 135):
            chart(minute, {**vitals, "sbp_mmhg": 130, "dbp_mmhg": 80})
        chart(135, {"kind": "discharge_score", "answers": PADSS_READY})
        chart(135, {"kind": "escort_confirmed", "name": "J. Doe", "relation": "partner"})
        chart(136, {"kind": "discharge", "instructions": "no driving until tomorrow"})
    return sid


def _record(page: Any, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state("load")


def _vitals(page: Any, sbp: int, dbp: int) -> None:
    for name, value in (
        ("sbp_mmhg", sbp),
        ("dbp_mmhg", dbp),
        ("hr_per_min", 72),
        ("spo2_pct", 97),
        ("rr_per_min", 14),
    ):
        page.locator(f"input[name={name}]").fill(str(value))
    _record(page, "Record vitals")


def _run_at_the_chair(base: str, page: Any, clock: Any) -> int:
    """The nurse runs the session in the browser; the session's id."""
    plan_id = _signed_plan(base)
    login(page, base, "nurse")
    page.goto(f"{base}/plans/{plan_id}")
    page.get_by_test_id("open-chair").select_option(label="Chair 1")
    _record(page, "Open session at the chair")
    sid = int(page.url.rsplit("/", 1)[1])
    _record(page, "Check in")
    _vitals(page, 122, 76)
    for box in page.locator("input[name=item]").all():
        box.check()
    page.get_by_label("Lot number").fill("E7-2291")
    _record(page, "Record checks")
    expect(page.get_by_test_id("state")).to_have_text("pre dose checks")
    page.get_by_label("Devices").fill("2")
    _record(page, "Record dose given")
    page.get_by_label("Stop reason").select_option("completed")
    _record(page, "Stop")
    expect(page.get_by_test_id("state")).to_have_text("recovery")
    # the label's two hours pass: vitals every twenty minutes, the 40-minute reading
    # among them, discharge not allowed before the two hours are up
    for minute in range(20, 141, 20):
        clock.advance(20)
        page.reload()
        if minute == 100:
            expect(page.get_by_test_id("discharge-status")).to_contain_text("Not yet")
        _vitals(page, 134 if minute == 40 else 128, 82 if minute == 40 else 80)
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
    page.get_by_label("Escort name").fill("J. Doe")
    page.get_by_label("Relation").fill("partner")
    _record(page, "Confirm escort")
    expect(page.get_by_test_id("discharge-status")).to_have_text("Discharge allowed.")
    page.get_by_label("Instructions").fill("Accompanied home; no driving until tomorrow.")
    _record(page, "Discharge")
    expect(page.get_by_test_id("state")).to_have_text("discharged")
    return sid


def _complete_and_submit(page: Any, base: str, sid: int, *, dissociation_at: str | None) -> None:
    """On the form's page: the answers the log does not hold, ready, submitted by fax."""
    expect(page.get_by_test_id("form-missing")).to_contain_text("would have been ready to leave")
    answers = page.get_by_test_id("answers-form")
    answers.locator("input[name=provider_telephone]").fill("+31 20 555 0100")
    answers.locator("input[name=provider_email]").fill("nurse@clinic.example")
    for name in (
        "first_treatment",
        "concomitant_benzodiazepines",
        "concomitant_non_benzo_hypnotics",
        "concomitant_psychostimulants",
        "concomitant_maois",
        "concomitant_opioids",
        "respiratory_depression",
        "sedation",
    ):
        answers.locator(f"select[name={name}]").select_option("no")
    for name in ("vitals_acceptable_before", "vitals_acceptable_at_completion"):
        answers.locator(f"select[name={name}]").select_option("yes")
    # every question reads in words, not as the field's internal name
    labels = answers.locator("label").all_inner_texts()
    assert labels and not [t for t in labels if re.search(r"\b[a-z]+_[a-z_]+\b", t)], labels
    if dissociation_at is None:
        answers.locator("select[name=dissociation]").select_option("no")
    else:
        answers.locator("select[name=dissociation]").select_option("yes")
        answers.locator("input[name=dissociation_at]").fill(dissociation_at)
    answers.locator("input[name=ready_to_leave_min]").fill("90")
    answers.get_by_role("button", name="Save answers").click()
    expect(page.get_by_test_id("form-missing")).to_have_count(0)
    page.get_by_role("button", name="Mark ready").click()
    expect(page.get_by_test_id("form-status")).to_contain_text("(ready)")
    submitted = page.get_by_test_id("submitted-form")
    submitted.get_by_label("Submitted on").fill(datetime.now(UTC).date().isoformat())
    submitted.get_by_label("Route").select_option("fax")
    submitted.get_by_label("Confirmation reference").fill("FAX-4711")
    submitted.get_by_role("button", name="Mark submitted").click()
    expect(page.get_by_test_id("form-status")).to_contain_text("submitted")
    page.goto(f"{base}/rems/queue")
    expect(page.get_by_test_id(f"queue-{sid}")).to_contain_text("by fax, ref. FAX-4711")


def test_a_session_run_at_the_chair_is_queued_completed_and_submitted(
    live_server: Any, live_clock: Any, page: Any
) -> None:
    base = live_server.url
    sid = _run_at_the_chair(base, page, live_clock)
    page.goto(f"{base}/rems/queue")
    expect(page.get_by_test_id(f"queue-{sid}")).to_contain_text("due")
    page.get_by_test_id(f"queue-{sid}").get_by_role("link", name=f"session {sid}").click()
    items = page.get_by_test_id("form-items")
    # what the chair recorded: two devices, the lot, the blood pressure before the first
    # device, the reading at 40 minutes and the last before discharge
    expect(items).to_contain_text("56 mg (2 devices)")
    expect(items).to_contain_text("E7-2291")
    expect(items).to_contain_text("122/76")
    expect(items).to_contain_text("134/82")
    expect(items).to_contain_text("128/80")
    _complete_and_submit(page, base, sid, dissociation_at=None)


def test_the_form_is_queued_completed_and_marked_submitted(live_server: Any, page: Any) -> None:
    base = live_server.url
    sid = _chart_session(base)
    login(page, base, "nurse")
    page.goto(f"{base}/rems/queue")
    row = page.get_by_test_id(f"queue-{sid}")
    expect(row).to_contain_text("due")
    row.get_by_role("link", name=f"session {sid}").click()
    expect(page.get_by_test_id("form-items")).to_contain_text("56 mg (2 devices)")
    _complete_and_submit(page, base, sid, dissociation_at="11:05")
