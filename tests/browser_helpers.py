"""Helpers for browser tests."""

from __future__ import annotations

from typing import Any

import httpx

from ketacare.clinic.demo import DEMO_PASSWORD
from plan_helpers import consent_to, rems_on_record


def login(page: Any, base: str, username: str, password: str | None = None) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password or DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("load")


def _api(base: str, username: str, password: str | None = None) -> httpx.Client:
    r = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"username": username, "password": password or DEMO_PASSWORD},
    )
    r.raise_for_status()
    return httpx.Client(
        base_url=base, timeout=20, headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )


def add_second_physician(base: str) -> None:
    """The account physician2: asked by the admin, approved by the physician (two people)."""
    with _api(base, "admin") as admin:
        admin.post(
            "/api/v1/users",
            json={
                "username": "physician2",
                "full_name": "Dr Second",
                "role": "physician",
                "password": "locum-cosigner-pw",
            },
        ).raise_for_status()
    with _api(base, "physician") as physician:
        for pending in physician.get("/api/v1/role-requests").json():
            physician.post(f"/api/v1/role-requests/{pending['id']}/approve").raise_for_status()


def _prepare(base: str) -> None:
    """Patient 2 (David Okafor, CRPS) screened and signed; a second physician exists."""
    add_second_physician(base)
    with _api(base, "nurse") as nurse, _api(base, "physician") as physician:
        screened(nurse, physician, 2, blood_pressure=(124, 80))


def screened(
    nurse: httpx.Client,
    physician: httpx.Client,
    patient_id: int,
    *,
    molecule: str = "ketamine",
    route: str = "iv_infusion",
    blood_pressure: tuple[int, int] = (122, 78),
) -> int:
    """No drug use on ORT and DAST-10, a screening for the treatment, signed, and the
    patient's consent to the treatment programs; the screening's id."""
    # "no" to every DAST-10 item except item 3 ("able to stop ... when you want")
    for instrument, answers in (
        ("ort", [False] * 10),
        ("dast10", [False, False, True] + [False] * 7),
    ):
        nurse.post(
            f"/api/v1/patients/{patient_id}/assessments",
            json={"instrument": instrument, "answers": answers},
        ).raise_for_status()
    sid: int = nurse.post(
        f"/api/v1/patients/{patient_id}/screenings",
        json={
            "treatment": {"molecule": molecule, "route": route},
            "vitals": {"systolic_mmhg": blood_pressure[0], "diastolic_mmhg": blood_pressure[1]},
        },
    ).json()["id"]
    physician.post(
        f"/api/v1/screenings/{sid}/sign",
        json={"note": "history reviewed", "valid_until": "2099-01-01"},
    ).raise_for_status()
    standings = nurse.get(f"/api/v1/patients/{patient_id}/consents").json()["standings"]
    missing = tuple(
        s["program"]
        for s in standings
        if not s["in_force"] and s["program"] in ("iv_racemic", "racemic_other", "esketamine")
    )
    if missing:
        consent_to((nurse, {}), (physician, {}), patient_id, missing)
    if nurse.get(f"/api/v1/patients/{patient_id}/rems-enrolment").json() is None:
        rems_on_record((nurse, {}), (physician, {}), patient_id)
    return sid


def fill_monitoring_order(page: Any, order: dict[str, Any]) -> None:
    """Fill the sign form's monitoring order fields the clinic's policy left empty."""
    for name, value in order.items():
        field = page.locator(f"input[name=order_{name}]")
        if field.input_value() == "":
            field.fill(str(value))
