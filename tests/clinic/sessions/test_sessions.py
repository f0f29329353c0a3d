"""Dosing sessions through the application: the whole workflow, concurrency, refusals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from plan_helpers import BASELINE_VITALS, IV_CHECKS, MONITORING_ORDER, PADSS_READY, _signed

# An illustration of a clinic's own numbers (no published source gives them): the test
# clinic alerts above 160 mmHg systolic, wants vitals every 15 min, 60 min observation.
POLICY = """
[monitoring]
vitals_interval_min = 15
observation_min = 60

[thresholds]
sbp_mmhg = { high = 160 }
"""


@pytest.fixture
def chair(app: Any, client: Any, clinic: dict[str, Any], tmp_path: Any) -> dict[str, Any]:
    policy = tmp_path / "session-policy.toml"
    policy.write_text(POLICY)
    app.state.ctx.settings.session_policy_file = policy
    # the physician leaves what the clinic's policy sets (systolic high, interval) as pre-filled
    order = {
        k: v for k, v in MONITORING_ORDER.items() if k not in ("sbp_high", "vitals_interval_min")
    }
    plan = _signed(client, clinic, order=order)
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sessions",
        headers=clinic["team"]["nurse"],
        json={"session_number": 1},
    )
    assert r.status_code == 201, r.text
    return {**clinic, "plan": plan, "session": r.json()}


def post(
    client: Any,
    chair: dict[str, Any],
    event: dict[str, Any],
    seq: int | None = None,
    who: str = "nurse",
) -> Any:
    sid = chair["session"]["id"]
    if seq is None:
        seq = client.get(f"/api/v1/sessions/{sid}", headers=chair["team"][who]).json()["last_seq"]
    return client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=chair["team"][who],
        json={"expected_seq": seq, "event": event},
    )


CHECKS = IV_CHECKS


def test_a_whole_session_delivered_dose_alerts_and_discharge(
    client: Any, chair: dict[str, Any], clock: Any
) -> None:
    assert chair["session"]["state"] == "scheduled"
    assert post(client, chair, {"kind": "check_in"}).status_code == 201
    assert (
        post(
            client,
            chair,
            {
                "kind": "vitals",
                "sbp_mmhg": 128,
                "dbp_mmhg": 78,
                "hr_per_min": 70,
                "spo2_pct": 98,
                "rr_per_min": 14,
            },
        ).status_code
        == 201
    )
    for item in CHECKS:
        r = post(
            client,
            chair,
            {
                "kind": "pre_dose_check",
                "item": item,
                "ok": True,
                "detail": "lot K1" if item == "medication_lot" else "",
            },
        )
        assert r.status_code == 201, r.text
    assert r.json()["state"] == "pre_dose_checks"
    assert (
        post(client, chair, {"kind": "start_infusion", "rate_mg_per_h": 24.5}).json()["state"]
        == "dosing"
    )
    clock.now += timedelta(hours=2)
    assert (
        post(
            client, chair, {"kind": "rate_change", "rate_mg_per_h": 20, "reason": "nausea"}
        ).status_code
        == 201
    )
    clock.now += timedelta(minutes=30)
    r = post(
        client,
        chair,
        {
            "kind": "vitals",
            "sbp_mmhg": 172,
            "dbp_mmhg": 95,
            "hr_per_min": 88,
            "spo2_pct": 97,
            "rr_per_min": 16,
        },
    )
    body = r.json()
    # 24.5 mg/h x 2 h + 20 mg/h x 0.5 h = 49 + 10 = 59 mg
    assert body["delivered_mg"] == pytest.approx(59.0)
    [alert] = body["open_alerts"]
    assert "172" in alert["message"] and "160" in alert["message"]
    # a repeat breach does not open a second alert
    clock.now += timedelta(minutes=5)
    r = post(client, chair, {"kind": "vitals", "sbp_mmhg": 168, "dbp_mmhg": 92})
    assert r.status_code == 201, r.text
    assert len(r.json()["open_alerts"]) == 1
    r = post(
        client,
        chair,
        {
            "kind": "acknowledge_alert",
            "alert_id": alert["id"],
            "action": "reduce_rate",
            "note": "physician informed",
        },
    )
    assert r.json()["open_alerts"] == []
    clock.now += timedelta(minutes=25)
    r = post(client, chair, {"kind": "stop", "reason": "completed"})
    # + 20 mg/h x 0.5 h = 69 mg in all
    assert r.json()["state"] == "recovery" and r.json()["delivered_mg"] == pytest.approx(69.0)
    # back near baseline (128/78, 70): 130/80 and 72 are within 20 %, so the record gives 2
    r = post(
        client,
        chair,
        {"kind": "vitals", "sbp_mmhg": 130, "dbp_mmhg": 80, "hr_per_min": 72, "spo2_pct": 98},
    )
    assert r.status_code == 201, r.text
    padss = dict(PADSS_READY)
    post(client, chair, {"kind": "discharge_score", "answers": padss})
    post(client, chair, {"kind": "escort_confirmed", "name": "J. Doe", "relation": "partner"})
    too_early = post(client, chair, {"kind": "discharge", "instructions": "no driving"})
    # the plan's monitoring order sets 120 min (it outranks the clinic policy's 60)
    assert too_early.status_code == 409 and "observation of 120 min" in too_early.json()["detail"]
    clock.now += timedelta(minutes=121)
    r = post(client, chair, {"kind": "discharge", "instructions": "no driving today"})
    assert r.status_code == 201 and r.json()["state"] == "discharged"
    plan = client.get(f"/api/v1/plans/{chair['plan']['id']}", headers=chair["team"]["nurse"])
    assert plan.json()["status"] == "active"


def test_illegal_transitions_and_implausible_vitals_change_nothing(
    client: Any, chair: dict[str, Any]
) -> None:
    r = post(client, chair, {"kind": "start_infusion", "rate_mg_per_h": 24.5})
    assert r.status_code == 409 and "scheduled" in r.json()["detail"]
    post(client, chair, {"kind": "check_in"})
    for bad, word in (({"spo2_pct": 101}, "spo2"), ({"sbp_mmhg": 80, "dbp_mmhg": 90}, "diastolic")):
        r = post(client, chair, {"kind": "vitals", **bad})
        assert r.status_code == 422 and word in r.json()["detail"].lower()
    view = client.get(
        f"/api/v1/sessions/{chair['session']['id']}", headers=chair["team"]["nurse"]
    ).json()
    assert [e["kind"] for e in view["events"]] == ["scheduled", "check_in"]


def test_two_staff_never_lose_each_others_entries(client: Any, chair: dict[str, Any]) -> None:
    post(client, chair, {"kind": "check_in"})
    seen = client.get(
        f"/api/v1/sessions/{chair['session']['id']}", headers=chair["team"]["nurse"]
    ).json()["last_seq"]
    first = post(client, chair, {"kind": "vitals", "sbp_mmhg": 120, "dbp_mmhg": 70}, seq=seen)
    second = post(
        client,
        chair,
        {"kind": "vitals", "sbp_mmhg": 150, "dbp_mmhg": 90},
        seq=seen,
        who="physician",
    )
    assert first.status_code == 201
    assert second.status_code == 409 and "reload" in second.json()["detail"].lower()
    view = client.get(
        f"/api/v1/sessions/{chair['session']['id']}", headers=chair["team"]["nurse"]
    ).json()
    assert [e.get("sbp_mmhg") for e in view["events"] if e["kind"] == "vitals"] == [120]


def test_an_amendment_keeps_the_original_entry(client: Any, chair: dict[str, Any]) -> None:
    post(client, chair, {"kind": "check_in"})
    wrong = post(client, chair, {"kind": "vitals", "sbp_mmhg": 210, "dbp_mmhg": 80}).json()
    assert wrong["events"] is None  # a POST answers with the state, not the whole log
    target = wrong["last_seq"]
    sid = chair["session"]["id"]
    log = client.get(f"/api/v1/sessions/{sid}", headers=chair["team"]["nurse"]).json()["events"]
    r = post(
        client,
        chair,
        {
            "kind": "amendment",
            "target_seq": target,
            "reason": "typed 210 for 120",
            "replacement": {
                "kind": "vitals",
                "at": log[-1]["at"],
                "by": "nurse",
                "sbp_mmhg": 120,
                "dbp_mmhg": 80,
            },
        },
    )
    assert r.status_code == 201, r.text
    full = client.get(f"/api/v1/sessions/{sid}", headers=chair["team"]["nurse"]).json()
    kinds = [e["kind"] for e in full["events"]]
    assert kinds.count("vitals") == 1 and "amendment" in kinds  # the original stays in the log
    assert r.json()["open_alerts"] == []  # the corrected value is below the limit


def test_a_required_preparation_session_gates_the_first_dose(
    client: Any, clinic: dict[str, Any]
) -> None:
    from plan_helpers import draft

    team = clinic["team"]
    plan = draft(client, clinic, preparation_required=True)
    client.post(
        f"/api/v1/plans/{plan['id']}/sign",
        headers=team["physician"],
        json={
            "monitoring_order": MONITORING_ORDER,
            "weight_confirmed": True,
            "reason": "limits unset",
        },
    )
    client.post(f"/api/v1/plans/{plan['id']}/cosign", headers=team["physician2"])
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sessions", headers=team["nurse"], json={"session_number": 1}
    )
    assert r.status_code == 422 and "preparation session" in r.json()["detail"]


def test_board_and_summary_pdf(client: Any, chair: dict[str, Any], login_page: Any) -> None:
    post(client, chair, {"kind": "check_in"})
    board = client.get("/api/v1/sessions/board", headers=chair["team"]["nurse"]).json()
    assert [(b["session_id"], b["state"]) for b in board] == [
        (chair["session"]["id"], "checked_in")
    ]
    login_page("nurse")
    pdf = client.get(f"/sessions/{chair['session']['id']}/summary.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"


def test_summary_pdf_of_a_discharged_session_says_when_and_by_whom(
    client: Any, chair: dict[str, Any], clock: Any, login_page: Any
) -> None:
    import shutil
    import subprocess

    from conftest import REQUIRE_ALL

    if shutil.which("pdftotext") is None and not REQUIRE_ALL:
        pytest.skip("pdftotext not installed (Debian package poppler-utils)")
    post(client, chair, {"kind": "check_in"})
    post(
        client,
        chair,
        {
            "kind": "vitals",
            "sbp_mmhg": 124,
            "dbp_mmhg": 80,
            "hr_per_min": 70,
            "spo2_pct": 98,
            "rr_per_min": 14,
        },
    )
    for item in CHECKS:
        post(
            client,
            chair,
            {
                "kind": "pre_dose_check",
                "item": item,
                "ok": True,
                "detail": "lot K9" if item == "medication_lot" else "",
            },
        )
    post(client, chair, {"kind": "start_infusion", "rate_mg_per_h": 24.5})
    clock.now += timedelta(hours=4)
    post(client, chair, {"kind": "stop", "reason": "completed"})
    post(
        client,
        chair,
        {
            "kind": "discharge_score",
            "answers": PADSS_READY,
        },
    )
    post(client, chair, {"kind": "escort_confirmed", "name": "A. Friend", "relation": "friend"})
    clock.now += timedelta(minutes=121)
    assert (
        post(client, chair, {"kind": "discharge", "instructions": "no driving today"}).status_code
        == 201
    )
    login_page("nurse")
    pdf = client.get(f"/sessions/{chair['session']['id']}/summary.pdf").content
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    flat = " ".join(text.split())
    assert "98.0 mg (1.40 mg/kg at 70 kg)" in flat  # 24.5 mg/h for 4 h, at 70 kg
    # the clock starts at 10:00 UTC (11:00 in Amsterdam): 4 h of dosing, 121 min after
    assert "Discharged 2 Mar 2026 17:01 by nurse" in flat
    assert "Instructions no driving today" in flat
    assert "not yet" not in text


def test_progress_report_from_the_record(
    app: Any, client: Any, chair: dict[str, Any], clock: Any, login_page: Any, login_api: Any
) -> None:
    import shutil
    import subprocess

    from conftest import REQUIRE_ALL

    if shutil.which("pdftotext") is None and not REQUIRE_ALL:
        pytest.skip("pdftotext not installed (Debian package poppler-utils)")
    team, pid = chair["team"], chair["pid"]
    client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=team["nurse"],
        json={"instrument": "nrs_pain", "answers": [8]},
    )
    clock.now += timedelta(minutes=5)
    post(client, chair, {"kind": "check_in"})
    post(
        client,
        chair,
        {
            "kind": "vitals",
            "sbp_mmhg": 124,
            "dbp_mmhg": 80,
            "hr_per_min": 70,
            "spo2_pct": 98,
            "rr_per_min": 14,
        },
    )
    for item in CHECKS:
        post(
            client,
            chair,
            {
                "kind": "pre_dose_check",
                "item": item,
                "ok": True,
                "detail": "lot K9" if item == "medication_lot" else "",
            },
        )
    assert post(client, chair, {"kind": "start_infusion", "rate_mg_per_h": 24.5}).status_code == 201
    clock.now += timedelta(hours=4)
    post(client, chair, {"kind": "side_effects", "nausea": True})
    post(client, chair, {"kind": "stop", "reason": "completed"})
    clock.now += timedelta(days=2)  # the morning's tokens have expired: log in again
    r = client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=login_api("nurse"),
        json={"instrument": "nrs_pain", "answers": [4]},
    )
    assert r.status_code == 201
    app.state.ctx.settings.outcome_loss_confirmations = 2
    login_page("physician")
    pdf = client.get(f"/patients/{pid}/report.pdf")
    assert pdf.status_code == 200
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf.content, capture_output=True, check=True
    ).stdout.decode()
    assert "Sessions given: 1" in text and "98.0 mg" in text
    # 98 mg at 70 kg is 1.40 mg/kg, given two days ago: inside the last 30 days
    assert (
        "racemic ketamine: last 30 days 98.0 mg (1.40 mg/kg, 1 session); "
        "in all 98.0 mg (1.40 mg/kg, 1 session)"
    ) in text
    assert "nausea" in text
    # 8 -> 4 is a 50% reduction: a responder by the IMMPACT >= 30% and >= 50% definitions
    assert "responder since" in text


def test_the_vitals_route_checks_who_before_what_and_stores_nothing_refused(
    client: Any, chair: dict[str, Any]
) -> None:
    """The vitals route does its work in one hop; its refusals are the other routes'."""
    assert post(client, chair, {"kind": "check_in"}).status_code == 201
    sid = chair["session"]["id"]
    url = f"/api/v1/sessions/{sid}/events"
    before = client.get(f"/api/v1/sessions/{sid}", headers=chair["team"]["nurse"]).json()
    bad = {"expected_seq": "two", "event": {"kind": "vitals", "spo2_pct": 97}}

    nobody = client.post(url, json=bad)
    assert nobody.status_code == 401, nobody.text
    assert nobody.headers["www-authenticate"] == "Bearer"
    forged = client.post(url, json=bad, headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401, forged.text
    # a therapist may not chart at the chair: 403 even though the body is wrong too
    therapist = client.post(url, json=bad, headers=chair["team"]["therapist"])
    assert therapist.status_code == 403, therapist.text
    assert therapist.headers["content-type"] == "application/problem+json"

    nurse = chair["team"]["nurse"]
    wrong_type = client.post(url, json=bad, headers=nurse)
    assert wrong_type.status_code == 422
    assert wrong_type.json()["detail"].startswith("expected_seq: Input should be a valid integer")
    missing = client.post(url, json={"event": {"kind": "vitals"}}, headers=nurse)
    assert missing.status_code == 422 and missing.json()["detail"] == "expected_seq: Field required"
    empty = client.post(url, content=b"", headers={**nurse, "content-type": "application/json"})
    assert empty.status_code == 422 and empty.json()["detail"] == "request: Field required"
    broken = client.post(url, content=b"{", headers={**nurse, "content-type": "application/json"})
    assert broken.status_code == 422 and "JSON" in broken.json()["detail"]
    implausible = client.post(
        url,
        json={"expected_seq": before["last_seq"], "event": {"kind": "vitals", "spo2_pct": 101}},
        headers=nurse,
    )
    assert implausible.status_code == 422 and "spo2" in implausible.json()["detail"].lower()

    after = client.get(f"/api/v1/sessions/{sid}", headers=nurse).json()
    assert after["last_seq"] == before["last_seq"]
    assert after["events"] == before["events"]


def test_the_vitals_route_documents_its_body(client: Any) -> None:
    spec = client.get("/api/openapi.json").json()
    post_op = spec["paths"]["/api/v1/sessions/{session_id}/events"]["post"]
    schema = post_op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["expected_seq", "event"]
    assert "201" in post_op["responses"] and "403" in post_op["responses"]


def _given_to_discharge(client: Any, chair: dict[str, Any], clock: Any) -> None:
    """The chair fixture's session 1 (checked in) infused 4 h, discharged 121 min after."""
    for event in (
        BASELINE_VITALS,
        *(
            {"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K9"}
            for item in CHECKS
        ),
        {"kind": "start_infusion", "rate_mg_per_h": 24.5},
    ):
        assert post(client, chair, event).status_code == 201
    clock.now += timedelta(hours=4)
    assert post(client, chair, {"kind": "stop", "reason": "completed"}).status_code == 201
    r = post(client, chair, {"kind": "discharge_score", "answers": PADSS_READY})
    assert r.status_code == 201
    escort = {"kind": "escort_confirmed", "name": "A. Friend", "relation": "friend"}
    assert post(client, chair, escort).status_code == 201
    clock.now += timedelta(minutes=121)
    r = post(client, chair, {"kind": "discharge", "instructions": "no driving today"})
    assert r.status_code == 201, r.text


def test_opening_a_session_again_says_whether_it_is_open_or_was_given(
    app: Any, client: Any, chair: dict[str, Any], clock: Any, login_page: Any, login_api: Any
) -> None:
    from sqlalchemy import func, select

    from ketacare.clinic.sessions.orm import DosingSession

    plan_id, sid = chair["plan"]["id"], chair["session"]["id"]
    nurse = chair["team"]["nurse"]
    url = f"/api/v1/plans/{plan_id}/sessions"
    assert clock.now.isoformat() == "2026-03-02T10:00:00+00:00"
    r = client.post(url, headers=nurse, json={"session_number": 1})
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"session 1 of plan {plan_id} is already open (session {sid}, scheduled)"
    )
    assert post(client, chair, {"kind": "check_in"}).status_code == 201
    r = client.post(url, headers=nurse, json={"session_number": 1})
    assert r.json()["detail"].endswith(f"is already open (session {sid}, checked in)")
    _given_to_discharge(client, chair, clock)  # 10:00 UTC + 4 h + 121 min: 16:01 UTC
    clock.now += timedelta(days=3)
    nurse = login_api("nurse")  # a new day, a new login
    r = client.post(url, headers=nurse, json={"session_number": 1})
    assert r.status_code == 409
    # 16:01 UTC on 2 March is 17:01 in Amsterdam (CET)
    given = (
        f"session 1 of plan {plan_id} was already given "
        f"(session {sid}, discharged Mon 02 Mar 2026 17:01)"
    )
    assert r.json()["detail"] == given
    # the page: the reason, a link back to the plan, the status said in full
    csrf = login_page("nurse")
    r = client.post(
        f"/plans/{plan_id}/sessions/open",
        data={"csrf_token": csrf, "session_number": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 409, r.text
    assert given in r.text and "already open" not in r.text
    assert f'href="/plans/{plan_id}"' in r.text
    assert "Error ." not in r.text and "Error 409." in r.text
    with app.state.ctx.sessions() as db:  # nothing opened by the refusals
        assert (
            db.scalar(select(func.count(DosingSession.id)).where(DosingSession.plan_id == plan_id))
            == 1
        )


def test_the_chair_page_opens_a_session_on_a_chair(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    """From the plan page, a session with no booking must name its chair (the board and
    the calendar then show where the patient is); a booked one takes its booking's chair
    unless another is chosen; an unknown chair is refused; nothing is stored on refusal."""
    from sqlalchemy import func, select

    from ketacare.clinic.sessions.orm import DosingSession
    from plan_helpers import book_thursday_and_friday

    plan = _signed(client, clinic)
    book_thursday_and_friday(client, clinic, plan["id"])  # sessions 1 and 2 on chair 1
    csrf = login_page("nurse")
    url = f"/plans/{plan['id']}/sessions/open"

    def opened(**form: str) -> Any:
        return client.post(url, data={"csrf_token": csrf, **form}, follow_redirects=False)

    def chairs() -> dict[int, int | None]:
        with app.state.ctx.sessions() as db:
            rows = db.scalars(select(DosingSession).where(DosingSession.plan_id == plan["id"]))
            return {r.session_number: r.chair_id for r in rows}

    page = client.get(f"/plans/{plan['id']}").text
    assert 'data-testid="open-chair"' in page and "— its booking's chair —</option>" in page
    r = opened(session_number="3")
    assert r.status_code == 422
    assert f"session 3 of plan {plan['id']} has no booking: choose the chair" in r.text
    r = opened(session_number="3", chair_id="99")
    assert r.status_code == 422 and "chair 99 does not exist" in r.text
    assert chairs() == {}
    assert opened(session_number="3", chair_id="2").status_code == 303
    # booked sessions: the booking's chair, or the one chosen instead (its day: off schedule)
    # a booked session opened on another day without a reason: refused in words, without
    # the form field's internal name
    r = opened(session_number="1")
    assert r.status_code == 422
    assert "on another day needs a reason (Reason, if not on the booked day)" in r.text
    assert "off_schedule_reason" not in r.text
    reason = {"off_schedule_reason": "patient came early"}
    assert opened(session_number="1", **reason).status_code == 303
    assert opened(session_number="2", chair_id="4", **reason).status_code == 303
    assert chairs() == {3: 2, 1: 1, 2: 4}
    # the API takes the chair too, and keeps it optional
    api = f"/api/v1/plans/{plan['id']}/sessions"
    nurse = clinic["team"]["nurse"]
    r = client.post(api, headers=nurse, json={"session_number": 4, "chair_id": 3})
    assert r.status_code == 201, r.text
    assert client.post(api, headers=nurse, json={"session_number": 5}).status_code == 201
    assert chairs() == {3: 2, 1: 1, 2: 4, 4: 3, 5: None}
    with app.state.ctx.sessions() as db:
        assert db.scalar(select(func.count(DosingSession.id))) == 5
