"""Controlled-substance stock through the application, on SQLite and PostgreSQL: a lot
received, drawn over two sessions, wasted in front of a witness, counted; refusals that
change nothing; a session that cannot close with drug unaccounted for; the ledger's
append-only tables; the inventory report of the command line at a past date.

The hand-worked example (50 mg/mL 10 mL vials: 500 mg each)::

    receipt            10 vials                        10 vials  5000 mg
    session A  draw     1 vial, 100 mg in 100 mL        9 vials  4500 mg
               given   24.5 mg/h x 2 h       = 49 mg
               waste   500 - 49              = 451 mg   (witnessed)
    session B  draw     2 vials, 200 mg in 200 mL       7 vials  3500 mg
               given   24.5 mg/h x 1 h       = 24.5 mg
               waste   1000 - 24.5           = 975.5 mg (witnessed)
    count      7 vials: agrees
    count      6 vials: -1 vial (500 mg) -> discrepancy -> loss (DEA Form 106)
                                                        6 vials  3000 mg
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from plan_helpers import IV_CHECKS, _signed

VIAL = "ketamine-50mg-ml-10ml-vial"
RECEIPT = {
    "site": "main",
    "product": VIAL,
    "lot": "K-2026A",
    "expiry": "2027-12-31",
    "units": 10,
    "supplier": "Example Wholesale, Inc.",
    "reference": "INV-40411 / PO 2026-118",
}


@pytest.fixture
def stock(app: Any, client: Any, clinic: dict[str, Any], login_api: Any) -> dict[str, Any]:
    """The clinic with a second nurse (the witness) and a signed IV plan."""
    admin = login_api("admin")
    r = client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": "nurse2",
            "full_name": "Second Nurse",
            "role": "nurse",
            "password": "amber-lantern-quay-71",
        },
    )
    assert r.status_code == 201, r.text
    # a clinical role needs a second person: the physician approves it
    physician = clinic["team"]["physician"]
    (pending,) = client.get("/api/v1/role-requests", headers=physician).json()
    client.post(f"/api/v1/role-requests/{pending['id']}/approve", headers=physician)
    r = client.post(
        "/api/v1/auth/token", data={"username": "nurse2", "password": "amber-lantern-quay-71"}
    )
    team = {
        **clinic["team"],
        "nurse2": {"Authorization": f"Bearer {r.json()['access_token']}"},
        "admin": admin,
    }
    plan = _signed(client, clinic)
    return {**clinic, "team": team, "plan": plan}


def _post(client: Any, who: dict[str, str], path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"/api/v1/stock/{path}", headers=who, json=body or {})


def _event(client: Any, team: dict[str, Any], sid: int, event: dict[str, Any]) -> Any:
    seq = client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["last_seq"]
    return client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=team["nurse"],
        json={"expected_seq": seq, "event": event},
    )


def _opened(client: Any, s: dict[str, Any], number: int) -> int:
    """Session ``number`` opened, the patient checked in with baseline vitals."""
    team = s["team"]
    r = client.post(
        f"/api/v1/plans/{s['plan']['id']}/sessions",
        headers=team["nurse"],
        json={"session_number": number},
    )
    assert r.status_code == 201, r.text
    sid = int(r.json()["id"])
    assert _event(client, team, sid, {"kind": "check_in"}).status_code == 201
    vitals = {"kind": "vitals", "sbp_mmhg": 128, "dbp_mmhg": 78, "hr_per_min": 70, "spo2_pct": 98}
    assert _event(client, team, sid, {**vitals, "rr_per_min": 14}).status_code == 201
    return sid


def _infuse(client: Any, s: dict[str, Any], clock: Any, number: int, hours: float) -> int:
    """Open session ``number``, run it at 24.5 mg/h for ``hours`` and stop."""
    team = s["team"]
    sid = _opened(client, s, number)
    for item in IV_CHECKS:
        detail = "lot K-2026A" if item == "medication_lot" else ""
        ev = {"kind": "pre_dose_check", "item": item, "ok": True, "detail": detail}
        assert _event(client, team, sid, ev).status_code == 201
    r = _event(client, team, sid, {"kind": "start_infusion", "rate_mg_per_h": 24.5})
    assert r.status_code == 201 and r.json()["state"] == "dosing", r.text
    clock.now += timedelta(hours=hours)
    r = _event(client, team, sid, {"kind": "stop", "reason": "completed"})
    assert r.json()["delivered_mg"] == pytest.approx(24.5 * hours)
    return sid


def _entries(app: Any) -> int:
    from ketacare.clinic.stock.orm import StockEntry

    with app.state.ctx.sessions() as s:
        return int(s.scalar(select(func.count(StockEntry.id))))


def _lot(client: Any, who: dict[str, str], lot_id: int) -> dict[str, Any]:
    lots = client.get("/api/v1/stock/lots", headers=who).json()["lots"]
    return next(x for x in lots if x["lot_id"] == lot_id)


def test_receipt_draws_waste_count_agree_to_the_milligram(
    app: Any, client: Any, stock: dict[str, Any], clock: Any, login_api: Any
) -> None:
    team = stock["team"]
    r = _post(client, team["nurse"], "receipts", RECEIPT)
    assert r.status_code == 201, r.text
    lot_id = r.json()["lot_id"]
    # session A: one vial opened, 49 mg given, 451 mg wasted in front of nurse2
    a = _infuse(client, stock, clock, 1, 2)
    d = _post(
        client,
        team["nurse"],
        "draws",
        {
            "lot_id": lot_id,
            "units": 1,
            "prepared_mg": 100,
            "prepared_ml": 100,
            "dosing_session_id": a,
        },
    )
    assert d.status_code == 201, d.text
    closing = _event(client, team, a, {"kind": "end_session", "reason": "done for the day"})
    assert closing.status_code == 409
    assert "451.00 mg unaccounted for" in closing.json()["detail"]
    w = _post(
        client,
        team["nurse"],
        "wastes",
        {"draw_id": d.json()["id"], "mg": 451, "method": "drug-waste container"},
    )
    assert w.status_code == 201, w.text
    # the waste counts only once a second person has witnessed it, never its author
    before = _entries(app)
    own = _post(client, team["nurse"], f"entries/{w.json()['id']}/witness")
    assert own.status_code == 422
    assert (
        "nurse recorded waste" in own.json()["detail"] and "second person" in own.json()["detail"]
    )
    assert _entries(app) == before
    still = _event(client, team, a, {"kind": "end_session", "reason": "done for the day"})
    assert still.status_code == 409 and "awaits its witness" in still.json()["detail"]
    assert _post(client, team["nurse2"], f"entries/{w.json()['id']}/witness").status_code == 201
    account = client.get(f"/api/v1/stock/sessions/{a}", headers=team["nurse"]).json()
    assert (account["opened_mg"], account["delivered_mg"], account["wasted_mg"]) == (500, 49, 451)
    assert account["remainder_mg"] == 0 and account["can_close"] is True
    closed = _event(client, team, a, {"kind": "end_session", "reason": "done for the day"})
    assert closed.status_code == 201, closed.text
    # a closed session draws nothing more
    r = _post(
        client,
        team["nurse"],
        "draws",
        {"lot_id": lot_id, "units": 1, "prepared_mg": 50, "dosing_session_id": a},
    )
    assert r.status_code == 409
    # session B, the next day (the course gives one session a day): two vials, 24.5 mg
    # given, 975.5 mg wasted
    clock.now += timedelta(days=1)
    team["nurse"] = login_api("nurse")
    r = client.post(
        "/api/v1/auth/token", data={"username": "nurse2", "password": "amber-lantern-quay-71"}
    )
    team["nurse2"] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    for role in ("physician", "admin"):
        team[role] = login_api(role)
    b = _infuse(client, stock, clock, 2, 1)
    d = _post(
        client,
        team["nurse"],
        "draws",
        {
            "lot_id": lot_id,
            "units": 2,
            "prepared_mg": 200,
            "prepared_ml": 200,
            "dosing_session_id": b,
        },
    )
    assert d.status_code == 201, d.text
    w = _post(
        client, team["nurse"], "wastes", {"draw_id": d.json()["id"], "mg": 975.5, "method": "sink"}
    )
    assert _post(client, team["nurse2"], f"entries/{w.json()['id']}/witness").status_code == 201
    assert _event(client, team, b, {"kind": "end_session", "reason": "done"}).status_code == 201
    assert _lot(client, team["nurse"], lot_id)["units_on_hand"] == 7
    assert _lot(client, team["nurse"], lot_id)["mg_on_hand"] == 3500
    # the count agrees: no discrepancy
    c = _post(client, team["nurse"], "counts", {"lot_id": lot_id, "units_counted": 7})
    assert _post(client, team["nurse2"], f"entries/{c.json()['id']}/witness").status_code == 201
    assert client.get("/api/v1/stock/lots", headers=team["nurse"]).json()["discrepancies"] == []
    # a count of 6 opens a discrepancy, which a physician resolves as a loss
    clock.now += timedelta(hours=1)
    c = _post(client, team["nurse2"], "counts", {"lot_id": lot_id, "units_counted": 6})
    assert _post(client, team["nurse"], f"entries/{c.json()['id']}/witness").status_code == 201
    [disc] = client.get("/api/v1/stock/lots", headers=team["nurse"]).json()["discrepancies"]
    assert (disc["expected"], disc["counted"], disc["difference"], disc["resolved"]) == (
        7,
        6,
        -1,
        False,
    )
    path = f"counts/{c.json()['id']}/resolve"
    loss = {"outcome": "loss", "reason": "vial not found after search"}
    assert _post(client, team["nurse"], path, loss).status_code == 403
    r = _post(client, team["physician"], path, loss)
    assert r.status_code == 422 and "DEA Form 106" in r.json()["detail"]
    r = _post(client, team["physician"], path, {**loss, "report_reference": "DEA 106 #2026-0001"})
    assert r.status_code == 201, r.text
    assert _lot(client, team["nurse"], lot_id)["units_on_hand"] == 6
    assert _lot(client, team["nurse"], lot_id)["mg_on_hand"] == 3000
    # reports: the waste log names both people; the admin sees it, a nurse may not
    assert client.get("/api/v1/stock/reports/waste", headers=team["nurse"]).status_code == 403
    waste_log = client.get("/api/v1/stock/reports/waste", headers=team["admin"]).json()["rows"]
    assert [(x["mg"], x["by"], x["witness"]) for x in waste_log] == [
        (451, "nurse", "nurse2"),
        (975.5, "nurse", "nurse2"),
    ]
    csv = client.get(
        "/api/v1/stock/reports/dispensing", headers=team["admin"], params={"format": "csv"}
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.count("\n") == 3 and ",K-2026A," in csv.text


def test_nothing_left_to_waste_reads_0_mg_never_a_negative_zero(
    client: Any, stock: dict[str, Any], clock: Any, login_page: Any
) -> None:
    team = stock["team"]
    lot_id = _post(client, team["nurse"], "receipts", RECEIPT).json()["lot_id"]
    # 16.333 mg given at 24.5 mg/h (the log keeps mg to 3 decimals); one 500 mg vial opened
    sid = _infuse(client, stock, clock, 1, 16.333 / 24.5)
    d = _post(
        client,
        team["nurse"],
        "draws",
        {"lot_id": lot_id, "units": 1, "prepared_mg": 100, "dosing_session_id": sid},
    )
    assert d.status_code == 201, d.text
    # 483.67 mg wasted (the remainder 483.667 to two decimals, as the form fills it in):
    # 0.003 mg more than was left
    w = {"draw_id": d.json()["id"], "mg": 483.67, "method": "drug-waste container"}
    assert _post(client, team["nurse"], "wastes", w).status_code == 201
    said = (
        "1 mg is more than is left to waste: 0 mg (opened 500 mg, given 16.33 mg, wasted 483.67 mg)"
    )
    r = _post(client, team["nurse"], "wastes", {**w, "mg": 1})
    assert r.status_code == 422 and r.json()["detail"] == said
    csrf = login_page("nurse")
    r = client.post(
        f"/stock/sessions/{sid}/waste",
        data={"draw_id": str(d.json()["id"]), "mg": "1", "method": "sink", "csrf_token": csrf},
    )
    # (not a bare "-0": the page's random CSRF token may hold one)
    assert r.status_code == 422 and said in r.text
    assert not re.search(r"[-\u2212]0(?:\.0+)? mg", r.text)


def test_bad_draws_and_a_lone_count_are_refused_and_change_nothing(
    app: Any, client: Any, stock: dict[str, Any], clock: Any
) -> None:
    team = stock["team"]
    lot_id = _post(client, team["nurse"], "receipts", RECEIPT).json()["lot_id"]
    old = {**RECEIPT, "lot": "K-OLD", "expiry": "2026-02-28", "units": 3}
    old_id = _post(client, team["nurse"], "receipts", old).json()["lot_id"]
    sid = _infuse(client, stock, clock, 1, 1)
    before = _entries(app)
    draw = {"units": 1, "prepared_mg": 100, "dosing_session_id": sid}
    r = _post(client, team["nurse"], "draws", {**draw, "lot_id": old_id})
    assert r.status_code == 422 and "expired on 2026-02-28" in r.json()["detail"]
    r = _post(client, team["nurse"], "draws", {**draw, "lot_id": lot_id, "units": 11})
    assert r.status_code == 422 and "has 10" in r.json()["detail"]
    r = _post(client, team["nurse"], "draws", {**draw, "lot_id": lot_id, "prepared_mg": 600})
    assert r.status_code == 422 and "600 mg prepared is more than the 500 mg" in r.json()["detail"]
    device = {**RECEIPT, "product": "esketamine-28mg-device", "lot": "S-1"}
    dev_id = _post(client, team["nurse"], "receipts", device).json()["lot_id"]
    before = _entries(app)
    r = _post(client, team["nurse"], "draws", {**draw, "lot_id": dev_id, "prepared_mg": 28})
    assert r.status_code == 422 and "the session is racemic_ketamine" in r.json()["detail"]
    # a count one person signs alone stays pending; the same person cannot witness it
    c = _post(client, team["nurse"], "counts", {"lot_id": lot_id, "units_counted": 9})
    r = _post(client, team["nurse"], f"entries/{c.json()['id']}/witness")
    assert r.status_code == 422 and "second person" in r.json()["detail"]
    assert _entries(app) == before + 1
    lots = client.get("/api/v1/stock/lots", headers=team["nurse"]).json()
    assert lots["discrepancies"] == [] and lots["awaiting_witness"] == [c.json()["id"]]
    # a session that gave a dose without drawing cannot close once the clinic keeps stock
    r = _event(client, team, sid, {"kind": "end_session", "reason": "done"})
    assert r.status_code == 409 and "drew nothing from stock" in r.json()["detail"]


def test_the_ledger_is_append_only_in_the_database(
    app: Any, client: Any, stock: dict[str, Any]
) -> None:
    team = stock["team"]
    assert _post(client, team["nurse"], "receipts", RECEIPT).status_code == 201
    for statement in (
        "UPDATE stock_entries SET units = 99",
        "DELETE FROM stock_entries",
        "UPDATE stock_lots SET lot = 'X'",
    ):
        with app.state.engine.connect() as conn, pytest.raises(Exception, match="append-only"):
            conn.execute(text(statement))
    assert _entries(app) == 1


def test_the_inventory_command_at_a_past_date(
    app: Any, client: Any, stock: dict[str, Any], clock: Any, settings: Any, tmp_path: Any
) -> None:
    team = stock["team"]
    early = {**RECEIPT, "received_at": "2026-02-28T10:00:00+00:00"}
    lot_id = _post(client, team["nurse"], "receipts", early).json()["lot_id"]
    sid = _infuse(client, stock, clock, 1, 2)
    d = _post(
        client,
        team["nurse"],
        "draws",
        {"lot_id": lot_id, "units": 3, "prepared_mg": 100, "dosing_session_id": sid},
    )
    assert d.status_code == 201, d.text
    env = {
        "KETACARE_DATABASE_URL": settings.effective_database_url,
        "KETACARE_VAR_DIR": str(tmp_path / "var"),
        "KETACARE_TIMEZONE": "Europe/Amsterdam",
    }

    def report(at: str) -> Any:
        r = subprocess.run(
            [sys.executable, "-m", "ketacare.cli", "inventory", "report", "--at", at, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 0, r.stderr
        import json

        return json.loads(r.stdout)

    # received 28 February; three vials drawn 2 March
    past = report("2026-03-01")
    assert [
        (x["lot"], x["product"], x["units_on_hand"], x["mg_on_hand"]) for x in past["lots"]
    ] == [("K-2026A", VIAL, 10, 5000)]
    assert past["totals"]["mg_on_hand"] == 5000
    assert report("2026-03-02")["totals"] == {
        "units_on_hand": 7,
        "mg_on_hand": 3500,
        "by_molecule": {"racemic_ketamine": {"units_on_hand": 7, "mg_on_hand": 3500}},
    }
    assert report("2026-02-27")["lots"] == []
    bad = subprocess.run(
        [sys.executable, "-m", "ketacare.cli", "inventory", "report", "--at", "03/04/2026"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )
    assert bad.returncode == 2 and "is not a date" in bad.stderr


def test_the_session_page_says_when_no_stock_is_kept_instead_of_a_negative_balance(
    client: Any, stock: dict[str, Any], clock: Any, login_page: Any
) -> None:
    """Before the clinic has received any lot, a session gives its dose without a draw: its
    stock page says that no stock is kept (not 'every mg is accounted for' beside a
    negative remainder). Once a lot is received, a session giving a dose without a draw
    cannot close, and its page says why."""
    sid = _infuse(client, stock, clock, 1, 2)  # 49 mg given, no lot on record
    login_page("nurse")
    page = client.get(f"/stock/sessions/{sid}").text
    status = page.split('data-testid="close-status">')[1].split("</p>")[0]
    assert "No stock of" in status and "is kept here yet" in status
    assert "accounted for: the session may close" not in page
    remainder = page.split('data-testid="remainder-mg">')[1].split("</td>")[0]
    assert remainder == "— (nothing drawn)" and "-49" not in page
    assert _post(client, stock["team"]["nurse"], "receipts", RECEIPT).status_code == 201
    page = client.get(f"/stock/sessions/{sid}").text
    status = page.split('data-testid="close-status">')[1].split("</p>")[0]
    assert "gave 49.00 mg" in status and "drew nothing from stock" in status


def _lot_check(lot: str) -> dict[str, Any]:
    return {"kind": "pre_dose_check", "item": "medication_lot", "ok": True, "detail": lot}


def _seq(client: Any, team: dict[str, Any], sid: int) -> int:
    return int(client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["last_seq"])


def test_the_lot_checked_at_the_chair_must_be_a_lot_drawn_for_the_session(
    client: Any, stock: dict[str, Any], clock: Any, login_page: Any
) -> None:
    team = stock["team"]
    lot_id = _post(client, team["nurse"], "receipts", RECEIPT).json()["lot_id"]
    other = {**RECEIPT, "lot": "K-2026B", "units": 2}
    assert _post(client, team["nurse"], "receipts", other).status_code == 201
    # drawn first (from K-2026A), then a vial of K-2026B read at the chair: refused
    sid = _opened(client, stock, 1)
    draw = {"lot_id": lot_id, "units": 1, "prepared_mg": 100, "dosing_session_id": sid}
    assert _post(client, team["nurse"], "draws", draw).status_code == 201
    before = _seq(client, team, sid)
    r = _event(client, team, sid, _lot_check("lot K-2026B"))
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == (
        f"the lot checked at the chair ('lot K-2026B') is none of the lots drawn from stock "
        f"for session {sid} (K-2026A): check the vial; then amend the pre-dose check, or void "
        "the draw and record the draw from the lot given"
    )
    # a lot whose number holds the drawn one is not it
    assert _event(client, team, sid, _lot_check("K-2026AB")).status_code == 409
    assert _seq(client, team, sid) == before  # nothing stored
    # the chair's form says the same, and stores nothing either
    csrf = login_page("nurse")
    r = client.post(
        f"/sessions/{sid}/record",
        data={
            "kind": "pre_dose_checks",
            "item": "medication_lot",
            "detail_medication_lot": "lot K-2026B",
            "expected_seq": str(before),
            "csrf_token": csrf,
        },
    )
    assert r.status_code == 422 and "none of the lots drawn from stock" in r.text
    assert _seq(client, team, sid) == before
    # the vial of the drawn lot, in any case and with a scan after it
    assert _event(client, team, sid, _lot_check("Lot k-2026a, scanned 0123")).status_code == 201


def test_a_draw_booked_after_the_check_against_another_lot_keeps_the_session_open(
    client: Any, stock: dict[str, Any], clock: Any
) -> None:
    team = stock["team"]
    lot_id = _post(client, team["nurse"], "receipts", RECEIPT).json()["lot_id"]
    # charted in the order it was written down: the check, the infusion, then the draw
    sid = _opened(client, stock, 1)
    for item in IV_CHECKS:
        ev = _lot_check("lot K-9") if item == "medication_lot" else {}
        ev = ev or {"kind": "pre_dose_check", "item": item, "ok": True, "detail": ""}
        assert _event(client, team, sid, ev).status_code == 201
    checked_seq = _seq(client, team, sid)
    r = _event(client, team, sid, {"kind": "start_infusion", "rate_mg_per_h": 24.5})
    assert r.status_code == 201, r.text
    clock.now += timedelta(hours=2)
    assert _event(client, team, sid, {"kind": "stop", "reason": "completed"}).status_code == 201
    draw = {"lot_id": lot_id, "units": 1, "prepared_mg": 100, "dosing_session_id": sid}
    d = _post(client, team["nurse"], "draws", draw)
    assert d.status_code == 201, d.text  # what left the safe is recorded as it happened
    w = {"draw_id": d.json()["id"], "mg": 451, "method": "drug-waste container"}
    waste = _post(client, team["nurse"], "wastes", w)
    witness = _post(client, team["nurse2"], f"entries/{waste.json()['id']}/witness")
    assert witness.status_code == 201, witness.text
    # every mg is accounted for (500 = 49 given + 451 wasted), but not which vial was given
    said = (
        f"the lot checked at the chair ('lot K-9') is none of the lots drawn from stock for "
        f"session {sid} (K-2026A)"
    )
    account = client.get(f"/api/v1/stock/sessions/{sid}", headers=team["nurse"]).json()
    assert account["remainder_mg"] == 0 and account["can_close"] is False
    assert said in account["reason"]
    closing = _event(client, team, sid, {"kind": "end_session", "reason": "done for the day"})
    assert closing.status_code == 409 and said in closing.json()["detail"]
    # the nurse reads the label again: the check was mistyped, amended with a reason
    log = client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["events"]
    (original,) = [e for e in log if e["seq"] == checked_seq]
    when = {"at": original["at"], "by": "nurse"}
    amended = {
        "kind": "amendment",
        "target_seq": checked_seq,
        "reason": "lot mistyped at the chair; label re-read",
        "replacement": {**_lot_check("lot K-3"), **when},
    }
    r = _event(client, team, sid, amended)
    assert r.status_code == 409 and "('lot K-3')" in r.json()["detail"]
    fixed = {**amended, "replacement": {**_lot_check("lot K-2026A"), **when}}
    r = _event(client, team, sid, fixed)
    assert r.status_code == 201, r.text
    closed = _event(client, team, sid, {"kind": "end_session", "reason": "done for the day"})
    assert closed.status_code == 201, closed.text
