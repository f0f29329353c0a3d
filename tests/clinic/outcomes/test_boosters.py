"""Booster suggestions from the clinic's outcome policy file, accepted or dismissed.

The clinic's clock is Europe/Amsterdam (CET, UTC+1 in March 2026). The course, by hand:

- 2 Mar 10:00 UTC: pain NRS 8, the baseline (the last score at or before session 1).
- 2 Mar 10:30-11:30 UTC: session 1 (the only session given).
- 3 Mar 10:00 UTC: pain 4 = (8-4)/8 = 50% below baseline: a responder (pain >=30%).
- 4 Mar 10:00 UTC: pain 5 = 37.5% below: still responding. The clinic's rule in the
  tests' policy file is "pain-30, score_at_or_above 6": 5 < 6, no booster.
- 6 Mar 10:00 UTC: pain 6 = 25% below: 6 >= 6, exactly at the threshold: booster
  suggested, raised by this score.

The numbers in the policy files here are test values, not recommendations: no published
threshold says when a ketamine booster is due.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from plan_helpers import _signed, patient_account, start_infusion

SET_BY = "Clinic policy B-1 (test value)"
RULE_AT_6 = f"""
[[booster]]
definition_id = "pain-30"
kind = "score_at_or_above"
threshold = 6
set_by = "{SET_BY}"
"""


def _at(clock: Any, stamp: str) -> None:
    clock.now = datetime.fromisoformat(stamp).replace(tzinfo=UTC)


def _policy(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def _score(client: Any, headers: Any, pid: int, value: int) -> int:
    r = client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=headers,
        json={"instrument": "nrs_pain", "answers": [value]},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["assessment"]["id"])


def _event(client: Any, headers: Any, sid: int, event: dict[str, Any]) -> None:
    seq = client.get(f"/api/v1/sessions/{sid}", headers=headers).json()["last_seq"]
    r = client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=headers,
        json={"expected_seq": seq, "event": event},
    )
    assert r.status_code == 201, r.text


def _give_session(client: Any, nurse: Any, clock: Any, plan_id: int) -> None:
    """Session 1 from 2 Mar 10:30 UTC, one hour at 24.5 mg/h."""
    _at(clock, "2026-03-02T10:30:00")
    sid = start_infusion(client, nurse, plan_id, 1, rate_mg_per_h=24.5)
    _at(clock, "2026-03-02T11:30:00")
    _event(client, nurse, sid, {"kind": "stop", "reason": "completed"})


class Team:
    """Fresh bearer tokens at the test clock's time (a token lasts 8 hours)."""

    def __init__(self, client: Any, login_api: Any) -> None:
        self.client = client
        self.login_api = login_api

    def __getitem__(self, role: str) -> dict[str, str]:
        if role != "physician2":
            return dict(self.login_api(role))
        r = self.client.post(
            "/api/v1/auth/token",
            data={"username": "physician2", "password": "locum-cosigner-pw"},
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def course(
    app: Any,
    client: Any,
    clinic: dict[str, Any],
    clock: Any,
    tmp_path: Path,
    login_api: Any,
) -> dict[str, Any]:
    """The course up to 4 Mar (pain 5) with the clinic's rule "score at or above 6"."""
    settings = app.state.ctx.settings
    settings.outcome_loss_confirmations = 2
    settings.outcome_policy_file = _policy(tmp_path, "outcome-policy.toml", RULE_AT_6)
    pid = clinic["pid"]
    team = Team(client, login_api)
    _at(clock, "2026-03-02T10:00:00")
    ids = {"pain8": _score(client, team["nurse"], pid, 8)}
    plan = _signed(client, clinic)
    _give_session(client, team["nurse"], clock, plan["id"])
    _at(clock, "2026-03-03T10:00:00")
    ids["pain4"] = _score(client, team["nurse"], pid, 4)
    _at(clock, "2026-03-04T10:00:00")
    ids["pain5"] = _score(client, team["nurse"], pid, 5)
    return {"pid": pid, "ids": ids, "team": team, "plan": plan}


def _rise_to_6(client: Any, course: dict[str, Any], clock: Any) -> int:
    _at(clock, "2026-03-06T10:00:00")
    course["ids"]["pain6"] = _score(client, course["team"]["nurse"], course["pid"], 6)
    return int(course["ids"]["pain6"])


def _panel(client: Any, headers: Any, pid: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/patients/{pid}/outcomes", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _pain_booster(panel: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in panel["boosters"] if b["measure"] == "nrs_pain")


def _decide(client: Any, headers: Any, pid: int, **body: Any) -> Any:
    return client.post(f"/api/v1/patients/{pid}/booster-decisions", headers=headers, json=body)


def _audit(app: Any, pid: int, resource_type: str) -> list[Any]:
    from ketacare.clinic.audit.orm import AuditEvent

    with app.state.ctx.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.resource_type == resource_type, AuditEvent.patient_id == pid)
                .order_by(AuditEvent.id)
            )
        )


def _decision_count(app: Any, pid: int) -> int:
    from ketacare.clinic.outcomes.orm import BoosterDecision

    with app.state.ctx.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(BoosterDecision)
                .where(BoosterDecision.patient_id == pid)
            )
            or 0
        )


# --------------------------------------------------------------------------- the policy file


def test_rules_are_read_from_the_clinic_policy_file(tmp_path: Path) -> None:
    from ketacare.clinic.outcomes.policy import load_outcome_policy
    from ketacare.core.outcomes import BoosterRule

    path = _policy(
        tmp_path,
        "policy.toml",
        RULE_AT_6
        + """
[[booster]]
definition_id = "phq9-response"
kind = "reduction_below_percent"
threshold = 40.5
set_by = "Clinic policy B-2 (test value)"
""",
    )
    policy = load_outcome_policy(path=path)
    assert policy.boosters == (
        BoosterRule(
            definition_id="pain-30", kind="score_at_or_above", threshold=6.0, set_by=SET_BY
        ),
        BoosterRule(
            definition_id="phq9-response",
            kind="reduction_below_percent",
            threshold=40.5,
            set_by="Clinic policy B-2 (test value)",
        ),
    )
    empty = load_outcome_policy(path=_policy(tmp_path, "empty.toml", "# nothing decided yet\n"))
    assert empty.boosters == ()


def test_the_documented_example_has_no_values_and_loads_as_no_rule() -> None:
    from ketacare.clinic.outcomes.policy import load_outcome_policy

    example = Path(__file__).parents[3] / "docs/examples/outcome-policy.example.toml"
    assert load_outcome_policy(path=example).boosters == ()
    active = [
        line
        for line in example.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert active == []  # a format, not numbers


BAD = [
    (
        'kind = "score_at_or_above"',
        'kind = "score_above"',
        "[[booster]] entry 1 (pain-30): field 'kind': 'score_above' is not allowed "
        "(allowed: score_at_or_above, reduction_below_percent)",
    ),
    (
        "threshold = 6",
        "threshold = 11",
        "field 'threshold': 11 is not allowed (allowed: a score from 0 to 10 on nrs_pain)",
    ),
    (
        "threshold = 6",
        "threshold = true",
        "field 'threshold': True is not allowed",
    ),
    (
        'definition_id = "pain-30"',
        'definition_id = "phq9-remission"',
        "field 'definition_id': 'phq9-remission' is not a response definition "
        "(allowed: pain-30, pain-50, phq9-response)",
    ),
    (f'set_by = "{SET_BY}"', 'set_by = "  "', "field 'set_by': must name who"),
    (f'set_by = "{SET_BY}"', "", "field 'set_by': is missing"),
    ("threshold = 6", "threshold = 6\nthreshhold = 7", "field 'threshhold': unknown field"),
    ("[[booster]]", "[booster]", "'booster' must be an array of tables"),
    ("[[booster]]", "[[boosters]]", "unknown section or key 'boosters'"),
    ("threshold = 6", "threshold = ", "is not valid TOML"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD)
def test_a_bad_policy_file_is_refused_naming_the_entry_and_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    from ketacare.clinic.outcomes.policy import load_outcome_policy
    from ketacare.core.errors import DataFileError

    path = _policy(tmp_path, "bad.toml", RULE_AT_6.replace(old, new))
    with pytest.raises(DataFileError) as raised:
        load_outcome_policy(path=path)
    assert str(raised.value).startswith(f"outcome policy file {path}: ")
    assert message in str(raised.value)


def test_percent_rules_and_duplicates_are_checked(tmp_path: Path) -> None:
    from ketacare.clinic.outcomes.policy import load_outcome_policy
    from ketacare.core.errors import DataFileError

    percent = RULE_AT_6.replace("score_at_or_above", "reduction_below_percent")
    with pytest.raises(DataFileError, match="a percent reduction from 0 to 100"):
        load_outcome_policy(path=_policy(tmp_path, "p.toml", percent.replace("= 6", "= 101")))
    twice = _policy(tmp_path, "twice.toml", RULE_AT_6 + RULE_AT_6.replace("= 6", "= 7"))
    with pytest.raises(DataFileError, match=r"entry 2 \(pain-30\).*entry 1 has one"):
        load_outcome_policy(path=twice)
    with pytest.raises(DataFileError, match="cannot be read"):
        load_outcome_policy(path=tmp_path / "missing.toml")


def test_the_app_refuses_to_start_with_a_bad_policy_file(settings: Any, tmp_path: Path) -> None:
    from ketacare.app import create_app
    from ketacare.core.errors import DataFileError

    settings.outcome_policy_file = _policy(tmp_path, "bad.toml", RULE_AT_6.replace("= 6", "= -1"))
    with pytest.raises(DataFileError, match="field 'threshold': -1 is not allowed"):
        create_app(settings)


# --------------------------------------------------------------------------- suggestion


def test_unset_policy_says_the_clinic_has_not_set_a_threshold(
    app: Any, client: Any, course: dict[str, Any], clock: Any
) -> None:
    app.state.ctx.settings.outcome_policy_file = None
    _rise_to_6(client, course, clock)
    panel = _panel(client, course["team"]["physician"], course["pid"])
    assert "booster threshold not set for pain (NRS)" in panel["status"]["parts"]
    assert "booster suggested" not in panel["status"]["parts"]
    assert _pain_booster(panel)["state"] == "not_configured"


def test_a_score_exactly_at_the_threshold_suggests_a_booster(
    client: Any, course: dict[str, Any], clock: Any
) -> None:
    team = course["team"]
    before = _panel(client, team["physician"], course["pid"])
    booster = _pain_booster(before)
    # pain 5 on 4 Mar: 5 < 6
    assert booster["state"] == "not_suggested" and not booster["pending"]
    assert booster["messages"] == [f"pain (NRS) 5 < 6 (set by {SET_BY})"]
    assert "booster suggested" not in before["status"]["text"]

    raised_by = _rise_to_6(client, course, clock)
    after = _panel(client, team["physician"], course["pid"])
    booster = _pain_booster(after)
    # pain 6 on 6 Mar: 6 >= 6, exactly at the threshold
    assert booster["state"] == "suggested" and booster["pending"] is True
    assert booster["assessment_id"] == raised_by and booster["score"] == 6
    assert booster["score_local"] == "6 Mar 2026 11:00"
    assert booster["messages"] == [f"pain (NRS) 6 >= 6 (set by {SET_BY})"]
    assert booster["rules"] == [
        {
            "definition_id": "pain-30",
            "kind": "score_at_or_above",
            "threshold": 6.0,
            "set_by": SET_BY,
        }
    ]
    assert "booster suggested" in after["status"]["parts"]


@pytest.mark.parametrize(("threshold", "state"), [(25, "not_suggested"), (26, "suggested")])
def test_the_percent_rule_edge(
    app: Any,
    client: Any,
    course: dict[str, Any],
    clock: Any,
    tmp_path: Path,
    threshold: int,
    state: str,
) -> None:
    # pain 6 from a baseline of 8 is (8 - 6) / 8 = 25% below: not below 25%, below 26%
    body = RULE_AT_6.replace("score_at_or_above", "reduction_below_percent").replace(
        "= 6", f"= {threshold}"
    )
    app.state.ctx.settings.outcome_policy_file = _policy(tmp_path, f"p{threshold}.toml", body)
    _rise_to_6(client, course, clock)
    booster = _pain_booster(_panel(client, course["team"]["physician"], course["pid"]))
    assert booster["state"] == state
    sign = "<" if state == "suggested" else ">="
    expected = f"pain (NRS) reduction 25% {sign} {threshold}% (set by {SET_BY})"
    assert booster["messages"] == [expected]


# --------------------------------------------------------------------------- decisions


def test_accept_through_the_api_then_correct_it(
    app: Any, client: Any, course: dict[str, Any], clock: Any
) -> None:
    pid, team = course["pid"], course["team"]
    raised_by = _rise_to_6(client, course, clock)
    _at(clock, "2026-03-06T23:30:00")  # 7 Mar 00:30 in Amsterdam
    r = _decide(
        client,
        team["physician"],
        pid,
        measure="nrs_pain",
        assessment_id=raised_by,
        decision="accepted",
        note="book within the week",
    )
    assert r.status_code == 201, r.text
    accepted = r.json()
    assert accepted["decision"] == "accepted" and accepted["assessment_id"] == raised_by
    assert accepted["decided_by_name"] == "Dr Priya Physician"
    assert accepted["decided_local"] == "7 March 2026"
    assert accepted["score_value"] == 6 and accepted["note"] == "book within the week"
    assert accepted["basis"]["rules"][0]["threshold"] == 6

    panel = _panel(client, team["physician"], pid)
    assert "booster accepted by Dr Priya Physician on 7 March 2026" in panel["status"]["parts"]
    assert "booster suggested" not in panel["status"]["parts"]
    booster = _pain_booster(panel)
    assert booster["pending"] is False and booster["decision"]["id"] == accepted["id"]

    again = _decide(
        client,
        team["physician"],
        pid,
        measure="nrs_pain",
        assessment_id=raised_by,
        decision="dismissed",
        note="no",
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["detail"] == (
        "this booster suggestion was already accepted by Dr Priya Physician on 7 March 2026 "
        f"(decision {accepted['id']}): to correct it, record a new decision that supersedes "
        f"{accepted['id']}, with a note saying why"
    )
    without_note = _decide(
        client,
        team["physician"],
        pid,
        measure="nrs_pain",
        assessment_id=raised_by,
        decision="dismissed",
        supersedes=accepted["id"],
    )
    assert without_note.status_code == 422
    assert "a reason is required to dismiss" in without_note.json()["detail"]
    assert _decision_count(app, pid) == 1

    fixed = _decide(
        client,
        course["team"]["physician2"],
        pid,
        measure="nrs_pain",
        assessment_id=raised_by,
        decision="dismissed",
        note="accepted on the wrong chart; pain flare after a fall",
        supersedes=accepted["id"],
    )
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["supersedes"] == accepted["id"]
    twice = _decide(
        client,
        team["physician"],
        pid,
        measure="nrs_pain",
        assessment_id=raised_by,
        decision="accepted",
        note="x",
        supersedes=accepted["id"],
    )
    assert twice.status_code == 409
    assert f"already superseded by decision {fixed.json()['id']}" in twice.json()["detail"]

    listed = client.get(f"/api/v1/patients/{pid}/booster-decisions", headers=team["physician"])
    assert listed.status_code == 200
    assert [(d["id"], d["decision"], d["superseded_by"]) for d in listed.json()] == [
        (accepted["id"], "accepted", fixed.json()["id"]),
        (fixed.json()["id"], "dismissed", None),
    ]
    panel = _panel(client, team["physician"], pid)
    assert not any(p.startswith("booster accepted") for p in panel["status"]["parts"])
    assert (
        "booster (pain (NRS)) dismissed by Dr Second on 7 March 2026: accepted on the wrong "
        "chart; pain flare after a fall" in panel["status"]["notes"]
    )


def test_bad_decisions_are_refused_and_nothing_is_stored(
    app: Any, client: Any, course: dict[str, Any], clock: Any
) -> None:
    pid, team = course["pid"], course["team"]
    # no suggestion yet (pain 5 < 6)
    r = _decide(
        client,
        team["physician"],
        pid,
        measure="nrs_pain",
        assessment_id=course["ids"]["pain5"],
        decision="accepted",
    )
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"no booster is suggested for pain (NRS) now: pain (NRS) 5 < 6 (set by {SET_BY})"
    )
    raised_by = _rise_to_6(client, course, clock)
    cases = [
        ({"measure": "pain", "decision": "accepted"}, 422, "unknown outcome measure 'pain'"),
        ({"decision": "dismissed"}, 422, "a reason is required to dismiss"),
        ({"decision": "dismissed", "note": "   "}, 422, "a reason is required to dismiss"),
        ({"decision": "maybe"}, 422, None),
        ({"decision": "accepted", "note": "x" * 2001}, 422, None),
        ({"decision": "accepted", "assessment_id": course["ids"]["pain5"]}, 409, "now rests on"),
        ({"measure": "phq9", "decision": "accepted"}, 409, "has not responded on it"),
        ({"decision": "accepted", "supersedes": 999999}, 404, "booster decision 999999"),
    ]
    for change, status, message in cases:
        body = {"measure": "nrs_pain", "assessment_id": raised_by, **change}
        r = _decide(client, team["physician"], pid, **body)
        assert r.status_code == status, (change, r.text)
        if message:
            assert message in r.json()["detail"], r.json()
    assert _decision_count(app, pid) == 0
    assert _audit(app, pid, "booster_decision") == []

    app.state.ctx.settings.outcome_loss_confirmations = None
    r = _decide(
        client,
        team["physician"],
        pid,
        measure="nrs_pain",
        assessment_id=raised_by,
        decision="accepted",
    )
    assert r.status_code == 409 and "KETACARE_OUTCOME_LOSS_CONFIRMATIONS" in r.json()["detail"]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_dismiss_on_the_page_holds_until_a_newer_score_raises_it_again(
    app: Any, client: Any, course: dict[str, Any], clock: Any, login_page: Any
) -> None:
    pid = course["pid"]
    raised_by = _rise_to_6(client, course, clock)
    login_page("physician")
    chart = client.get(f"/patients/{pid}").text
    assert 'data-testid="booster-accept"' in chart and 'data-testid="booster-dismiss"' in chart
    assert f'name="assessment_id" value="{raised_by}"' in chart
    token = _csrf(chart)
    form = {"csrf_token": token, "measure": "nrs_pain", "assessment_id": str(raised_by)}

    no_token = client.post(
        f"/patients/{pid}/booster", data={**form, "csrf_token": "", "decision": "accepted"}
    )
    assert no_token.status_code == 403
    refused = client.post(f"/patients/{pid}/booster", data={**form, "decision": "dismissed"})
    assert refused.status_code == 422
    assert "a reason is required to dismiss a booster suggestion" in refused.text
    assert _decision_count(app, pid) == 0

    _at(clock, "2026-03-06T12:00:00")
    done = client.post(
        f"/patients/{pid}/booster",
        data={**form, "decision": "dismissed", "note": "pain rose after a fall, not a fade"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/patients/{pid}#outcomes-h"
    chart = client.get(f"/patients/{pid}").text
    assert "dismissed by Dr Priya Physician on 6 March 2026" in chart
    assert 'data-testid="booster-accept"' not in chart

    # the dismissal holds while no newer score arrives
    _at(clock, "2026-03-08T10:00:00")
    panel = _panel(client, course["team"]["physician"], pid)
    assert "booster suggested" not in panel["status"]["parts"]
    assert _pain_booster(panel)["decision"]["decision"] == "dismissed"

    # a newer score past the threshold (7 >= 6) raises it again, tied to that score
    _at(clock, "2026-03-09T10:00:00")
    newer = _score(client, course["team"]["nurse"], pid, 7)
    panel = _panel(client, course["team"]["physician"], pid)
    booster = _pain_booster(panel)
    assert "booster suggested" in panel["status"]["parts"]
    assert booster["pending"] is True and booster["assessment_id"] == newer
    assert booster["decision"] is None

    # the old form (the dismissed score) is now stale
    form["csrf_token"] = login_page("physician")  # a login session lasts 8 hours
    stale = client.post(
        f"/patients/{pid}/booster", data={**form, "decision": "accepted", "note": ""}
    )
    assert stale.status_code == 409
    assert f"now rests on the score of 9 Mar 2026 11:00 (7, assessment {newer})" in stale.text

    page = client.get(f"/patients/{pid}/booster")
    assert page.status_code == 200
    assert 'data-testid="booster-decisions"' in page.text
    assert "pain rose after a fall, not a fade" in page.text

    accept = client.post(
        f"/patients/{pid}/booster",
        data={**form, "assessment_id": str(newer), "decision": "accepted", "note": ""},
        follow_redirects=False,
    )
    assert accept.status_code == 303
    chart = client.get(f"/patients/{pid}").text
    assert "booster accepted by Dr Priya Physician on 9 March 2026" in chart


def test_the_progress_report_carries_the_decision(
    app: Any, client: Any, course: dict[str, Any], clock: Any
) -> None:
    from ketacare.clinic.audit.service import Actor
    from ketacare.clinic.documents import Letterhead
    from ketacare.clinic.outcomes.policy import booster_rules
    from ketacare.clinic.outcomes.report import progress_report

    pid, settings = course["pid"], app.state.ctx.settings
    raised_by = _rise_to_6(client, course, clock)
    _at(clock, "2026-03-07T09:00:00")
    r = _decide(
        client,
        course["team"]["physician"],
        pid,
        measure="nrs_pain",
        assessment_id=raised_by,
        decision="accepted",
    )
    assert r.status_code == 201
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    with app.state.ctx.sessions() as session:
        pdf = progress_report(
            session=session,
            actor=Actor(None, "test", "system"),
            patient_id=pid,
            now=clock.now,
            zone=settings.zone,
            loss_confirmations=2,
            booster_rules=booster_rules(settings),
            letterhead=Letterhead.of(settings),
        )
        session.commit()
    flat = " ".join(
        subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
        .stdout.decode()
        .split()
    )
    assert "booster accepted by Dr Priya Physician on 7 March 2026" in flat
    assert "booster threshold not set" not in flat


# --------------------------------------------------------------------------- rights and records


def test_only_physicians_decide_and_a_patient_reads_only_their_own(
    app: Any, client: Any, course: dict[str, Any], clock: Any, login_api: Any, login_page: Any
) -> None:
    pid = course["pid"]
    raised_by = _rise_to_6(client, course, clock)
    body = {"measure": "nrs_pain", "assessment_id": raised_by, "decision": "accepted"}
    for role in ("nurse", "therapist", "admin", "researcher", "patient1"):
        r = _decide(client, login_api(role), pid, **body)
        assert r.status_code == 403, role
        assert r.headers["content-type"] == "application/problem+json"
    patient = login_api("patient1")  # linked to demo patient 1, not to this patient
    assert client.get("/api/v1/patients/1/booster-decisions", headers=patient).status_code == 200
    other = client.get(f"/api/v1/patients/{pid}/booster-decisions", headers=patient)
    assert other.status_code == 403
    for role in ("admin", "researcher"):
        r = client.get(f"/api/v1/patients/{pid}/booster-decisions", headers=login_api(role))
        assert r.status_code == 403

    login_page("nurse")
    chart = client.get(f"/patients/{pid}").text
    assert "Booster suggested" in chart and 'data-testid="booster-accept"' not in chart
    refused = client.post(
        f"/patients/{pid}/booster",
        data={"csrf_token": _csrf(chart), **{k: str(v) for k, v in body.items()}},
    )
    assert refused.status_code == 403
    assert _decision_count(app, pid) == 0


def test_every_read_and_write_is_audited_and_decisions_are_append_only(
    app: Any, client: Any, course: dict[str, Any], clock: Any, login_page: Any
) -> None:
    pid, team = course["pid"], course["team"]
    raised_by = _rise_to_6(client, course, clock)
    r = _decide(
        client,
        team["physician"],
        pid,
        measure="nrs_pain",
        assessment_id=raised_by,
        decision="accepted",
    )
    assert r.status_code == 201
    decision_id = r.json()["id"]
    client.get(f"/api/v1/patients/{pid}/booster-decisions", headers=team["physician"])
    login_page("physician")
    assert client.get(f"/patients/{pid}/booster").status_code == 200

    writes = _audit(app, pid, "booster_decision")
    assert [(a.username, a.action, a.resource_id) for a in writes] == [
        ("physician", "create", str(decision_id))
    ]
    assert writes[0].detail == {
        "measure": "nrs_pain",
        "assessment_id": raised_by,
        "decision": "accepted",
        "supersedes": None,
    }
    reads = _audit(app, pid, "booster_decisions")
    assert [(a.username, a.action, a.detail) for a in reads] == [
        ("physician", "read", {"decisions": 1}),
        ("physician", "read", {"decisions": 1}),
    ]

    from ketacare.clinic.outcomes.orm import BoosterDecision

    for statement in (
        "UPDATE booster_decisions SET decision = 'dismissed', note = 'x'",
        "DELETE FROM booster_decisions",
    ):
        with app.state.ctx.sessions() as session:
            with pytest.raises(Exception, match="append-only"):
                session.execute(text(statement))
            session.rollback()
    with app.state.ctx.sessions() as session:
        row = session.get(BoosterDecision, decision_id)
        assert row is not None and row.decision == "accepted"


def test_the_decision_form_preselects_nothing_and_a_missing_decision_is_refused(
    app: Any, client: Any, course: dict[str, Any], clock: Any, login_page: Any
) -> None:
    pid = course["pid"]
    raised_by = _rise_to_6(client, course, clock)
    login_page("physician")
    page = client.get(f"/patients/{pid}/booster").text
    select = re.search(r'<select name="decision"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None
    options = re.findall(r"<option[^>]*>", select.group(1))
    assert options[0] == '<option value="" selected>'
    assert [o for o in options if "selected" in o] == ['<option value="" selected>']
    form = {"csrf_token": _csrf(page), "measure": "nrs_pain", "assessment_id": str(raised_by)}
    refused = client.post(f"/patients/{pid}/booster", data={**form, "decision": ""})
    assert refused.status_code == 422
    assert "decision is missing: choose one of accepted, dismissed" in refused.text
    assert _decision_count(app, pid) == 0
    # a dismissal without its reason is refused and comes back with "dismiss" still chosen
    refused = client.post(f"/patients/{pid}/booster", data={**form, "decision": "dismissed"})
    assert refused.status_code == 422
    select = re.search(r'<select name="decision"[^>]*>(.*?)</select>', refused.text, re.S)
    assert select is not None and '<option value="dismissed" selected>' in select.group(1)
    assert _decision_count(app, pid) == 0


def test_a_patient_hears_of_a_booster_only_once_a_physician_accepted_it(
    client: Any, course: dict[str, Any], clock: Any, login_api: Any, login_page: Any
) -> None:
    """The suggestion is the care team's decision support (a clinic rule); the patient's
    chart shows the booster once it is accepted, with who will book it."""
    from conftest import page_login

    pid = course["pid"]
    raised_by = _rise_to_6(client, course, clock)
    password = "violet-harbour-lantern-93"
    patient_account(client, login_api("admin"), pid, "boosterreader", password)
    page_login(client, "boosterreader", password)
    chart = client.get(f"/patients/{pid}").text
    assert "Booster suggested" not in chart and 'data-testid="booster"' not in chart
    body = {"measure": "nrs_pain", "assessment_id": raised_by, "decision": "accepted"}
    assert _decide(client, login_api("physician"), pid, **body).status_code == 201
    page_login(client, "boosterreader", password)
    chart = client.get(f"/patients/{pid}").text
    assert "Booster accepted by" in chart and "The clinic will contact you to book it" in chart
    assert "Booster suggested" not in chart
