"""Duplicate patients at registration, and records retired as entered in error."""

from __future__ import annotations

import re
from typing import Any

from conftest import page_login

HERRERA = {"given_name": "Tomás", "family_name": "Herrera", "birth_date": "1957-07-19"}


def _count(client: Any, headers: dict[str, str]) -> int:
    return int(client.get("/api/v1/patients", headers=headers).json()["total"])


def test_same_name_and_birth_date_answers_409_with_the_matching_ids(
    client: Any, login_api: Any
) -> None:
    nurse = login_api("nurse")
    before = _count(client, nurse)
    # case, accents and surrounding spaces are ignored
    payload = {
        "given_name": "  TOMAS ",
        "family_name": "herrera",
        "birth_date": "1957-07-19",
        "sex": "male",
    }
    r = client.post("/api/v1/patients", headers=nurse, json=payload)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title"] == "Possible duplicate patient"
    assert body["duplicates"] == [4]
    assert "patient 4 (Herrera, Tomás, born 1957-07-19, MRN KC000004)" in body["detail"]
    assert "confirm_duplicate" in body["detail"]
    assert _count(client, nurse) == before  # nothing stored

    r = client.post("/api/v1/patients", headers=nurse, json={**payload, "confirm_duplicate": True})
    assert r.status_code == 201, r.text
    assert _count(client, nurse) == before + 1


def test_same_name_other_birth_date_is_not_a_duplicate(client: Any, login_api: Any) -> None:
    nurse = login_api("nurse")
    r = client.post(
        "/api/v1/patients",
        headers=nurse,
        json={**HERRERA, "birth_date": "1957-07-20", "sex": "male"},
    )
    assert r.status_code == 201, r.text


def test_an_mrn_differing_in_case_warns_and_an_exact_mrn_is_refused(
    client: Any, login_api: Any
) -> None:
    nurse = login_api("nurse")
    new = {
        "given_name": "Noor",
        "family_name": "Visser",
        "birth_date": "1991-01-02",
        "sex": "female",
    }
    r = client.post("/api/v1/patients", headers=nurse, json={**new, "mrn": "kc000002"})
    assert r.status_code == 409
    assert r.json()["duplicates"] == [2]
    r = client.post(
        "/api/v1/patients",
        headers=nurse,
        json={**new, "mrn": "KC000002", "confirm_duplicate": True},
    )
    assert r.status_code == 409
    assert "MRN KC000002 already exists: patient 2" in r.json()["detail"]
    assert "duplicates" not in r.json()


def test_the_registration_page_warns_links_and_registers_only_when_confirmed(
    client: Any,
) -> None:
    csrf = page_login(client, "nurse")
    form = {**HERRERA, "given_name": "tomas", "sex": "male", "csrf_token": csrf}
    r = client.post("/patients", data=form, follow_redirects=False)
    assert r.status_code == 409
    assert 'data-testid="duplicate-warning"' in r.text
    assert 'href="/patients/4"' in r.text
    assert 'value="tomas"' in r.text  # the form kept
    r = client.post("/patients", data={**form, "confirm_duplicate": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert re.fullmatch(r"/patients/\d+", r.headers["location"])


def test_retiring_a_record_keeps_it_hides_it_and_refuses_writes(
    client: Any, login_api: Any
) -> None:
    nurse, physician = login_api("nurse"), login_api("physician")
    admin = login_api("admin")
    pid = client.post(
        "/api/v1/patients",
        headers=nurse,
        json={**HERRERA, "sex": "male", "confirm_duplicate": True, "weight_kg": 80},
    ).json()["id"]
    before = _count(client, nurse)

    # a reason is required; nothing changes without one
    r = client.post(f"/api/v1/patients/{pid}/retire", headers=physician, json={"reason": ""})
    assert r.status_code == 422
    assert (
        client.get(f"/api/v1/patients/{pid}", headers=nurse).json()["patient"]["retired_at"] is None
    )
    # the permission table: not a therapist
    therapist = login_api("therapist")
    r = client.post(f"/api/v1/patients/{pid}/retire", headers=therapist, json={"reason": "dup"})
    assert r.status_code == 403

    r = client.post(
        f"/api/v1/patients/{pid}/retire",
        headers=physician,
        json={"reason": "duplicate of patient 4"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["retired_reason"] == "duplicate of patient 4"
    assert r.json()["retired_at"]

    # hidden from the list and the search, still readable by its id
    assert _count(client, nurse) == before - 1
    found = client.get("/api/v1/patients?search=herrera", headers=nurse).json()["items"]
    assert [p["id"] for p in found] == [4]
    chart = client.get(f"/api/v1/patients/{pid}", headers=nurse).json()
    assert chart["patient"]["retired_reason"] == "duplicate of patient 4"
    assert chart["weights"][0]["weight_kg"] == 80

    # writes against it refused, nothing stored
    r = client.post(f"/api/v1/patients/{pid}/weights", headers=nurse, json={"weight_kg": 81})
    assert r.status_code == 409
    assert r.json()["title"] == "Record retired (entered in error)"
    assert "read-only" in r.json()["detail"]
    r = client.patch(
        f"/api/v1/patients/{pid}",
        headers=nurse,
        json={"reason": "typo", "version": chart["patient"]["version"], "phone": "1"},
    )
    assert r.status_code == 409
    r = client.post(
        f"/api/v1/patients/{pid}/conditions", headers=physician, json={"icd10_code": "G90.511"}
    )
    assert r.status_code == 409
    r = client.post(
        f"/api/v1/patients/{pid}/plans",
        headers=physician,
        json={"protocol": "crps-outpatient", "bag_mg": 100, "bag_ml": 100},
    )
    assert r.status_code == 409
    after = client.get(f"/api/v1/patients/{pid}", headers=nurse).json()
    assert len(after["weights"]) == 1 and after["conditions"] == []
    r = client.post(f"/api/v1/patients/{pid}/retire", headers=physician, json={"reason": "again"})
    assert r.status_code == 409 and "already retired" in r.json()["detail"]

    # the retirement is in the audit trail
    events = client.get(f"/api/v1/audit?patient_id={pid}", headers=admin).json()
    retire = [e for e in events if e["action"] == "retire"]
    assert len(retire) == 1
    assert retire[0]["username"] == "physician"
    assert retire[0]["detail"] == {"status": "entered-in-error", "reason": "duplicate of patient 4"}

    # a duplicate check no longer points at the retired record
    r = client.post("/api/v1/patients", headers=nurse, json={**HERRERA, "sex": "male"})
    assert r.json()["duplicates"] == [4]


def test_the_chart_of_a_retired_record_shows_the_banner_and_no_forms(client: Any) -> None:
    csrf = page_login(client, "physician")
    r = client.post("/patients/3/retire", data={"csrf_token": csrf, "reason": " "})
    assert r.status_code == 422
    assert "reason is required" in r.text
    r = client.post(
        "/patients/3/retire",
        data={"csrf_token": csrf, "reason": "registered twice"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get("/patients/3").text
    assert 'data-testid="retired-banner"' in page
    assert "Retired: entered in error</strong> — registered twice" in page
    assert "Dr Priya Physician" in page
    assert 'action="/patients/3/weights"' not in page
    assert 'action="/patients/3/retire"' not in page
    assert "Lindqvist" not in client.get("/patients").text
    r = client.post("/patients/3/weights", data={"csrf_token": csrf, "weight_kg": "60"})
    assert r.status_code == 422  # the chart again with the reason
    assert "retired as entered in error" in r.text
