"""A patient sees only signed (and later) plans of their own, without limits or sign blocks."""

from __future__ import annotations

from typing import Any

from conftest import page_login
from plan_helpers import _signed, draft, patient_account

PASSWORD = "violet-harbour-lantern-93"


def _patient_account(client: Any, login_api: Any, pid: int) -> dict[str, str]:
    return patient_account(client, login_api("admin"), pid, "planreader", PASSWORD)


def test_a_patient_never_sees_a_draft_through_the_api_or_the_pages(
    client: Any, clinic: dict[str, Any], login_api: Any
) -> None:
    pid = clinic["pid"]
    unsigned = draft(client, clinic)
    signed = _signed(client, clinic)
    patient = _patient_account(client, login_api, pid)

    staff = client.get(f"/api/v1/patients/{pid}/plans", headers=clinic["team"]["nurse"]).json()
    assert {p["id"] for p in staff} == {unsigned["id"], signed["id"]}
    mine = client.get(f"/api/v1/patients/{pid}/plans", headers=patient).json()
    assert [p["id"] for p in mine] == [signed["id"]]
    for path in (f"/plans/{unsigned['id']}", f"/plans/{unsigned['id']}/exposure"):
        r = client.get(f"/api/v1{path}", headers=patient)
        assert r.status_code == 404, path
        assert r.json()["detail"] == f"plan {unsigned['id']} does not exist"
    r = client.get(f"/api/v1/plans/{unsigned['id']}/outcome-schedule", headers=patient)
    assert r.status_code == 404
    assert client.get(f"/api/v1/plans/{signed['id']}", headers=patient).status_code == 200

    page_login(client, "planreader", PASSWORD)
    listing = client.get(f"/patients/{pid}/plans").text
    assert f"Plan {signed['id']}</a>" in listing
    assert f"Plan {unsigned['id']}</a>" not in listing
    r = client.get(f"/plans/{unsigned['id']}")
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"]
    shown = client.get(f"/plans/{signed['id']}")
    assert shown.status_code == 200
    assert 'data-testid="patient-plan-status"' in shown.text
    for staff_only in (
        "<h2>Limits</h2>",
        "<h2>Sign</h2>",
        "Signed by",
        'data-testid="plan-history"',
        "Exposure preview",  # a clinician's model curves
        'id="exposure-data"',
        "/personalise",
        # the pharmacy's detail: pump rates, the rounding rule, the order's wording
        "<th>Pump</th>",
        "mL/h",
        "limits are checked on the exact values before rounding",
        "protocol dose: ",
        " · bag ",
    ):
        assert staff_only not in shown.text, staff_only
    # the plans list names the treatment by its title, not the protocol's file id
    assert "<td>crps-outpatient</td>" not in listing
    assert "<td>Outpatient IV ketamine for CRPS" in listing


def test_the_clinician_still_sees_the_draft_with_its_limits_and_sign_block(
    client: Any, clinic: dict[str, Any]
) -> None:
    unsigned = draft(client, clinic)
    page_login(client, "physician")
    page = client.get(f"/plans/{unsigned['id']}").text
    assert "<h2>Limits</h2>" in page and "<h2>Sign</h2>" in page


def test_the_demo_patient_does_not_see_their_draft_plan(client: Any, login_api: Any) -> None:
    staff = client.get("/api/v1/patients/1/plans", headers=login_api("nurse")).json()
    assert [p["status"] for p in staff] == ["draft"]
    assert client.get("/api/v1/patients/1/plans", headers=login_api("patient1")).json() == []
    page_login(client, "patient1")
    assert "No plan yet." in client.get("/patients/1/plans").text
