"""The Patient Monitoring Form from an esketamine nasal spray session: a complete session
gives a complete form whose items are the session's record; an incomplete one lists what
is missing and where; due and overdue follow the 7-day rule in the clinic's time zone
(Europe/Amsterdam in the tests); a ready form is marked submitted and leaves the queue's
due list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from pdf_text import every_page_names_the_patient, flat, words_outside_the_margins
from plan_helpers import PADSS_READY, esketamine_course_with_one_dose

PADSS = PADSS_READY
ANSWERS = {
    "provider_telephone": "+31 20 555 0100",
    "provider_email": "nurse@clinic.example",
    "first_treatment": True,
    "concomitant_benzodiazepines": False,
    "concomitant_non_benzo_hypnotics": False,
    "concomitant_psychostimulants": False,
    "concomitant_maois": False,
    "concomitant_opioids": True,
    "vitals_acceptable_before": True,
    "vitals_acceptable_at_completion": True,
    "sedation": {"present": True, "at": "10:20"},
    "dissociation": {"present": True, "at": "10:10"},
    "respiratory_depression": {"present": False},
    "ready_to_leave_min": 95,
}


def _session_of(client: Any, team: dict[str, Any], plan_id: int) -> int:
    """The plan's session, found on the nurses' board (it is in progress)."""
    pid = client.get(f"/api/v1/plans/{plan_id}", headers=team["nurse"]).json()["patient_id"]
    board = client.get("/api/v1/sessions/board", headers=team["nurse"]).json()
    return int(next(r["session_id"] for r in board if r["patient_id"] == pid))


def _post(client: Any, team: dict[str, Any], sid: int, event: dict[str, Any]) -> Any:
    seq = client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["last_seq"]
    return client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=team["nurse"],
        json={"expected_seq": seq, "event": event},
    )


def _vitals(sbp: int, dbp: int) -> dict[str, Any]:
    return {
        "kind": "vitals",
        "sbp_mmhg": sbp,
        "dbp_mmhg": dbp,
        "hr_per_min": 72,
        "spo2_pct": 97,
        "rr_per_min": 14,
    }


def _run_to_discharge(client: Any, team: dict[str, Any], clock: Any, sid: int) -> None:
    assert _post(client, team, sid, {"kind": "stop", "reason": "completed"}).status_code == 201
    for minutes, (sbp, dbp) in ((15, (130, 82)), (15, (138, 84)), (12, (134, 80))):
        clock.now += timedelta(minutes=minutes)  # 15, 30 and 42 min after the devices
        assert _post(client, team, sid, _vitals(sbp, dbp)).status_code == 201
    for _ in range(6):  # every 15 min to 132 min
        clock.now += timedelta(minutes=15)
        assert _post(client, team, sid, _vitals(124, 78)).status_code == 201
    _post(client, team, sid, {"kind": "discharge_score", "answers": PADSS})
    _post(client, team, sid, {"kind": "escort_confirmed", "name": "J. Doe", "relation": "partner"})
    r = _post(client, team, sid, {"kind": "discharge", "instructions": "no driving today"})
    assert r.status_code == 201, r.text


def test_a_complete_session_gives_a_complete_form_matching_the_record(
    client: Any, clinic: dict[str, Any], clock: Any
) -> None:
    team = clinic["team"]
    plan_id = esketamine_course_with_one_dose(client, team, clock)
    sid = _session_of(client, team, plan_id)
    devices_at = clock.now
    _run_to_discharge(client, team, clock, sid)
    r = client.post(
        f"/api/v1/sessions/{sid}/rems-form/answers",
        headers=team["nurse"],
        json={"answers": ANSWERS},
    )
    assert r.status_code == 200, r.text
    form = r.json()
    assert form["complete"] is True and form["missing"] == []
    items = {i["name"]: i["value"] for i in form["items"]}
    local = lambda minutes: (  # noqa: E731 - the clinic's clock (UTC+1 on 2 March)
        devices_at + timedelta(minutes=minutes, hours=1)
    ).strftime("%Y-%m-%d %H:%M")
    assert items["patient_name"] == "Plan Spray"
    assert items["patient_birth_date"] == "1980-05-05"
    assert items["treatment_date"] == "2026-03-02"
    assert items["dose_administered"] == "56 mg (2 devices)"  # 2 devices of 28 mg
    assert items["lot"] == "lot E1"
    # baseline 122/76 was taken before the devices; 134/80 at 42 min is the closest to 40
    assert items["bp_before"].startswith("122/76 mmHg")
    assert items["bp_40_min"] == f"134/80 mmHg at {local(42)} (42 min after the first device)"
    assert items["bp_completion"] == f"124/78 mmHg at {local(132)}"
    assert items["treatment_duration_min"] == "132 min"
    assert items["pulse_oximetry"] == "9 readings, lowest SpO2 97%"
    assert items["monitoring_provider"] == "Noor Nurse"
    assert items["setting"] == "Test clinic"
    assert items["concomitant_opioids"] == "yes" and items["concomitant_maois"] == "no"
    assert items["sedation"] == "yes, at 10:20"
    assert items["respiratory_depression"] == "no"
    assert items["ready_to_leave_min"] == "95 min"
    statuses = {i["name"]: i["field_status"] for i in form["items"]}
    assert statuses["concomitant_opioids"] == "unconfirmed"
    assert statuses["bp_40_min"] == "form-2021"
    # ready, then submitted; the queue says so and exports it
    assert (
        client.post(f"/api/v1/sessions/{sid}/rems-form/ready", headers=team["nurse"]).status_code
        == 200
    )
    r = client.post(
        f"/api/v1/sessions/{sid}/rems-form/submitted",
        headers=team["nurse"],
        json={"submitted_on": "2026-03-02", "route": "online", "reference": "CONF-001"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reference"]) == ("submitted", "CONF-001")
    again = client.post(
        f"/api/v1/sessions/{sid}/rems-form/submitted",
        headers=team["nurse"],
        json={"submitted_on": "2026-03-02", "route": "fax", "reference": "CONF-002"},
    )
    assert again.status_code == 409
    csv = client.get("/api/v1/rems/queue.csv", headers=team["nurse"]).text
    assert f"\n{sid}," in csv
    assert "CONF-001" in csv
    pdf = client.get(f"/api/v1/sessions/{sid}/rems-form/pdf", headers=team["nurse"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    pid = client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["patient_id"]
    mrn = client.get(f"/api/v1/patients/{pid}", headers=team["nurse"]).json()["patient"]["mrn"]
    every_page_names_the_patient(pdf.content, "SPRAY, Plan", mrn)
    text = flat(pdf.content)
    assert "Patient Monitoring Form" in text and "complete" in text and "missing" not in text
    assert f"134/80 mmHg at {local(42)}" in text and "56 mg (2 devices)" in text
    assert "on the 11/2021 form" in text and "unconfirmed" in text
    assert words_outside_the_margins(pdf.content) == []
    # the same form as FHIR R4: a Bundle that validates, whose response answers are the
    # form's values and whose status is completed
    r = client.get(f"/api/v1/sessions/{sid}/rems-form/fhir", headers=team["nurse"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(r.json())
    questionnaire, response = (e.resource for e in bundle.entry)
    assert questionnaire.get_resource_type() == "Questionnaire"
    assert response.status == "completed" and response.subject.reference == f"Patient/patient-{pid}"
    answered = {i.linkId: i.answer[0].valueString for i in response.item}
    assert answered["bp_40_min"] == f"134/80 mmHg at {local(42)} (42 min after the first device)"
    assert answered["dose_administered"] == "56 mg (2 devices)"
    assert len(questionnaire.item) == len(response.item) == len(form["items"])


def test_an_incomplete_session_lists_what_is_missing_and_is_not_marked_ready(
    client: Any, clinic: dict[str, Any], clock: Any
) -> None:
    team = clinic["team"]
    plan_id = esketamine_course_with_one_dose(client, team, clock)
    sid = _session_of(client, team, plan_id)
    form = client.get(f"/api/v1/sessions/{sid}/rems-form", headers=team["nurse"]).json()
    missing = {m["name"]: m["where"] for m in form["missing"]}
    assert form["complete"] is False
    assert set(missing) >= {
        "bp_40_min",
        "bp_completion",
        "treatment_duration_min",
        "monitoring_provider",
        "sedation",
        "respiratory_depression",
        "ready_to_leave_min",
        "concomitant_opioids",
    }
    assert missing["bp_40_min"] == "the session: vitals with blood pressure after the first device"
    assert missing["ready_to_leave_min"] == "the REMS form's answers for this session"
    r = client.post(f"/api/v1/sessions/{sid}/rems-form/ready", headers=team["nurse"])
    assert r.status_code == 422
    assert "bp_40_min (record it in the session: vitals" in r.json()["detail"]
    r = client.post(
        f"/api/v1/sessions/{sid}/rems-form/submitted",
        headers=team["nurse"],
        json={"submitted_on": "2026-03-02", "route": "online", "reference": "X"},
    )
    assert r.status_code == 409  # not ready
    r = client.post(
        f"/api/v1/sessions/{sid}/rems-form/answers",
        headers=team["nurse"],
        json={"answers": {"sedation": {"present": True}}},
    )
    assert r.status_code == 422 and "say when" in r.json()["detail"]
    pdf = client.get(f"/api/v1/sessions/{sid}/rems-form/pdf", headers=team["nurse"]).content
    text = flat(pdf)
    assert "INCOMPLETE" in text and "Not ready to submit" in text
    bundle = client.get(f"/api/v1/sessions/{sid}/rems-form/fhir", headers=team["nurse"]).json()
    response = Bundle.model_validate(bundle).entry[1].resource
    assert response.status == "in-progress"
    unanswered = {i.linkId for i in response.item if not i.answer}
    assert unanswered == set(missing)  # exactly what the form lists as missing
    assert "record it in the session: vitals with blood pressure after the first device" in text


def _relogin(client: Any, login_api: Any, team: dict[str, Any]) -> None:
    """Fresh tokens after the clock moved past their lifetime."""
    for name in ("nurse", "physician"):
        team[name] = login_api(name)
    r = client.post(
        "/api/v1/auth/token", data={"username": "physician2", "password": "locum-cosigner-pw"}
    )
    team["physician2"] = {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_due_and_overdue_follow_seven_days_in_the_clinic_time_zone(
    client: Any, clinic: dict[str, Any], clock: Any, login_api: Any
) -> None:
    team = clinic["team"]
    # the devices at 23:30 UTC on 2 March: 00:30 on 3 March in Amsterdam (UTC+1)
    clock.now = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    _relogin(client, login_api, team)
    plan_id = esketamine_course_with_one_dose(client, team, clock)
    sid = _session_of(client, team, plan_id)

    def row() -> dict[str, Any]:
        rows = client.get("/api/v1/rems/queue", headers=team["nurse"]).json()
        return dict(next(r for r in rows if r["session_id"] == sid))

    assert (row()["treated_on"], row()["due"]) == ("2026-03-03", "2026-03-10")
    clock.now = datetime(2026, 3, 10, 22, 59, tzinfo=UTC)  # 23:59 on 10 March in Amsterdam
    _relogin(client, login_api, team)
    assert row()["status"] == "due"
    clock.now = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # midnight: 11 March in Amsterdam
    assert row()["status"] == "overdue"
