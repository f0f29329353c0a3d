"""The SPRAVATO REMS records: an esketamine nasal spray plan and session are refused
without the site's certification and the patient's enrolment; IV racemic ketamine is not
governed; records are append-only and a refusal stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from plan_helpers import ESKETAMINE_IN, MONITORING_ORDER, consent_to, screened_patient


def _esketamine_patient(client: Any, team: dict[str, Any]) -> int:
    pid = screened_patient(client, team, "Spray", consent=False)
    consent_to((client, team["nurse"]), (client, team["physician"]), pid, ("esketamine",))
    sid = client.post(
        f"/api/v1/patients/{pid}/screenings", headers=team["nurse"], json=ESKETAMINE_IN
    ).json()["id"]
    client.post(
        f"/api/v1/screenings/{sid}/sign",
        headers=team["physician"],
        json={"note": "reviewed", "valid_until": "2026-12-31"},
    ).raise_for_status()
    return pid


def _sign(client: Any, team: dict[str, Any], pid: int) -> tuple[int, Any]:
    plan = client.post(
        f"/api/v1/patients/{pid}/plans",
        headers=team["physician"],
        json={"protocol": "esketamine-trd"},
    ).json()
    r = client.post(
        f"/api/v1/plans/{plan['id']}/sign",
        headers=team["physician"],
        json={
            "weight_confirmed": True,
            "reason": "limits unset",
            "monitoring_order": MONITORING_ORDER,
        },
    )
    return int(plan["id"]), r


def test_an_esketamine_plan_needs_the_certified_setting_and_the_enrolment(
    client: Any, clinic: dict[str, Any]
) -> None:
    team = clinic["team"]
    pid = _esketamine_patient(client, team)
    # the fixture's site certification ends (a newer record of the site)
    client.post(
        "/api/v1/rems/certifications",
        headers=team["physician"],
        json={
            "site": "Test clinic",
            "identifier": "TEST-SITE-1",
            "certified_on": "2026-01-05",
            "status": "ended",
        },
    ).raise_for_status()
    plan_id, r = _sign(client, team, pid)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "SPRAVATO REMS: no clinic site holds a REMS certification" in detail
    assert "the patient is not enrolled in the REMS" in detail
    r = client.post(
        "/api/v1/rems/certifications",
        headers=team["physician"],
        json={"site": "Main street", "identifier": "SITE-77", "certified_on": "2026-01-10"},
    )
    assert r.status_code == 201
    assert (
        client.post(
            "/api/v1/rems/certifications",
            headers=team["nurse"],
            json={"site": "x", "identifier": "y", "certified_on": "2026-01-10"},
        ).status_code
        == 403
    )  # the authorized representative (a physician) records it
    _, r = _sign(client, team, pid)
    assert r.status_code == 422 and "not enrolled" in r.json()["detail"]
    assert "no clinic site" not in r.json()["detail"]
    r = client.post(
        f"/api/v1/patients/{pid}/rems-enrolment",
        headers=team["nurse"],
        json={"identifier": "PT-123", "enrolled_on": "2026-02-01"},
    )
    assert r.status_code == 201
    plan_id, r = _sign(client, team, pid)
    assert r.status_code == 200, r.text
    client.post(f"/api/v1/plans/{plan_id}/cosign", headers=team["physician2"]).raise_for_status()
    # the site's certification ends: the next session is refused
    client.post(
        "/api/v1/rems/certifications",
        headers=team["physician"],
        json={
            "site": "Main street",
            "identifier": "SITE-77",
            "certified_on": "2026-03-01",
            "status": "ended",
        },
    ).raise_for_status()
    r = client.post(
        f"/api/v1/plans/{plan_id}/sessions", headers=team["nurse"], json={"session_number": 1}
    )
    assert (
        r.status_code == 422 and "no clinic site holds a REMS certification" in r.json()["detail"]
    )


def test_a_future_enrolment_date_is_refused_and_stores_nothing(
    client: Any, clinic: dict[str, Any], settings: Any
) -> None:
    r = client.post(
        f"/api/v1/patients/{clinic['pid']}/rems-enrolment",
        headers=clinic["team"]["nurse"],
        json={"identifier": "PT-9", "enrolled_on": "2030-01-01"},
    )
    assert r.status_code == 422 and "in the future" in r.json()["detail"]
    engine = create_engine(settings.effective_database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT identifier FROM rems_enrolments WHERE patient_id = :p"),
            {"p": clinic["pid"]},
        ).all()
    assert [r[0] for r in rows] == [f"TEST-PT-{clinic['pid']}"]  # only the fixture's
    for statement in (
        "UPDATE rems_enrolments SET identifier = 'x'",
        "DELETE FROM rems_certifications",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    engine.dispose()
