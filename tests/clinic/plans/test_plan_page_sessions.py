"""The plan page's sessions: the date of each (given, open, booked, planned) and the
session the "open at the chair" form starts on."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

from plan_helpers import BASELINE_VITALS as BASELINE
from plan_helpers import IV_CHECKS, _signed, record_event
from plan_helpers import PADSS_READY as PADSS


def _record(client: Any, nurse: dict[str, str], sid: int, event: dict[str, Any]) -> None:
    record_event(client, nurse, sid, event)


def _open(client: Any, nurse: dict[str, str], plan_id: int, number: int) -> int:
    r = client.post(
        f"/api/v1/plans/{plan_id}/sessions", headers=nurse, json={"session_number": number}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _rows(html: str) -> dict[str, str]:
    """The sessions table: the Date column's text by session number."""
    table = re.search(r'<table[^>]*data-testid="sessions"[^>]*>(.*?)</table>', html, re.S)
    assert table is not None
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S):
        cells = [
            unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c))).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        if cells:
            rows[cells[0]] = cells[2]
    return rows


def _session_choices(html: str) -> list[tuple[str, bool]]:
    """The open-session form's session numbers, in order, and whether each is chosen."""
    found = re.search(r'<select name="session_number"[^>]*>(.*?)</select>', html, re.S)
    assert found is not None
    return [
        (value, "selected" in rest)
        for value, rest in re.findall(r'<option value="([^"]*)"([^>]*)>', found.group(1))
    ]


def test_each_session_shows_when_it_was_given_is_booked_or_is_planned(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any, login_api: Any
) -> None:
    nurse = clinic["team"]["nurse"]
    assert clock.now.isoformat() == "2026-03-02T10:00:00+00:00"  # 11:00 in Amsterdam (CET)
    plan = _signed(client, clinic, start_date="2026-03-02")  # 10 daily sessions from Mon 2
    plan_id = plan["id"]
    login_page("nurse")
    page = client.get(f"/plans/{plan_id}").text
    assert _rows(page)["1"] == "planned Mon 02 Mar 2026"
    assert _rows(page)["10"] == "planned Wed 11 Mar 2026"
    assert _session_choices(page)[:2] == [("1", True), ("2", False)]  # the first comes first
    # session 1: given, dosing started at 11:00 local, discharged after 4 h and 121 min
    first = _open(client, nurse, plan_id, 1)
    _record(client, nurse, first, {"kind": "check_in"})
    _record(client, nurse, first, BASELINE)
    for item in IV_CHECKS:
        check = {"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K7"}
        _record(client, nurse, first, check)
    _record(client, nurse, first, {"kind": "start_infusion", "rate_mg_per_h": 24.5})
    clock.now += timedelta(hours=4)
    _record(client, nurse, first, {"kind": "stop", "reason": "completed"})
    _record(client, nurse, first, {"kind": "discharge_score", "answers": PADSS})
    _record(client, nurse, first, {"kind": "escort_confirmed", "name": "A. Friend"})
    clock.now += timedelta(minutes=121)
    _record(client, nurse, first, {"kind": "discharge", "instructions": "no driving today"})
    # session 2: booked for Tue 3 March 09:30 local; session 3: open, checked in
    r = client.post(
        f"/api/v1/plans/{plan_id}/appointments",
        headers=nurse,
        json={"session_number": 2, "chair_id": 1, "starts_at": "2026-03-03T09:30:00+01:00"},
    )
    assert r.status_code == 201, r.text
    clock.now += timedelta(days=2)  # Wed 4 March, 16:01 UTC (10:00 + 4 h + 121 min)
    login_page("nurse")
    nurse = login_api("nurse")  # a new day, a new login
    third = _open(client, nurse, plan_id, 3)
    _record(client, nurse, third, {"kind": "check_in"})
    page = client.get(f"/plans/{plan_id}").text
    dates = _rows(page)
    assert dates["1"] == "Mon 02 Mar 2026 11:00 · given"
    assert dates["2"] == "booked Tue 03 Mar 2026 09:30"
    assert dates["3"] == "Wed 04 Mar 2026 17:01 · checked in"
    assert dates["4"] == "planned Thu 05 Mar 2026"
    # the form starts on the next session not given; given and open ones are not offered
    choices = _session_choices(page)
    assert choices[0] == ("2", True) and [v for v, _ in choices] == ["2", *map(str, range(4, 11))]


def test_a_plan_without_a_start_date_says_its_sessions_are_not_booked(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    plan = _signed(client, clinic)
    login_page("nurse")
    dates = _rows(client.get(f"/plans/{plan['id']}").text)
    assert set(dates.values()) == {"not booked"} and len(dates) == 10
