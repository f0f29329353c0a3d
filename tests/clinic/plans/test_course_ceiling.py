"""The hard ceilings at the plan builder and the course ceiling at the chair (issue 13, item 6),
both databases.

The numbers are TEST VALUES of a test clinic's protocol policy, not clinical values.
crps-outpatient gives 10 sessions of a 4 h infusion (Schwartzman 2009, the protocol file);
at 0.05 mg/kg/h and 70 kg each session is 0.05 x 70 x 4 = 14 mg, the course 140 mg.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from plan_helpers import MONITORING_ORDER

# TEST VALUES: every crps-outpatient ceiling set (the course at 150 mg); oral-followon's unset
POLICY = """
[crps-outpatient.limits.dose_mg_per_kg]
hard = 2.0
[crps-outpatient.limits.course_mg]
hard = 150
"""


@pytest.fixture
def tight(app: Any, tmp_path: Any) -> None:
    path = tmp_path / "protocol-policy.toml"
    path.write_text(POLICY)
    app.state.ctx.settings.protocol_policy_file = path


def _plan(client: Any, clinic: dict[str, Any], supersedes: int | None = None) -> dict[str, Any]:
    team = clinic["team"]
    if supersedes is None:
        r = client.post(
            f"/api/v1/patients/{clinic['pid']}/plans",
            headers=team["physician"],
            json={"protocol": "crps-outpatient", "bag_mg": 100, "bag_ml": 100,
                  "dose_mg_per_kg_per_h": 0.05},
        )  # fmt: skip
    else:
        r = client.post(
            f"/api/v1/plans/{supersedes}/versions",
            headers=team["physician"],
            json={"bag_mg": 100, "bag_ml": 100, "dose_mg_per_kg_per_h": 0.05},
        )
    assert r.status_code == 201, r.text
    plan = r.json()
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sign",
        headers=team["physician"],
        json={"weight_confirmed": True, "reason": "test", "monitoring_order": MONITORING_ORDER},
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/plans/{plan['id']}/cosign", headers=team["physician2"])
    assert r.status_code == 200, r.text
    return dict(r.json())


def _open(client: Any, clinic: dict[str, Any], plan_id: int, number: int) -> Any:
    return client.post(
        f"/api/v1/plans/{plan_id}/sessions",
        headers=clinic["team"]["nurse"],
        json={"session_number": number},
    )


def _sessions(client: Any, clinic: dict[str, Any], plan_id: int) -> int:
    r = client.get(f"/api/v1/plans/{plan_id}/sessions", headers=clinic["team"]["nurse"])
    return len(r.json()) if r.status_code == 200 else -1


def test_the_course_ceiling_counts_the_earlier_versions_sessions(
    client: Any, clinic: dict[str, Any], tight: None
) -> None:
    first = _plan(client, clinic)
    assert first["total_dose_mg"] == pytest.approx(140)  # 10 x 14 mg: under 150 on its own
    for number in range(1, 11):  # every session opened: each counts with its planned 14 mg
        r = _open(client, clinic, first["id"], number)
        assert r.status_code == 201, r.text
    second = _plan(client, clinic, supersedes=first["id"])  # the same course
    assert second["total_dose_mg"] == pytest.approx(140)
    r = _open(client, clinic, second["id"], 1)
    assert r.status_code == 422, r.text
    said = r.json()["detail"]
    # 140 mg in the course so far + 14 mg = 154 mg > 150 mg
    assert "course dose 154 mg (140 mg in 10 earlier session(s) of this course" in said
    assert "this session's planned 14 mg) exceeds the hard limit 150 mg per course" in said
    assert "of protocol crps-outpatient (site policy)" in said
    assert r.json()["title"] != "Internal Server Error"
    board = client.get("/api/v1/sessions/board", headers=clinic["team"]["nurse"]).json()
    assert len(board) == 10  # nothing stored


def test_a_dose_charted_past_the_course_ceiling_is_refused(
    client: Any, clinic: dict[str, Any], tight: None, monkeypatch: Any
) -> None:
    from ketacare.clinic.sessions import doses

    first = _plan(client, clinic)
    for number in range(1, 11):
        assert _open(client, clinic, first["id"], number).status_code == 201
    second = _plan(client, clinic, supersedes=first["id"])
    # a session opened before the rule held (its open check passed over): the chair still stops it
    real = doses.check_course_ceiling
    monkeypatch.setattr(doses, "check_course_ceiling", lambda **kw: 0.0)
    r = _open(client, clinic, second["id"], 1)
    assert r.status_code == 201, r.text
    monkeypatch.setattr(doses, "check_course_ceiling", real)
    sid = r.json()["id"]
    nurse = clinic["team"]["nurse"]

    def post(event: dict[str, Any]) -> Any:
        seq = client.get(f"/api/v1/sessions/{sid}", headers=nurse).json()["last_seq"]
        return client.post(
            f"/api/v1/sessions/{sid}/events",
            headers=nurse,
            json={"expected_seq": seq, "event": event},
        )

    for event in (
        {"kind": "check_in"},
        {"kind": "vitals", "sbp_mmhg": 124, "dbp_mmhg": 78, "hr_per_min": 72, "spo2_pct": 98,
         "rr_per_min": 14},
    ):  # fmt: skip
        assert post(event).status_code == 201
    from plan_helpers import IV_CHECKS

    for item in IV_CHECKS:
        check = {"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K7"}
        assert post(check).status_code == 201
    before = client.get(f"/api/v1/sessions/{sid}", headers=nurse).json()["last_seq"]
    r = post({"kind": "start_infusion", "rate_mg_per_h": 3.5})
    assert r.status_code == 422 and "course dose 154 mg" in r.json()["detail"], r.text
    after = client.get(f"/api/v1/sessions/{sid}", headers=nurse).json()
    assert after["last_seq"] == before and after["state"] == "pre_dose_checks"


def test_the_plan_builder_marks_protocols_with_unset_ceilings(
    client: Any, clinic: dict[str, Any], tight: None, login_page: Any
) -> None:
    csrf = login_page("physician")
    html = unescape(client.get(f"/patients/{clinic['pid']}/plans").text)
    banner = re.search(r'data-testid="unusable-protocols">(.*?)</div>', html, re.S)
    assert banner is not None
    text = re.sub(r"<[^>]+>", "", banner.group(1))
    # oral-followon: no source gives its ceilings and this policy does not set them
    assert "not set dose_mg (mg), dose_mg_per_kg (mg/kg), course_mg (mg per course)" in text
    assert "[" in text and ".limits." in text and "protocol-policy.toml" in text
    option = re.search(r'<option value="oral-followon"([^>]*)>([^<]*)</option>', html)
    assert option is not None and "disabled" in option.group(1)
    assert "cannot be used: hard ceiling not set" in option.group(2)
    usable = re.search(r'<option value="crps-outpatient"([^>]*)>', html)
    assert usable is not None and "disabled" not in usable.group(1)
    # refused on submit all the same (a hand-made post), naming the unset limits
    r = client.post(
        f"/patients/{clinic['pid']}/plans",
        data={"protocol": "oral-followon", "csrf_token": csrf},
    )
    assert r.status_code == 422
    assert "hard limits dose_mg (mg), dose_mg_per_kg (mg/kg), course_mg (mg per course)" in (
        unescape(r.text)
    )
    plans = client.get(
        f"/api/v1/patients/{clinic['pid']}/plans", headers=clinic["team"]["physician"]
    )
    assert plans.json() == []
