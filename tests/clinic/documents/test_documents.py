"""The clinic's PDF documents, read back as a reader sees them (poppler's pdftotext).

One course of care is recorded through the API: a patient with diagnoses, medications
and an allergy, PHQ-9 answers with item 9 above 0 (one alert acknowledged, two left
open), pain scores before and after, and one infusion session with a premedication, a
blood-pressure alert acknowledged at the chair, side effects, a discharge score and the
discharge. The session summary and the progress report must say all of it, in clinical
words, with the patient and the page on every page and nothing past the page's edge.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import REQUIRE_ALL
from pdf_text import (
    every_page_names_the_patient,
    flat,
    ink_outside_the_margins,
    words_outside_the_margins,
)
from plan_helpers import (
    IV_CHECKS,
    MONITORING_ORDER,
    _signed,
    esketamine_course_with_one_dose,
    record_event,
)

# The test clinic's own numbers (no published source gives them): an alert above 160 mmHg
# systolic, vitals every 15 min, 60 min of observation after dosing (the plan's order asks
# for 120 min, and the longer holds).
POLICY = """
[monitoring]
vitals_interval_min = 15
observation_min = 60

[thresholds]
sbp_mmhg = { high = 160 }
"""
PHQ9_ITEM9 = [1, 1, 2, 1, 0, 1, 0, 0, 1]  # total 7, item 9 = 1 ("several days")
#: long unbroken words, as a scanner or another system pastes them: they must wrap, not run
#: off the page (a GS1 DataMatrix scan of a vial; an out-of-hours call reference)
SCAN = "0109501101020917172512311047110815" * 3
CALL_REFERENCE = "OOH" + "7F3A9C2E4B1D8F6A0C5E" * 4

pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None and not REQUIRE_ALL,
    reason="pdftotext not installed (Debian package poppler-utils)",
)


@pytest.fixture
def course(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, tmp_path: Path, login_api: Any
) -> dict[str, Any]:
    settings = app.state.ctx.settings
    policy = tmp_path / "session-policy.toml"
    policy.write_text(POLICY)
    settings.session_policy_file = policy
    settings.clinic_name = "Riverside Pain Clinic"
    settings.clinic_address = "12 Harbour Road; 1011 AB Amsterdam"
    settings.clinic_phone = "+31 20 555 0100"
    settings.outcome_loss_confirmations = 2
    team, pid = clinic["team"], clinic["pid"]
    nurse, physician = team["nurse"], team["physician"]
    for path, body in (
        ("conditions", {"icd10_code": "M79.7"}),
        ("medications", {"name": "pregabalin", "dose_text": "150 mg twice daily"}),
        ("allergies", {"substance": "penicillin", "reaction": "rash", "severity": "moderate"}),
    ):
        r = client.post(f"/api/v1/patients/{pid}/{path}", headers=physician, json=body)
        assert r.status_code == 201, r.text
    client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=nurse,
        json={"instrument": "nrs_pain", "answers": [8]},
    ).raise_for_status()
    r = client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=nurse,
        json={"instrument": "phq9", "answers": PHQ9_ITEM9},
    )
    [first] = r.json()["alerts"]
    client.post(
        f"/api/v1/alerts/{first['id']}/acknowledge",
        headers=physician,
        json={
            "action": f"phoned the patient; C-SSRS screener done, low risk; call {CALL_REFERENCE}"
        },
    ).raise_for_status()

    # the session (the clock starts at 10:00 UTC, 11:00 in Amsterdam)
    order = {
        k: v for k, v in MONITORING_ORDER.items() if k not in ("sbp_high", "vitals_interval_min")
    }
    plan = _signed(client, clinic, order=order)
    sid = client.post(
        f"/api/v1/plans/{plan['id']}/sessions", headers=nurse, json={"session_number": 1}
    ).json()["id"]

    def post(event: dict[str, Any]) -> dict[str, Any]:
        return record_event(client, nurse, sid, event)

    vitals = {"kind": "vitals", "sbp_mmhg": 124, "dbp_mmhg": 80, "hr_per_min": 70}
    post({"kind": "check_in"})
    post({**vitals, "spo2_pct": 98, "rr_per_min": 14})
    for item in IV_CHECKS:
        detail = f"lot K9, scanned {SCAN}" if item == "medication_lot" else ""
        post({"kind": "pre_dose_check", "item": item, "ok": True, "detail": detail})
    post(
        {
            "kind": "medication",
            "drug": "ondansetron",
            "dose": "4 mg",
            "route": "IV",
            "purpose": "premedication",
        }
    )
    clock.now += timedelta(minutes=5)  # 10:05
    post({"kind": "start_infusion", "rate_mg_per_h": 24.5})
    clock.now += timedelta(minutes=30)  # 10:35
    [alert] = post({**vitals, "sbp_mmhg": 172, "dbp_mmhg": 95, "hr_per_min": 88})["open_alerts"]
    login_page_pdf = _summary(client, sid, login_api)
    clock.now += timedelta(minutes=5)  # 10:40
    post({**vitals, "sbp_mmhg": 168, "dbp_mmhg": 92})
    post(
        {
            "kind": "acknowledge_alert",
            "alert_id": alert["id"],
            "action": "reduce_rate",
            "note": "physician informed",
        }
    )
    post({"kind": "rate_change", "rate_mg_per_h": 20, "reason": "blood pressure"})
    clock.now += timedelta(hours=1)  # 11:40
    post({"kind": "side_effects", "nausea": True, "dissociation": True, "sedation_moaas": 4})
    clock.now += timedelta(hours=1)  # 12:40
    post({"kind": "stop", "reason": "completed"})
    clock.now += timedelta(minutes=5)
    post({**vitals, "sbp_mmhg": 126, "spo2_pct": 98, "rr_per_min": 14})
    clock.now += timedelta(minutes=15)  # 13:00
    answers = dict.fromkeys(("vital_signs", "ambulation", "nausea_vomiting", "pain"), 2)
    post({"kind": "discharge_score", "answers": {**answers, "bleeding": 2, "escort": True}})
    post({"kind": "escort_confirmed", "name": "A. Friend", "relation": "friend"})
    clock.now += timedelta(minutes=105)  # 14:45, 125 min after the end of dosing (120 ordered)
    post(
        {
            "kind": "discharge",
            "instructions": "no driving today; call the clinic if unwell",
        }
    )

    # follow-up: two more PHQ-9 answers with item 9 above 0, left open; pain down to 4
    clock.now = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    client.cookies.clear()  # the page login of the morning has expired
    nurse = login_api("nurse")
    for answers in ([4], PHQ9_ITEM9):
        client.post(
            f"/api/v1/patients/{pid}/assessments",
            headers=nurse,
            json={"instrument": "nrs_pain" if answers == [4] else "phq9", "answers": answers},
        ).raise_for_status()
    clock.now += timedelta(days=1)
    client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=login_api("nurse"),  # yesterday's token has expired
        json={"instrument": "phq9", "answers": PHQ9_ITEM9},
    ).raise_for_status()
    return {"pid": pid, "sid": sid, "during": login_page_pdf, "team": team}


def _summary(client: Any, sid: int, login_api: Any) -> bytes:
    from conftest import page_login

    page_login(client, "nurse")
    r = client.get(f"/sessions/{sid}/summary.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    return bytes(r.content)


def _patient(client: Any, course: dict[str, Any], login_api: Any) -> dict[str, Any]:
    """The patient as the API shows it (a new token: the course took days)."""
    r = client.get(f"/api/v1/patients/{course['pid']}", headers=login_api("physician"))
    return dict(r.json()["patient"])


def test_the_session_summary_says_what_happened_at_the_chair(
    client: Any, course: dict[str, Any], login_page: Any, login_api: Any, tmp_path: Path
) -> None:
    login_page("nurse")
    pdf = client.get(f"/sessions/{course['sid']}/summary.pdf").content
    (tmp_path / "session-summary.pdf").write_bytes(pdf)
    text = flat(pdf)
    # letterhead from the site settings
    assert "Riverside Pain Clinic" in text and "12 Harbour Road" in text
    assert "1011 AB Amsterdam" in text and "+31 20 555 0100" in text
    # 24.5 mg/h from 11:05 to 11:40 (35 min) = 14.29 mg, then 20 mg/h for 2 h = 40 mg:
    # 54.29 mg in all, 0.78 mg/kg at 70 kg
    assert "54.3 mg (0.78 mg/kg at 70 kg)" in text
    # times in the clinic's zone (UTC+1 in March), the zone named
    assert "Europe/Amsterdam" in text
    assert "started 2 Mar 2026 11:05, ended 2 Mar 2026 13:40 (completed)" in text
    # the premedication, the alert and its acknowledgement, the side effects
    assert "ondansetron 4 mg IV premedication" in text
    assert "Systolic blood pressure (mmHg) 172 is above the monitoring order limit 160" in text
    assert "crossed 2 times; latest 168 mmHg at 11:40" in text
    assert "acknowledged by nurse at 11:40; action: reduce rate (physician informed)" in text
    assert "OPEN" not in text
    assert "nausea, dissociation" in text
    # the discharge score item by item: five items at 2 points, 10 of 10
    assert re.search(r"Ambulation Steady gait, no dizziness \(or at pre-session level\) 2\b", text)
    assert "Total Discharge criteria met (9 or more) 10 / 10" in text
    assert "Responsible adult present to accompany the patient home yes (not scored)" in text
    assert "answers={" not in text and "vital_signs" not in text
    # the discharge: when, by whom, to whom
    assert "Discharged 2 Mar 2026 15:45 by nurse" in text
    assert "no driving today; call the clinic if unwell" in text
    assert "A. Friend, friend (confirmed by nurse)" in text
    patient = _patient(client, course, login_api)
    every_page_names_the_patient(pdf, f"{patient['family_name'].upper()}, Plan", patient["mrn"])
    assert words_outside_the_margins(pdf) == []
    assert ink_outside_the_margins(pdf, tmp_path / "pages") == []


def test_the_summary_printed_during_the_session_shows_the_open_alert(
    course: dict[str, Any], tmp_path: Path
) -> None:
    text = flat(course["during"])
    assert "1 alert not acknowledged" in text
    assert "OPEN: not acknowledged" in text
    assert "still running at printing" in text
    # 24.5 mg/h for 30 min
    assert "12.3 mg (0.18 mg/kg at 70 kg)" in text  # 12.25 mg, 0.175 mg/kg: half up
    assert words_outside_the_margins(course["during"]) == []
    assert ink_outside_the_margins(course["during"], tmp_path / "pages") == []


def test_the_progress_report_lists_the_record_and_every_safety_alert(
    client: Any, course: dict[str, Any], login_page: Any, login_api: Any, tmp_path: Path
) -> None:
    login_page("physician")
    r = client.get(f"/patients/{course['pid']}/report.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    pdf = r.content
    (tmp_path / "progress-report.pdf").write_bytes(pdf)
    text = flat(pdf)
    assert "Riverside Pain Clinic" in text
    assert "M79.7 Fibromyalgia" in text
    assert "pregabalin 150 mg twice daily" in text
    assert "penicillin rash moderate" in text
    # three PHQ-9 item 9 alerts: two open, one acknowledged by the physician with the action
    assert text.count("answered above 0: assess suicide risk now with the C-SSRS screener") == 3
    assert "2 safety alerts open" in text
    assert text.count("OPEN: not acknowledged") == 2
    assert "phoned the patient; C-SSRS screener done, low risk" in text
    # the session's blood-pressure alert, acknowledged at the chair
    assert "at the chair: reduce rate (physician informed)" in text
    # the session given and its dose; pain 8 -> 4 (a 50% reduction)
    assert "54.3 mg" in text and "responder since" in text
    assert "nausea" in text
    patient = _patient(client, course, login_api)
    every_page_names_the_patient(pdf, f"{patient['family_name'].upper()}, Plan", patient["mrn"])
    assert words_outside_the_margins(pdf) == []
    assert ink_outside_the_margins(pdf, tmp_path / "pages") == []


def test_the_margin_checks_catch_a_line_past_the_page_edge(tmp_path: Path) -> None:
    """The checks themselves: text or a rule set past the right margin is reported."""
    from weasyprint import HTML

    page = "<style>@page { size: A4; margin: 15mm }</style>"
    text = page + "<p style='white-space: nowrap'>" + "overflowing " * 40 + "</p><p>fine</p>"
    found = words_outside_the_margins(HTML(string=text).write_pdf())
    assert found and all("'ove" in f for f in found)
    rule = page + "<div style='width: 110%; border-bottom: 1pt solid black'></div>"
    [found] = ink_outside_the_margins(HTML(string=rule).write_pdf(), tmp_path / "rule")
    assert found.startswith("page-1: ink in the margin from x 5")  # the right margin
    fine = page + "<div style='width: 100%; border-bottom: 1pt solid black'></div>"
    assert ink_outside_the_margins(HTML(string=fine).write_pdf(), tmp_path / "fine") == []


def test_a_nasal_spray_session_in_recovery(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_page: Any, tmp_path: Path
) -> None:
    """An esketamine session (devices, no infusion) printed in recovery: two 28 mg devices."""
    from sqlalchemy import select

    from ketacare.clinic.sessions.orm import DosingSession

    plan_id = esketamine_course_with_one_dose(client, clinic["team"], clock)
    with app.state.ctx.sessions() as session:
        sid = session.scalar(select(DosingSession.id).where(DosingSession.plan_id == plan_id))
    login_page("nurse")
    pdf = client.get(f"/sessions/{sid}/summary.pdf").content
    (tmp_path / "nasal-summary.pdf").write_bytes(pdf)
    text = flat(pdf)
    assert "esketamine" in text and "dose self-administered: 2 device(s)" in text
    assert "56.0 mg (0.80 mg/kg at 70 kg)" in text  # 2 x 28 mg at 70 kg
    assert "Not discharged" in text and "No discharge score was recorded." in text
    assert words_outside_the_margins(pdf) == []
    assert ink_outside_the_margins(pdf, tmp_path / "pages") == []


def test_the_report_command_writes_the_same_document(tmp_path: Path) -> None:
    """``ketacare report patient`` typesets the report with the letterhead of the settings."""
    import os
    import sys

    env = {
        **os.environ,
        "KETACARE_VAR_DIR": str(tmp_path),
        "KETACARE_DATABASE_URL": "",
        "KETACARE_CLINIC_NAME": "Harbour Pain Service",
        "KETACARE_TIMEZONE": "Europe/Amsterdam",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ketacare.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            stdin=subprocess.DEVNULL,
        )

    assert cli("db", "upgrade").returncode == 0
    assert cli("demo", "--no-history").returncode == 0  # the accounts and eight patients
    out = tmp_path / "report.pdf"
    r = cli("report", "patient", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    pdf = out.read_bytes()
    text = flat(pdf)
    assert "Harbour Pain Service" in text and "Progress report" in text
    every_page_names_the_patient(pdf, "JANSEN, ", "KC000001")
    assert words_outside_the_margins(pdf) == []
    assert ink_outside_the_margins(pdf, tmp_path / "pages") == []
    refused = cli("report", "patient", "1", "--out", str(tmp_path / "report.txt"))
    assert refused.returncode == 2 and "--out must name a .pdf file" in refused.stderr


def test_the_same_html_is_typeset_once_and_the_cache_stays_bounded() -> None:
    """A PDF is a function of its HTML: the same HTML again is served from memory (the
    very bytes), other HTML is typeset, and the oldest is dropped past the bound."""
    from ketacare.clinic.documents.render import TypesetCache

    typeset: list[str] = []

    def fake(html: str) -> bytes:
        typeset.append(html)
        return f"%PDF {len(typeset)}".encode()

    cache = TypesetCache(size=2)
    first = cache.get("<p>consent A</p>", fake)
    assert cache.get("<p>consent A</p>", fake) is first and typeset == ["<p>consent A</p>"]
    cache.get("<p>consent B</p>", fake)
    cache.get("<p>consent C</p>", fake)  # A is the oldest: dropped
    assert cache.get("<p>consent A</p>", fake) == b"%PDF 4" and len(typeset) == 4
    assert (cache.hits, cache.misses) == (1, 4)


def test_a_document_rendered_twice_is_the_same_pdf() -> None:
    from dataclasses import replace
    from zoneinfo import ZoneInfo

    from ketacare.clinic.documents import Document, Identity, Letterhead, render_pdf
    from ketacare.clinic.documents.render import TYPESET

    document = Document(
        template="documents/base.html",
        title="Cache check",
        letterhead=Letterhead("Test clinic"),
        patient=Identity(
            family_name="Cohort",
            given_name="A",
            mrn="CC-1",
            birth_date=datetime(1970, 1, 1).date(),
            sex="female",
        ),
        zone=ZoneInfo("Europe/Amsterdam"),
        generated_at=datetime(2026, 3, 2, 10, tzinfo=UTC),
        values={},
    )
    hits = TYPESET.hits
    pdf = render_pdf(document)
    assert pdf.startswith(b"%PDF") and render_pdf(document) == pdf
    assert TYPESET.hits == hits + 1
    # printed a minute later, the footer's time differs: typeset anew
    later = replace(document, generated_at=datetime(2026, 3, 2, 10, 1, tzinfo=UTC))
    assert render_pdf(later) != pdf and TYPESET.hits == hits + 1
