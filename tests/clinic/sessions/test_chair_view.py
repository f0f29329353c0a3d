"""The chair view a nurse needs (issue 13, item 7): time left, the monitoring order on the
chair, board and summary, a rate change with its reason, a medication's purpose in free text,
the event list beside the vitals, refusals in clinical words, loud banners for checks off."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plan_helpers import BASELINE_VITALS as BASELINE
from plan_helpers import IV_CHECKS, _signed

# crps-outpatient: a 4 h infusion (240 min, Schwartzman 2009, the protocol file)
PLANNED_MIN = 240


class Chair:
    """One session of a signed IV plan, driven through the API as a nurse would."""

    def __init__(
        self, client: Any, clinic: dict[str, Any], plan: dict[str, Any] | None = None
    ) -> None:
        self.client, self.nurse = client, clinic["team"]["nurse"]
        plan = plan or _signed(client, clinic)
        r = client.post(
            f"/api/v1/plans/{plan['id']}/sessions", headers=self.nurse, json={"session_number": 1}
        )
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]

    def read(self) -> dict[str, Any]:
        return dict(self.client.get(f"/api/v1/sessions/{self.id}", headers=self.nurse).json())

    def post(self, event: dict[str, Any]) -> Any:
        return self.client.post(
            f"/api/v1/sessions/{self.id}/events",
            headers=self.nurse,
            json={"expected_seq": self.read()["last_seq"], "event": event},
        )

    def ok(self, event: dict[str, Any]) -> None:
        r = self.post(event)
        assert r.status_code == 201, r.text

    def infusing(self, rate: float = 20) -> None:
        self.ok({"kind": "check_in"})
        self.ok(BASELINE)
        for item in IV_CHECKS:
            self.ok({"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K7"})
        self.ok({"kind": "start_infusion", "rate_mg_per_h": rate})

    def page(self) -> str:
        return str(self.client.get(f"/sessions/{self.id}").text)

    def form(self, fields: dict[str, str]) -> Any:
        """A form posted from the chair view, as the browser sends it."""
        html = self.page()
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert token is not None
        return self.client.post(
            f"/sessions/{self.id}/record",
            data={
                "csrf_token": token.group(1),
                "expected_seq": str(self.read()["last_seq"]),
                **fields,
            },
            follow_redirects=False,
        )


def _self_harm_answer(client: Any, chair: Chair, patient_id: int) -> dict[str, Any]:
    """A PHQ-9 entered by the nurse with item 9 at 1: its one alert (routed to the
    responsible physician)."""
    r = client.post(
        f"/api/v1/patients/{patient_id}/assessments",
        headers=chair.nurse,
        json={"instrument": "phq9", "answers": [1, 1, 2, 1, 0, 1, 0, 0, 1]},
    )
    assert r.status_code == 201, r.text
    [alert] = r.json()["alerts"]
    assert alert["kind"] == "phq9_item9_positive"
    return dict(alert)


def _testid(html: str, name: str) -> str:
    """The text of the element marked ``name`` (up to its own end tag)."""
    found = re.search(rf'<(\w+)[^>]*data-testid="{name}"[^>]*>(.*?)</\1>', html, re.S)
    assert found is not None, f"no {name} on the page"
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(2)))).strip()


def test_time_left_counts_down_the_planned_infusion_without_pauses_and_ends_at_stop(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    chair = Chair(client, clinic)
    login_page("nurse")
    assert _testid(chair.page(), "banner-time-left").startswith("4 h 00 min")  # not started
    chair.infusing()
    clock.now += timedelta(minutes=30)
    assert chair.read()["timers"]["dosing_left"] == (PLANNED_MIN - 30) * 60
    assert _testid(chair.page(), "banner-time-left") == "3 h 30 min"
    chair.ok({"kind": "pause", "reason": "nausea"})
    clock.now += timedelta(minutes=15)  # paused: the infusion's time left does not run
    assert _testid(chair.page(), "banner-time-left") == "3 h 30 min (paused)"
    chair.ok({"kind": "resume"})
    clock.now += timedelta(minutes=50)  # 30 + 50 = 80 min infused: 160 min left
    assert _testid(chair.page(), "banner-time-left") == "2 h 40 min"
    chair.ok({"kind": "stop", "reason": "completed"})
    clock.now += timedelta(minutes=5)
    assert chair.read()["timers"]["dosing_left"] is None
    assert _testid(chair.page(), "banner-time-left") == "dosing ended"


def test_a_rate_change_needs_its_reason_which_is_kept_and_listed(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    chair = Chair(client, clinic)
    chair.infusing(rate=20)
    clock.now += timedelta(minutes=10)
    before = chair.read()
    for blank in ({}, {"reason": "   "}):
        r = chair.post({"kind": "rate_change", "rate_mg_per_h": 15, **blank})
        assert r.status_code == 422 and "reason is required" in r.json()["detail"], r.text
    after = chair.read()
    assert after["last_seq"] == before["last_seq"] and after["rate_mg_per_h"] == 20  # unchanged
    # the chair's form: refused in words naming the field, nothing stored
    login_page("nurse")
    r = chair.form({"kind": "rate_change", "rate_mg_per_h": "15", "reason": ""})
    assert r.status_code == 422
    assert "the reason is required" in _testid(r.text, "error")
    assert chair.read()["last_seq"] == before["last_seq"]
    chair.ok({"kind": "rate_change", "rate_mg_per_h": 15, "reason": "nausea"})
    view = chair.read()
    assert view["rate_mg_per_h"] == 15
    [entry] = [e for e in view["events"] if e["kind"] == "rate_change"]
    assert entry["reason"] == "nausea"  # kept in the record
    listed = _testid(chair.page(), f"entry-{entry['seq']}")
    assert "rate changed to 15 mg/h (reason: nausea)" in listed
    assert "11:10" in listed  # 10:10 UTC is 11:10 in Amsterdam (CET, 2 March)


def test_a_medication_purpose_is_chosen_or_typed(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    chair = Chair(client, clinic)
    chair.infusing()
    login_page("nurse")
    page = chair.page()
    for purpose in ("premedication", "rescue", "other"):  # the list is kept
        assert f'<option value="{purpose}">' in page
    r = chair.form(
        {
            "kind": "medication",
            "drug": "midazolam",
            "dose": "1 mg",
            "route": "IV",
            "purpose": "anxiolysis before the second hour",
        }
    )
    assert r.status_code == 303, r.text
    [given] = [e for e in chair.read()["events"] if e["kind"] == "medication"]
    assert given["purpose"] == "anxiolysis before the second hour"
    assert "purpose anxiolysis before the second hour" in _testid(
        chair.page(), f"entry-{given['seq']}"
    )
    seq = chair.read()["last_seq"]
    # a plain rescue says what it was for
    r = chair.post(
        {"kind": "medication", "drug": "ondansetron", "dose": "4 mg", "route": "IV", "purpose": ""}
    )
    assert r.status_code == 422 and "medication purpose is required" in r.json()["detail"]
    r = chair.post(
        {
            "kind": "medication",
            "drug": "ondansetron",
            "dose": "4 mg",
            "route": "IV",
            "purpose": "rescue",
        }
    )
    assert r.status_code == 422 and "medication reason is required" in r.json()["detail"]
    assert chair.read()["last_seq"] == seq


def test_a_medication_dose_gives_its_unit(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    """'ondansetron 4' is refused (4 mg or 4 mL?), naming the units; the page keeps
    nothing; '4 mg', '4mg', '1 tablet' and '0.5 mcg over 5 min' are taken."""
    chair = Chair(client, clinic)
    chair.infusing()
    seq = chair.read()["last_seq"]
    given = {"kind": "medication", "drug": "ondansetron", "route": "IV", "purpose": "nausea"}
    for dose, why in (
        ("4", "dose '4' gives no unit"),
        ("4 ml/h?", "dose '4 ml/h?' gives no unit"),
        ("four mg", "dose 'four mg' does not start with an amount"),
        ("4 amps", "dose '4 amps' gives no unit"),
    ):
        r = chair.post({**given, "dose": dose})
        assert r.status_code == 422 and why in r.json()["detail"], r.text
        assert "e.g. '4 mg' (units: mg, microgram, g, mL," in r.json()["detail"]
    assert chair.read()["last_seq"] == seq
    login_page("nurse")
    r = chair.form({**given, "dose": "4"})
    assert r.status_code == 422 and "gives no unit" in unescape(r.text)
    assert chair.read()["last_seq"] == seq
    for dose in ("4 mg", "4mg", "1 tablet", "0.5 mcg over 5 min", "2 international units"):
        r = chair.post({**given, "dose": dose})
        assert r.status_code == 201, (dose, r.text)
    doses = [e["dose"] for e in chair.read()["events"] if e["kind"] == "medication"]
    assert doses == ["4 mg", "4mg", "1 tablet", "0.5 mcg over 5 min", "2 international units"]


def _value(html: str, name: str) -> str | None:
    """The value an input named ``name`` is shown with (None: no value attribute)."""
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', html)
    assert tag is not None, f"no input {name} on the page"
    found = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return None if found is None else unescape(found.group(1))


def _selected(html: str, name: str) -> list[str]:
    """The values of the options chosen in the select named ``name``."""
    found = re.search(rf'<select[^>]*\bname="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert found is not None, f"no select {name} on the page"
    return re.findall(r'<option value="([^"]*)" selected>', found.group(1))


def _ticked(html: str, name: str) -> list[str]:
    """The values of the checkboxes named ``name`` that are ticked."""
    return [
        m.group(1)
        for m in re.finditer(rf'<input type="checkbox" name="{name}" value="([^"]*)"([^>]*)>', html)
        if "checked" in m.group(2)
    ]


def test_a_refused_vitals_entry_keeps_every_value_typed_and_stores_nothing(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    chair = Chair(client, clinic)
    chair.ok({"kind": "check_in"})
    login_page("nurse")
    before = chair.read()["last_seq"]
    typed = {
        "sbp_mmhg": "124",
        "dbp_mmhg": "78",
        "hr_per_min": "72",
        "spo2_pct": "98",
        "rr_per_min": "14",
        "temperature_c": "98.6",  # Fahrenheit in the Celsius box
    }
    r = chair.form(
        {"kind": "vitals", **typed, "consciousness": "alert", "supplemental_oxygen": "no"}
    )
    assert r.status_code == 422
    said = _testid(r.text, "error")
    assert "temperature 98.6 degC is out of range: allowed 25 to 45 degC" in said, said
    for name, text in typed.items():
        assert _value(r.text, name) == text, name
    assert _selected(r.text, "consciousness") == ["alert"]
    assert _selected(r.text, "supplemental_oxygen") == ["no"]
    assert chair.read()["last_seq"] == before  # nothing stored
    # a plain page shows empty boxes and nothing chosen (no answer is pre-selected)
    page = chair.page()
    assert _value(page, "sbp_mmhg") is None and _value(page, "temperature_c") is None
    assert _selected(page, "consciousness") == [""]


def test_refused_side_effects_medicine_and_checks_keep_what_was_entered(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    chair = Chair(client, clinic)
    chair.ok({"kind": "check_in"})
    login_page("nurse")
    seq = chair.read()["last_seq"]
    # pre-dose checks: the lot number is missing, so none of the ticked checks is stored
    r = chair.form({"kind": "pre_dose_checks", "item": ["fasting", "medication_lot"]})
    assert r.status_code == 422 and "record the lot number" in _testid(r.text, "error")
    assert _ticked(r.text, "item") == ["fasting", "medication_lot"]
    assert chair.read()["last_seq"] == seq
    assert _ticked(chair.page(), "item") == []
    chair.ok(BASELINE)
    for item in IV_CHECKS:
        chair.ok({"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K7"})
    chair.ok({"kind": "start_infusion", "rate_mg_per_h": 20})
    seq = chair.read()["last_seq"]
    # side effects: a sedation score outside the MOAA/S 0-5 scale
    r = chair.form(
        {
            "kind": "side_effects",
            "sedation_moaas": "7",
            "pain_nrs": "4",
            "nausea": "yes",
            "vomiting": "no",
        }
    )
    assert r.status_code == 422 and "7" in _testid(r.text, "error")
    assert (_value(r.text, "sedation_moaas"), _value(r.text, "pain_nrs")) == ("7", "4")
    assert _selected(r.text, "nausea") == ["yes"] and _selected(r.text, "vomiting") == ["no"]
    assert _selected(r.text, "dizziness") == []  # not asked stays not asked
    # a rescue medicine without what it was for
    given = {"drug": "ondansetron", "dose": "4 mg", "route": "IV", "purpose": "rescue"}
    r = chair.form({"kind": "medication", **given})
    assert r.status_code == 422 and "reason is required" in _testid(r.text, "error")
    for name, text in given.items():
        assert _value(r.text, name) == text, name
    assert _value(r.text, "sedation_moaas") is None  # the other form is not filled
    assert chair.read()["last_seq"] == seq


ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
MICROSECONDS = re.compile(r":\d{2}\.\d{3,6}")
SNAKE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")


def test_refusals_at_the_chair_speak_clinical_words_in_local_minutes(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    chair = Chair(client, clinic)
    clock.now += timedelta(seconds=7, microseconds=123456)
    chair.ok({"kind": "check_in"})
    chair.ok({"kind": "vitals", "hr_per_min": 72})
    login_page("nurse")
    # the API says it the record's way (entry number, kind and ISO time) ...
    r = chair.post({"kind": "start_infusion", "rate_mg_per_h": 20})
    assert r.status_code == 409 and "pre-dose checks not passed" in r.json()["detail"]
    assert ISO.search(r.json()["detail"])
    # ... the chair in words: the clinic's time to the minute, no internal names
    r = chair.form({"kind": "start_infusion", "rate_mg_per_h": "20"})
    assert r.status_code == 422
    said = _testid(r.text, "error")
    assert (
        "start infusion by nurse at 11:00: pre-dose checks not passed: baseline vitals, fasting"
        in said
    )
    assert "escort arranged" in said and "medication lot" in said
    for pattern in (ISO, MICROSECONDS, SNAKE):
        assert not pattern.search(said), (pattern.pattern, said)
    r = chair.form({"kind": "vitals", "sbp_mmhg": "12O"})
    assert "vitals systolic BP: '12O' is not a number" in _testid(r.text, "error")
    r = chair.form({"kind": "self_administration", "devices": "1"})
    said = _testid(r.text, "error")
    assert "this session is an infusion: start the infusion" in said and not SNAKE.search(said)


def test_the_order_is_on_the_chair_board_summary_and_pdf_and_checks_off_are_loud(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    chair = Chair(client, clinic)
    chair.infusing()
    login_page("nurse")
    expected = "SpO2 < 92 % (monitoring order signed by physician, value from this plan)"
    page = unescape(chair.page())
    assert expected in page
    assert expected in unescape(client.get("/board").text)
    summary = unescape(client.get(f"/sessions/{chair.id}/summary").text)
    assert expected in summary and 'data-testid="event-list"' in summary
    assert "infusion started at 20 mg/h" in summary
    # no session policy in this clinic: every unset check is named on a loud banner
    banner = _testid(page, "unset-banner")
    assert banner.startswith("Checks off, not set by the clinic")
    # the order sets the minimum observation the protocol leaves open: on the order, not off
    assert "minimum observation after dosing" not in banner
    assert "minimum observation after dosing: 120 min (monitoring order signed by physician" in page
    assert "temperature high: not configured" in banner
    assert "session dose (mg) soft limit: not set" in banner and "dose_mg" not in banner
    assert 'data-testid="no-order-banner"' not in page  # this plan has an order

    import shutil
    import subprocess

    from conftest import REQUIRE_ALL

    if shutil.which("pdftotext") is None and not REQUIRE_ALL:
        return  # reading the PDF back needs poppler-utils
    pdf = client.get(f"/sessions/{chair.id}/summary.pdf").content
    read = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    text = " ".join(read.stdout.decode().split())
    assert "Monitoring order" in text
    assert expected in text
    assert "infusion started at 20 mg/h" in text


def test_a_session_alert_is_acknowledged_at_the_chair_not_from_the_inbox(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    team = clinic["team"]
    chair = Chair(client, clinic)
    chair.infusing()
    login_page("nurse")  # the stop reasons in words, their codes the values sent
    assert '<option value="adverse_effect">adverse effect</option>' in chair.page()
    clock.now += timedelta(minutes=15)
    chair.ok({"kind": "vitals", "sbp_mmhg": 190, "dbp_mmhg": 100, "hr_per_min": 80})  # > 180
    [open_] = chair.read()["open_alerts"]
    inbox = client.get("/api/v1/alerts", headers=team["physician"]).json()
    [mine] = [a for a in inbox if a["session_id"] == chair.id]
    r = client.post(
        f"/api/v1/alerts/{mine['id']}/acknowledge",
        headers=team["physician"],
        json={"action": "seen, continue"},
    )
    assert r.status_code == 409, r.text
    said = r.json()["detail"]
    assert f"open at the chair of session {chair.id}" in said
    assert "continue, reduce rate, pause, stop, call physician" in said
    # nothing stored: the inbox and the chair both still show it open
    inbox = client.get("/api/v1/alerts", headers=team["physician"]).json()
    assert [a["id"] for a in inbox if a["session_id"] == chair.id] == [mine["id"]]
    assert [a["id"] for a in chair.read()["open_alerts"]] == [open_["id"]]
    # the inbox page links to the chair instead of offering a free-text acknowledgement
    login_page("physician")
    html = client.get("/alerts").text
    assert f'href="/sessions/{chair.id}#alert-' in html
    assert f'action="/alerts/{mine["id"]}/acknowledge"' not in html
    # stopped, in recovery: discharge stays refused while the alert is open
    chair.ok({"kind": "stop", "reason": "adverse_effect", "detail": "hypertension"})
    reasons = chair.read()["discharge"]["reasons"]
    assert any("open alert" in x for x in reasons), reasons
    shown = _testid(client.get(f"/sessions/{chair.id}").text, "discharge-status")
    assert "open alert" in shown and "Systolic blood pressure (mmHg) 190" in shown
    assert "/order-" not in shown and "sbp_high" not in shown  # no internal alert id
    # the end of the minimum observation in the clinic's time (Amsterdam, UTC+1 in March)
    earliest = datetime.fromisoformat(chair.read()["discharge"]["earliest_at"])
    local = earliest.astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%H:%M")
    assert f"earliest discharge at {local}" in shown
    assert earliest.astimezone(UTC).strftime("%H:%M") not in shown
    card = _testid(client.get(f"/sessions/{chair.id}").text, "discharge-earliest")
    assert f"Earliest discharge at {local}," in card
    r = chair.post({"kind": "acknowledge_alert", "alert_id": open_["id"], "action": "stop"})
    assert r.status_code == 201, r.text
    inbox = client.get("/api/v1/alerts", headers=team["physician"]).json()
    assert [a for a in inbox if a["session_id"] == chair.id] == []  # closed with the chair's
    assert not any("open alert" in x for x in chair.read()["discharge"]["reasons"])


def test_an_alert_of_a_session_ended_early_is_acknowledged_in_the_inbox(
    client: Any, clinic: dict[str, Any], clock: Any
) -> None:
    team = clinic["team"]
    chair = Chair(client, clinic)
    chair.infusing()
    clock.now += timedelta(minutes=15)
    chair.ok({"kind": "vitals", "sbp_mmhg": 190, "dbp_mmhg": 100, "hr_per_min": 80})
    chair.ok({"kind": "end_session", "reason": "transferred to the emergency department"})
    inbox = client.get("/api/v1/alerts", headers=team["physician"]).json()
    [mine] = [a for a in inbox if a["session_id"] == chair.id]
    r = client.post(
        f"/api/v1/alerts/{mine['id']}/acknowledge",
        headers=team["physician"],
        json={"action": "called the emergency department: admitted"},
    )
    assert r.status_code == 200, r.text  # the chair can no longer record it
    assert r.json()["acknowledged_at"] is not None


def test_the_chair_and_board_refresh_at_the_clinic_s_interval(
    client: Any, clinic: dict[str, Any], login_page: Any, settings: Any
) -> None:
    """Both live parts ask for news every ``KETACARE_LIVE_REFRESH_SECONDS`` (5 s unless
    set); an interval outside 0.5 to 60 s is refused at start-up, naming the range."""
    import pydantic
    import pytest

    from ketacare.app import create_app

    chair = Chair(client, clinic)
    login_page("nurse")
    assert 'hx-trigger="every 5000ms"' in chair.page()
    assert 'hx-trigger="every 5000ms"' in client.get("/board").text
    quick = create_app(settings.model_copy(update={"live_refresh_seconds": 1.5}))
    try:
        templates = quick.state.ctx.templates.env
        assert templates.globals["live_refresh_ms"] == 1500
    finally:
        quick.state.engine.dispose()
    from ketacare.infra.settings import load_settings

    for bad in (0.1, 61):
        with pytest.raises(pydantic.ValidationError, match="live_refresh_seconds"):
            load_settings(database_url=settings.database_url, live_refresh_seconds=bad)


def test_an_open_self_harm_answer_holds_the_first_dose_until_acknowledged(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    """A PHQ-9 item 9 above 0 answered before the session: the nurse cannot start the
    infusion (409, the alert named, nothing stored) until someone who may acknowledge
    alerts records what was done; then it starts. The page says it in the clinic's time."""
    chair = Chair(client, clinic)
    chair.ok({"kind": "check_in"})
    chair.ok(BASELINE)
    for item in IV_CHECKS:
        chair.ok({"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K7"})
    alert = _self_harm_answer(client, chair, clinic["pid"])
    before = chair.read()["last_seq"]
    refused = chair.post({"kind": "start_infusion", "rate_mg_per_h": 20})
    assert refused.status_code == 409, refused.text
    said = refused.json()["detail"]
    assert said.startswith("dosing cannot start: 1 alert(s) of this patient are open: ")
    assert "PHQ-9 item 9" in said and "Acknowledge each on the Alerts page" in said
    assert chair.read()["last_seq"] == before and chair.read()["state"] == "pre_dose_checks"
    # the page: the same refusal, its time in the clinic's zone (Amsterdam, UTC+1)
    login_page("nurse")
    page = chair.form({"kind": "start_infusion", "rate_mg_per_h": "20"})
    assert page.status_code == 422  # the chair's form refused (a stale page alone is 409)
    raised = datetime.fromisoformat(alert["raised_at"])
    local = raised.astimezone(ZoneInfo("Europe/Amsterdam"))
    assert f"(raised {local:%H:%M})" in unescape(page.text)  # the same day: the time
    assert f"(raised {raised.astimezone(UTC):%H:%M})" not in unescape(page.text)
    r = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge",
        headers=chair.nurse,
        json={"action": "called Dr Physician: C-SSRS done, no plan or intent; dose goes ahead"},
    )
    assert r.status_code == 200, r.text
    chair.ok({"kind": "start_infusion", "rate_mg_per_h": 20})
    assert chair.read()["state"] == "dosing"


def test_the_patients_open_alerts_stand_in_the_chair_banner_until_acknowledged(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    """A suicide-risk answer on a questionnaire is routed to the physician; the nurse
    giving the next dose sees it in the chair's banner (whoever it is routed to), and
    reading it is audited, until it is acknowledged."""
    from sqlalchemy import select

    from ketacare.clinic.audit.orm import AuditEvent

    chair = Chair(client, clinic)
    login_page("nurse")
    page = chair.page()
    assert 'data-testid="patient-alerts"' not in page
    # the banner names the patient by name, birth date and record number first
    record = client.get(f"/api/v1/patients/{clinic['pid']}", headers=chair.nurse).json()
    patient = record["patient"]
    identity = _testid(page, "banner-identity")
    assert patient["family_name"].upper() in identity and f"MRN {patient['mrn']}" in identity
    assert date.fromisoformat(patient["birth_date"]).strftime("%d %b %Y") in identity
    alert = _self_harm_answer(client, chair, clinic["pid"])
    assert alert["kind"] == "phq9_item9_positive"
    banner = _testid(chair.page(), "patient-alerts")
    assert "Open alerts for this patient, not yet acknowledged (1)" in banner
    assert unescape(alert["message"]) in unescape(banner) and "raised " in banner
    with app.state.ctx.sessions() as session:
        reads = session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == "clinical_alert",
                AuditEvent.resource_id == str(alert["id"]),
                AuditEvent.action == "read",
            )
        ).all()
        assert len(reads) == 1
    # the chair's own refresh shows it too, without another audited read
    assert 'data-testid="patient-alerts"' in client.get(f"/sessions/{chair.id}?partial=true").text
    r = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge",
        headers=clinic["team"]["physician"],
        json={"action": "phoned patient; C-SSRS done, low risk; dose goes ahead"},
    )
    assert r.status_code == 200, r.text
    assert 'data-testid="patient-alerts"' not in chair.page()


def test_an_acknowledgement_that_changes_the_infusion_waits_for_its_entry(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    """An alert acknowledged with 'stop' does not stop the log: the chair says the
    infusion is still recorded running (the dose given keeps counting) until the stop is
    recorded; 'reduce rate' waits for the new rate."""
    chair = Chair(client, clinic)
    chair.infusing(rate=20)
    login_page("nurse")
    clock.now += timedelta(minutes=15)
    chair.ok({"kind": "vitals", "sbp_mmhg": 190, "dbp_mmhg": 100, "hr_per_min": 80})
    [alert] = chair.read()["open_alerts"]
    chair.ok({"kind": "acknowledge_alert", "alert_id": alert["id"], "action": "reduce_rate"})
    shown = _testid(chair.page(), "not-carried-out")
    assert "“reduce rate” by nurse" in shown and "running at 20 mg/h" in shown
    assert "record the new rate below" in shown
    chair.ok({"kind": "rate_change", "rate_mg_per_h": 15, "reason": "blood pressure"})
    assert 'data-testid="not-carried-out"' not in chair.page()
    clock.now += timedelta(minutes=15)
    chair.ok({"kind": "vitals", "sbp_mmhg": 195, "dbp_mmhg": 100, "hr_per_min": 80})
    [again] = chair.read()["open_alerts"]
    chair.ok({"kind": "acknowledge_alert", "alert_id": again["id"], "action": "stop"})
    page = chair.page()
    assert "running at 15 mg/h: record the stop below" in _testid(page, "not-carried-out")
    before = chair.read()["delivered_mg"]
    clock.now += timedelta(minutes=12)
    assert chair.read()["delivered_mg"] == pytest.approx(before + 15 * 12 / 60)  # still counting
    chair.ok({"kind": "stop", "reason": "adverse_effect", "detail": "hypertension"})
    assert 'data-testid="not-carried-out"' not in chair.page()


def test_a_side_effect_is_recorded_present_absent_or_not_asked(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    """A symptom asked about and absent is recorded as absent, one not asked stays
    unknown: the chair offers all three and pre-selects none of the answers."""
    chair = Chair(client, clinic)
    chair.infusing()
    login_page("nurse")
    page = chair.page()
    for symptom in ("nausea", "vomiting", "dizziness", "dissociation", "emergence_reaction"):
        assert _selected(page, symptom) == [], symptom  # "not asked" until answered
    r = chair.form(
        {"kind": "side_effects", "nausea": "no", "dizziness": "yes", "sedation_moaas": "5"}
    )
    assert r.status_code == 303, r.text
    (entry,) = [e for e in chair.read()["events"] if e["kind"] == "side_effects"]
    assert (entry["nausea"], entry["dizziness"], entry["vomiting"]) == (False, True, None)
    assert "side effects: MOAA/S 5, dizziness, absent: nausea" in chair.page()
    # an answer that is neither is refused, never read as "absent"; nothing is stored
    seq = chair.read()["last_seq"]
    r = chair.form({"kind": "side_effects", "vomiting": "maybe"})
    assert r.status_code == 422
    said = _testid(r.text, "error")
    assert "'maybe' is not an answer: allowed yes or no" in said and "vomiting" in said, said
    assert chair.read()["last_seq"] == seq


def test_the_chair_shows_the_medicines_planned_with_the_ketamine(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    """A premedication prescribed on the plan is in front of the nurse at the chair, and
    shows as given once the log has it (matched by name, whatever the strength typed)."""
    from plan_helpers import draft, sign_and_cosign

    plan = draft(client, clinic)
    r = client.post(
        f"/api/v1/plans/{plan['id']}/adjuncts",
        headers=clinic["team"]["physician"],
        json={"drug": "Ondansetron", "dose_text": "4 mg IV", "use": "antiemetic premedication"},
    )
    assert r.status_code == 201, r.text
    chair = Chair(client, clinic, plan=sign_and_cosign(client, clinic, plan))
    login_page("nurse")

    def panel() -> str:
        html = chair.page()
        return html.split('data-testid="planned-medicines"')[1].split("</section>")[0]

    def ondansetron() -> str:
        return panel().split("<strong>Ondansetron</strong>")[1].split("</li>")[0]

    assert ondansetron().startswith(" 4 mg IV — antiemetic premedication")
    assert "not given in this session" in ondansetron()
    chair.ok({"kind": "check_in"})
    chair.ok(BASELINE)
    # before the infusion starts, the premedication is recorded from the chair's own form
    assert 'data-testid="medicines-given"' in chair.page()
    r = chair.form(
        {
            "kind": "medication",
            "drug": "ondansetron 4mg",
            "dose": "4 mg",
            "route": "IV",
            "purpose": "premedication",
        }
    )
    assert r.status_code == 303, r.text
    given = ondansetron()
    assert "not given in this session" not in given and "(4 mg, IV)" in given
    # the entry was made in error: amended away, the planned medicine is not given
    seq = chair.read()["last_seq"]
    chair.ok({"kind": "amendment", "target_seq": seq, "reason": "charted for the wrong patient"})
    assert "not given in this session" in ondansetron()


def test_continuing_despite_an_alert_needs_a_note_and_the_log_names_the_alert(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    chair = Chair(client, clinic)
    chair.infusing()
    clock.now += timedelta(minutes=15)
    chair.ok({"kind": "vitals", "sbp_mmhg": 190, "dbp_mmhg": 100, "hr_per_min": 80})  # > 180
    [alert] = chair.read()["open_alerts"]
    login_page("nurse")
    fields = {"kind": "acknowledge_alert", "alert_id": alert["id"], "action": "continue"}
    r = chair.form({**fields, "note": ""})
    assert r.status_code == 422
    assert "continuing despite the alert needs a note saying why" in r.text
    # the choice is kept for that alert, and nothing is stored: the alert is still open
    shown = r.text[r.text.index(f'value="{alert["id"]}"') :]
    assert '<option value="continue" selected>' in shown[: shown.index("</form>")]
    assert [a["id"] for a in chair.read()["open_alerts"]] == [alert["id"]]
    r = chair.form({**fields, "note": "rechecked 5 min later 168/92; physician informed"})
    assert r.status_code == 303, r.text
    assert chair.read()["open_alerts"] == []
    lines = _testid(chair.page(), "event-list")
    assert (
        "alert Systolic blood pressure (mmHg) 190 acknowledged, action: continue "
        "(rechecked 5 min later 168/92; physician informed)" in unescape(lines)
    )


def test_the_session_record_says_when_it_was_booked_and_when_it_was_opened(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    """The PDF said "Scheduled" beside the moment the nurse opened the session; it now
    gives the appointment's time and the opening time, each in the clinic's zone."""
    from pdf_text import flat

    plan = _signed(client, clinic)
    # the test clock is Mon 2 Mar 2026 10:00 UTC (11:00 in Amsterdam); booked for 12:00
    r = client.post(
        f"/api/v1/plans/{plan['id']}/appointments",
        headers=clinic["team"]["nurse"],
        json={"session_number": 1, "chair_id": 1, "starts_at": "2026-03-02T12:00:00+01:00"},
    )
    assert r.status_code == 201, r.text
    chair = Chair(client, clinic, plan)  # opened at 11:00, for that appointment
    login_page("nurse")
    said = _testid(client.get(f"/sessions/{chair.id}/summary").text, "session-when")
    assert said == "Booked for 2026-03-02 12:00; opened 2026-03-02 11:00"
    text = flat(client.get(f"/sessions/{chair.id}/summary.pdf").content)
    assert "Booked 2 Mar 2026 12:00" in text and "Opened 2 Mar 2026 11:00" in text
    assert "Scheduled" not in text


def test_the_start_card_says_which_checks_still_hold_the_dose(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    chair = Chair(client, clinic)
    chair.ok({"kind": "check_in"})
    chair.ok(BASELINE)
    login_page("nurse")
    waits = _testid(chair.page(), "start-waits")
    assert waits.startswith("Dosing starts once every pre-dose check has passed; still to pass:")
    assert "escort arranged" in waits and "escort_arranged" not in waits
    for item in IV_CHECKS:
        chair.ok({"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K7"})
    assert 'data-testid="start-waits"' not in chair.page()
