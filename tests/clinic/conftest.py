"""Fixtures of the clinic tests."""

from __future__ import annotations

from typing import Any

import pytest

from plan_helpers import screened_patient


@pytest.fixture
def clinic(client: Any, login_api: Any) -> dict[str, Any]:
    """A 70 kg patient with a signed screening for racemic IV ketamine, and the team."""
    admin = login_api("admin")
    physician = login_api("physician")
    client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": "physician2",
            "full_name": "Dr Second",
            "role": "physician",
            "password": "locum-cosigner-pw",
        },
    )
    # a clinical role needs a second person: the physician approves it
    (pending,) = client.get("/api/v1/role-requests", headers=physician).json()
    client.post(f"/api/v1/role-requests/{pending['id']}/approve", headers=physician)
    r = client.post(
        "/api/v1/auth/token", data={"username": "physician2", "password": "locum-cosigner-pw"}
    )
    team = {
        "nurse": login_api("nurse"),
        "physician": physician,
        "physician2": {"Authorization": f"Bearer {r.json()['access_token']}"},
        "therapist": login_api("therapist"),
    }
    pid = screened_patient(client, team)
    return {"pid": pid, "team": team}
