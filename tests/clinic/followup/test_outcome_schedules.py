"""Outcome schedules through the application, on SQLite and PostgreSQL.

The clock starts at 2026-03-02 10:00 UTC (the ``clock`` fixture). Every expected
instant below is worked out by hand from the moves of the clock in the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from plan_helpers import MONITORING_ORDER, _signed, patient_account, start_infusion

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SCHEDULE = {
    "grace_hours": 24,
    "stop": {"when_plan_stopped": True},
    "items": [
        {"instrument": "nrs_pain", "when": "baseline"},
        {"instrument": "phq9", "when": "after_each_session", "offset_hours": 24},
    ],
}
PHQ9_LOW = {f"item_q{i + 1}": "0" for i in range(9)}


def iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def set_schedule(
    client: Any, team: dict[str, Any], plan_id: int, schedule: Any, **extra: Any
) -> Any:
    return client.post(
        f"/api/v1/plans/{plan_id}/outcome-schedule",
        headers=team["physician"],
        json={"schedule": schedule, **extra},
    )


def due(client: Any, headers: dict[str, str], pid: int) -> dict[str, dict[str, Any]]:
    r = client.get(f"/api/v1/patients/{pid}/due-questionnaires", headers=headers)
    assert r.status_code == 200, r.text
    [plan] = r.json()
    return {f"{i['instrument']}/{i['when']}": i for i in plan["items"]}


def give_session(client: Any, team: dict[str, Any], plan_id: int, number: int) -> int:
    """Open session ``number`` and start dosing now (the clock's time)."""
    return start_infusion(client, team["nurse"], plan_id, number, rate_mg_per_h=24.5)


@pytest.fixture
def scheduled(client: Any, clinic: dict[str, Any]) -> dict[str, Any]:
    plan = _signed(client, clinic)
    r = set_schedule(client, clinic["team"], plan["id"], SCHEDULE)
    assert r.status_code == 201, r.text
    return {**clinic, "plan": plan, "schedule": r.json()}


def test_due_overdue_satisfied_and_the_session_clock(
    client: Any, scheduled: dict[str, Any], clock: Any, login_api: Any
) -> None:
    team, pid, plan_id = scheduled["team"], scheduled["pid"], scheduled["plan"]["id"]
    nurse = team["nurse"]
    items = due(client, nurse, pid)
    baseline, after = items["nrs_pain/baseline"], items["phq9/after_each_session"]
    # the schedule began at 10:00; 24 h grace -> overdue from 2026-03-03 10:00
    assert baseline["status"] == "due"
    assert iso(baseline["occurrence"]["overdue_at"]) == datetime(2026, 3, 3, 10, tzinfo=UTC)
    assert (after["status"], after["next_due_at"]) == ("upcoming", None)
    assert "no session is given or booked yet" in after["reason"]

    clock.now = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    nurse = login_api("nurse")  # bearer tokens last 8 hours: log in again after a jump
    assert due(client, nurse, pid)["nrs_pain/baseline"]["status"] == "overdue"
    r = client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=nurse,
        json={"instrument": "nrs_pain", "answers": [6]},
    )
    assert r.status_code == 201, r.text

    clock.now = datetime(2026, 3, 3, 12, 30, tzinfo=UTC)
    give_session(client, {"nurse": nurse}, plan_id, 1)  # dosing starts 2026-03-03 12:30
    items = due(client, nurse, pid)
    assert items["nrs_pain/baseline"]["status"] == "satisfied"
    after = items["phq9/after_each_session"]
    assert after["status"] == "upcoming"
    assert iso(after["next_due_at"]) == datetime(2026, 3, 4, 12, 30, tzinfo=UTC)

    clock.now = datetime(2026, 3, 4, 12, 29, 59, tzinfo=UTC)
    nurse = login_api("nurse")
    assert due(client, nurse, pid)["phq9/after_each_session"]["status"] == "upcoming"
    clock.now = datetime(2026, 3, 4, 12, 30, tzinfo=UTC)
    after = due(client, nurse, pid)["phq9/after_each_session"]
    assert after["status"] == "due"
    assert after["occurrence"]["key"] == f"phq9/after24h/{plan_id}.1"
    assert after["occurrence"]["label"] == "24 h after session 1"


def test_the_chair_asks_for_the_questionnaires_due_and_says_none_once_filled(
    client: Any, scheduled: dict[str, Any], clock: Any, login_api: Any, login_page: Any
) -> None:
    # the baseline NRS opened with the schedule (2026-03-02 10:00 UTC); 24 h grace: overdue
    # from 2026-03-03 10:00 UTC, 11:00 in Amsterdam. The session opens at 12:30 UTC.
    pid, plan_id = scheduled["pid"], scheduled["plan"]["id"]
    clock.now = datetime(2026, 3, 3, 12, 30, tzinfo=UTC)
    nurse = login_api("nurse")
    r = client.post(f"/api/v1/plans/{plan_id}/sessions", headers=nurse, json={"session_number": 1})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    login_page("nurse")
    banner = re.sub(r"\s+", " ", client.get(f"/sessions/{sid}").text)
    assert (
        'data-testid="banner-questionnaires">Questionnaires due now: Pain NRS '
        "(<strong>overdue</strong> since Tue 03 Mar 11:00)" in banner
    )
    # the polled refresh shows it too, without another audited read
    assert "Questionnaires due now: Pain NRS" in client.get(f"/sessions/{sid}?partial=1").text
    r = client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=nurse,
        json={"instrument": "nrs_pain", "answers": [6]},
    )
    assert r.status_code == 201, r.text
    assert "banner-questionnaires" not in client.get(f"/sessions/{sid}").text


def test_a_link_for_exactly_what_is_due_shows_it_and_fills_it(
    client: Any, scheduled: dict[str, Any], clock: Any
) -> None:
    team, pid = scheduled["team"], scheduled["pid"]
    r = client.post(
        f"/api/v1/patients/{pid}/due-questionnaires/link",
        headers=team["nurse"],
        json={"valid_hours": 48},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["instruments"] == ["nrs_pain"]  # the after-session PHQ-9 is not due yet
    assert [o["key"] for o in body["occurrences"]] == ["nrs_pain/baseline"]
    token = body["url"].split("/r/")[1]
    page = client.get(f"/r/{token}")
    assert page.status_code == 200
    asked = re.search(r'<ul class="asked" data-testid="asked">(.*?)</ul>', page.text, re.S)
    assert asked
    assert "Pain intensity numeric rating scale 0-10</strong> — baseline" in asked.group(1)
    r = client.post(f"/r/{token}/nrs_pain", data={"item_pain": "5"})
    assert r.status_code == 200 and "completed everything" in r.text
    assert due(client, team["nurse"], pid)["nrs_pain/baseline"]["status"] == "satisfied"
    again = client.post(
        f"/api/v1/patients/{pid}/due-questionnaires/link",
        headers=team["nurse"],
        json={"valid_hours": 48},
    )
    assert again.status_code == 409
    assert again.json()["detail"] == f"nothing is due for patient {pid} now"


def test_reminders_are_queued_once_per_occurrence(
    app: Any, client: Any, scheduled: dict[str, Any], clock: Any
) -> None:
    from ketacare.clinic.audit.service import SYSTEM
    from ketacare.clinic.followup import reminders
    from ketacare.clinic.followup.orm import OutboxMessage

    pid, plan_id = scheduled["pid"], scheduled["plan"]["id"]
    sessions = app.state.ctx.sessions

    def run(now: datetime) -> Any:
        with sessions() as session:
            result = reminders.remind_patient(
                session=session,
                actor=SYSTEM,
                patient_id=pid,
                now=now,
                base_url="http://clinic.test",
                zone=ZoneInfo("Europe/Amsterdam"),
                valid_hours=24,
                channel="file",
                sendable=("file", "email"),
            )
            session.commit()
        return result

    first = run(START + timedelta(hours=1))
    assert (first.queued, first.already_queued) == (1, 0)
    second = run(START + timedelta(hours=30))  # now overdue: still the same occurrence
    assert (second.queued, second.already_queued) == (0, 1)
    with sessions() as session:
        [message] = session.scalars(
            select(OutboxMessage).where(OutboxMessage.patient_id == pid)
        ).all()
    assert message.dedupe_key == f"outcome:{plan_id}:nrs_pain/baseline"
    assert "Please fill in" in message.body and "(baseline)" in message.body
    # until when, in the clinic's time: sent an hour after START, valid 24 hours
    expires = (START + timedelta(hours=25)).astimezone(ZoneInfo("Europe/Amsterdam"))
    assert message.body.endswith(f"until {expires:%a %d %b %Y %H:%M} (Europe/Amsterdam time)."), (
        message.body
    )
    assert " UTC" not in message.body
    token = re.search(r"/r/([A-Za-z0-9_-]{20,})", message.body)
    assert token
    page = client.get(f"/r/{token.group(1)}")
    assert page.status_code == 200 and "baseline" in page.text
    with sessions() as session:  # this patient has no email address on record
        by_email = reminders.remind_patient(
            session=session,
            actor=SYSTEM,
            patient_id=pid,
            now=START + timedelta(hours=30),
            base_url="http://clinic.test",
            zone=ZoneInfo("Europe/Amsterdam"),
            valid_hours=24,
            channel="email",
            sendable=("file", "email"),
        )
    assert (by_email.queued, by_email.already_queued, by_email.no_address) == (0, 1, 0)
    with pytest.raises(Exception, match="channel 'fax'"):
        with sessions() as session:
            reminders.remind_patient(
                session=session,
                actor=SYSTEM,
                patient_id=pid,
                now=START,
                base_url="http://clinic.test",
                zone=ZoneInfo("Europe/Amsterdam"),
                valid_hours=24,
                channel="fax",
                sendable=("file", "email"),
            )


def test_a_change_is_a_new_version_and_the_old_one_is_kept(
    app: Any, client: Any, scheduled: dict[str, Any], clock: Any
) -> None:
    from ketacare.clinic.audit.orm import AuditEvent

    team, plan_id = scheduled["team"], scheduled["plan"]["id"]
    clock.now = START + timedelta(hours=2)
    weekly = {
        **SCHEDULE,
        "items": [
            {
                "instrument": "phq9",
                "when": "every",
                "every_days": 7,
                "starts": "schedule_start",
            }
        ],
    }
    r = set_schedule(client, team, plan_id, weekly, reason="weekly PHQ-9 instead")
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    body = client.get(f"/api/v1/plans/{plan_id}/outcome-schedule", headers=team["nurse"]).json()
    assert [(v["version"], v["status"]) for v in body["versions"]] == [
        (2, "current"),
        (1, "superseded"),
    ]
    assert iso(body["versions"][1]["superseded_at"]) == START + timedelta(hours=2)
    assert body["versions"][1]["spec"]["items"][0]["instrument"] == "nrs_pain"
    # the weekly clock counts from when the first version was set (10:00), not from 12:00
    [item] = body["due"]["items"]
    assert iso(item["next_due_at"]) == datetime(2026, 3, 9, 10, tzinfo=UTC)
    with app.state.ctx.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(
                AuditEvent.resource_type == "outcome_schedule",
                AuditEvent.patient_id == scheduled["pid"],
            )
            .order_by(AuditEvent.id)
        ).all()
    assert [a for a in actions if a != "read"] == ["create", "replace"]


def test_bad_schedules_are_refused_naming_the_field_and_nothing_changes(
    client: Any, scheduled: dict[str, Any]
) -> None:
    team, plan_id = scheduled["team"], scheduled["plan"]["id"]
    bad = {**SCHEDULE, "items": [{"instrument": "phq9", "when": "after_each_session"}]}
    for schedule, message in (
        (bad, "items[0].offset_hours: is required"),
        ({**SCHEDULE, "stop": {}}, "stop: needs at least one condition"),
        ({**SCHEDULE, "grace_hours": 1e9}, "grace_hours: must be above 0 and at most 8784 hours"),
        (
            {**SCHEDULE, "items": [{"instrument": "ort", "when": "baseline"}]},
            "unknown instrument 'ort': allowed",
        ),
    ):
        r = set_schedule(client, team, plan_id, schedule)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert message in r.json()["detail"]
    body = client.get(f"/api/v1/plans/{plan_id}/outcome-schedule", headers=team["nurse"]).json()
    assert [v["version"] for v in body["versions"]] == [1]
    assert body["current"]["spec"] == {
        "grace_hours": 24.0,
        "stop": {"when_plan_stopped": True},
        "items": [
            {"instrument": "nrs_pain", "when": "baseline"},
            {"instrument": "phq9", "when": "after_each_session", "offset_hours": 24.0},
        ],
    }


def test_stopping_the_plan_stops_the_schedule(client: Any, scheduled: dict[str, Any]) -> None:
    team, pid, plan_id = scheduled["team"], scheduled["pid"], scheduled["plan"]["id"]
    r = client.post(
        f"/api/v1/plans/{plan_id}/status",
        headers=team["physician"],
        json={"action": "stop", "reason": "patient declined further sessions"},
    )
    assert r.status_code == 200, r.text
    items = due(client, team["nurse"], pid)
    assert {i["status"] for i in items.values()} == {"stopped"}
    assert items["nrs_pain/baseline"]["reason"] == (
        "stopped: the plan was stopped 2026-03-02 10:00 UTC"
    )


def test_a_new_plan_version_inherits_the_schedule_and_the_sessions(
    client: Any, scheduled: dict[str, Any], clock: Any, login_api: Any
) -> None:
    team, pid, plan_id = scheduled["team"], scheduled["pid"], scheduled["plan"]["id"]
    clock.now = START + timedelta(hours=3)
    give_session(client, team, plan_id, 1)  # dosing 2026-03-02 13:00
    r = client.post(
        f"/api/v1/plans/{plan_id}/versions",
        headers=team["physician"],
        json={"dose_mg_per_kg_per_h": 0.3},
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    for path in ("sign", "cosign"):
        body = (
            {
                "weight_confirmed": True,
                "reason": "site limits not configured",
                "monitoring_order": MONITORING_ORDER,
            }
            if path == "sign"
            else None
        )
        who = team["physician"] if path == "sign" else team["physician2"]
        assert client.post(f"/api/v1/plans/{new_id}/{path}", headers=who, json=body).is_success
    read = client.get(f"/api/v1/plans/{new_id}/outcome-schedule", headers=team["nurse"]).json()
    assert read["inherited_from_plan"] == plan_id and read["versions"] == []
    clock.now = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
    items = due(client, login_api("nurse"), pid)
    after = items["phq9/after_each_session"]
    assert after["status"] == "due"
    assert after["occurrence"]["key"] == f"phq9/after24h/{plan_id}.1"
    assert after["occurrence"]["label"] == f"24 h after session 1 (plan {plan_id})"


def test_a_patient_fills_what_is_due_on_their_own_page(
    client: Any, scheduled: dict[str, Any], login_api: Any, login_page: Any, clock: Any
) -> None:
    team, pid = scheduled["team"], scheduled["pid"]
    own = patient_account(client, login_api("admin"), pid, "plan.patient", "harbour-lantern-9")
    assert due(client, own, pid)["nrs_pain/baseline"]["status"] == "due"
    other = client.get("/api/v1/patients/1/due-questionnaires", headers=own)
    assert other.status_code == 403
    csrf = login_page("plan.patient", "harbour-lantern-9")
    page = client.get("/my/questionnaires")
    assert page.status_code == 200
    assert 'action="/my/questionnaires/nrs_pain"' in page.text
    assert 'href="/my/questionnaires"' in page.text  # in the navigation
    not_due = client.post("/my/questionnaires/phq9", data={"csrf_token": csrf, **PHQ9_LOW})
    assert not_due.status_code == 409 and "is not due now" in not_due.text
    done = client.post("/my/questionnaires/nrs_pain", data={"csrf_token": csrf, "item_pain": "3"})
    assert done.status_code == 200 and "completed everything" in done.text
    assert 'data-testid="nothing-due"' in client.get("/my/questionnaires").text
    newest = client.get(f"/api/v1/patients/{pid}/assessments", headers=team["nurse"]).json()[0]
    assert (newest["instrument_id"], newest["source"], newest["context"]) == (
        "nrs_pain",
        "patient",
        "follow_up",
    )
    assert newest["total"] == 3


def test_roles_for_schedules(client: Any, scheduled: dict[str, Any], login_api: Any) -> None:
    team, pid, plan_id = scheduled["team"], scheduled["pid"], scheduled["plan"]["id"]
    therapist = team["therapist"]
    assert client.get(f"/api/v1/plans/{plan_id}/outcome-schedule", headers=therapist).is_success
    r = set_schedule(client, {"physician": therapist}, plan_id, SCHEDULE)
    assert r.status_code == 403
    assert r.json()["detail"] == "role therapist may not outcome_schedule write"
    assert set_schedule(client, {"physician": team["nurse"]}, plan_id, SCHEDULE).status_code == 201
    researcher = login_api("researcher")
    assert (
        client.get(f"/api/v1/patients/{pid}/due-questionnaires", headers=researcher).status_code
        == 403
    )
    assert client.get("/api/v1/due-questionnaires", headers=researcher).status_code == 403


def test_the_clinicians_pages(
    client: Any, scheduled: dict[str, Any], login_page: Any, login_api: Any, clock: Any
) -> None:
    pid, plan_id = scheduled["pid"], scheduled["plan"]["id"]
    clock.now = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # the baseline is overdue now
    csrf = login_page("physician")
    plan_page = client.get(f"/plans/{plan_id}").text
    assert f'href="/plans/{plan_id}/outcome-schedule"' in plan_page
    overview = client.get("/due-questionnaires")
    assert overview.status_code == 200
    row = re.search(
        rf'<a href="/patients/{pid}/due-questionnaires">[^<]*</a></td><td>(\d+)</td><td>(\d+)</td>',
        overview.text,
    )
    assert row and row.groups() == ("1", "0")  # one overdue, none merely due
    editor = client.get(f"/plans/{plan_id}/outcome-schedule")
    assert editor.status_code == 200
    assert 'data-testid="schedule-status"' in editor.text
    # 24 h after 2026-03-02 10:00 UTC is 11:00 in Amsterdam (UTC+1 in March)
    assert "overdue since 2026-03-03 11:00" in editor.text
    form = {
        "csrf_token": csrf,
        "rows": "2",
        "item-0-instrument": "phq9",
        "item-0-when": "before_each_session",
        "item-0-lead_hours": "48",
        "item-1-instrument": "nrs_pain",
        "item-1-when": "after_each_session",
        "grace_hours": "12",
        "until": "2026-12-31",
        "reason": "pre-session PHQ-9",
    }
    bad = client.post(f"/plans/{plan_id}/outcome-schedule", data=form)
    assert bad.status_code == 422
    assert "items[1].offset_hours: is required" in bad.text
    assert 'value="48"' in bad.text  # what was typed is shown again
    form["item-1-offset_hours"] = "24"
    saved = client.post(f"/plans/{plan_id}/outcome-schedule", data=form, follow_redirects=False)
    assert saved.status_code == 303
    body = client.get(
        f"/api/v1/plans/{plan_id}/outcome-schedule", headers=login_api("nurse")
    ).json()
    assert body["current"]["version"] == 2 and body["current"]["reason"] == "pre-session PHQ-9"
    # 2026-12-31 00:00 in Amsterdam (UTC+1 in winter) is 2026-12-30 23:00 UTC
    assert iso(body["current"]["spec"]["stop"]["until"]) == datetime(
        2026, 12, 30, 23, 0, tzinfo=UTC
    )
    template = client.get(f"/plans/{plan_id}/outcome-schedule?template=immpact-core-domains")
    assert "doi:10.1016/j.pain.2004.09.012" in template.text


def test_the_demo_patient_has_a_schedule(client: Any, login_api: Any, login_page: Any) -> None:
    physician = login_api("physician")
    [plan] = client.get("/api/v1/patients/1/plans", headers=physician).json()
    assert plan["status"] == "draft"
    login_page("physician")
    page = client.get(f"/plans/{plan['id']}/outcome-schedule").text
    shown = re.findall(r'data-testid="item-status">([^<]*)<', page)
    # nothing is asked before the plan is signed: an item would be due, it is not due
    assert shown and all(not re.fullmatch(r"due|overdue|missed", s) for s in shown), shown
    assert any(s.startswith("would be ") for s in shown), shown
    body = client.get(f"/api/v1/plans/{plan['id']}/outcome-schedule", headers=physician).json()
    assert body["current"]["version"] == 1
    assert {i["instrument"] for i in body["current"]["spec"]["items"]} == {
        "nrs_pain",
        "bpi_sf",
        "phq9",
        "pgic",
    }


def test_cli_followup_remind_queues_each_occurrence_once(
    client: Any, scheduled: dict[str, Any], settings: Any, tmp_path: Any
) -> None:
    env = {
        **os.environ,
        "KETACARE_VAR_DIR": str(tmp_path / "cli"),
        "KETACARE_DATABASE_URL": settings.database_url,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ketacare.cli", "followup", "remind", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    # run on the real clock (after March 2026): the baseline set at the fixed clock is
    # overdue, the after-session PHQ-9 waits for a session: one occurrence to remind
    first = cli("--json")
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)
    assert (counts["queued"], counts["already_queued"]) == (1, 0)
    second = cli()
    assert second.returncode == 0, second.stderr
    assert "queued 0 reminder(s)" in second.stdout and "1 already queued" in second.stdout
    bad = cli("--channel", "fax")
    assert bad.returncode == 2 and "allowed file, email, sms" in bad.stderr


def test_two_reminder_runs_at_once_queue_one_reminder(app: Any, scheduled: dict[str, Any]) -> None:
    import threading

    from ketacare.clinic.audit.service import SYSTEM
    from ketacare.clinic.followup import reminders
    from ketacare.clinic.followup.orm import OutboxMessage
    from ketacare.infra.db import unit_of_work

    pid, sessions = scheduled["pid"], app.state.ctx.sessions
    barrier, results, errors = threading.Barrier(2), [], []

    def run() -> None:
        try:
            barrier.wait()
            with unit_of_work(sessions) as session:
                results.append(
                    reminders.remind_patient(
                        session=session,
                        actor=SYSTEM,
                        patient_id=pid,
                        now=START + timedelta(hours=1),
                        base_url="http://clinic.test",
                        zone=ZoneInfo("Europe/Amsterdam"),
                        valid_hours=24,
                        channel="file",
                        sendable=("file",),
                    )
                )
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted((r.queued, r.already_queued) for r in results) == [(0, 1), (1, 0)]
    with sessions() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.patient_id == pid)).all()
    assert len(rows) == 1 and rows[0].recipient == f"patient {pid}"


def test_the_patients_due_page_says_whether_each_reminder_went(
    app: Any, client: Any, scheduled: dict[str, Any], clock: Any, login_page: Any
) -> None:
    """A reminder that waits or failed is seen by staff, who can then give the link."""
    from ketacare.clinic.audit.service import SYSTEM
    from ketacare.clinic.followup import reminders
    from ketacare.clinic.followup.orm import OutboxMessage

    pid, sessions = scheduled["pid"], app.state.ctx.sessions
    login_page("nurse")

    def cell() -> str:
        page = client.get(f"/patients/{pid}/due-questionnaires").text
        rows = [r for r in page.split("<tr>") if "Pain" in r and "reminder-status" in r]
        return re.sub(r"\s+", " ", rows[0].split('data-testid="reminder-status">')[1])

    assert cell().startswith("—</td>")  # nothing queued yet
    with sessions() as session:
        reminders.remind_patient(
            session=session,
            actor=SYSTEM,
            patient_id=pid,
            now=clock.now,
            base_url="http://clinic.test",
            zone=ZoneInfo("Europe/Amsterdam"),
            valid_hours=24,
            channel="file",
            sendable=("file",),
        )
        session.commit()
    assert cell().startswith("queued (file), not sent yet</td>")
    with sessions() as session:
        [message] = session.scalars(select(OutboxMessage)).all()
        message.claimed_at, message.error = clock.now, "SMTPRecipientsRefused: 550 no mailbox"
        session.commit()
    assert cell().startswith(
        '<strong class="sev">not sent</strong> (file: SMTPRecipientsRefused: 550 no mailbox): '
        "give the link yourself</td>"
    )
    # and on the clinic-wide overview, naming the patient
    overview = client.get("/due-questionnaires").text
    box = overview.split('data-testid="reminders-not-sent"')[1].split("</section>")[0]
    assert "1 reminder(s) did not reach the patient" in box
    assert "SMTPRecipientsRefused: 550 no mailbox" in box and f"/patients/{pid}/" in box
    with sessions() as session:
        [message] = session.scalars(select(OutboxMessage)).all()
        message.error, message.sent_at = None, clock.now
        session.commit()
    assert cell().startswith("sent ")
    assert 'data-testid="reminders-not-sent"' not in client.get("/due-questionnaires").text
