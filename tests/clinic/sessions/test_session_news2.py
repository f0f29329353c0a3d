"""NEWS2 at the chair: computed for every complete vitals set, alerting whatever the policy.

Expected scores are read by hand from the RCP 2017 NEWS2 chart (SpO2 scale 1):
RR <=8: 3, 9-11: 1, 12-20: 0, 21-24: 2, >=25: 3; SpO2 <=91: 3, 92-93: 2, 94-95: 1,
>=96: 0; oxygen 2, air 0; SBP <=90: 3, 91-100: 2, 101-110: 1, 111-219: 0, >=220: 3;
pulse <=40: 3, 41-50: 1, 51-90: 0, 91-110: 1, 111-130: 2, >=131: 3; alert 0, CVPU 3;
temperature <=35.0: 3, 35.1-36.0: 1, 36.1-38.0: 0, 38.1-39.0: 1, >=39.1: 2.
Alerts: a 3 in any single parameter, or an aggregate of 5 or more (RCP Chart 2).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from plan_helpers import _signed, record_event, start_infusion

# The clinic sets no vital-sign thresholds at all: NEWS2 must alert regardless.
POLICY = """
[monitoring]
vitals_interval_min = 15
observation_min = 60
"""


@pytest.fixture
def chair(app: Any, client: Any, clinic: dict[str, Any], tmp_path: Any) -> dict[str, Any]:
    policy = tmp_path / "session-policy.toml"
    policy.write_text(POLICY)
    app.state.ctx.settings.session_policy_file = policy
    plan = _signed(client, clinic)
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sessions",
        headers=clinic["team"]["nurse"],
        json={"session_number": 1},
    )
    assert r.status_code == 201, r.text
    return {**clinic, "plan": plan, "session": r.json()}


def post(client: Any, chair: dict[str, Any], event: dict[str, Any]) -> Any:
    sid = chair["session"]["id"]
    seq = client.get(f"/api/v1/sessions/{sid}", headers=chair["team"]["nurse"]).json()["last_seq"]
    return client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=chair["team"]["nurse"],
        json={"expected_seq": seq, "event": event},
    )


def vitals(**changes: Any) -> dict[str, Any]:
    # RR 16 (0), SpO2 97 (0), air (0), 37.0 (0), SBP 120 (0), HR 70 (0), alert (0) = 0
    base = {
        "kind": "vitals",
        "rr_per_min": 16,
        "spo2_pct": 97,
        "supplemental_oxygen": False,
        "temperature_c": 37.0,
        "sbp_mmhg": 120,
        "dbp_mmhg": 75,
        "hr_per_min": 70,
        "consciousness": "alert",
    }
    return {**base, **changes}


def test_a_single_red_parameter_alerts_without_any_clinic_threshold(
    client: Any, chair: dict[str, Any], clock: Any
) -> None:
    assert post(client, chair, {"kind": "check_in"}).status_code == 201
    r = post(client, chair, vitals())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["news2_latest"]["total"] == 0 and body["news2_latest"]["band"] == "low"
    assert news2_of(body["open_alerts"]) == []
    clock.now += timedelta(minutes=5)
    # RR 8 (3), rest 0: total 3, low-medium, red score -> alert
    r = post(client, chair, vitals(rr_per_min=8))
    body = r.json()
    latest = body["news2_latest"]
    assert latest["total"] == 3 and latest["band"] == "low_medium"
    assert latest["subscores"]["respiration_rate"] == 3
    [alert] = news2_of(body["open_alerts"])
    assert alert["id"].endswith("/news2") and "NEWS2 3" in alert["message"]
    assert [n["total"] for n in body["news2"]] == [0, 3]
    # the alert is acknowledged like any other, and then closes
    r = post(
        client,
        chair,
        {"kind": "acknowledge_alert", "alert_id": alert["id"], "action": "call_physician"},
    )
    assert r.status_code == 201 and news2_of(r.json()["open_alerts"]) == []


def test_an_aggregate_of_5_alerts_and_4_does_not(
    client: Any, chair: dict[str, Any], clock: Any
) -> None:
    post(client, chair, {"kind": "check_in"})
    # RR 22 (2), SpO2 95 (1), HR 95 (1): 2+1+1 = 4, no single 3: low, no alert
    r = post(client, chair, vitals(rr_per_min=22, spo2_pct=95, hr_per_min=95))
    assert r.json()["news2_latest"]["total"] == 4 and news2_of(r.json()["open_alerts"]) == []
    clock.now += timedelta(minutes=5)
    # + temperature 38.5 (1): 2+1+1+1 = 5, medium -> alert (urgent-response threshold)
    r = post(client, chair, vitals(rr_per_min=22, spo2_pct=95, hr_per_min=95, temperature_c=38.5))
    body = r.json()
    assert body["news2_latest"]["total"] == 5 and body["news2_latest"]["band"] == "medium"
    assert len(news2_of(body["open_alerts"])) == 1
    # a later trigger while it is open is counted on the same alert, not a second one
    clock.now += timedelta(minutes=5)
    r = post(client, chair, vitals(spo2_pct=89, supplemental_oxygen=True))
    body = r.json()
    # SpO2 89 (3) + oxygen (2) = 5
    assert body["news2_latest"]["total"] == 5 and len(news2_of(body["open_alerts"])) == 1


def test_incomplete_and_old_style_sets_have_no_news2_and_raise_nothing(
    client: Any, chair: dict[str, Any]
) -> None:
    post(client, chair, {"kind": "check_in"})
    # the vitals of before: no consciousness, no oxygen -> not a NEWS2 set (RR 8 would score 3)
    r = post(
        client,
        chair,
        {"kind": "vitals", "sbp_mmhg": 120, "dbp_mmhg": 75, "hr_per_min": 70,
         "spo2_pct": 97, "rr_per_min": 8, "temperature_c": 37.0},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["news2"] == [] and news2_of(r.json()["open_alerts"]) == []


@pytest.mark.parametrize(
    ("change", "word"),
    [({"consciousness": "drowsy"}, "consciousness"), ({"supplemental_oxygen": "maybe"}, "oxygen")],
)
def test_bad_consciousness_or_oxygen_is_refused_and_nothing_stored(
    client: Any, chair: dict[str, Any], change: dict[str, Any], word: str
) -> None:
    post(client, chair, {"kind": "check_in"})
    r = post(client, chair, vitals(**change))
    assert r.status_code == 422 and word in r.json()["detail"].lower()
    view = client.get(
        f"/api/v1/sessions/{chair['session']['id']}", headers=chair["team"]["nurse"]
    ).json()
    assert [e["kind"] for e in view["events"]] == ["scheduled", "check_in"]


def test_chair_form_board_and_table(client: Any, chair: dict[str, Any], login_page: Any) -> None:
    post(client, chair, {"kind": "check_in"})
    # issue 13's set: RR 8 (3), SpO2 89 (3), air (0), 36.8 (0), SBP 182 (0), HR 118 (2),
    # alert (0) = 8, high
    post(client, chair, vitals(rr_per_min=8, spo2_pct=89, temperature_c=36.8, sbp_mmhg=182,
                               dbp_mmhg=104, hr_per_min=118))  # fmt: skip
    board = client.get("/api/v1/sessions/board", headers=chair["team"]["nurse"]).json()
    assert board[0]["news2_latest"]["total"] == 8 and board[0]["open_alerts"] >= 1
    login_page("nurse")
    sid = chair["session"]["id"]
    page = client.get(f"/sessions/{sid}").text
    # no answer is pre-selected: the only selected options are the empty ones
    for name in ("consciousness", "supplemental_oxygen"):
        select = re.search(rf'<select name="{name}".*?</select>', page, re.S)
        assert select is not None
        assert re.findall(r'<option value="([^"]*)" selected', select.group(0)) == [""]
    assert "dissociation" in page.lower() and "not validated" in page.lower()
    cell = re.search(r'data-testid="news2-\d+">(.*?)</td>', page, re.S)
    assert cell is not None and ">8</strong> high" in cell.group(1)
    assert "(3, 3, 0, 0, 0, 2, 0)" in cell.group(1)
    board_page = client.get("/board").text
    assert re.search(rf'data-testid="board-news2-{sid}"><strong class="sev">8</strong>', board_page)


def test_the_chair_form_records_consciousness_and_oxygen(
    client: Any, chair: dict[str, Any], login_page: Any
) -> None:
    post(client, chair, {"kind": "check_in"})
    token = login_page("nurse")
    sid = chair["session"]["id"]
    seq = client.get(f"/api/v1/sessions/{sid}", headers=chair["team"]["nurse"]).json()["last_seq"]
    form = {
        "csrf_token": token, "expected_seq": str(seq), "kind": "vitals",
        "sbp_mmhg": "120", "dbp_mmhg": "75", "hr_per_min": "70", "spo2_pct": "97",
        "rr_per_min": "16", "temperature_c": "37.0", "consciousness": "voice",
        "supplemental_oxygen": "no",
    }  # fmt: skip
    r = client.post(f"/sessions/{sid}/record", data=form, follow_redirects=True)
    assert r.status_code == 200, r.text[:300]
    view = client.get(f"/api/v1/sessions/{sid}", headers=chair["team"]["nurse"]).json()
    event = view["events"][-1]
    assert event["consciousness"] == "voice" and event["supplemental_oxygen"] is False
    # voice (3), rest 0: NEWS2 3, red score -> alert
    assert view["news2_latest"]["total"] == 3 and len(news2_of(view["open_alerts"])) == 1


def news2_of(alerts: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """The NEWS2 alerts only: the plan's monitoring order may raise its own beside them."""
    return [a for a in alerts if str(a["id"]).endswith("/news2")]


def test_a_newer_incomplete_set_shows_its_red_parameter_beside_the_last_score(
    client: Any, chair: dict[str, Any], clock: Any, login_page: Any
) -> None:
    """The board kept showing "0 low" from the 10:00 set while the 10:10 set, incomplete,
    read SpO2 89 %: alone a red score (SpO2 <=91 scores 3; RR 9 scores 1, HR 110 scores 1)."""
    post(client, chair, {"kind": "check_in"})
    assert post(client, chair, vitals()).status_code == 201  # 0, low
    clock.now += timedelta(minutes=10)
    r = post(client, chair, {"kind": "vitals", "spo2_pct": 89, "rr_per_min": 9, "hr_per_min": 110})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["news2_latest"]["total"] == 0  # still the last complete set's
    assert body["news2_partial"]["red"] == ["SpO2 89 %"]
    assert body["news2_partial"]["missing"] == [
        "supplemental oxygen",
        "temperature",
        "systolic blood pressure",
        "consciousness",
    ]
    login_page("nurse")
    sid = chair["session"]["id"]
    board = client.get("/board").text
    cell = re.search(rf'data-testid="board-news2-{sid}">(.*?)</td>', board, re.S)
    assert cell is not None
    assert "0</strong> low <small>at 11:00</small>" in cell.group(1)  # 10:00 UTC, Amsterdam
    assert "scores 3: SpO2 89 %</strong> (11:10 set, incomplete: urgent response)" in cell.group(1)
    chair_page = client.get(f"/sessions/{sid}").text
    partial = re.search(r'data-testid="news2-partial">(.*?)</p>', chair_page, re.S)
    assert partial is not None and "Scores 3 on its own: SpO2 89 %" in partial.group(1)
    # a complete set again: nothing partial left
    clock.now += timedelta(minutes=5)
    assert post(client, chair, vitals()).json()["news2_partial"] is None


def test_a_high_score_alert_gives_the_one_response_that_applies_in_words(
    client: Any, chair: dict[str, Any], clock: Any
) -> None:
    # RR 22 (2), SpO2 93 (2), HR 112 (2), new confusion (3): 9, high clinical risk. RCP 2017
    # Chart 3: 7 or more is the emergency response, which includes the milder ones
    post(client, chair, {"kind": "check_in"})
    r = post(
        client,
        chair,
        vitals(rr_per_min=22, spo2_pct=93, hr_per_min=112, consciousness="confusion"),
    )
    assert r.status_code == 201, r.text
    [alert] = news2_of(r.json()["open_alerts"])
    message = alert["message"]
    assert message.startswith("NEWS2 9 (High clinical risk")
    assert "Respiration rate scores 2, SpO2 scale 1 scores 2, Pulse scores 2" in message
    assert "Consciousness scores 3" in message and "scale1" not in message
    assert "Aggregate NEWS2 7 or more: urgent or emergency response" in message
    assert "Aggregate NEWS2 5 or more" not in message and "red score" not in message


def test_a_high_score_while_dosing_puts_continuous_monitoring_first_at_the_chair(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Any, clock: Any, login_page: Any
) -> None:
    # RCP 2017 Chart 3: an aggregate of 7 or more calls for continuous monitoring of vital
    # signs. RR 22 (2), SpO2 93 (2), HR 112 (2), new confusion (3): 9
    policy = tmp_path / "session-policy.toml"
    policy.write_text(POLICY)
    app.state.ctx.settings.session_policy_file = policy
    nurse = clinic["team"]["nurse"]
    sid = start_infusion(client, nurse, _signed(client, clinic)["id"], 1, 24.5)
    clock.now += timedelta(minutes=5)
    high = vitals(rr_per_min=22, spo2_pct=93, hr_per_min=112, consciousness="confusion")
    view = record_event(client, nurse, sid, high)
    assert view["next_check"]["what"] == "continuous monitoring of vital signs (NEWS2 9)"
    assert view["next_check"]["status"] == "due"
    login_page("nurse")
    chair_page = re.sub(r"\s+", " ", client.get(f"/sessions/{sid}").text)
    assert "continuous monitoring of vital signs (NEWS2 9) due now, since" in chair_page
    # whoever watches the alerts sees it too, beside the NEWS2 alert itself
    login_page("physician")
    alerts = re.sub(r"\s+", " ", client.get("/alerts").text)
    behind = alerts.split('data-testid="chairs-behind"', 1)[1].split("</section>", 1)[0]
    assert "continuous monitoring of vital signs (NEWS2 9) since" in behind
    login_page("nurse")
    # the board says it too, beside any check overdue
    clock.now += timedelta(minutes=16)  # the 15-min vitals are overdue as well
    board = client.get("/board").text
    cell = board.split('data-testid="board-next"', 1)[1].split("</td>", 1)[0]
    assert "continuous monitoring of vital signs (NEWS2 9); overdue: vitals" in cell
    clock.now -= timedelta(minutes=16)
    # a complete set scoring 0 ends it: the 15-min vitals check is next again
    clock.now += timedelta(minutes=5)
    view = record_event(client, nurse, sid, vitals())
    assert view["next_check"]["what"] == "vitals" and view["next_check"]["status"] == "not_due"
    assert 'data-testid="chairs-behind"' not in client.get("/alerts").text
    # 15 min (the policy's interval) and one more after that set: the vitals are overdue
    clock.now += timedelta(minutes=16)
    alerts = re.sub(r"\s+", " ", client.get("/alerts").text)
    behind = alerts.split('data-testid="chairs-behind"', 1)[1].split("</section>", 1)[0]
    assert "vitals <strong>overdue</strong> since" in behind
