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
