"""A patient whose answers raise a self-harm flag is given the clinic's number, wherever
they answer (their own form, a self-report link); staff who send questionnaires are told
loudly when the clinic has set no crisis route at all.

PHQ-9 item 9 ("Thoughts that you would be better off dead, or of hurting yourself in some
way") answered above 0 needs follow-up whatever the total (Kroenke 2001; the instrument's
``flags``); the crisis message and the clinic's telephone are site policy, not clinical
numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import api_token, page_login

PHONE = "+31 20 555 0100"
TEL = 'To reach the clinic, call <a href="tel:+31205550100">+31 20 555 0100</a>.'
ITEMS_1_TO_8 = {f"item_q{i}": "1" for i in range(1, 9)}


@pytest.fixture
def with_phone(settings: Any, clock: Any) -> Iterator[TestClient]:
    """The clinic with its telephone set and no crisis message."""
    from ketacare.app import create_app

    application = create_app(settings.model_copy(update={"clinic_phone": PHONE}), clock=clock)
    yield TestClient(application)
    application.state.engine.dispose()


def _alert_section(html: str) -> str:
    return html.split('data-testid="safety-alert"')[1].split("</section>")[0]


def _patient1_answers_item_9(client: TestClient) -> str:
    """patient1 signs in and answers PHQ-9 item 9 "Several days": the result's alert."""
    csrf = page_login(client, "patient1")
    r = client.post(
        "/patients/1/assessments/new/phq9",
        data={**ITEMS_1_TO_8, "item_q9": "1", "csrf_token": csrf},
    )
    assert r.status_code == 200, r.text
    return _alert_section(r.text)


def test_staff_are_told_when_the_clinic_set_no_crisis_route(client: TestClient) -> None:
    page_login(client, "nurse")
    html = client.get("/patients/1/assessments").text
    warning = html.split('data-testid="crisis-unset"')[1].split("</p>")[0]
    assert "no crisis message and no telephone number" in warning
    assert "told only to call the local emergency number" in warning


def test_a_patient_answering_item_9_is_given_the_clinics_number(with_phone: TestClient) -> None:
    client = with_phone
    page_login(client, "nurse")
    assert 'data-testid="crisis-unset"' not in client.get("/patients/1/assessments").text
    client.cookies.clear()

    csrf = page_login(client, "patient1")
    # item 9 left blank: asked again, with the clinic's number beside the emergency number
    r = client.post("/patients/1/assessments/new/phq9", data={**ITEMS_1_TO_8, "csrf_token": csrf})
    assert r.status_code == 422
    hint = r.text.split('data-testid="item9-help"')[1].split("</p>")[0]
    assert TEL in hint and "emergency number" in hint
    # item 9 answered "Several days": the result tells the patient whom to call
    r = client.post(
        "/patients/1/assessments/new/phq9",
        data={**ITEMS_1_TO_8, "item_q9": "1", "csrf_token": csrf},
    )
    assert r.status_code == 200, r.text
    alert = _alert_section(r.text)
    assert "has been alerted" in alert and TEL in alert and "emergency number" in alert


def test_a_self_report_link_gives_the_clinics_number(with_phone: TestClient) -> None:
    client = with_phone
    nurse = api_token(client, "nurse")
    r = client.post(
        "/api/v1/patients/1/self-report-links",
        headers=nurse,
        json={"instruments": ["phq9"], "valid_hours": 48},
    )
    assert r.status_code == 201, r.text
    token = r.json()["url"].split("/r/")[1]
    r = client.post(f"/r/{token}/phq9", data={**ITEMS_1_TO_8, "item_q9": "2"})
    assert r.status_code == 200, r.text
    assert TEL in _alert_section(r.text)


def test_without_a_phone_no_empty_call_line_is_shown(client: TestClient) -> None:
    alert = _patient1_answers_item_9(client)
    assert "To reach the clinic" not in alert and "emergency number" in alert


def test_out_of_hours_the_patient_is_not_promised_a_call_that_waits_for_the_morning(
    settings: Any, clock: Any, tmp_path: Any
) -> None:
    """At 20:00 on a Monday, with the clinic open Mon-Fri 08:00-18:00 (its own hours), the
    patient is told the team sees the alert when the clinic opens (Tue 08:00), not to wait
    for a call if unsafe, and the emergency number; in hours, that the team will call."""
    from datetime import timedelta

    from ketacare.app import create_app

    hours = tmp_path / "clinic-hours.toml"
    hours.write_text(
        '[opening]\ndays = ["mon", "tue", "wed", "thu", "fri"]\nopens = "08:00"\ncloses = "18:00"\n'
    )
    app = create_app(
        settings.model_copy(update={"clinic_phone": PHONE, "clinic_hours_file": hours}),
        clock=clock,
    )
    client = TestClient(app)
    clock.now = clock.now.replace(hour=20, minute=0)  # Monday 2 March 2026, 20:00 UTC
    alert = _patient1_answers_item_9(client)
    assert "the clinic is closed now" in alert and "(Tue 03 Mar, 08:00)" in alert
    assert "will contact you" not in alert and "emergency number" in alert and TEL in alert
    # in opening hours the next morning: the team will call
    clock.now += timedelta(hours=13)  # Tuesday 09:00
    alert = _patient1_answers_item_9(client)
    assert "will contact you" in alert and "closed now" not in alert
    app.state.engine.dispose()
