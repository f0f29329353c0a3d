"""A questionnaire with a required item blank is refused at submission with the items named,
or kept as incomplete where the clinic accepts partial answers; a blank PHQ-9 item 9
alerts the responsible clinician to ask it; a self-report link is spent only once the
required items are in.

Expected answers: PHQ-9 items 1-9 each take 0-3 ("Not at all", "Several days", "More than
half the days", "Nearly every day"; LOINC LL358-3, Kroenke 2001); item 9 is "Thoughts that
you would be better off dead, or of hurting yourself" and needs follow-up whatever the
total (calcipedia PHQ-9 calculator); no developer source gives a missing-item rule, so an
incomplete PHQ-9 has no total (docs/instruments.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import page_login
from ketacare.clinic.assessments.orm import ClinicalAlert
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.demo import DEMO_PASSWORD

EIGHT = [1, 1, 2, 1, 0, 1, 0, 0]  # items 1-8; 1+1+2+1+0+1+0+0 = 6
ITEM9_ASKED = (
    "Question 9: “Thoughts that you would be better off dead, or of hurting yourself in some way”"
)
ALLOWED = "0 (Not at all), 1 (Several days), 2 (More than half the days), 3 (Nearly every day)"


def _form(values: list[int | None]) -> dict[str, str]:
    return {f"item_q{i + 1}": str(v) for i, v in enumerate(values) if v is not None}


def _link(client: Any, headers: dict[str, str]) -> str:
    r = client.post(
        "/api/v1/patients/1/self-report-links",
        headers=headers,
        json={"instruments": ["phq9"], "valid_hours": 48},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["url"].split("/r/")[1])


def _alerts(client: Any, physician: dict[str, str]) -> list[dict[str, Any]]:
    return list(client.get("/api/v1/alerts", headers=physician).json())


def _refusals(app: Any) -> list[AuditEvent]:
    with app.state.ctx.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "refuse", AuditEvent.resource_type == "assessment"
                )
            )
        )


def test_api_refuses_a_blank_item_9_naming_it_stores_nothing_and_alerts(
    app: Any, client: Any, login_api: Any
) -> None:
    nurse, physician = login_api("nurse"), login_api("physician")
    r = client.post(
        "/api/v1/patients/1/assessments",
        headers=nurse,
        json={"instrument": "phq9", "answers": [*EIGHT, None]},
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 422 and body["instrument"] == "phq9"
    assert body["unanswered"] == [
        {"item": "q9", "number": 9, "label": "Thoughts of death or self-harm", "allowed": ALLOWED}
    ]
    assert "required item 9 unanswered" in body["detail"]
    assert client.get("/api/v1/patients/1/assessments", headers=nurse).json() == []
    [alert] = _alerts(client, physician)
    assert alert["kind"] == "phq9_item9_unanswered" and alert["assessment_id"] is None
    assert "left unanswered" in alert["message"] and "above 0:" not in alert["message"]
    assert alert["recipient_id"] is not None  # the responsible clinician
    assert [a["id"] for a in body["alerts"]] == [alert["id"]]
    [refused] = _refusals(app)
    assert refused.detail["unanswered"] == ["q9"] and refused.patient_id == 1
    # a second attempt is a second submission: one more alert, still nothing stored
    client.post(
        "/api/v1/patients/1/assessments",
        headers=nurse,
        json={"instrument": "phq9", "answers": [*EIGHT, None]},
    )
    assert [a["kind"] for a in _alerts(client, physician)] == ["phq9_item9_unanswered"] * 2
    assert client.get("/api/v1/patients/1/assessments", headers=nurse).json() == []


def test_answering_item_9_closes_the_alert_that_asked_for_it(
    app: Any, client: Any, clock: Any, login_api: Any
) -> None:
    """The "item 9 unanswered: ask it now" alert is done once item 9 is answered: it closes
    with the assessment named (kept, audited), while a positive answer alerts on its own."""
    from datetime import timedelta

    nurse, physician = login_api("nurse"), login_api("physician")

    def submit(answers: list[int | None]) -> Any:
        return client.post(
            "/api/v1/patients/1/assessments",
            headers=nurse,
            json={"instrument": "phq9", "answers": answers},
        )

    assert submit([*EIGHT, None]).status_code == 422
    [asked] = _alerts(client, physician)
    clock.now += timedelta(hours=1)
    r = submit([*EIGHT, 2])
    assert r.status_code == 201, r.text
    answered = r.json()["assessment"]["id"]
    # the unanswered alert is closed; the positive answer's own alert is open
    assert [a["kind"] for a in _alerts(client, physician)] == ["phq9_item9_positive"]
    with app.state.ctx.sessions() as s:
        closed = s.get(ClinicalAlert, asked["id"])
        assert closed is not None and closed.acknowledged_at is not None
        assert closed.action == (
            f"answered: item 9 is 2 on the PHQ-9 of assessment {answered} (entered by staff); "
            "closed when it was recorded"
        )
        [event] = s.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "acknowledge", AuditEvent.resource_id == str(asked["id"])
            )
        ).all()
        assert event.detail == {"closed_by_assessment": answered, "item": "q9"}


def test_api_names_every_blank_and_a_positive_item_9_still_alerts(
    client: Any, login_api: Any
) -> None:
    nurse, physician = login_api("nurse"), login_api("physician")
    answers = {"q1": 1, "q2": 0, "q3": None, "q4": 0, "q5": 0, "q6": 0, "q7": None, "q8": 0}
    r = client.post(
        "/api/v1/patients/1/assessments",
        headers=nurse,
        json={"instrument": "phq9", "answers": {**answers, "q9": 2}},
    )
    assert r.status_code == 422
    assert [u["number"] for u in r.json()["unanswered"]] == [3, 7]
    assert [a["kind"] for a in _alerts(client, physician)] == ["phq9_item9_positive"]


def test_staff_page_refuses_naming_item_9_and_keeps_the_answers(
    client: Any, login_page: Any, login_api: Any
) -> None:
    csrf = login_page("nurse")
    r = client.post("/patients/1/assessments/new/phq9", data={**_form(EIGHT), "csrf_token": csrf})
    assert r.status_code == 422
    assert 'data-testid="unanswered"' in r.text
    assert "Question 9: Thoughts of death or self-harm" in r.text
    assert re.search(r'id="item-q9" aria-invalid="true"', r.text)
    # item 3 was answered 2: still checked; item 9 has nothing checked
    item3 = r.text.split('id="item-q3"')[1].split("</fieldset>")[0]
    assert re.search(r'value="2" checked', item3)
    item9 = r.text.split('id="item-q9"')[1].split("</fieldset>")[0]
    assert "checked" not in item9
    nurse = login_api("nurse")
    assert client.get("/api/v1/patients/1/assessments", headers=nurse).json() == []
    login_page("physician")
    alerts = client.get("/alerts")
    assert 'data-testid="alert-phq9_item9_unanswered"' in alerts.text
    assert ">complete the PHQ-9</a>" in alerts.text  # the instrument's name, not its code


def test_the_patients_own_form_asks_item_9_in_the_patients_words(
    client: Any, login_page: Any, login_api: Any
) -> None:
    """A patient signed in who leaves item 9 blank is asked it in the questionnaire's own
    words and told what to do if in danger; the clinician's instruction (C-SSRS) goes to
    the care team's alert, not to the patient's screen."""
    csrf = login_page("patient1")
    r = client.post("/patients/1/assessments/new/phq9", data={**_form(EIGHT), "csrf_token": csrf})
    assert r.status_code == 422
    assert ITEM9_ASKED in r.text and "Your other answers are still filled in below" in r.text
    help_text = r.text.split('data-testid="item9-help"')[1].split("</p>")[0]
    assert "please tell your care team" in help_text and "emergency number" in help_text
    assert "C-SSRS" not in r.text and "Ask it now" not in r.text
    assert 'data-testid="safety-alert"' not in r.text
    physician = login_api("physician")
    assert [a["kind"] for a in _alerts(client, physician)] == ["phq9_item9_unanswered"]


def test_a_link_is_not_spent_by_a_refused_form_and_alerts_once(
    app: Any, client: Any, login_api: Any
) -> None:
    nurse, physician = login_api("nurse"), login_api("physician")
    token = _link(client, nurse)
    for _attempt in range(2):
        r = client.post(f"/r/{token}/phq9", data=_form(EIGHT))
        assert r.status_code == 422
        assert ITEM9_ASKED in r.text  # in the wording the patient sees
        assert "were saved" not in r.text
    assert client.get(f"/r/{token}").status_code == 200  # still usable
    assert client.get("/api/v1/patients/1/assessments", headers=nurse).json() == []
    # one alert for this link however often it was tried, two refusals audited
    assert [a["kind"] for a in _alerts(client, physician)] == ["phq9_item9_unanswered"]
    assert len(_refusals(app)) == 2
    done = client.post(f"/r/{token}/phq9", data=_form([*EIGHT, 0]))
    assert done.status_code == 200 and "answers were saved" in done.text
    assert client.get(f"/r/{token}").status_code == 410  # spent once complete
    [row] = client.get("/api/v1/patients/1/assessments", headers=nurse).json()
    assert row["total"] == 6 and row["missing"] == [] and row["incomplete"] is None


@pytest.fixture
def partial(settings: Any, clock: Any) -> Iterator[TestClient]:
    """The same clinic with the partial-answers setting switched on."""
    from ketacare.app import create_app

    application = create_app(
        settings.model_copy(update={"accept_partial_questionnaires": True}), clock=clock
    )
    yield TestClient(application)
    application.state.engine.dispose()


def test_the_setting_is_off_by_default() -> None:
    from ketacare.infra.settings import Settings

    assert Settings.model_fields["accept_partial_questionnaires"].default is False


def _api(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_partial_mode_keeps_the_form_incomplete_with_its_flag(partial: TestClient) -> None:
    nurse, physician = _api(partial, "nurse"), _api(partial, "physician")
    r = partial.post(
        "/api/v1/patients/1/assessments",
        headers=nurse,
        json={"instrument": "phq9", "answers": [*EIGHT, None]},
    )
    assert r.status_code == 201, r.text
    row = r.json()["assessment"]
    # six points from eight items is not a PHQ-9 total: none is given
    assert row["total"] is None and row["band"] is None and row["missing"] == ["q9"]
    assert row["incomplete"] == "incomplete: item 9 unanswered"
    assert row["flags"] == ["phq9_item9_unanswered"]
    [alert] = _alerts(partial, physician)
    assert alert["kind"] == "phq9_item9_unanswered" and alert["assessment_id"] == row["id"]
    page_login(partial, "physician")
    listing = partial.get("/patients/1/assessments")
    assert 'data-testid="incomplete">incomplete: item 9 unanswered<' in listing.text


def test_partial_mode_link_stays_open_until_the_required_items_are_in(
    partial: TestClient,
) -> None:
    nurse, physician = _api(partial, "nurse"), _api(partial, "physician")
    token = _link(partial, nurse)
    kept = partial.post(f"/r/{token}/phq9", data=_form(EIGHT))
    assert kept.status_code == 200
    assert 'data-testid="incomplete">Not answered: question 9.' in kept.text
    assert 'data-testid="safety-alert"' not in kept.text  # unanswered is not positive
    assert partial.get(f"/r/{token}").status_code == 200  # not spent
    done = partial.post(f"/r/{token}/phq9", data=_form([*EIGHT, 0]))
    assert done.status_code == 200 and "completed everything" in done.text
    assert partial.get(f"/r/{token}").status_code == 410
    rows = partial.get("/api/v1/patients/1/assessments", headers=nurse).json()
    assert sorted((r["total"], r["incomplete"]) for r in rows if r["total"] is not None) == [
        (6.0, None)
    ]
    assert [r["incomplete"] for r in rows if r["total"] is None] == [
        "incomplete: item 9 unanswered"
    ]
    # the blank raised its alert; the answer given on the same link closed it (self-reported)
    everyone = partial.get("/api/v1/alerts", headers=physician, params={"mine": "false"})
    assert everyone.json() == []
    with partial.app.state.ctx.sessions() as s:  # type: ignore[attr-defined]
        [closed] = s.scalars(select(ClinicalAlert)).all()
    assert closed.kind == "phq9_item9_unanswered" and closed.acknowledged_by is None
    assert closed.action is not None and "item 9 is 0" in closed.action
    assert "(self-reported)" in closed.action


def test_an_option_is_read_once_whether_its_label_holds_its_number_or_not(
    client: Any, login_page: Any
) -> None:
    """The pain scale's options are labelled by their numbers ("0 (no pain)", "1"): each
    reads once, not "1 1"; the PHQ-9's are words, so the number stands before them."""
    login_page("nurse")

    def options(instrument: str) -> list[str]:
        page = client.get(f"/patients/1/assessments/new/{instrument}").text
        labels = re.findall(r'<label class="option">(.*?)</label>', page, re.S)
        return [" ".join(re.sub(r"<[^>]+>", " ", x).split()) for x in labels]

    nrs = options("nrs_pain")
    assert nrs[:3] == ["0 (no pain)", "1", "2"] and len(nrs) == 11
    assert options("phq9")[:2] == ["0 Not at all", "1 Several days"]


def test_a_cssrs_behaviour_yes_with_its_recency_blank_is_refused_and_alerts(
    client: Any, login_api: Any
) -> None:
    # Columbia triage: suicidal behaviour in the past 3 months is high risk; "when" left
    # blank is that very answer, so it is unknown and the clinician is told to ask it
    nurse, physician = login_api("nurse"), login_api("physician")
    r = client.post(
        "/api/v1/patients/1/assessments",
        headers=nurse,
        json={
            "instrument": "cssrs_screener",
            "answers": [False, False, None, None, None, True, None],
        },
    )
    assert r.status_code == 422, r.text
    assert [u["item"] for u in r.json()["unanswered"]] == ["q6_recent"]
    assert client.get("/api/v1/patients/1/assessments", headers=nurse).json() == []
    [alert] = _alerts(client, physician)
    assert alert["kind"] == "cssrs_recency_unanswered"
    assert "past 3 months" in alert["message"] and "unknown" in alert["message"]
    assert alert["routes_to"] == "cssrs_screener"
