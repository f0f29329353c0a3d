"""Friendly error pages (403, 404, 405) for pages; the API keeps its problem responses."""

from __future__ import annotations

from typing import Any


def test_a_missing_page_is_a_friendly_404_and_the_api_stays_json(
    client: Any, login_page: Any, login_api: Any
) -> None:
    login_page("nurse")
    r = client.get("/no/such/page")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in r.text and 'href="/"' in r.text
    assert ">Not Found<" not in r.text
    r = client.get("/patients/999999")
    assert r.status_code == 404
    assert "<h1>Page not found</h1>" in r.text and "patient 999999 does not exist" in r.text
    r = client.get("/api/v1/no/such", headers=login_api("nurse"))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
    }
    r = client.get("/api/v1/patients/999999", headers=login_api("nurse"))
    assert r.json()["detail"] == "patient 999999 does not exist"


def test_a_forbidden_page_is_a_friendly_403(client: Any, login_page: Any, login_api: Any) -> None:
    login_page("nurse")
    r = client.get("/admin/audit")
    assert r.status_code == 403
    assert "<h1>Not allowed</h1>" in r.text and "ask an administrator" in r.text
    assert "role nurse may not audit read" in r.text
    r = client.get("/api/v1/audit", headers=login_api("nurse"))
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Forbidden"


def test_opening_a_forms_address_goes_to_the_forms_page(client: Any, login_page: Any) -> None:
    login_page("nurse")
    for posted, page in (
        ("/patients/2/weights", "/patients/2"),
        ("/patients/2/entries/condition/1/status", "/patients/2"),
        ("/patients/2/retire", "/patients/2"),
        ("/admin/users/3", "/admin/users"),
        ("/plans/1/sign", "/plans/1"),
    ):
        r = client.get(posted, follow_redirects=False)
        assert r.status_code == 303, posted
        assert r.headers["location"] == page


def test_another_method_on_a_page_is_a_friendly_405_with_the_way_back(
    client: Any, login_page: Any, login_api: Any
) -> None:
    login_page("nurse")
    r = client.delete("/patients/2/weights")
    assert r.status_code == 405
    assert "<h1>This address is a form&#39;s destination</h1>" in r.text
    assert 'href="/patients/2">Back to the form\'s page' in r.text
    r = client.get("/api/v1/patients/2/weights", headers=login_api("nurse"))
    assert r.status_code == 405
    assert r.json()["title"] == "Method Not Allowed"
