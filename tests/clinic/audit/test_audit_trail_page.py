"""The audit trail page: paged, filtered (user, patient, action, local days), exported as CSV."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from sqlalchemy import func, select

from ketacare.clinic.audit.orm import AuditEvent


def _ids(html: str) -> list[int]:
    body = html.split('data-testid="audit-events"', 1)[1]
    return [int(x) for x in re.findall(r"<tr(?: class=\"denied\")?><td>(\d+)</td>", body)]


def test_the_trail_pages_through_every_event_newest_first(
    client: Any, login_page: Any, login_api: Any, app: Any
) -> None:
    nurse = login_api("nurse")
    for _ in range(60):
        client.get("/api/v1/patients/2", headers=nurse)
    login_page("admin")
    with app.state.ctx.sessions() as session:
        total = session.scalar(select(func.count()).select_from(AuditEvent))
    assert total and total > 100  # the seeded demo clinic
    seen: list[int] = []
    url = "/admin/audit"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200
        ids = _ids(r.text)
        assert ids == sorted(ids, reverse=True) and len(ids) <= 100
        seen += ids
        found = re.search(r'href="([^"]+)" rel="next"', r.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
        pages += 1
    assert pages >= 2
    assert len(seen) == len(set(seen)) >= total  # every event once (page reads add none)
    # and back: the newer page of the second page is the first
    first = client.get("/admin/audit").text
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    newer = re.search(r'href="([^"]+)" rel="prev"', second)
    assert newer
    assert _ids(client.get(newer.group(1).replace("&amp;", "&")).text) == _ids(first)


def test_filters_by_user_patient_action_and_local_days(
    client: Any, login_page: Any, login_api: Any, clock: Any
) -> None:
    # 23:30 UTC on 2 March is 00:30 on 3 March in the clinic's zone (Europe/Amsterdam)
    clock.now = clock.now.replace(hour=23, minute=30)
    nurse = login_api("nurse")
    client.get("/api/v1/patients/2", headers=nurse)
    # a refused request is in the trail as `denied`
    assert client.get("/api/v1/audit", headers=nurse).status_code == 403
    login_page("admin")
    r = client.get("/admin/audit?user=nurse&patient_id=2")
    assert r.status_code == 200
    rows = r.text.split('data-testid="audit-events"', 1)[1]
    assert _ids(r.text) and "physician" not in rows
    denied = client.get("/admin/audit?action=denied").text
    assert _ids(denied) and "GET /api/v1/audit" in denied
    assert "<option selected>denied</option>" in denied
    local = client.get("/admin/audit?user=nurse&from=2026-03-03&to=2026-03-03").text
    assert len(_ids(local)) == 3  # the login, the read, the refusal
    assert "2026-03-03 00:30:00" in local
    assert not _ids(client.get("/admin/audit?user=nurse&to=2026-03-02").text)


def test_bad_filters_are_refused_with_what_is_allowed(client: Any, login_page: Any) -> None:
    login_page("admin")
    r = client.get("/admin/audit?from=yesterday")
    assert (
        r.status_code == 422 and "from &#39;yesterday&#39; is not a date: use YYYY-MM-DD" in r.text
    )
    r = client.get("/admin/audit?patient_id=x1")
    assert r.status_code == 422 and "use a whole number from 1" in r.text
    r = client.get("/admin/audit?from=2026-03-05&to=2026-03-01")
    assert r.status_code == 422 and "ends (2026-03-01) before it starts (2026-03-05)" in r.text


def test_the_csv_export_has_the_same_filters_and_is_audited(
    client: Any, login_page: Any, login_api: Any
) -> None:
    client.get("/api/v1/patients/2", headers=login_api("nurse"))
    login_page("admin")
    r = client.get("/admin/audit.csv?user=nurse&patient_id=2")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and {row["username"] for row in rows} == {"nurse"}
    assert {row["patient_id"] for row in rows} == {"2"}
    assert rows[0]["at_local"].endswith("+01:00") and rows[0]["at_utc"].endswith("+00:00")
    page = client.get("/admin/audit?action=export&user=admin").text
    assert "audit" in page.split('data-testid="audit-events"', 1)[1]


def test_the_chain_is_verified_on_request(client: Any, login_page: Any) -> None:
    login_page("admin")
    assert "Hash chain intact" not in client.get("/admin/audit").text
    assert "Hash chain intact over" in client.get("/admin/audit?verify=1").text


def test_the_trail_is_for_administrators(client: Any, login_page: Any) -> None:
    login_page("physician")
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit.csv").status_code == 403
