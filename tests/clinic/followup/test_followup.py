"""Self-report links (single use, expiry) and the outbox (never sent twice)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ketacare.clinic.followup import service
from ketacare.clinic.followup.senders import FileSender

PHQ9_ITEM9 = {f"item_q{i + 1}": str(v) for i, v in enumerate([1, 1, 2, 1, 0, 1, 0, 0, 1])}


def _link(client: Any, headers: dict[str, str], **extra: Any) -> str:
    r = client.post(
        "/api/v1/patients/1/self-report-links",
        headers=headers,
        json={"instruments": ["phq9", "nrs_pain"], "valid_hours": 48, **extra},
    )
    assert r.status_code == 201, r.text
    return r.json()["url"].split("/r/")[1]


def test_a_link_is_filled_without_login_and_used_up(client: Any, login_api: Any) -> None:
    nurse, physician = login_api("nurse"), login_api("physician")
    token = _link(client, nurse)
    page = client.get(f"/r/{token}")
    assert page.status_code == 200 and "Patient Health Questionnaire-9" in page.text
    r = client.post(f"/r/{token}/phq9", data=PHQ9_ITEM9)
    assert r.status_code == 200 and 'data-testid="safety-alert"' in r.text
    assert [a["kind"] for a in client.get("/api/v1/alerts", headers=physician).json()] == [
        "phq9_item9_positive"
    ]
    again = client.post(f"/r/{token}/phq9", data=PHQ9_ITEM9)
    assert "already completed" in again.text
    r = client.post(f"/r/{token}/nrs_pain", data={"item_pain": "4"})
    assert r.status_code == 200 and "completed everything" in r.text
    closed = client.get(f"/r/{token}")
    assert closed.status_code == 410 and "already used" in closed.text
    rows = client.get("/api/v1/patients/1/assessments", headers=nurse).json()
    assert {(a["instrument_id"], a["source"], a["context"]) for a in rows} == {
        ("phq9", "patient", "follow_up"),
        ("nrs_pain", "patient", "follow_up"),
    }


def test_an_expired_or_unknown_link_is_refused(client: Any, login_api: Any, clock: Any) -> None:
    token = _link(client, login_api("nurse"))
    clock.now += timedelta(hours=48, seconds=1)
    r = client.get(f"/r/{token}")
    assert r.status_code == 410 and "expired" in r.text
    assert client.post(f"/r/{token}/phq9", data=PHQ9_ITEM9).status_code == 410
    assert client.get("/api/v1/patients/1/assessments", headers=login_api("nurse")).json() == []
    assert client.get("/r/not-a-token").status_code == 404


def test_bad_link_requests_are_refused(client: Any, login_api: Any) -> None:
    nurse = login_api("nurse")
    for body, message in (
        ({"instruments": ["ort"], "valid_hours": 1}, "not a self-report"),
        ({"instruments": ["phq9"], "valid_hours": 999}, "valid_hours"),
        ({"instruments": ["phq9"], "valid_hours": 1, "channel": "fax"}, "channel"),
    ):
        r = client.post("/api/v1/patients/1/self-report-links", headers=nurse, json=body)
        assert r.status_code == 422 and message in r.json()["detail"]


def test_a_link_offers_every_self_report_questionnaire(client: Any, login_api: Any) -> None:
    """Self-report is one list, from the instruments' data files: a patient may fill AUDIT-C
    and DAST-10 on their own page, so a link may carry them too."""
    nurse = login_api("nurse")
    r = client.post(
        "/api/v1/patients/1/self-report-links",
        headers=nurse,
        json={"instruments": ["auditc", "dast10"], "valid_hours": 1},
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/patients/1/self-report-links",
        headers=nurse,
        json={"instruments": ["cssrs_screener"], "valid_hours": 1},
    )
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "cssrs_screener is not a self-report questionnaire: allowed auditc, bpi_sf, dast10, "
        "gad7, nrs_pain, pcs, pgic, phq9"
    )


def test_a_reminder_is_queued_once_and_sent_once(
    app: Any, client: Any, login_api: Any, tmp_path: Any
) -> None:
    _link(client, login_api("nurse"), channel="file")
    sessions, now = app.state.ctx.sessions, app.state.ctx.clock()
    with sessions() as session:
        [message_id] = service.pending(session=session)  # its id, with the channel
        assert (
            service.enqueue(
                session=session,
                patient_id=1,
                channel="email",
                recipient="x",
                subject="s",
                body="b",
                dedupe_key="self-report-link:1",
                now=now,
            )
            is None
        )  # same key: not queued again
        assert service.claim(session=session, message_id=message_id, now=now) is True
        assert service.claim(session=session, message_id=message_id, now=now) is False
        sender = FileSender(tmp_path / "outbox")
        assert service.deliver(session=session, message_id=message_id, sender=sender, now=now)
        assert not service.deliver(session=session, message_id=message_id, sender=sender, now=now)
        session.commit()
    [written] = list((tmp_path / "outbox").iterdir())
    text = written.read_text()
    assert "To: +1 555 010 0000 (file)" in text  # the demo patient's phone
    assert re.search(r"/r/[A-Za-z0-9_-]{20,}", text)


def test_cli_outbox_send_sends_each_message_once(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from datetime import UTC, datetime

    from ketacare.clinic.audit.service import Actor
    from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work

    env = {**os.environ, "KETACARE_VAR_DIR": str(tmp_path), "KETACARE_DATABASE_URL": ""}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ketacare.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    cli("db", "upgrade")
    cli("demo", "--no-history")
    engine = make_engine(f"sqlite:///{tmp_path / 'ketacare.sqlite3'}")
    with unit_of_work(make_sessionmaker(engine)) as session:
        service.create_link(
            session=session,
            actor=Actor(2, "physician", "physician"),
            patient_id=1,
            instruments=["phq9"],
            valid_hours=24,
            now=datetime.now(UTC),
            base_url="http://127.0.0.1:8000",
            zone=ZoneInfo("Europe/Amsterdam"),
            channel="file",
            sendable=("file",),
        )
    engine.dispose()
    first, second = cli("outbox", "send"), cli("outbox", "send")
    assert first.returncode == 0 and "sent 1 message(s)" in first.stdout
    assert second.returncode == 0 and "sent 0 message(s)" in second.stdout
    assert len(list((tmp_path / "outbox").iterdir())) == 1


def test_the_pages_send_a_link_that_works_and_refuse_bad_hours_storing_nothing(
    app: Any, client: Any, login_page: Any
) -> None:
    csrf = login_page("nurse")
    form = {"csrf_token": csrf, "instrument": ["phq9", "nrs_pain"], "valid_hours": "48"}
    sent = client.post("/patients/1/self-report-links", data=form)
    assert sent.status_code == 200, sent.text
    url = re.search(r'data-testid="self-report-url">([^<]+)<', sent.text)
    assert url and "/r/" in url.group(1)
    assert "Questionnaires: PHQ-9, Pain NRS." in sent.text
    token = url.group(1).split("/r/")[1]
    assert client.get(f"/r/{token}").status_code == 200
    refused = client.post("/patients/1/self-report-links", data={**form, "valid_hours": "two"})
    assert refused.status_code == 422
    assert "valid_hours &#39;two&#39; is not a number" in refused.text
    assert 'data-testid="self-report-url"' not in refused.text
    # nothing is scheduled for the patient: the due-now link is refused (409), none is made
    none_due = client.post(
        "/patients/1/due-questionnaires/link", data={"csrf_token": csrf, "valid_hours": "24"}
    )
    assert none_due.status_code == 409, none_due.text
    assert 'data-testid="self-report-url"' not in none_due.text
    # the refused requests stored nothing: the first link is still the only one
    from sqlalchemy import func, select

    from ketacare.clinic.followup.orm import SelfReportLink

    with app.state.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SelfReportLink)) == 1
