"""A signed oral take-home plan and the test clinic's own take-home limits (no source
gives any), shared by the take-home tests."""

from __future__ import annotations

from typing import Any

ORAL = {
    "treatment": {"molecule": "ketamine", "route": "oral", "setting": "take_home"},
    "vitals": {"systolic_mmhg": 118, "diastolic_mmhg": 76},
}
# the test clinic's own limits (no source gives any)
LIMITS = """
[take_home]
max_days_supply = 14
max_mg_per_dispense = 700
early_refill_tolerance_days = 2
require_pdmp_check = true
approved = "test clinic board"
"""


def set_limits(app: Any, tmp_path: Any, body: str = LIMITS) -> None:
    path = tmp_path / "session-policy.toml"
    path.write_text(body)
    app.state.ctx.settings.session_policy_file = path


def oral_plan(
    client: Any, team: dict[str, Any], pid: int, safeguards: list[str] | None = None
) -> int:
    """A signed oral-followon plan (50 mg) of patient ``pid``, screened for oral use."""
    sid = client.post(f"/api/v1/patients/{pid}/screenings", headers=team["nurse"], json=ORAL)
    assert sid.status_code == 201, sid.text
    r = client.post(
        f"/api/v1/screenings/{sid.json()['id']}/sign",
        headers=team["physician"],
        json={"note": "reviewed", "valid_until": "2026-12-31"},
    )
    assert r.status_code == 200, r.text
    plan = client.post(
        f"/api/v1/patients/{pid}/plans",
        headers=team["physician"],
        json={"protocol": "oral-followon", "dose_mg": 50},
    )
    assert plan.status_code == 201, plan.text
    plan_id = plan.json()["id"]
    r = client.post(
        f"/api/v1/plans/{plan_id}/sign",
        headers=team["physician"],
        json={
            "weight_confirmed": True,
            "reason": "clinic-set oral dose, limits reviewed",
            "safeguards_accepted": safeguards or [],
        },
    )
    assert r.status_code == 200, r.text
    if r.json()["status"] == "awaiting_cosign":
        r = client.post(f"/api/v1/plans/{plan_id}/cosign", headers=team["physician2"])
    assert r.json()["status"] == "signed", r.text
    return int(plan_id)
