"""GET /api/v1/audit: the trail page's filters, keyset paging by a Link header, each read
recorded as an export, bad filters refused naming what is allowed."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from ketacare.clinic.audit.orm import AuditEvent


def _next(r: Any) -> str | None:
    found = re.match(r'<([^>]+)>; rel="next"', r.headers.get("link", ""))
    return found.group(1) if found else None


def test_pages_back_through_every_event_by_the_link_header(
    client: Any, login_api: Any, app: Any
) -> None:
    admin = login_api("admin")
    with app.state.ctx.sessions() as session:
        first_total = session.scalar(select(func.count()).select_from(AuditEvent))
        newest = session.scalar(select(func.max(AuditEvent.id)))
    seen: list[int] = []
    url: str | None = "/api/v1/audit?limit=50"
    pages = 0
    while url:
        r = client.get(url, headers=admin)
        assert r.status_code == 200
        ids = [e["id"] for e in r.json()]
        assert ids == sorted(ids, reverse=True) and len(ids) <= 50
        seen += ids
        url = _next(r)
        pages += 1
    assert pages >= 2
    # every event that existed before the first read, once; the reads themselves are newer
    # than the first page's cursor except the first, which the first page may include
    older = [i for i in seen if i <= newest]
    assert len(older) == len(set(older)) == first_total
    # each page read is in the trail as an export, with its rows and filters
    with app.state.ctx.sessions() as session:
        exports = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "export", AuditEvent.resource_type == "audit")
                .order_by(AuditEvent.id)
            )
        )
    assert len(exports) == pages
    assert exports[0].username == "admin"
    assert exports[0].detail == {"format": "json", "rows": 50, "filters": {}}
    assert "before" in exports[1].detail


def test_filters_by_user_patient_action_and_the_clinic_s_days(
    client: Any, login_api: Any, clock: Any
) -> None:
    # 23:30 UTC on 2 March is 00:30 on 3 March in the clinic's zone (Europe/Amsterdam)
    clock.now = clock.now.replace(hour=23, minute=30)
    nurse = login_api("nurse")
    client.get("/api/v1/patients/2", headers=nurse)
    client.get("/api/v1/patients/3", headers=nurse)
    assert client.get("/api/v1/audit", headers=nurse).status_code == 403
    admin = login_api("admin")

    def events(query: str) -> list[dict[str, Any]]:
        r = client.get(f"/api/v1/audit?{query}", headers=admin)
        assert r.status_code == 200, r.text
        return r.json()

    mine = events("user=nurse&patient_id=2")
    assert mine and {(e["username"], e["patient_id"]) for e in mine} == {("nurse", 2)}
    denied = events("action=denied")
    assert denied and all(e["action"] == "denied" for e in denied)
    refused = [e for e in denied if e["username"] == "nurse"]
    assert [(e["detail"]["method"], e["detail"]["path"]) for e in refused] == [
        ("GET", "/api/v1/audit")
    ]
    today = events("user=nurse&from=2026-03-03&to=2026-03-03")
    # the login, two reads and the refusal, all on the clinic's 3 March
    assert len(today) == 4
    assert not events("user=nurse&to=2026-03-02")
    assert events("user=nobody") == []


def test_bad_filters_are_refused_with_what_is_allowed_and_store_nothing(
    client: Any, login_api: Any, app: Any
) -> None:
    admin = login_api("admin")

    def exports() -> int:
        with app.state.ctx.sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.action == "export", AuditEvent.resource_type == "audit")
                )
                or 0
            )

    r = client.get("/api/v1/audit?from=yesterday", headers=admin)
    assert r.status_code == 422 and "date" in r.text
    r = client.get("/api/v1/audit?from=2026-03-05&to=2026-03-01", headers=admin)
    assert r.status_code == 422
    assert "ends (2026-03-01) before it starts (2026-03-05)" in r.json()["detail"]
    r = client.get("/api/v1/audit?limit=0", headers=admin)
    assert r.status_code == 422
    assert exports() == 0
