"""Intake instruments with safety alerts, and screenings with physician sign-off."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

PHQ9_ITEM9 = [1, 1, 2, 1, 0, 1, 0, 0, 1]  # total 7 (mild), item 9 = 1 ("several days")


def test_staff_records_a_phq9_and_an_item9_answer_alerts_the_responsible_clinician(
    client: Any, login_api: Any
) -> None:
    nurse, physician = login_api("nurse"), login_api("physician")
    r = client.post(
        "/api/v1/patients/3/assessments",
        headers=nurse,
        json={"instrument": "phq9", "answers": PHQ9_ITEM9},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["assessment"]["total"] == 7 and body["assessment"]["band"] == "mild"
    [alert] = body["alerts"]
    assert alert["kind"] == "phq9_item9_positive" and alert["routes_to"] == "cssrs_screener"
    me = client.get("/api/v1/users/me", headers=physician).json()
    assert alert["recipient_id"] == me["id"]  # the demo's responsible clinician
    inbox = client.get("/api/v1/alerts", headers=physician).json()
    assert [a["id"] for a in inbox] == [alert["id"]]
    r = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge",
        headers=physician,
        json={"action": "phoned patient; C-SSRS done, low risk"},
    )
    assert r.status_code == 200 and r.json()["acknowledged_by"] == me["id"]
    assert client.get("/api/v1/alerts", headers=physician).json() == []
    again = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge", headers=physician, json={"action": "twice"}
    )
    assert again.status_code == 409


def test_no_alert_without_item9(client: Any, login_api: Any) -> None:
    r = client.post(
        "/api/v1/patients/3/assessments",
        headers=login_api("nurse"),
        json={"instrument": "phq9", "answers": [3, 3, 3, 3, 3, 3, 3, 3, 0]},
    )
    assert r.json()["assessment"]["band"] == "severe" and r.json()["alerts"] == []


def test_out_of_range_answer_is_refused_naming_the_item_and_nothing_is_stored(
    client: Any, login_api: Any
) -> None:
    nurse = login_api("nurse")
    r = client.post(
        "/api/v1/patients/3/assessments",
        headers=nurse,
        json={"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 4]},
    )
    assert r.status_code == 422
    assert "q9" in r.json()["detail"] and "0" in r.json()["detail"]
    r = client.post(
        "/api/v1/patients/3/assessments", headers=nurse, json={"instrument": "nope", "answers": [1]}
    )
    assert r.status_code == 422 and "unknown instrument" in r.json()["detail"]
    assert client.get("/api/v1/patients/3/assessments", headers=nurse).json() == []


def test_sex_specific_instruments_use_the_record_sex(client: Any, login_api: Any) -> None:
    # AUDIT-C 3 points: positive for women (>=3), not for men (>=4) (Bush 1998 / Bradley 2003)
    nurse = login_api("nurse")
    woman = client.post(
        "/api/v1/patients/3/assessments",
        headers=nurse,
        json={"instrument": "auditc", "answers": [1, 1, 1]},
    ).json()
    man = client.post(
        "/api/v1/patients/2/assessments",
        headers=nurse,
        json={"instrument": "auditc", "answers": [1, 1, 1]},
    ).json()
    assert "auditc_positive" in woman["assessment"]["flags"]
    assert "auditc_positive" not in man["assessment"]["flags"]


def test_patient_reports_only_for_themselves(client: Any, login_api: Any) -> None:
    me = login_api("patient1")
    r = client.post(
        "/api/v1/patients/1/assessments",
        headers=me,
        json={"instrument": "nrs_pain", "answers": [6]},
    )
    assert r.status_code == 201 and r.json()["assessment"]["source"] == "patient"
    r = client.post(
        "/api/v1/patients/2/assessments",
        headers=me,
        json={"instrument": "nrs_pain", "answers": [6]},
    )
    assert r.status_code == 403


ESKETAMINE = {"treatment": {"molecule": "esketamine", "route": "intranasal"}}


def test_screening_from_the_record_needs_review_when_a_substance_screen_is_missing(
    client: Any, login_api: Any
) -> None:
    nurse = login_api("nurse")
    r = client.post(
        "/api/v1/patients/3/screenings",
        headers=nurse,
        json={**ESKETAMINE, "vitals": {"systolic_mmhg": 122, "diastolic_mmhg": 78}},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["decision"] == "physician_review"
    assert body["input"]["conditions"][0]["code"] == "M79.7"  # taken from the record
    assert {"name": "duloxetine"} in body["input"]["medications"]
    missing = " ".join(m["message"] for m in body["result"]["missing"])
    assert "ORT" in missing or "substance" in missing.lower()
    assert body["status"] == "draft"


def test_contraindication_from_history_makes_the_patient_not_eligible(
    client: Any, login_api: Any
) -> None:
    r = client.post(
        "/api/v1/patients/3/screenings",
        headers=login_api("nurse"),
        json={**ESKETAMINE, "history": {"aneurysmal_vascular_disease": True}},
    )
    body = r.json()
    assert body["decision"] == "not_eligible"
    assert body["result"]["reasons"][0]["rule"] == "esketamine-aneurysmal-vascular-disease"
    assert (
        "Spravato" in body["result"]["reasons"][0]["source"]
        or "esketamine" in body["result"]["reasons"][0]["source"].lower()
    )


def test_only_a_physician_signs_and_validity_is_required_without_site_policy(
    client: Any, login_api: Any
) -> None:
    nurse, physician = login_api("nurse"), login_api("physician")
    for instrument, answers in (("ort", [False] * 10), ("dast10", [False] * 10)):
        client.post(
            "/api/v1/patients/3/assessments",
            headers=nurse,
            json={"instrument": instrument, "answers": answers},
        )
    created = client.post(
        "/api/v1/patients/3/screenings",
        headers=nurse,
        json={**ESKETAMINE, "vitals": {"systolic_mmhg": 120, "diastolic_mmhg": 75}},
    ).json()
    sid = created["id"]
    assert (
        client.post(
            f"/api/v1/screenings/{sid}/sign", headers=nurse, json={"note": "ok"}
        ).status_code
        == 403
    )
    r = client.post(f"/api/v1/screenings/{sid}/sign", headers=physician, json={"note": "ok"})
    assert r.status_code == 422 and "screening_valid_days" in r.json()["detail"]
    r = client.post(
        f"/api/v1/screenings/{sid}/sign",
        headers=physician,
        json={"note": "reviewed", "valid_until": "2026-09-01"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "signed" and r.json()["valid_until"] == "2026-09-01"
    again = client.post(
        f"/api/v1/screenings/{sid}/sign",
        headers=physician,
        json={"note": "x", "valid_until": "2026-09-01"},
    )
    assert again.status_code == 409


def test_signing_a_newer_screening_supersedes_the_older(client: Any, login_api: Any) -> None:
    nurse, physician = login_api("nurse"), login_api("physician")
    ids = []
    for _ in range(2):
        sid = client.post("/api/v1/patients/3/screenings", headers=nurse, json=ESKETAMINE).json()[
            "id"
        ]
        client.post(
            f"/api/v1/screenings/{sid}/sign",
            headers=physician,
            json={"note": "reviewed", "valid_until": "2026-06-01"},
        )
        ids.append(sid)
    rows = {
        s["id"]: s["status"]
        for s in client.get("/api/v1/patients/3/screenings", headers=physician).json()
    }
    assert rows == {ids[0]: "superseded", ids[1]: "signed"}


def test_site_policy_sets_validity_and_blood_pressure_limits(
    app: Any, client: Any, login_api: Any, tmp_path: Any
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[site_policy]\nname = "Test clinic"\nversion = "1"\n'
        "screening_systolic_max_mmhg = 150\nscreening_diastolic_max_mmhg = 95\n"
        "screening_valid_days = 90\n"
    )
    app.state.ctx.settings.site_policy_file = policy
    nurse, physician = login_api("nurse"), login_api("physician")
    body = client.post(
        "/api/v1/patients/2/screenings",
        headers=nurse,
        json={
            "treatment": {"molecule": "ketamine", "route": "iv_infusion"},
            "vitals": {"systolic_mmhg": 160, "diastolic_mmhg": 80},
        },
    ).json()
    used = {p["key"]: p for p in body["result"]["site_policies"]}
    assert used["screening_systolic_max_mmhg"]["status"] == "applied"
    assert any("160" in r["message"] for r in body["result"]["reasons"])
    signed = client.post(
        f"/api/v1/screenings/{body['id']}/sign", headers=physician, json={"note": "BP rechecked"}
    ).json()
    assert signed["valid_until"] == "2026-05-31"  # 2026-03-02 + 90 days


def test_phq9_page_shows_the_score_and_the_alert(client: Any, login_page: Any) -> None:
    csrf = login_page("nurse")
    form = {f"item_q{i + 1}": str(v) for i, v in enumerate(PHQ9_ITEM9)}
    r = client.post("/patients/3/assessments/new/phq9", data={**form, "csrf_token": csrf})
    assert r.status_code == 200
    assert 'data-testid="score-total">7<' in r.text and "Safety alert" in r.text
    assert "/patients/3/assessments/new/cssrs_screener" in r.text


def test_screening_reads_phq9_item9_from_the_stored_answers(client: Any, login_api: Any) -> None:
    """A stored PHQ-9 with item 9 answered 0 does not leave item 9 missing on the screening;
    one with item 9 above 0 fires the item-9 rule (PHQ-9: follow up any answer above 0)."""
    nurse = login_api("nurse")
    screen = {**ESKETAMINE, "vitals": {"systolic_mmhg": 122, "diastolic_mmhg": 78}}
    for answers, fired in (([3, 3, 3, 3, 3, 3, 3, 0, 0], False), (PHQ9_ITEM9, True)):
        r = client.post(
            "/api/v1/patients/3/assessments",
            headers=nurse,
            json={"instrument": "phq9", "answers": answers},
        )
        assert r.status_code == 201, r.text
        body = client.post("/api/v1/patients/3/screenings", headers=nurse, json=screen).json()
        missing = [m["item"] for m in body["result"]["missing"]]
        assert "instrument:phq9 item q9" not in missing
        rules = {x["rule"] for x in body["result"]["reasons"]}
        assert ("phq9-item9-positive" in rules) is fired


def test_an_empty_inbox_is_no_all_clear_while_others_have_open_alerts(
    client: Any, login_api: Any, login_page: Any
) -> None:
    """The alert goes to the patient's responsible physician; the nurse's inbox does not
    say 'No open alerts' in green while it is open, but counts it and links to it."""
    nurse, physician = login_api("nurse"), login_api("physician")
    r = client.post(
        "/api/v1/patients/3/assessments",
        headers=nurse,
        json={"instrument": "phq9", "answers": PHQ9_ITEM9},
    )
    [alert] = r.json()["alerts"]
    assert alert["recipient_id"] is not None  # routed to the physician, not to the nurse
    login_page("nurse")
    page = client.get("/alerts").text
    assert "No open alerts." not in page
    note = page.split('data-testid="alerts-for-others">')[1].split("</p>")[0]
    assert "1 open alert routed to someone else" in note and 'href="/alerts?all=1"' in note
    everyone = client.get("/alerts?all=1").text
    assert 'data-testid="alert-phq9_item9_positive"' in everyone
    r = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge",
        headers=physician,
        json={"action": "phoned patient; C-SSRS done, low risk"},
    )
    assert r.status_code == 200
    assert "No open alerts." in client.get("/alerts").text


def _selected(html: str, name: str) -> str | None:
    """The option chosen in the select ``name`` (None when none is marked selected)."""
    found = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert found is not None, f"no select {name}"
    chosen = re.search(r'<option(?: value="([^"]*)")? selected>([^<]*)<', found.group(1))
    return (
        None
        if chosen is None
        else (chosen.group(1) if chosen.group(1) is not None else chosen.group(2))
    )


def test_a_refused_screening_form_keeps_every_answer_and_names_the_field_in_words(
    client: Any, login_api: Any, login_page: Any
) -> None:
    """One mistyped number used to send the form back empty: 25 contraindication answers
    fell back to "unknown", which is easy to miss when answering again."""
    physician = login_api("physician")
    before = client.get("/api/v1/patients/1/screenings", headers=physician).json()
    csrf = login_page("physician")
    form = {
        "csrf_token": csrf,
        "molecule": "ketamine",
        "route": "iv_infusion",
        "setting": "in_clinic",
        "systolic_mmhg": "128",
        "diastolic_mmhg": "82",
        "heart_rate_bpm": "abc",
        "pregnancy_status": "not_pregnant",
        "breastfeeding": "no",
        "h_psychosis_active": "no",
        "h_hypertension_uncontrolled": "yes",
        "lab_alt": "200",
        "uln_alt": "40",
    }
    r = client.post("/patients/1/screening", data=form)
    assert r.status_code == 422
    assert "heart rate (/min) 'abc' is not a number" in unescape(r.text)
    html = r.text
    for name in ("molecule", "route", "setting", "pregnancy_status", "breastfeeding"):
        assert _selected(html, name) == form[name], name
    assert _selected(html, "h_psychosis_active") == "no"
    assert _selected(html, "h_hypertension_uncontrolled") == "yes"
    assert _selected(html, "h_aneurysmal_vascular_disease") is None  # not answered stays unknown
    for name in ("systolic_mmhg", "diastolic_mmhg", "heart_rate_bpm", "lab_alt", "uln_alt"):
        assert f'name="{name}" inputmode="decimal" value="{form[name]}"' in html, name
    # out of the data-entry range, and a diastolic above the systolic, in words
    r = client.post(
        "/patients/1/screening", data={**form, "heart_rate_bpm": "72", "systolic_mmhg": "400"}
    )
    assert r.status_code == 422
    assert "systolic blood pressure (mmHg) 400 is out of range: allowed 40 to 300" in r.text
    r = client.post(
        "/patients/1/screening",
        data={**form, "heart_rate_bpm": "72", "systolic_mmhg": "80", "diastolic_mmhg": "120"},
    )
    assert r.status_code == 422
    assert "diastolic blood pressure 120 mmHg must be below systolic 80 mmHg" in r.text
    # nothing was stored by any of the refusals
    assert client.get("/api/v1/patients/1/screenings", headers=physician).json() == before
