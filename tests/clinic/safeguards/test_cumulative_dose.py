"""The cumulative dose through the application: totals from the session logs, the clinic's
caps refusing a session before anything is stored, the chart card, the audit and the roles."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from plan_helpers import IV_CHECKS, MONITORING_ORDER, _signed

CHECKS = IV_CHECKS


BASELINE = {
    "kind": "vitals",
    "sbp_mmhg": 120,
    "dbp_mmhg": 75,
    "hr_per_min": 70,
    "spo2_pct": 98,
    "rr_per_min": 14,
}


def _policy(app: Any, tmp_path: Any, caps: str) -> None:
    path = tmp_path / "session-policy.toml"
    path.write_text("[monitoring]\nobservation_min = 60\n" + caps)
    app.state.ctx.settings.session_policy_file = path


def _open(client: Any, team: dict[str, Any], plan_id: int, number: int) -> Any:
    return client.post(
        f"/api/v1/plans/{plan_id}/sessions", headers=team["nurse"], json={"session_number": number}
    )


def _post(client: Any, team: dict[str, Any], sid: int, event: dict[str, Any]) -> Any:
    seq = client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["last_seq"]
    r = client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=team["nurse"],
        json={"expected_seq": seq, "event": event},
    )
    assert r.status_code == 201, r.text
    return r.json()


def _give(client: Any, clock: Any, team: dict[str, Any], sid: int, hours: float) -> None:
    """Check in, pass the checks, infuse 24.5 mg/h for ``hours`` and stop."""
    _post(client, team, sid, {"kind": "check_in"})
    _post(client, team, sid, BASELINE)
    for item in CHECKS:
        detail = "lot K1" if item == "medication_lot" else ""
        _post(
            client,
            team,
            sid,
            {"kind": "pre_dose_check", "item": item, "ok": True, "detail": detail},
        )
    _post(client, team, sid, {"kind": "start_infusion", "rate_mg_per_h": 24.5})
    clock.now += timedelta(hours=hours)
    _post(client, team, sid, {"kind": "stop", "reason": "completed"})


def _later(clock: Any, team: dict[str, Any], login_api: Any, **delta: float) -> None:
    """Move the clock on and log in again (bearer tokens last hours, not days)."""
    clock.now += timedelta(**delta)
    team["nurse"], team["physician"] = login_api("nurse"), login_api("physician")


def _sessions(app: Any) -> int:
    from ketacare.clinic.sessions.orm import DosingSession

    with app.state.ctx.sessions() as s:
        return int(s.scalar(select(func.count(DosingSession.id))))


def test_totals_come_from_the_logs_and_a_cap_refuses_the_next_session(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, tmp_path: Any, login_api: Any
) -> None:
    # the test clinic's own cap (no source gives one): 150 mg of racemic ketamine in 7 days
    _policy(
        app,
        tmp_path,
        '[[cumulative_cap]]\nmolecule = "racemic_ketamine"\nwindow_days = 7\nmax_mg = 150\n'
        'approved = "test clinic board"\n',
    )
    team, pid = clinic["team"], clinic["pid"]
    plan = _signed(client, clinic)  # 70 kg: 0.35 mg/kg/h = 24.5 mg/h, 98 mg per 4-h session
    first = _open(client, team, plan["id"], 1)
    assert first.status_code == 201, first.text
    _give(client, clock, team, first.json()["id"], hours=2)  # 24.5 x 2 = 49 mg given
    body = client.get(f"/api/v1/patients/{pid}/cumulative-dose", headers=team["nurse"]).json()
    [rac] = body["molecules"]
    assert rac["molecule"] == "racemic_ketamine"
    assert [(t["window_days"], t["sessions"], t["mg"]) for t in rac["totals"]] == [
        (7, 1, 49.0),
        (30, 1, 49.0),
        (365, 1, 49.0),
        (None, 1, 49.0),
    ]
    assert rac["totals"][-1]["mg_per_kg"] == pytest.approx(0.7)  # 49 mg / 70 kg
    assert rac["courses"][0]["course_id"] == plan["id"]
    [cap] = body["caps"]
    assert (cap["current"], cap["remaining"], cap["reached"]) == (49.0, 101.0, False)
    assert body["note"] is None

    # a day later: 49 + 98 planned = 147 mg, within 150
    _later(clock, team, login_api, days=1)
    second = _open(client, team, plan["id"], 2)
    assert second.status_code == 201, second.text
    _give(client, clock, team, second.json()["id"], hours=4)  # 98 mg: 147 mg in 7 days
    before = _sessions(app)
    _later(clock, team, login_api, days=1)
    third = _open(client, team, plan["id"], 3)
    assert third.status_code == 422
    assert third.json()["detail"] == (
        "this session would exceed the clinic's cap on the cumulative dose: racemic ketamine "
        "in any 7 days: 147 mg given + 98 mg planned = 245 mg, above the clinic cap of 150 mg "
        "(site policy, approved by test clinic board). A physician must change the plan (or "
        "the clinic its policy)."
    )
    assert _sessions(app) == before  # nothing stored
    # the first dose started 7 days and 6 hours ago: it has left the window, the second
    # (started 6 days and 4 hours ago) has not: 98 + 98 planned = 196 mg > 150
    _later(clock, team, login_api, days=5)
    r = _open(client, team, plan["id"], 3)
    assert r.status_code == 422 and "98 mg given + 98 mg planned = 196 mg" in r.json()["detail"]
    # one day later the second has left it too
    _later(clock, team, login_api, days=1)
    assert _open(client, team, plan["id"], 3).status_code == 201


def test_a_session_count_cap(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, tmp_path: Any, login_api: Any
) -> None:
    _policy(
        app,
        tmp_path,
        '[[cumulative_cap]]\nmolecule = "racemic_ketamine"\nwindow_days = 30\nmax_sessions = 1\n'
        'approved = "test clinic"\n',
    )
    team = clinic["team"]
    plan = _signed(client, clinic)
    sid = _open(client, team, plan["id"], 1).json()["id"]
    _give(client, clock, team, sid, hours=1)
    _later(clock, team, login_api, days=1)
    r = _open(client, team, plan["id"], 2)
    assert r.status_code == 422
    assert (
        "1 sessions given + this one = 2, above the clinic cap of 1 sessions" in r.json()["detail"]
    )


def test_without_caps_the_chart_says_none_is_set_and_every_role_is_checked(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_api: Any, login_page: Any
) -> None:
    from ketacare.clinic.audit.orm import AuditEvent

    team, pid = clinic["team"], clinic["pid"]
    plan = _signed(client, clinic)
    sid = _open(client, team, plan["id"], 1).json()["id"]
    _give(client, clock, team, sid, hours=4)
    body = client.get(f"/api/v1/patients/{pid}/cumulative-dose", headers=team["physician"]).json()
    assert body["caps"] == [] and "No cap on the cumulative dose is set" in body["note"]
    assert body["sessions"][0]["mg"] == pytest.approx(98.0)
    with app.state.ctx.sessions() as s:
        reads = s.scalars(
            select(AuditEvent.username).where(
                AuditEvent.resource_type == "cumulative_dose", AuditEvent.patient_id == pid
            )
        ).all()
    assert reads == ["physician"]
    # patients and researchers do not read session logs
    for who in ("patient1", "researcher", "admin"):
        r = client.get(f"/api/v1/patients/{pid}/cumulative-dose", headers=login_api(who))
        assert r.status_code == 403, who
    assert (
        client.get("/api/v1/patients/999999/cumulative-dose", headers=team["nurse"]).status_code
        == 404
    )
    # the chart card and the page
    login_page("nurse")
    chart = client.get(f"/patients/{pid}")
    assert (
        'data-testid="cumulative-dose"' in chart.text
        and "No cap on the cumulative dose" in chart.text
    )
    full = client.get(f"/patients/{pid}/cumulative-dose")
    assert full.status_code == 200
    assert 'id="cumulative-chart"' in full.text and 'data-testid="session-doses"' in full.text


def test_a_bad_cap_in_the_policy_names_the_field(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Any
) -> None:
    plan = _signed(client, clinic)  # signed first: signing reads the policy too (the order)
    _policy(
        app, tmp_path, '[[cumulative_cap]]\nmolecule = "ketamine"\nmax_mg = 100\napproved = "x"\n'
    )
    r = _open(client, clinic["team"], plan["id"], 1)
    assert r.status_code == 500
    assert "cumulative_cap[0].molecule" in r.json()["detail"]


def test_a_new_plan_version_continues_the_same_course(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_api: Any
) -> None:
    team, pid = clinic["team"], clinic["pid"]
    v1 = _signed(client, clinic)
    _give(client, clock, team, _open(client, team, v1["id"], 1).json()["id"], hours=4)  # 98 mg
    _later(clock, team, login_api, hours=20)
    v2 = client.post(
        f"/api/v1/plans/{v1['id']}/versions",
        headers=team["physician"],
        json={"dose_mg_per_kg_per_h": 0.3, "bag_mg": 100, "bag_ml": 100},
    ).json()
    r = client.post(
        f"/api/v1/plans/{v2['id']}/sign",
        headers=team["physician"],
        json={
            "monitoring_order": MONITORING_ORDER,
            "weight_confirmed": True,
            "reason": "lower rate after nausea",
        },
    )
    if r.json()["status"] == "awaiting_cosign":
        token = client.post(
            "/api/v1/auth/token",
            data={"username": "physician2", "password": "locum-cosigner-pw"},
        ).json()["access_token"]
        second_physician = {"Authorization": f"Bearer {token}"}
        r = client.post(f"/api/v1/plans/{v2['id']}/cosign", headers=second_physician)
    assert r.json()["status"] == "signed", r.text
    second = _open(client, team, v2["id"], 2)
    assert second.status_code == 201, second.text
    _post(client, team, second.json()["id"], {"kind": "check_in"})
    _post(client, team, second.json()["id"], BASELINE)
    for item in CHECKS:
        detail = "lot K2" if item == "medication_lot" else ""
        event = {"kind": "pre_dose_check", "item": item, "ok": True, "detail": detail}
        _post(client, team, second.json()["id"], event)
    _post(client, team, second.json()["id"], {"kind": "start_infusion", "rate_mg_per_h": 21})
    clock.now += timedelta(hours=1)  # still dosing: 21 mg so far
    body = client.get(f"/api/v1/patients/{pid}/cumulative-dose", headers=team["nurse"]).json()
    [course] = body["molecules"][0]["courses"]
    assert (course["course_id"], course["sessions"], course["mg"]) == (v1["id"], 2, 119.0)
    assert [(s["mg"], s["ongoing"]) for s in body["sessions"]] == [(98.0, False), (21.0, True)]


def test_a_session_charted_after_the_fact_counts_in_the_windows_of_later_doses(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, tmp_path: Any, login_api: Any
) -> None:
    # the test clinic's cap: 2 sessions in 30 days. Sessions on day 0 and day 20; a third
    # charted on day 21 as given on day 5 is within the window ending on day 5 (2), but
    # the window ending on day 20 would then hold 3
    _policy(
        app,
        tmp_path,
        '[[cumulative_cap]]\nmolecule = "racemic_ketamine"\nwindow_days = 30\nmax_sessions = 2\n'
        'approved = "test clinic"\n',
    )
    team = clinic["team"]
    plan = _signed(client, clinic)
    day0 = clock.now
    _give(client, clock, team, _open(client, team, plan["id"], 1).json()["id"], hours=1)
    _later(clock, team, login_api, days=20)
    second = _open(client, team, plan["id"], 2)
    assert second.status_code == 201, second.text
    _give(client, clock, team, second.json()["id"], hours=1)
    _later(clock, team, login_api, days=1)
    before = _sessions(app)
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sessions",
        headers=team["nurse"],
        json={"session_number": 3, "at": (day0 + timedelta(days=5)).isoformat()},
    )
    assert r.status_code == 422, r.text
    assert "2 sessions given + this one = 3, above the clinic cap of 2" in r.json()["detail"]
    assert _sessions(app) == before


def test_sessions_opened_and_not_finished_count_with_their_planned_dose(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, tmp_path: Any, login_api: Any
) -> None:
    # 150 mg of racemic ketamine in 7 days; each session plans 98 mg
    _policy(
        app,
        tmp_path,
        '[[cumulative_cap]]\nmolecule = "racemic_ketamine"\nwindow_days = 7\nmax_mg = 150\n'
        'approved = "test clinic"\n',
    )
    team = clinic["team"]
    plan = _signed(client, clinic)
    first = _open(client, team, plan["id"], 1)
    assert first.status_code == 201, first.text
    # a second session opened before the first is given: 98 + 98 planned = 196 mg
    before = _sessions(app)
    r = _open(client, team, plan["id"], 2)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "98 mg given + 98 mg planned = 196 mg, above the clinic cap of 150 mg" in detail
    assert f"session(s) {first.json()['id']} opened and not finished" in detail
    assert _sessions(app) == before
    # still dosing, 24.5 mg so far: it counts with its planned 98 mg, not 24.5
    sid = first.json()["id"]
    _post(client, team, sid, {"kind": "check_in"})
    _post(client, team, sid, BASELINE)
    for item in CHECKS:
        detail_ = "lot K1" if item == "medication_lot" else ""
        event = {"kind": "pre_dose_check", "item": item, "ok": True, "detail": detail_}
        _post(client, team, sid, event)
    _post(client, team, sid, {"kind": "start_infusion", "rate_mg_per_h": 24.5})
    clock.now += timedelta(hours=1)
    # (the same day, session 2 of this daily course is refused anyway: it is day 2's)
    assert _open(client, team, plan["id"], 2).status_code == 409
    # once its dosing stops it counts with what it delivered: 24.5 + 98 = 122.5 mg, within
    # the cap; the next day session 2 opens
    _post(client, team, sid, {"kind": "stop", "reason": "adverse_effect"})
    clock.now += timedelta(days=1)
    team = {**team, "nurse": login_api("nurse")}
    assert _open(client, team, plan["id"], 2).status_code == 201
