"""Absolute ceilings on the plan page and the API (issue 13 item 6), both databases.

The issue's example: an oral-followon plan of 5,000 mg. The test policy's hard dose
per session for oral-followon is 500 mg (TEST VALUE, tests/data/protocol-policy.test.toml);
5,000 mg > 500 mg, so the plan is refused before anything is stored.
"""

from __future__ import annotations

from typing import Any

REFUSAL = "dose 5000.0 mg exceeds the hard limit 500.0 mg of protocol oral-followon (site policy"


def test_issue_example_refused_on_the_api_and_nothing_is_stored(
    client: Any, clinic: dict[str, Any]
) -> None:
    headers = clinic["team"]["physician"]
    r = client.post(
        f"/api/v1/patients/{clinic['pid']}/plans",
        headers=headers,
        json={"protocol": "oral-followon", "dose_mg": 5000},
    )
    assert r.status_code == 422
    assert REFUSAL in r.json()["detail"]
    assert client.get(f"/api/v1/patients/{clinic['pid']}/plans", headers=headers).json() == []
    r = client.post(
        "/api/v1/plans/preview",
        headers=headers,
        json={"protocol": "oral-followon", "weight_kg": 62.5, "dose_mg": 5000},
    )
    assert r.status_code == 422 and REFUSAL in r.json()["detail"]


def test_issue_example_refused_on_the_page(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    csrf = login_page("physician")
    r = client.post(
        f"/patients/{clinic['pid']}/plans",
        data={"protocol": "oral-followon", "dose_mg": "5000", "csrf_token": csrf},
    )
    assert r.status_code == 422
    assert REFUSAL in r.text
