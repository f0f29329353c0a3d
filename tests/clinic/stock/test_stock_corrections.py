"""A closed session whose log is corrected afterwards no longer balances against the
stock it drew: the stock page flags it (SQLite and PostgreSQL).

By hand: one 500 mg vial opened; the log gives 24.5 mg/h for 2 h = 49 mg; 451 mg wasted
with a witness; the session closes an hour later. A correction of the stop to 30 minutes
later makes the log say 24.5 x 2.5 = 61.25 mg were given: 12.25 mg more than was opened
and wasted. A further correction of the rate to 18 mg/h makes it 18 x 2.5 = 45 mg: 4 mg
unaccounted for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from clinic.stock import test_stock
from clinic.stock.test_stock import RECEIPT, _event, _infuse, _post

#: the clinic with a second nurse (the witness) and a signed IV plan
stock = test_stock.stock


def _amend(client: Any, team: dict[str, Any], sid: int, kind: str, **change: Any) -> None:
    log = client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["events"]
    start = next(e for e in log if e["kind"] == kind)
    replacement = {k: v for k, v in start.items() if k not in ("seq",)}
    replacement.update(change)
    r = _event(
        client,
        team,
        sid,
        {
            "kind": "amendment",
            "target_seq": start["seq"],
            "reason": "misread from the pump",
            "replacement": replacement,
        },
    )
    assert r.status_code == 201, r.text


def test_a_correction_after_the_close_is_flagged_on_the_stock_page(
    app: Any, client: Any, stock: dict[str, Any], clock: Any, login_page: Any
) -> None:
    team = stock["team"]
    lot_id = _post(client, team["nurse"], "receipts", RECEIPT).json()["lot_id"]
    sid = _infuse(client, stock, clock, 1, 2)
    d = _post(
        client,
        team["nurse"],
        "draws",
        {"lot_id": lot_id, "units": 1, "prepared_mg": 100, "dosing_session_id": sid},
    )
    w = _post(
        client, team["nurse"], "wastes", {"draw_id": d.json()["id"], "mg": 451, "method": "sink"}
    )
    assert _post(client, team["nurse2"], f"entries/{w.json()['id']}/witness").status_code == 201
    clock.now += timedelta(hours=1)  # recovery: the session ends an hour after the stop
    assert _event(client, team, sid, {"kind": "end_session", "reason": "done"}).status_code == 201
    login_page("nurse")
    page = client.get("/stock").text
    assert 'data-testid="unbalanced"' not in page
    stop = next(
        e
        for e in client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["events"]
        if e["kind"] == "stop"
    )
    _amend(client, team, sid, "stop", at=stop["at"].replace("T12:00", "T12:30"))
    page = client.get("/stock").text
    assert f'data-testid="unbalanced-{sid}"' in page
    assert "given 61.25 mg by the log" in page and "12.25 mg more given than opened" in page
    _amend(client, team, sid, "start_infusion", rate_mg_per_h=18)
    page = client.get("/stock").text
    assert "given 45.00 mg by the log" in page and "4.00 mg unaccounted for" in page
