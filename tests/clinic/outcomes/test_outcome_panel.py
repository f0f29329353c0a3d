"""The chart's outcome panel: numbers from the record, checked by hand; permissions; audit.

The clinic's clock is Europe/Amsterdam (CET, UTC+1 in March 2026). Scores and sessions go
through the real API. The course, by hand:

- 2 Mar 10:00 UTC: pain NRS 8, PHQ-9 18, BPI-SF (interference mean 4.0): the baselines.
- 2 Mar 10:30-12:30 UTC: session 1, 24.5 mg/h for 2 h = 49 mg; dissociation present.
- 3 Mar 23:30 UTC (4 Mar 00:30 in Amsterdam): pain 5 = -3, -37.5%: pain >=30% met.
- 5 Mar 09:00-10:00 UTC: session 2, 24.5 mg/h for 1 h = 24.5 mg; dissociation absent.
- 6 Mar 10:00 UTC: pain 3 = -5, -62.5% (>=30% and >=50%); PHQ-9 4 = -14, -77.8%:
  response (>=50% from a baseline above 9) and remission (below 5).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from plan_helpers import IV_CHECKS, _signed

CHECKS = IV_CHECKS
# PHQ-9 items q1..q9 (0-3 each); item 9 stays 0 so no safety alert is raised here
PHQ9_18 = [2, 2, 2, 2, 2, 2, 3, 3, 0]
PHQ9_4 = [1, 1, 1, 1, 0, 0, 0, 0, 0]
# BPI-SF: severity items, then the seven interference items (mean (4+5+3+6+2+4+4)/7 = 4.0)
BPI = {
    "worst": 8,
    "least": 4,
    "average": 6,
    "now": 6,
    "general_activity": 4,
    "mood": 5,
    "walking": 3,
    "work": 6,
    "relations": 2,
    "sleep": 4,
    "enjoyment": 4,
}


def _at(clock: Any, text: str) -> None:
    clock.now = datetime.fromisoformat(text).replace(tzinfo=UTC)


def _score(client: Any, headers: Any, pid: int, instrument: str, answers: Any) -> int:
    r = client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=headers,
        json={"instrument": instrument, "answers": answers},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["assessment"]["id"])


def _event(client: Any, headers: Any, sid: int, event: dict[str, Any]) -> dict[str, Any]:
    seq = client.get(f"/api/v1/sessions/{sid}", headers=headers).json()["last_seq"]
    r = client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=headers,
        json={"expected_seq": seq, "event": event},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _session(
    client: Any,
    login_api: Any,
    clock: Any,
    plan_id: int,
    number: int,
    start: str,
    hours: int,
    dissociation: bool,
) -> dict[str, Any]:
    _at(clock, start)
    nurse = login_api("nurse")
    r = client.post(
        f"/api/v1/plans/{plan_id}/sessions", headers=nurse, json={"session_number": number}
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    _event(client, nurse, sid, {"kind": "check_in"})
    _event(
        client,
        nurse,
        sid,
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
        _event(
            client,
            nurse,
            sid,
            {"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K7"},
        )
    _event(client, nurse, sid, {"kind": "start_infusion", "rate_mg_per_h": 24.5})
    clock.now = clock.now.replace(hour=clock.now.hour + hours)
    _event(client, nurse, sid, {"kind": "side_effects", "dissociation": dissociation})
    return _event(client, nurse, sid, {"kind": "stop", "reason": "completed"})


@pytest.fixture
def course(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_api: Any
) -> dict[str, Any]:
    pid = clinic["pid"]
    _at(clock, "2026-03-02T10:00:00")
    nurse = clinic["team"]["nurse"]
    ids = {
        "pain0": _score(client, nurse, pid, "nrs_pain", [8]),
        "phq0": _score(client, nurse, pid, "phq9", PHQ9_18),
        "bpi0": _score(client, nurse, pid, "bpi_sf", BPI),
    }
    plan = _signed(client, clinic)
    first = _session(
        client, login_api, clock, plan["id"], 1, "2026-03-02T10:30:00", 2, dissociation=True
    )
    assert first["delivered_mg"] == pytest.approx(49.0)
    _at(clock, "2026-03-03T23:30:00")
    ids["pain1"] = _score(client, login_api("nurse"), pid, "nrs_pain", [5])
    second = _session(
        client, login_api, clock, plan["id"], 2, "2026-03-05T09:00:00", 1, dissociation=False
    )
    assert second["delivered_mg"] == pytest.approx(24.5)
    _at(clock, "2026-03-06T10:00:00")
    nurse = login_api("nurse")
    ids["pain2"] = _score(client, nurse, pid, "nrs_pain", [3])
    ids["phq1"] = _score(client, nurse, pid, "phq9", PHQ9_4)
    return {"pid": pid, "ids": ids, "plan": plan}


def _panel(client: Any, headers: Any, pid: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/patients/{pid}/outcomes", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _measure(panel: dict[str, Any], measure: str) -> dict[str, Any]:
    return next(m for m in panel["measures"] if m["id"] == measure)


EXPECTED_STATUS = (
    "responder since 4 March 2026 (pain >=30%); "
    "responder since 6 March 2026 (pain >=50%); "
    "responder since 6 March 2026 (PHQ-9 response); "
    "PHQ-9 remission since 6 March 2026; "
    "booster threshold not set for pain (NRS); "
    "booster threshold not set for PHQ-9"
)


def test_panel_numbers_match_the_hand_computation(
    app: Any, client: Any, course: dict[str, Any], login_api: Any
) -> None:
    app.state.ctx.settings.outcome_loss_confirmations = 2
    panel = _panel(client, login_api("physician"), course["pid"])
    ids = course["ids"]

    pain = _measure(panel, "nrs_pain")
    assert [p["assessment_id"] for p in pain["points"]] == [
        ids["pain0"],
        ids["pain1"],
        ids["pain2"],
    ]
    assert [p["value"] for p in pain["points"]] == [8, 5, 3]
    assert [p["phase"] for p in pain["points"]] == ["baseline", "follow_up", "follow_up"]
    assert [p["after_session"] for p in pain["points"]] == [0, 1, 2]
    assert [p["change"] for p in pain["points"]] == [0, -3, -5]
    assert [p["change_percent"] for p in pain["points"]] == pytest.approx([0, -37.5, -62.5])
    assert [p["met"] for p in pain["points"]] == [[], ["pain-30"], ["pain-30", "pain-50"]]
    assert pain["points"][1]["local"] == "4 Mar 2026 00:30"  # 23:30 UTC is past midnight in CET
    assert pain["baseline"] == 8 and pain["baseline_local"] == "2 Mar 2026 11:00"
    assert (pain["scale_min"], pain["scale_max"]) == (0, 10)
    lines = {d["id"]: d["line"] for d in pain["definitions"]}
    assert lines == pytest.approx({"pain-30": 5.6, "pain-50": 4.0})  # 8 x 0.7, 8 x 0.5

    phq = _measure(panel, "phq9")
    assert [p["value"] for p in phq["points"]] == [18, 4]
    assert phq["points"][1]["change"] == -14
    assert phq["points"][1]["change_percent"] == pytest.approx(-14 / 18 * 100)
    assert phq["points"][1]["met"] == ["phq9-response", "phq9-remission"]
    assert {d["id"]: d["line"] for d in phq["definitions"]} == {
        "phq9-response": 9.0,  # 50% below 18
        "phq9-remission": 5.0,  # a score below 5
    }
    assert (phq["scale_min"], phq["scale_max"]) == (0, 27)

    bpi = _measure(panel, "bpi_interference")
    assert [p["value"] for p in bpi["points"]] == [pytest.approx(4.0)]
    assert bpi["definitions"] == []  # no sourced response definition for the interference

    for empty, name in (("gad7", "GAD-7"), ("pgic", "PGIC")):
        m = _measure(panel, empty)
        assert m["points"] == [] and m["note"] == f"No {name} score recorded."

    assert [(s["number"], s["plan_session"]) for s in panel["sessions"]] == [(1, 1), (2, 2)]
    assert [s["dose_mg"] for s in panel["sessions"]] == pytest.approx([49.0, 24.5])
    assert [s["local"] for s in panel["sessions"]] == ["2 Mar 2026 11:30", "5 Mar 2026 10:00"]
    assert [s["dissociation"] for s in panel["sessions"]] == [True, False]
    assert panel["dissociation"]["recorded"] == 2 and panel["dissociation"]["present"] == 1
    assert "no dissociation score" in panel["dissociation"]["note"]

    assert panel["status"]["computed"] is True
    assert panel["status"]["text"] == EXPECTED_STATUS


def test_without_the_clinic_setting_the_status_says_so(
    client: Any, course: dict[str, Any], login_api: Any
) -> None:
    panel = _panel(client, login_api("physician"), course["pid"])
    assert panel["status"]["computed"] is False
    assert panel["status"]["text"].startswith("response status not computed")
    assert "a site policy setting" in panel["status"]["text"]
    assert "KETACARE_" not in panel["status"]["text"]  # the patient sees this line too
    # the per-point facts do not depend on it
    assert _measure(panel, "phq9")["points"][1]["met"] == ["phq9-response", "phq9-remission"]


def test_a_clinic_booster_rule_suggests_a_booster(
    app: Any, course: dict[str, Any], clock: Any
) -> None:
    from ketacare.clinic.audit.service import SYSTEM
    from ketacare.clinic.outcomes.panel import outcome_panel
    from ketacare.core.outcomes import BoosterRule

    rule = BoosterRule(
        definition_id="pain-30", kind="score_at_or_above", threshold=3, set_by="test clinic"
    )
    with app.state.ctx.sessions() as session:
        panel = outcome_panel(
            session=session,
            actor=SYSTEM,
            patient_id=course["pid"],
            now=clock.now,
            zone=app.state.ctx.settings.zone,
            loss_confirmations=2,
            booster_rules=[rule],
        )
        session.commit()
    # the latest pain score (3, after the last session) is at the clinic's threshold of 3
    assert panel.status.parts[-2:] == ["booster suggested", "booster threshold not set for PHQ-9"]
    assert "booster: pain (NRS) 3 >= 3 (set by test clinic)" in panel.status.notes


def test_chart_page_carries_the_panel_and_the_report_agrees(
    app: Any, client: Any, course: dict[str, Any], login_page: Any
) -> None:
    app.state.ctx.settings.outcome_loss_confirmations = 2
    login_page("physician")
    html = client.get(f"/patients/{course['pid']}").text
    assert 'data-testid="outcome-panel"' in html
    assert 'id="outcome-chart-nrs_pain"' in html and 'id="outcome-chart-phq9"' in html
    assert 'id="outcome-chart-gad7"' not in html  # no data, no chart: a sentence instead
    assert 'data-testid="empty-gad7">No GAD-7 score recorded.' in html
    found = re.search(r'id="outcomes-data">(.*?)</script>', html, re.S)
    assert found
    data = json.loads(found.group(1))
    assert data["status"]["text"] == EXPECTED_STATUS
    assert [p["value"] for p in _measure(data, "nrs_pain")["points"]] == [8, 5, 3]
    assert "<script>" not in html.replace('<script type="application/json"', "")
    if shutil.which("pdftotext") is None:
        return
    pdf = client.get(f"/patients/{course['pid']}/report.pdf").content
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    flat = " ".join(text.split())
    assert "responder since 4 March 2026 (pain >=30%)" in flat
    assert "PHQ-9 remission since 6 March 2026" in flat


def test_permissions_and_the_audit_row(
    app: Any, client: Any, course: dict[str, Any], login_api: Any
) -> None:
    from ketacare.clinic.audit.orm import AuditEvent

    pid = course["pid"]
    for role in ("physician", "nurse", "therapist"):
        assert client.get(f"/api/v1/patients/{pid}/outcomes", headers=login_api(role)).is_success
    for role in ("admin", "researcher"):
        r = client.get(f"/api/v1/patients/{pid}/outcomes", headers=login_api(role))
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"
    patient = login_api("patient1")  # linked to demo patient 1, not to this patient
    assert client.get("/api/v1/patients/1/outcomes", headers=patient).status_code == 200
    other = client.get(f"/api/v1/patients/{pid}/outcomes", headers=patient)
    assert other.status_code == 403
    assert other.json()["detail"] == "a patient account can open only its own record"
    physician = login_api("physician")
    missing = client.get("/api/v1/patients/999999/outcomes", headers=physician)
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]
    assert client.get("/api/v1/patients/0/outcomes", headers=physician).status_code == 422

    with app.state.ctx.sessions() as session:
        rows = session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == "outcomes", AuditEvent.patient_id == pid
            )
        ).all()
    assert [(r.username, r.action) for r in rows] == [
        ("physician", "read"),
        ("nurse", "read"),
        ("therapist", "read"),
    ]
    assert rows[0].detail == {"scores": 6, "sessions": 2}


def test_a_patient_sees_their_own_panel_without_data(client: Any, login_page: Any) -> None:
    login_page("patient1")
    html = client.get("/patients/1").text
    assert 'data-testid="outcome-panel"' in html
    assert "No PHQ-9 score recorded." in html
    assert "No session given yet" in html


def test_the_status_line_is_the_care_team_s_not_the_patient_s(
    app: Any, client: Any, course: dict[str, Any], login_page: Any
) -> None:
    """The status line words decision support for the team ("futility review: …",
    "response lost"); a patient sees their scores, not the team's review prompts."""
    from ketacare.clinic.accounts.orm import User

    with app.state.ctx.sessions() as session, session.begin():
        account = session.scalars(select(User).where(User.username == "patient1")).one()
        account.patient_id = course["pid"]  # patient1 signs in to this patient's record
    login_page("physician")
    staff = client.get(f"/patients/{course['pid']}").text
    assert 'data-testid="outcome-status"' in staff and "response status not computed" in staff
    client.post("/logout", data={"csrf_token": login_page("physician")})
    login_page("patient1")
    own = client.get(f"/patients/{course['pid']}").text
    assert 'data-testid="outcome-panel"' in own and 'id="outcome-chart-phq9"' in own
    assert 'data-testid="outcome-status"' not in own
    assert "response status not computed" not in own  # nor in the charts' data
