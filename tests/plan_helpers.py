"""Shared set-up for plan and session tests: a screened 70 kg patient and signed plans."""

from __future__ import annotations

from typing import Any

KETAMINE_IV = {
    "treatment": {"molecule": "ketamine", "route": "iv_infusion"},
    "vitals": {"systolic_mmhg": 118, "diastolic_mmhg": 76},
}


def draft(client: Any, clinic: dict[str, Any], **dose: Any) -> dict[str, Any]:
    r = client.post(
        f"/api/v1/patients/{clinic['pid']}/plans",
        headers=clinic["team"]["physician"],
        json={"protocol": "crps-outpatient", "bag_mg": 100, "bag_ml": 100, **dose},
    )
    assert r.status_code == 201, r.text
    return r.json()


def _signed(client: Any, clinic: dict[str, Any], **dose: Any) -> dict[str, Any]:
    plan = draft(client, clinic, **dose)
    team = clinic["team"]
    client.post(
        f"/api/v1/plans/{plan['id']}/sign",
        headers=team["physician"],
        json={"weight_confirmed": True, "reason": "site limits not configured"},
    )
    r = client.post(f"/api/v1/plans/{plan['id']}/cosign", headers=team["physician2"])
    assert r.status_code == 200, r.text
    return r.json()


def screened_patient(client: Any, team: dict[str, Any], family: str = "Patient") -> int:
    """A new 70 kg patient with a signed screening for racemic IV ketamine."""
    pid = client.post(
        "/api/v1/patients",
        headers=team["nurse"],
        json={
            "given_name": "Plan",
            "family_name": family,
            "birth_date": "1980-05-05",
            "sex": "female",
            "weight_kg": 70,
        },
    ).json()["id"]
    # no drug use: "no" to every DAST-10 item except item 3 ("able to stop ... when you want")
    no_drugs = [False, False, True] + [False] * 7
    for instrument, answers in (("ort", [False] * 10), ("dast10", no_drugs)):
        client.post(
            f"/api/v1/patients/{pid}/assessments",
            headers=team["nurse"],
            json={"instrument": instrument, "answers": answers},
        )
    sid = client.post(
        f"/api/v1/patients/{pid}/screenings", headers=team["nurse"], json=KETAMINE_IV
    ).json()["id"]
    r = client.post(
        f"/api/v1/screenings/{sid}/sign",
        headers=team["physician"],
        json={"note": "reviewed history", "valid_until": "2026-12-31"},
    )
    assert r.status_code == 200, r.text
    return int(pid)
