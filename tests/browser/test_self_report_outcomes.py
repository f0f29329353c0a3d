"""A due PHQ-9 filled on a phone shows up on the clinician's chart, and item 9 alerts.

The demo patient (Maria Jansen, patient 1) has a baseline PHQ-9 of 18 three days ago and
one session given two days ago (charted after the fact). The clinician makes a PHQ-9
self-report link; the patient answers on a 390x844 phone with item 9 above 0 (total 7)
and sees the crisis resources. On a tablet the clinician's chart then shows the new
point in the panel's PHQ-9 chart and the updated status: 18 -> 7 is a 61% reduction from
a baseline above 9, so a PHQ-9 response (>= 50%), not a remission (7 is not below 5).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, add_second_physician, login, screened
from live_server import LiveServer
from plan_helpers import IV_CHECKS, MONITORING_ORDER

pytestmark = pytest.mark.browser

ZONE = "Europe/Amsterdam"
CRISIS = "Crisis line (test clinic): call 0800-0113, day and night."
OPTIONS = {0: "Not at all", 1: "Several days", 2: "More than half the days", 3: "Nearly every day"}
ANSWERS = [1, 1, 2, 1, 0, 1, 0, 0, 1]  # total 7; item 9 = "several days"
BASELINE = [2, 2, 2, 2, 2, 2, 3, 3, 0]  # total 18, item 9 = 0
CHECKS = IV_CHECKS
TABLET = {"width": 820, "height": 1180}


@pytest.fixture
def outcome_server(sqlite_template: Path, tmp_path: Path) -> Any:
    from ketacare.app import create_app
    from ketacare.infra.settings import load_settings

    db = tmp_path / "o.sqlite3"
    shutil.copy(sqlite_template, db)
    app = create_app(
        load_settings(
            database_url=f"sqlite:///{db}",
            var_dir=tmp_path / "var",
            secret_key="o" * 40,
            timezone=ZONE,
            outcome_loss_confirmations=2,  # the test clinic's choice (no published number)
            crisis_message=CRISIS,
            totp_required_roles="",  # logins without a code (test_totp_login checks them)
        )
    )
    with LiveServer(app) as server:
        server.app = app  # type: ignore[attr-defined]
        yield server
    app.state.engine.dispose()


def _history(server: Any) -> None:
    """Baseline PHQ-9 three days ago, then one session given two days ago, for patient 1."""
    from ketacare.clinic.assessments.service import record_assessment
    from ketacare.clinic.audit.service import SYSTEM

    now = datetime.now(UTC)
    with server.app.state.ctx.sessions() as session:
        record_assessment(
            session=session,
            actor=SYSTEM,
            patient_id=1,
            instrument_id="phq9",
            answers=BASELINE,
            context="intake",
            source="staff",
            now=now - timedelta(days=3),
        )
        session.commit()
    base = server.url
    add_second_physician(base)
    with (
        _api(base, "nurse") as nurse,
        _api(base, "physician") as physician,
        _api(base, "physician2", "locum-cosigner-pw") as second,
    ):
        screened(nurse, physician, 1)
        plan = physician.post(
            "/api/v1/patients/1/plans",
            json={"protocol": "crps-outpatient", "bag_mg": 100, "bag_ml": 100},
        )
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
        start = now - timedelta(days=2)
        opened = nurse.post(
            f"/api/v1/plans/{plan_id}/sessions",
            json={"session_number": 1, "at": start.isoformat()},
        )
        opened.raise_for_status()
        session_id = opened.json()["id"]
        seq = opened.json()["last_seq"]

        def chart(minutes: int, event: dict[str, Any]) -> None:
            nonlocal seq
            at = (start + timedelta(minutes=minutes)).isoformat()
            r = nurse.post(
                f"/api/v1/sessions/{session_id}/events",
                json={"expected_seq": seq, "event": {**event, "at": at}},
            )
            assert r.status_code == 201, r.text
            seq = r.json()["last_seq"]

        chart(1, {"kind": "check_in"})
        chart(
            2,
            {
                "kind": "vitals",
                "sbp_mmhg": 124,
                "dbp_mmhg": 78,
                "hr_per_min": 70,
                "spo2_pct": 98,
                "rr_per_min": 14,
            },
        )
        for item in CHECKS:
            chart(3, {"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K3"})
        chart(5, {"kind": "start_infusion", "rate_mg_per_h": 23.8})  # 68 kg x 0.35 mg/kg/h
        chart(65, {"kind": "side_effects", "dissociation": True})
        chart(125, {"kind": "stop", "reason": "completed"})  # 2 h: 47.6 mg


def _phq9_points(page: Any) -> list[float]:
    return list(
        page.evaluate(
            """() => Chart.getChart(document.getElementById('outcome-chart-phq9'))
                   .data.datasets.find(d => d.label === 'PHQ-9').data.map(p => p.y)"""
        )
    )


def test_self_report_reaches_the_chart_panel_and_alerts(
    outcome_server: Any, phone: Any, browser: Any
) -> None:
    base = outcome_server.url
    _history(outcome_server)
    tablet = browser.new_context(viewport=TABLET, is_mobile=True, has_touch=True)
    desk = tablet.new_page()
    desk.set_default_timeout(10_000)
    login(desk, base, "physician")
    desk.goto(f"{base}/patients/1")
    canvas = desk.locator("#outcome-chart-phq9")
    expect(canvas).to_have_attribute("data-rendered", "true")
    assert _phq9_points(desk) == [18]
    status = desk.get_by_test_id("outcome-status")
    expect(status).to_have_text("Status: no assessable outcome yet")
    bars = desk.evaluate(
        """() => Chart.getChart(document.getElementById('outcome-chart-phq9'))
               .data.datasets.find(d => d.type === 'bar').data.map(p => p.y)"""
    )
    assert bars == pytest.approx([47.6])  # 23.8 mg/h for 2 h

    # the clinician makes a PHQ-9 link (the form pre-ticks PHQ-9 and the pain NRS)
    desk.get_by_role("link", name="Questionnaires", exact=True).click()
    desk.get_by_label("Pain NRS").uncheck()
    desk.get_by_role("button", name="Create link").click()
    url = desk.get_by_test_id("self-report-url").inner_text().strip()
    assert url.startswith(f"{base}/r/")

    # the patient, on a phone, without logging in
    phone.goto(url)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Your questionnaires")
    for number, value in enumerate(ANSWERS, start=1):
        phone.locator(f"#item-q{number} label.option", has_text=OPTIONS[value]).first.click()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.get_by_role("button", name="Submit").click()
    expect(phone.get_by_test_id("saved")).to_have_text("Your PHQ-9 answers were saved.")
    alert = phone.get_by_test_id("safety-alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Your care team (Dr Priya Physician) has been alerted")
    expect(alert.locator(".crisis")).to_have_text(CRISIS)

    # the chart on the tablet: the new point and the new status
    with _api(base, "physician") as api:
        rows = api.get("/api/v1/patients/1/assessments", params={"instrument": "phq9"}).json()
    newest = max(rows, key=lambda r: r["completed_at"])
    assert newest["total"] == 7 and newest["source"] == "patient"
    when = datetime.fromisoformat(newest["completed_at"]).astimezone(ZoneInfo(ZONE))
    day = f"{when.day} {when:%B %Y}"
    desk.goto(f"{base}/patients/1")
    expect(canvas).to_have_attribute("data-rendered", "true")
    assert _phq9_points(desk) == [18, 7]
    expect(status).to_have_text(
        f"Status: responder since {day} (PHQ-9 response); booster threshold not set for PHQ-9"
    )
    # the chart fits the tablet, and hovering the new point tells what it is
    assert desk.evaluate("document.documentElement.scrollWidth") <= TABLET["width"]
    canvas.scroll_into_view_if_needed()
    point = desk.evaluate(
        """() => { const c = Chart.getChart(document.getElementById('outcome-chart-phq9'));
                   const i = c.data.datasets.findIndex(d => d.label === 'PHQ-9');
                   const el = c.getDatasetMeta(i).data[1]; return {x: el.x, y: el.y}; }"""
    )
    canvas.hover(position={"x": point["x"], "y": point["y"]})
    desk.wait_for_function(
        "() => Chart.getChart(document.getElementById('outcome-chart-phq9'))"
        ".tooltip.getActiveElements().length > 0"
    )
    tip = desk.evaluate(
        """() => { const t = Chart.getChart(document.getElementById('outcome-chart-phq9')).tooltip;
                   return {title: t.title, body: t.body.map(b => b.lines.join(' '))}; }"""
    )
    assert tip["title"] == [f"{when.day} {when:%b %Y %H:%M}"]
    assert (
        "PHQ-9 7 · after session 1 · -61% from baseline · meets PHQ-9 response · self-report"
        in tip["body"]
    )

    # the responsible clinician sees the item-9 alert
    expect(desk.locator("nav .badge:not(.behind)")).to_have_text("1")
    desk.get_by_label("Main").get_by_role("link", name="Alerts").click()
    expect(desk.get_by_test_id("alert-phq9_item9_positive")).to_contain_text("Jansen, Maria")
    tablet.close()
