"""Regression tests for findings of the security and clinical-safety review."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from plan_helpers import KETAMINE_IV, MONITORING_ORDER, _signed, draft, plan_therapy


def test_a_patient_cannot_submit_clinician_instruments_nor_erase_a_risk(
    client: Any, login_api: Any
) -> None:
    nurse, me = login_api("nurse"), login_api("patient1")
    client.post(
        "/api/v1/patients/1/assessments",
        headers=nurse,
        json={"instrument": "ort", "answers": [True] * 10},
    )
    r = client.post(
        "/api/v1/patients/1/assessments",
        headers=me,
        json={"instrument": "ort", "answers": [False] * 10},
    )
    assert r.status_code == 403 and "clinician instrument" in r.json()["detail"]
    body = client.post("/api/v1/patients/1/screenings", headers=nurse, json=KETAMINE_IV).json()
    assert any(r["rule"].startswith("ort-high") for r in body["result"]["reasons"])


def test_an_incomplete_result_does_not_replace_a_complete_one(client: Any, login_api: Any) -> None:
    nurse = login_api("nurse")
    client.post(
        "/api/v1/patients/1/assessments",
        headers=nurse,
        json={"instrument": "ort", "answers": [True] * 10},
    )
    client.post(
        "/api/v1/patients/1/assessments",
        headers=nurse,
        json={"instrument": "ort", "answers": {"family_alcohol": False}},
    )
    body = client.post("/api/v1/patients/1/screenings", headers=nurse, json=KETAMINE_IV).json()
    [ort] = [i for i in body["input"]["instruments"] if i["instrument"] == "ort"]
    assert ort["total"] == 26


def test_cosign_reruns_the_gates(client: Any, clinic: dict[str, Any]) -> None:
    team = clinic["team"]
    plan = draft(client, clinic)
    client.post(
        f"/api/v1/plans/{plan['id']}/sign",
        headers=team["physician"],
        json={
            "monitoring_order": MONITORING_ORDER,
            "weight_confirmed": True,
            "reason": "limits unset",
        },
    )
    client.post(
        f"/api/v1/patients/{clinic['pid']}/weights", headers=team["nurse"], json={"weight_kg": 55}
    )
    r = client.post(f"/api/v1/plans/{plan['id']}/cosign", headers=team["physician2"])
    assert r.status_code == 422 and "newer weight" in r.json()["detail"]


def test_one_course_in_force_per_patient(client: Any, clinic: dict[str, Any]) -> None:
    team = clinic["team"]
    _signed(client, clinic)
    other = draft(client, clinic)
    r = client.post(
        f"/api/v1/plans/{other['id']}/sign",
        headers=team["physician"],
        json={"monitoring_order": MONITORING_ORDER, "weight_confirmed": True, "reason": "x" * 5},
    )
    assert r.status_code == 422 and "still in force" in r.json()["detail"]


def test_a_new_version_keeps_adjuncts_and_frees_the_old_bookings(
    client: Any, clinic: dict[str, Any]
) -> None:
    team = clinic["team"]
    plan = draft(client, clinic)
    client.post(
        f"/api/v1/plans/{plan['id']}/adjuncts",
        headers=team["physician"],
        json={"drug": "ondansetron", "use": "antiemetic"},
    )
    client.post(
        f"/api/v1/plans/{plan['id']}/sign",
        headers=team["physician"],
        json={
            "monitoring_order": MONITORING_ORDER,
            "weight_confirmed": True,
            "reason": "limits unset",
        },
    )
    client.post(f"/api/v1/plans/{plan['id']}/cosign", headers=team["physician2"])
    booked = client.post(
        f"/api/v1/plans/{plan['id']}/appointments",
        headers=team["nurse"],
        json={"session_number": 1, "chair_id": 1, "starts_at": "2026-03-09T09:00:00+01:00"},
    )
    assert booked.status_code == 201
    v2 = client.post(
        f"/api/v1/plans/{plan['id']}/versions",
        headers=team["physician"],
        json={"dose_mg_per_kg_per_h": 0.3},
    ).json()
    client.post(
        f"/api/v1/plans/{v2['id']}/sign",
        headers=team["physician"],
        json={
            "monitoring_order": MONITORING_ORDER,
            "weight_confirmed": True,
            "reason": "lower rate",
        },
    )
    client.post(f"/api/v1/plans/{v2['id']}/cosign", headers=team["physician2"])
    r = client.post(
        f"/api/v1/plans/{v2['id']}/appointments",
        headers=team["nurse"],
        json={"session_number": 1, "chair_id": 1, "starts_at": "2026-03-09T09:00:00+01:00"},
    )
    assert r.status_code == 201  # the superseded plan's booking no longer holds the chair


def test_alerts_of_an_inactive_clinician_reach_the_team(
    client: Any, login_api: Any, login_page: Any, app: Any
) -> None:
    from sqlalchemy import select

    from ketacare.clinic.accounts.orm import User

    nurse = login_api("nurse")
    with app.state.ctx.sessions() as session:
        physician_id = session.scalar(select(User.id).where(User.username == "physician"))
    csrf = login_page("admin")
    client.post(
        f"/admin/users/{physician_id}",
        data={"action": "deactivate", "confirmed": "yes", "csrf_token": csrf},
    )
    client.post(
        "/api/v1/patients/1/assessments",
        headers=login_api("patient1"),
        json={"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 3]},
    )
    kinds = [a["kind"] for a in client.get("/api/v1/alerts", headers=nurse).json()]
    assert kinds == ["phq9_item9_positive"]


def test_only_the_newest_screening_is_signed(client: Any, login_api: Any) -> None:
    nurse, physician = login_api("nurse"), login_api("physician")
    old = client.post("/api/v1/patients/3/screenings", headers=nurse, json=KETAMINE_IV).json()
    client.post(
        "/api/v1/patients/3/screenings",
        headers=nurse,
        json={**KETAMINE_IV, "history": {"aneurysmal_vascular_disease": True}},
    )
    r = client.post(
        f"/api/v1/screenings/{old['id']}/sign",
        headers=physician,
        json={"note": "ok", "valid_until": "2026-12-01"},
    )
    assert r.status_code == 409 and "not the newest" in r.json()["detail"]


def test_therapy_notes_are_not_shown_to_the_patient(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    team = clinic["team"]
    plan = draft(client, clinic)
    t = plan_therapy(client, team, plan["id"], "preparation")
    login_page("patient1")
    assert client.get(f"/therapy/{t['id']}").status_code == 403


def test_huge_ids_and_bad_channels_are_refused_not_crashed(
    client: Any, login_page: Any, login_api: Any, clock: Any
) -> None:
    login_page("nurse")
    assert client.get("/patients/99999999999999999999").status_code == 422
    r = client.post(
        "/api/v1/patients/1/self-report-links",
        headers=login_api("nurse"),
        json={"instruments": ["phq9"], "valid_hours": 1},
    )
    assert r.status_code == 201
    clock.now += timedelta(seconds=1)
    page = client.get(
        "/simulate",
        params={"model": "domino", "weight_kg": "70", "route": "iv_bolus", "amount_mg": "1e308"},
    )
    assert page.status_code == 422 and "amount_mg" in page.text


def test_json_in_pages_cannot_break_out_of_its_script_block() -> None:
    import numpy as np

    from ketacare.web.render import _json_script

    text = str(
        _json_script(
            {
                "name": "</script><img src=x onerror=alert(1)>",
                "x": float("inf"),
                "t": np.array([0.0, 0.5]),
            }
        )
    )
    assert "</script>" not in text and "<img" not in text and '"x": null' in text
    assert '"t": [0.0, 0.5]' in text
