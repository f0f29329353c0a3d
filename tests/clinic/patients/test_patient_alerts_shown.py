"""An open alert of a patient stands on every page a clinician opens for them.

A PHQ-9 item 9 answered above 0 is routed to the responsible physician. The nurse
opening the chart, the physician opening the plan and the therapist opening the patient's
therapy session must all see it until it is acknowledged, whoever it is routed to: before,
only the chair and the physician's inbox showed it, and a demo patient was dosed twice
past an open item 9. The patient's own record never lists it. Each read is audited.
"""

from __future__ import annotations

from html import unescape
from typing import Any

from sqlalchemy import func, select

from plan_helpers import _signed, plan_therapy


def _banner(html: str) -> str | None:
    start = html.find('data-testid="patient-alerts"')
    if start < 0:
        return None
    return unescape(html[start : html.index("</div>", start)])


def _reads(app: Any, alert_id: int) -> int:
    from ketacare.clinic.audit.orm import AuditEvent

    with app.state.ctx.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.resource_type == "clinical_alert",
                    AuditEvent.resource_id == str(alert_id),
                    AuditEvent.action == "read",
                )
            )
            or 0
        )


def test_an_open_item_9_alert_stands_on_the_chart_plan_and_therapy_pages(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    team = clinic["team"]
    pid = clinic["pid"]
    plan = _signed(client, clinic)
    therapy = plan_therapy(client, team, plan["id"], "integration")
    pages = {
        "nurse": f"/patients/{pid}",
        "physician": f"/plans/{plan['id']}",
        "therapist": f"/therapy/{therapy['id']}",
    }
    for role, url in pages.items():
        login_page(role)
        page = client.get(url)
        assert page.status_code == 200, (role, url)
        assert _banner(page.text) is None, (role, url)

    r = client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=team["nurse"],
        json={"instrument": "phq9", "answers": [1, 1, 2, 1, 0, 1, 0, 0, 1]},
    )
    assert r.status_code == 201, r.text
    [alert] = r.json()["alerts"]
    assert alert["kind"] == "phq9_item9_positive"

    for n, (role, url) in enumerate(pages.items(), start=1):
        login_page(role)
        banner = _banner(client.get(url).text)
        assert banner is not None, (role, url)
        assert "Open alerts for this patient, not yet acknowledged (1)" in banner
        assert unescape(alert["message"]) in banner
        assert _reads(app, alert["id"]) == n  # each page's read of it is audited

    # a patient's own record: the alert of their answer is the care team's, not listed
    own = client.post(
        "/api/v1/patients/1/assessments",  # the demo's patient1 account is patient 1's
        headers=team["nurse"],
        json={"instrument": "phq9", "answers": [1, 1, 2, 1, 0, 1, 0, 0, 1]},
    )
    assert own.status_code == 201, own.text
    login_page("nurse")
    assert _banner(client.get("/patients/1").text) is not None
    login_page("patient1")
    mine = client.get("/patients/1")
    assert mine.status_code == 200 and _banner(mine.text) is None

    r = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge",
        headers=team["physician"],
        json={"action": "phoned the patient; C-SSRS done, low risk"},
    )
    assert r.status_code == 200, r.text
    for role, url in pages.items():
        login_page(role)
        assert _banner(client.get(url).text) is None, (role, url)
