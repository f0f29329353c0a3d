"""An esketamine nasal spray session's Patient Monitoring Form appears in the REMS queue,
is completed with the answers the log does not hold, marked ready and marked submitted.

The nurse charts the session of demo patient 2 two days ago (after the fact, through the
API): baseline vitals, the pre-dose checks with the lot, two devices, vitals every 15
minutes, discharge. In the browser she finds the form due in the queue, records the
answers, marks it ready and submitted, and the queue shows it submitted.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, _prepare, login, screened
from plan_helpers import ESK_CHECKS, MONITORING_ORDER

pytestmark = pytest.mark.browser


def _chart_session(base: str) -> int:
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
        padss = {
            "vital_signs": 2,
            "ambulation": 2,
            "nausea_vomiting": 2,
            "pain": 2,
            "bleeding": 2,
            "escort": True,
        }
        chart(135, {"kind": "discharge_score", "answers": padss})
        chart(135, {"kind": "escort_confirmed", "name": "J. Doe", "relation": "partner"})
        chart(136, {"kind": "discharge", "instructions": "no driving until tomorrow"})
    return sid


def test_the_form_is_queued_completed_and_marked_submitted(live_server: Any, page: Any) -> None:
    base = live_server.url
    sid = _chart_session(base)
    login(page, base, "nurse")
    page.goto(f"{base}/rems/queue")
    row = page.get_by_test_id(f"queue-{sid}")
    expect(row).to_contain_text("due")
    row.get_by_role("link", name=f"session {sid}").click()
    expect(page.get_by_test_id("form-items")).to_contain_text("56 mg (2 devices)")
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
    answers.locator("select[name=dissociation]").select_option("yes")
    answers.locator("input[name=dissociation_at]").fill("11:05")
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
