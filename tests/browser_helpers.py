"""Helpers for browser tests."""

from __future__ import annotations

from typing import Any

import httpx


def login(page: Any, base: str, username: str, password: str | None = None) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password or f"demo-{username}")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")


def _api(base: str, username: str, password: str | None = None) -> httpx.Client:
    r = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"username": username, "password": password or f"demo-{username}"},
    )
    r.raise_for_status()
    return httpx.Client(
        base_url=base, timeout=20, headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )


def _prepare(base: str) -> None:
    """Patient 2 (David Okafor, CRPS) screened and signed; a second physician exists."""
    with _api(base, "admin") as admin:
        admin.post(
            "/api/v1/users",
            json={
                "username": "physician2",
                "full_name": "Dr Second",
                "role": "physician",
                "password": "second-physician",
            },
        )
    with _api(base, "nurse") as nurse, _api(base, "physician") as physician:
        for instrument, answers in (
            ("ort", [False] * 10),
            ("dast10", [False, False, True] + [False] * 7),
        ):
            nurse.post(
                "/api/v1/patients/2/assessments",
                json={"instrument": instrument, "answers": answers},
            ).raise_for_status()
        sid = nurse.post(
            "/api/v1/patients/2/screenings",
            json={
                "treatment": {"molecule": "ketamine", "route": "iv_infusion"},
                "vitals": {"systolic_mmhg": 124, "diastolic_mmhg": 80},
            },
        ).json()["id"]
        physician.post(
            f"/api/v1/screenings/{sid}/sign",
            json={"note": "history reviewed", "valid_until": "2099-01-01"},
        ).raise_for_status()
