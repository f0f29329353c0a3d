"""Fixtures of the clinic tests."""

from __future__ import annotations

from typing import Any

import pytest

from plan_helpers import KETAMINE_IV


@pytest.fixture
def clinic(client: Any, login_api: Any) -> dict[str, Any]:
    """A 70 kg patient with a signed screening for racemic IV ketamine, and the team."""
    admin = login_api("admin")
    client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": "physician2",
            "full_name": "Dr Second",
            "role": "physician",
            "password": "second-physician-pw",
        },
    )
    r = client.post(
        "/api/v1/auth/token", data={"username": "physician2", "password": "second-physician-pw"}
    )
    team = {
        "nurse": login_api("nurse"),
        "physician": login_api("physician"),
        "physician2": {"Authorization": f"Bearer {r.json()['access_token']}"},
        "therapist": login_api("therapist"),
    }
    pid = client.post(
        "/api/v1/patients",
        headers=team["nurse"],
        json={
            "given_name": "Plan",
            "family_name": "Patient",
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
    return {"pid": pid, "team": team}
