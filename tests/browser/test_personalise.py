"""The Personalise view in Chromium: two levels entered, a recommendation accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, _prepare, login, screened
from plan_helpers import MONITORING_ORDER

pytestmark = pytest.mark.browser


def _esketamine_course(base: str, dosed: datetime) -> int:
    """Patient 3 screened and planned for esketamine spray; 56 mg taken at ``dosed``."""
    _prepare(base)  # creates physician2 (and screens patient 2, unused here)
    with (
        _api(base, "nurse") as nurse,
        _api(base, "physician") as physician,
        _api(base, "physician2", "locum-cosigner-pw") as second,
    ):
        screened(
            nurse,
            physician,
            3,
            molecule="esketamine",
            route="intranasal",
            blood_pressure=(118, 74),
        )
        plan = physician.post(
            "/api/v1/patients/3/plans", json={"protocol": "esketamine-trd"}
        ).json()
        physician.post(
            f"/api/v1/plans/{plan['id']}/sign",
            json={
                "monitoring_order": MONITORING_ORDER,
                "weight_confirmed": True,
                "reason": "site limits not configured",
            },
        )
        second.post(f"/api/v1/plans/{plan['id']}/cosign").raise_for_status()
        session = nurse.post(
            f"/api/v1/plans/{plan['id']}/sessions",
            json={"session_number": 1, "at": (dosed - timedelta(minutes=30)).isoformat()},
        ).json()
        events = [
            {"kind": "check_in"},
            {
                "kind": "vitals",
                "sbp_mmhg": 118,
                "dbp_mmhg": 74,
                "hr_per_min": 66,
                "spo2_pct": 99,
                "rr_per_min": 12,
            },
        ]
        events += [
            {"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot E7"}
            for item in (
                "fasting",
                "escort_arranged",
                "consent_current",
                "weight_current",
                "dose_verified",
                "medication_lot",
                "pulse_oximetry",
            )
        ]
        events.append({"kind": "self_administration", "devices": 2})
        seq = session["last_seq"]
        for i, event in enumerate(events):
            at = dosed - timedelta(minutes=len(events) - 1 - i)
            r = nurse.post(
                f"/api/v1/sessions/{session['id']}/events",
                json={"expected_seq": seq, "event": {**event, "at": at.isoformat()}},
            )
            assert r.status_code == 201, r.text
            seq = r.json()["last_seq"]
    return int(plan["id"])


def test_two_levels_to_an_accepted_recommendation(live_server: Any, page: Any) -> None:
    dosed = datetime.now(UTC) - timedelta(hours=5)
    plan_id = _esketamine_course(live_server.url, dosed)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, live_server.url, "physician")
    page.goto(f"{live_server.url}/plans/{plan_id}")
    page.get_by_role("link", name="Personalise").click()
    zone = ZoneInfo("Europe/Amsterdam")
    for hours, value in ((1, "45"), (4, "9")):
        page.get_by_label("Sampled at").fill(
            (dosed + timedelta(hours=hours)).astimezone(zone).strftime("%Y-%m-%dT%H:%M")
        )
        page.get_by_label("Analyte").select_option("plasma")
        page.get_by_label("Value (ng/mL)").fill(value)
        page.get_by_role("button", name="Add level").click()
        page.wait_for_load_state("load")
    expect(page.get_by_test_id("levels").locator("tbody tr")).to_have_count(2)
    assert page.get_by_test_id("personalise-problem").count() == 0, page.get_by_test_id(
        "personalise-problem"
    ).inner_text()
    page.wait_for_timeout(500)
    assert [e for e in errors if "Failed to load resource" not in e] == [], errors
    expect(page.locator("#fit-chart")).to_have_attribute("data-rendered", "true")
    page.get_by_label("Target AUC per dose (ng·h/mL)").fill("250")
    page.get_by_label("Route").select_option("intranasal")
    page.get_by_label("Every (h)").fill("84")
    page.get_by_role("button", name="Recommend").click()
    card = page.get_by_test_id("recommendation").first
    expect(card).to_contain_text("intranasal")
    card.get_by_role("button", name="Accept into a new plan version").click()
    expect(page.get_by_test_id("plan-status")).to_have_text("draft")
    expect(page.get_by_role("heading", level=1)).to_contain_text("version 2")
